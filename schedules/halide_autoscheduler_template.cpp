// halide_autoscheduler: Halide 14's own autoschedulers (Debian's plugins) as one more
// template, so that tuning is never worse than them and their speed can be reported
// beside convjit's: Adams2019 and Mullapudi2016 on CPU targets, Li2018 (the only
// one that emits GPU schedules in Halide 14) on CUDA targets. Never a default.
#include <sys/stat.h>

#include <cstdlib>

#include <mutex>

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

// Halide 14 miscompiles some sliding windows over a reduction loop: a Func stored
// outside an r-loop and computed inside it is produced at the loop's first iteration
// only, and the iterations of a loop between the two levels then read values
// computed for another position. Adams2019 schedules such windows (a padded copy of
// the input stored at r$y, computed at r$x inside a loop over columns): on a 16 ->
// 16 3x3 14x14 layer and a 3 -> 16 7x7 stride-2 one its kernels returned garbage
// (relative errors 1e19 and 3e26, 2026-12-03), of the bug class of
// halide/Halide#7909, fixed after Halide 14. Storing each such Func where it is
// computed leaves no window to slide; the rest of the schedule stays.
void store_where_computed_inside_reduction_loops(const Halide::Func& output) {
  for (auto& [name, function] : Halide::Internal::find_transitive_calls(output.function())) {
    Halide::LoopLevel compute = function.schedule().compute_level();
    Halide::LoopLevel store = function.schedule().store_level();
    compute.lock();
    store.lock();
    if (!compute.defined() || !store.defined()) continue;
    if (compute.is_inlined() || compute.is_root() || !compute.var().is_rvar || store == compute) continue;
    Halide::Func(function).store_at(compute);
  }
}

// Adams2019 vectorizes by the machine's width whatever the extent: on transposed
// layers of 8 input channels the padded input took 16-lane channel vectors shifted
// inwards to start at channel -8, and Halide's bounds check refused every run
// (2026-12-03). The splits of the padded input's Funcs (the boundary condition and
// the Funcs it calls) guard their tails instead: full vectors stay, and a short
// extent is computed short. The Funcs that sum keep their schedule.
void guard_split_tails_of_padded_input(const Halide::Func& input_extended) {
  auto functions = Halide::Internal::find_transitive_calls(input_extended.function());
  for (auto& [name, function] : functions) {
    for (Halide::Internal::Split& split : function.definition().schedule().splits()) {
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
    store_where_computed_inside_reduction_loops(a.output);
    guard_split_tails_of_padded_input(a.input_extended);
    a.halide_autoscheduled = true;
  }
};

}  // namespace

const ScheduleTemplate& halide_autoscheduler_template() {
  static const HalideAutoschedulerTemplate instance;
  return instance;
}

}  // namespace convjit
