// halide_autoscheduler: Halide 14's own autoschedulers (Debian's plugins) as one more
// template, so that tuning is never worse than them and their speed can be reported
// beside convjit's: Adams2019 and Mullapudi2016 on CPU targets, Li2018 (the only
// one that emits GPU schedules in Halide 14) on CUDA targets. Never a default.
#include <sys/stat.h>

#include <cstdlib>

#include <map>
#include <mutex>
#include <string>

#include <vector>

#include "cpu_templates.h"
#include "quiet_halide_log.h"

namespace convjit {
namespace {

struct Autoscheduler {
  const char* name;    // as Pipeline::auto_schedule knows it
  const char* plugin;  // Debian's libhalide14-0-dev installs these
};

constexpr Autoscheduler kAutoschedulers[] = {
    {"Adams2019", "/usr/lib/x86_64-linux-gnu/halide14/libautoschedule_adams2019.so"},
    {"Mullapudi2016", "/usr/lib/x86_64-linux-gnu/halide14/libautoschedule_mullapudi2016.so"},
    {"Li2018", "/usr/lib/x86_64-linux-gnu/halide14/libautoschedule_li2018.so"},
};
constexpr int kCount = sizeof(kAutoschedulers) / sizeof(kAutoschedulers[0]);

// The knob values (indices into kAutoschedulers) that suit a target.
std::vector<int> candidates_for(const Halide::Target& target) {
  if (target.has_feature(Halide::Target::CUDA)) return {2};
  return {0, 1};
}

bool plugin_present(const Autoscheduler& a) {
  struct stat st;
  return stat(a.plugin, &st) == 0;
}

// Loads a plugin once per process; it registers the autoscheduler by name.
void load_once(const Autoscheduler& a) {
  static std::mutex mutex;
  static bool loaded[kCount] = {};
  std::lock_guard<std::mutex> lock(mutex);
  const size_t index = static_cast<size_t>(&a - kAutoschedulers);
  if (!loaded[index]) {
    Halide::load_plugin(a.plugin);
    loaded[index] = true;
  }
}

// The position of the loop over `var` in `function`'s last stage, innermost first
// (-1 if none): LoopLevels that compute_at(Func, Var) makes, as the autoschedulers
// do, name the last stage. Split loops are named by their origin ("y.yi" for yi).
// Only the stage knows whether a loop is a reduction's: Adams2019 names every
// level with a Var, r$x included.
int loop_position(const Halide::Internal::Function& function, const std::string& var, bool* reduction) {
  const Halide::Internal::Definition& stage =
      function.has_update_definition() ? function.updates().back() : function.definition();
  const std::vector<Halide::Internal::Dim>& loops = stage.schedule().dims();
  for (size_t i = 0; i < loops.size(); ++i) {
    const std::string& name = loops[i].var;
    if (name == var || (name.size() > var.size() && name.compare(name.size() - var.size() - 1, std::string::npos,
                                                                 "." + var) == 0)) {
      *reduction = loops[i].is_rvar();
      return static_cast<int>(i);
    }
  }
  return -1;
}

// Halide 14 computes some sliding windows wrongly: a Func stored at one loop and
// computed at a loop inside it is produced only for the positions a previous
// iteration has not, and where another loop lies between the two levels, or one of
// them is a reduction loop, those positions were produced for another value of that
// loop. Adams2019 schedules such windows. Its kernels returned wrong sums (2026-12-03):
// - a padded input copy stored at r$y and computed at r$x inside a loop over
//   columns: 16 -> 16 3x3 on 14x14, 3 -> 16 7x7 stride 2 (relative errors 1e19, 3e26);
// - a circular-padded copy stored at x and computed at y inside a loop over
//   channels: a 1 -> 2 depthwise 3x3 (error 1.3);
// and a grouped layer's copy computed at channels inside r$y failed every run.
// Such Funcs are stored where they are computed, which leaves no window to slide;
// windows between adjacent loops of pure dimensions (the depthwise layers' rows
// within a column tile) stay, and with them Adams2019's speed there. `functions`:
// the pipeline's, as find_transitive_calls gives them.
using PipelineFunctions = std::map<std::string, Halide::Internal::Function>;
void store_where_computed_unless_windows_slide_safely(const PipelineFunctions& functions) {
  for (const auto& [name, function] : functions) {
    Halide::LoopLevel compute = function.schedule().compute_level();
    Halide::LoopLevel store = function.schedule().store_level();
    compute.lock();
    store.lock();
    if (!compute.defined() || !store.defined()) continue;
    if (compute.is_inlined() || compute.is_root() || store.is_inlined() || store == compute) continue;
    bool safe = !store.is_root() && store.func() == compute.func();
    if (safe) {
      const Halide::Internal::Function& consumer = functions.at(compute.func());
      bool inner_reduces = true, outer_reduces = true;
      const int inner = loop_position(consumer, compute.var().name(), &inner_reduces);
      const int outer = loop_position(consumer, store.var().name(), &outer_reduces);
      safe = inner >= 0 && outer == inner + 1 && !inner_reduces && !outer_reduces;
    }
    if (!safe) Halide::Func(function).store_at(compute);
  }
}

// Adams2019 vectorizes by the machine's width whatever the extent, shifting a short
// extent's vector inwards, so that the Funcs that copy the input are computed
// before its first element: on transposed layers of 8 input channels the padded
// input took 16-lane channel vectors from channel -8, and a 1x1 stride-3 layer's
// window copy started at column -9. Halide's bounds check then refuses every run
// (2026-12-03). The splits of the pure Funcs between the input and the sum (no
// update definition: copies, boundary conditions) guard their tails instead: full
// vectors stay, a short extent is computed short. The sums keep their schedule.
void guard_split_tails_of_input_copies(const PipelineFunctions& functions, const std::string& output) {
  for (const auto& [name, function] : functions) {
    if (function.has_update_definition() || name == output) continue;
    Halide::Internal::Function copy = function;  // a handle: the schedule is shared
    for (Halide::Internal::Split& split : copy.definition().schedule().splits()) {
      if (split.is_split()) split.tail = Halide::TailStrategy::GuardWithIf;
    }
  }
}

// Estimates equal to the pinned shapes: the autoschedulers plan from them.
void set_estimates(ConvAlgorithm& a) {
  const ConvSpec& s = a.spec;
  auto estimate = [](Halide::ImageParam& p, const int64_t* shape, int rank) {
    Halide::Region region;
    for (int d = rank - 1; d >= 0; --d) region.push_back({0, static_cast<int>(shape[d])});
    p.set_estimates(region);
  };
  const auto in = input_shape(s), out = output_shape(s);
  const auto w = weight_shape(s);
  estimate(a.input, in.data(), 4);
  estimate(a.weights, w.data(), weight_rank(s));
  if (s.has_bias) {
    const int64_t b[] = {s.c_out};
    estimate(a.bias, b, 1);
  }
  a.output.set_estimates({{0, static_cast<int>(out[3])},
                          {0, static_cast<int>(out[2])},
                          {0, static_cast<int>(out[1])},
                          {0, static_cast<int>(out[0])}});
}

class HalideAutoschedulerTemplate final : public ScheduleTemplate {
 public:
  const char* name() const override { return "halide_autoscheduler"; }

  std::string why_not_applicable(const ConvAlgorithm&, const Halide::Target& target) const override {
    if (target.arch != Halide::Target::X86) return "needs an x86 host";
    const std::vector<int> candidates = candidates_for(target);
    for (int i : candidates) {
      if (plugin_present(kAutoschedulers[i])) return "";
    }
    return std::string("no autoscheduler plugin for this target found (looked for ") +
           kAutoschedulers[candidates.front()].plugin + ")";
  }

  // Measured for comparison and by the tuner, never a default.
  bool preferred_by_default(const ConvAlgorithm&, const Halide::Target&) const override { return false; }

  std::vector<Knob> knobs(const ConvAlgorithm&, const Halide::Target& target) const override {
    Knob which{"algorithm", {}, "0 = Adams2019, 1 = Mullapudi2016 (CPU); 2 = Li2018 (CUDA)"};
    for (int i : candidates_for(target)) {
      if (plugin_present(kAutoschedulers[i])) which.choices.push_back(i);
    }
    return {which};
  }

  ScheduleParams defaults(const ConvAlgorithm& a, const Halide::Target& t) const override {
    return {{"algorithm", knobs(a, t)[0].choices.front()}};
  }

  void apply(ConvAlgorithm& a, const Halide::Target& target, const ScheduleParams& p) const override {
    const Autoscheduler& chosen = kAutoschedulers[p.get("algorithm")];
    // Adams2019's default beam search (32 wide, 5 passes) took 60 s for ResNet-50's
    // res2 3x3 layer on a 2-core machine (2026-11-21): longer than a whole tuning
    // budget. Its greedy mode takes seconds; a user's own setting wins.
    setenv("HL_BEAM_SIZE", "1", /*overwrite=*/0);
    load_once(chosen);
    set_estimates(a);
    // Two cores, a 32 MB last-level cache, and the balance Halide's own apps use.
    QuietHalideLog quiet;
    Halide::Pipeline(a.output).auto_schedule(chosen.name, target, Halide::MachineParams(2, 32 << 20, 40));
    const PipelineFunctions functions = Halide::Internal::find_transitive_calls(a.output.function());
    store_where_computed_unless_windows_slide_safely(functions);
    guard_split_tails_of_input_copies(functions, a.output.name());
    a.halide_autoscheduled = true;
  }
};

}  // namespace

const ScheduleTemplate& halide_autoscheduler_template() {
  static const HalideAutoschedulerTemplate instance;
  return instance;
}

}  // namespace convjit
