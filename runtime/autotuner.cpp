// The autotuner: evolutionary search over the applicable templates' knob spaces,
// with careful timing and a correctness check of every candidate.
#include "convjit/autotuner.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <limits>
#include <map>
#include <mutex>
#include <optional>
#include <random>

#include "Halide.h"
#include "cuda_device.h"
#include "schedule_templates.h"
#include "halide_runtime_library.h"
#include "lowering.h"
#include "pipeline_compiler.h"

namespace convjit {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

int64_t product(const int64_t* dims, int rank) {
  int64_t p = 1;
  for (int i = 0; i < rank; ++i) p *= dims[i];
  return p;
}

// Several copies of a kernel's inputs and outputs, so that timed runs rotate over
// memory that is not all in cache. For CUDA kernels the copies also live on the
// device (to_device()), so that timing measures the kernel, not PCIe transfers.
class BufferSets {
 public:
  // `max_sets` 1: one set, reused by every run (warm caches, as `convjit bench` times).
  BufferSets(const ConvSpec& s, uint32_t seed, int64_t max_sets = 8) : spec_(s) {
    const auto in = input_shape(s), out = output_shape(s);
    const auto w = weight_shape(s);
    in_count_ = product(in.data(), 4);
    out_count_ = product(out.data(), 4);
    w_count_ = product(w.data(), weight_rank(s));
    const int64_t sets = std::min<int64_t>(rotating_buffer_set_count(s), std::max<int64_t>(max_sets, 1));
    std::mt19937 rng(seed);
    std::uniform_real_distribution<float> uniform(-1.f, 1.f);
    for (int64_t k = 0; k < sets; ++k) {
      Set set;
      set.src = random_bytes(in_count_, rng, uniform);
      set.wei = random_bytes(w_count_, rng, uniform);
      set.bias = random_bytes(s.c_out, rng, uniform);
      set.dst.assign(out_count_ * element_size(s.dtype), 0);
      sets_.push_back(std::move(set));
    }
  }

  int count() const { return static_cast<int>(sets_.size()); }

  // Copies every set to the device; later runs use the device copies.
  Status to_device() {
    for (Set& set : sets_) {
      for (auto [host, device] : {std::pair{&set.src, &set.device_src}, std::pair{&set.wei, &set.device_wei},
                                  std::pair{&set.bias, &set.device_bias}, std::pair{&set.dst, &set.device_dst}}) {
        auto buffer = CudaBuffer::allocate(host->size());
        if (!buffer.ok()) return buffer.status();
        CONVJIT_RETURN_IF_ERROR(buffer->upload(host->data()));
        device->emplace(std::move(*buffer));
      }
    }
    on_device_ = true;
    return Status();
  }

  // Runs set k; on the device, returns once the kernel has finished.
  Status run(const Kernel& kernel, int k) { return run_set(kernel, sets_[k % sets_.size()], on_device_); }
  // Runs set 0 from host memory whatever to_device() did (the CPU reference).
  Status run_on_host(const Kernel& kernel) { return run_set(kernel, sets_[0], false); }

  // The output of set 0 as floats (as the last run of set 0 left it).
  std::vector<float> output() {
    Set& first = sets_[0];
    if (last_run_on_device_ && first.device_dst) (void)first.device_dst->download(first.dst.data());
    std::vector<float> values(out_count_);
    const std::vector<uint8_t>& dst = first.dst;
    for (int64_t i = 0; i < out_count_; ++i) {
      if (spec_.dtype == DataType::kFloat16) {
        uint16_t bits;
        std::memcpy(&bits, dst.data() + 2 * i, 2);
        values[i] = static_cast<float>(Halide::float16_t::make_from_bits(bits));
      } else {
        std::memcpy(&values[i], dst.data() + 4 * i, 4);
      }
    }
    return values;
  }

 private:
  struct Set {
    std::vector<uint8_t> src, wei, bias, dst;
    std::optional<CudaBuffer> device_src, device_wei, device_bias, device_dst;
  };

  Status run_set(const Kernel& kernel, Set& set, bool device) {
    const auto in = input_shape(spec_), out = output_shape(spec_);
    const auto w = weight_shape(spec_);
    const std::vector<int64_t> in_dims(in.begin(), in.end()), out_dims(out.begin(), out.end()),
        w_dims(w.begin(), w.begin() + weight_rank(spec_));
    last_run_on_device_ = device;
    if (!device) {
      const TensorView bias = TensorView::dense(set.bias.data(), {spec_.c_out});
      return kernel.run(TensorView::dense(set.src.data(), in_dims), TensorView::dense(set.wei.data(), w_dims),
                        spec_.has_bias ? &bias : nullptr, TensorView::dense(set.dst.data(), out_dims));
    }
    const TensorView bias = TensorView::cuda(set.device_bias->pointer(), {spec_.c_out});
    CONVJIT_RETURN_IF_ERROR(kernel.run(TensorView::cuda(set.device_src->pointer(), in_dims),
                                       TensorView::cuda(set.device_wei->pointer(), w_dims),
                                       spec_.has_bias ? &bias : nullptr,
                                       TensorView::cuda(set.device_dst->pointer(), out_dims)));
    return cuda_synchronize();
  }

  std::vector<uint8_t> random_bytes(int64_t count, std::mt19937& rng, std::uniform_real_distribution<float>& u) {
    std::vector<uint8_t> bytes(count * element_size(spec_.dtype));
    for (int64_t i = 0; i < count; ++i) {
      const float v = u(rng);
      if (spec_.dtype == DataType::kFloat16) {
        const uint16_t bits = Halide::float16_t(v).to_bits();
        std::memcpy(bytes.data() + 2 * i, &bits, 2);
      } else {
        std::memcpy(bytes.data() + 4 * i, &v, 4);
      }
    }
    return bytes;
  }

  ConvSpec spec_;
  int64_t in_count_, out_count_, w_count_;
  std::vector<Set> sets_;
  bool on_device_ = false;
  bool last_run_on_device_ = false;
};

double relative_error(const std::vector<float>& actual, const std::vector<float>& expected) {
  double max_diff = 0, max_ref = 0;
  for (size_t i = 0; i < expected.size(); ++i) {
    const double diff = std::fabs(static_cast<double>(actual[i]) - expected[i]);
    if (!(diff <= max_diff)) max_diff = diff;  // NaN propagates as a failure
    max_ref = std::max(max_ref, std::fabs(static_cast<double>(expected[i])));
  }
  return max_diff / std::max(max_ref, 1e-30);
}

double median_ms(BufferSets& buffers, const Kernel& kernel, int runs, Status* status) {
  for (int w = 0; w < 2 && status->ok(); ++w) *status = buffers.run(kernel, w);
  std::vector<double> times;
  for (int r = 0; r < runs && status->ok(); ++r) {
    const auto start = Clock::now();
    *status = buffers.run(kernel, r + 2);
    times.push_back(seconds_since(start) * 1e3);
  }
  if (!status->ok() || times.empty()) return std::numeric_limits<double>::infinity();
  std::sort(times.begin(), times.end());
  return times[times.size() / 2];
}

// "name(k=v,...)" as Kernel::schedule() prints it, back into a request.
ScheduleRequest request_from_description(const std::string& described) {
  const size_t open = described.find('(');
  CONVJIT_CHECK(open != std::string::npos && described.back() == ')', "schedule description " + described);
  return {described.substr(0, open), described.substr(open + 1, described.size() - open - 2)};
}

struct Space {
  const ScheduleTemplate* schedule_template;
  std::vector<Knob> knobs;
};

bool is_autoscheduler(const Space& s) { return std::string(s.schedule_template->name()) == "halide_autoscheduler"; }

struct Candidate {
  std::string template_name;
  ScheduleParams params;
  std::string describe() const { return template_name + "(" + params.to_string() + ")"; }
};

}  // namespace

int rotating_buffer_set_count(const ConvSpec& s) {
  const int64_t elements = product(input_shape(s).data(), 4) + product(output_shape(s).data(), 4) +
                           product(weight_shape(s).data(), weight_rank(s)) + s.c_out;
  const int64_t bytes = elements * element_size(s.dtype);
  if (2 * bytes > (int64_t{1} << 30)) return 1;
  return static_cast<int>(std::clamp<int64_t>((int64_t{32} << 20) / std::max<int64_t>(bytes, 1) + 1, 2, 8));
}

StatusOr<double> measure_kernel(const Kernel& kernel, int timing_runs, bool warm) {
  BufferSets buffers(kernel.spec(), 7, warm ? 1 : 8);
  if (kernel.runs_on_cuda()) CONVJIT_RETURN_IF_ERROR(buffers.to_device());
  Status status;
  const double ms = median_ms(buffers, kernel, timing_runs, &status);
  if (!status.ok()) return status;
  return ms;
}

StatusOr<TuneResult> tune(const ConvSpec& spec, const std::string& target_text, const TuneOptions& options) {
  const auto start = Clock::now();
  CONVJIT_RETURN_IF_ERROR(validate(spec));
  auto target = resolve_target(target_text);
  if (!target.ok()) return target.status();

  // The search space: every applicable template with the knob values it allows.
  std::vector<Space> spaces;
  {
    std::lock_guard<std::mutex> lock(halide_compile_mutex());
    CONVJIT_RETURN_IF_ERROR(catch_halide_errors("listing schedules", [&] {
      const ConvAlgorithm algorithm = lower(spec);
      for (const ScheduleTemplate* t : applicable_templates(algorithm, *target)) {
        spaces.push_back({t, t->knobs(algorithm, *target)});
      }
    }));
  }

  RuntimeOptions runtime_options;
  runtime_options.disk.enabled = false;
  runtime_options.max_memory_entries = 4;  // candidates are measured once and dropped
  Runtime runtime(runtime_options);
  BufferSets buffers(spec, options.seed);
  const double tolerance = spec.dtype == DataType::kFloat16 ? 1e-2 : 1e-4;

  auto reference_kernel = runtime.get_kernel(spec, target_text);
  if (!reference_kernel.ok()) return reference_kernel.status();
  const bool gpu = is_gpu_target(*target);
  if (gpu) CONVJIT_RETURN_IF_ERROR(buffers.to_device());
  Status status;
  TuneResult result;
  result.default_ms = median_ms(buffers, *reference_kernel, options.timing_runs, &status);
  if (!status.ok()) return status;
  // Candidates must match the default kernel; on a GPU, the default must first match
  // the host CPU's default kernel, the better-tested path.
  CONVJIT_RETURN_IF_ERROR(buffers.run(*reference_kernel, 0));
  const std::vector<float> reference = buffers.output();
  if (gpu) {
    auto cpu_kernel = runtime.get_kernel(spec, "host");
    if (!cpu_kernel.ok()) return cpu_kernel.status();
    CONVJIT_RETURN_IF_ERROR(buffers.run_on_host(*cpu_kernel));
    const double error = relative_error(reference, buffers.output());
    if (!(error <= tolerance)) {
      return Status::internal("the default CUDA kernel " + reference_kernel->schedule() + " differs from the CPU kernel by " +
                              std::to_string(error) + " (relative): refusing to tune against it");
    }
  }
  result.best = request_from_description(reference_kernel->schedule());
  result.best_description = reference_kernel->schedule();
  result.best_ms = result.default_ms;
  result.candidates = 1;
  result.curve.push_back({seconds_since(start), result.best_ms});

  std::map<std::string, double> measured = {{result.best_description, result.default_ms}};
  // The fastest autoscheduled kernel, kept alive (the runtime holds 4 kernels) for the
  // confirmation rounds: rebuilding it would rerun its autoscheduler's search.
  std::optional<Kernel> autoscheduler_kernel;
  std::vector<std::pair<double, Candidate>> ranked;  // measured correct candidates, fastest first
  std::mt19937 rng(options.seed);
  double evaluation_seconds = 0;  // running mean cost of one candidate

  auto report = [&] {
    if (!options.on_progress) return;
    TuneProgress p;
    p.candidates = result.candidates;
    p.rejected = result.rejected;
    p.best_ms = result.best_ms;
    p.default_ms = result.default_ms;
    p.elapsed_seconds = seconds_since(start);
    p.budget_seconds = options.budget_seconds;
    p.best_schedule = result.best_description;
    options.on_progress(p);
  };

  auto evaluate = [&](const Candidate& c) {
    const auto t0 = Clock::now();
    const std::string key = c.describe();
    measured[key] = std::numeric_limits<double>::infinity();
    auto kernel = runtime.get_kernel(spec, target_text, ScheduleRequest{c.template_name, c.params.to_string()});
    double ms = std::numeric_limits<double>::infinity();
    double error = 0;
    std::string why_rejected;
    if (!kernel.ok()) {
      why_rejected = "no kernel: " + kernel.status().message();
    } else {
      Status run_status = buffers.run(*kernel, 0);
      error = run_status.ok() ? relative_error(buffers.output(), reference) : 1.0;
      if (run_status.ok() && error <= tolerance) ms = median_ms(buffers, *kernel, options.timing_runs, &run_status);
      if (!run_status.ok()) {
        ms = std::numeric_limits<double>::infinity();
        why_rejected = "failed to run: " + run_status.message();
      } else if (error > tolerance) {
        why_rejected = "relative error " + std::to_string(error) + " above the tolerance " + std::to_string(tolerance);
      }
    }
    ++result.candidates;
    if (!std::isfinite(ms)) {
      ++result.rejected;
      result.rejections.push_back(key + ": " + why_rejected.substr(0, why_rejected.find('\n')));
    } else {
      measured[key] = ms;
      ranked.push_back({ms, c});
      std::sort(ranked.begin(), ranked.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
      if (c.template_name == "halide_autoscheduler" &&
          (result.autoscheduler_ms == 0 || ms < result.autoscheduler_ms)) {
        result.autoscheduler_ms = ms;
        result.autoscheduler_description = key;
        autoscheduler_kernel = *kernel;
      }
      if (ms < result.best_ms) {
        result.best_ms = ms;
        result.best = {c.template_name, c.params.to_string()};
        result.best_description = key;
        result.best_error = error;
      }
    }
    result.curve.push_back({seconds_since(start), result.best_ms});
    const double cost = seconds_since(t0);
    evaluation_seconds = evaluation_seconds == 0 ? cost : 0.8 * evaluation_seconds + 0.2 * cost;
    report();
  };

  auto random_candidate = [&] {
    const Space& space = spaces[std::uniform_int_distribution<size_t>(0, spaces.size() - 1)(rng)];
    Candidate c{space.schedule_template->name(), {}};
    for (const Knob& knob : space.knobs) {
      c.params.set(knob.name, knob.choices[std::uniform_int_distribution<size_t>(0, knob.choices.size() - 1)(rng)]);
    }
    return c;
  };
  auto space_of = [&](const std::string& name) -> const Space* {
    for (const Space& s : spaces)
      if (name == s.schedule_template->name()) return &s;
    return nullptr;
  };
  // Tournament of three among the measured candidates.
  auto pick_parent = [&]() -> const Candidate& {
    size_t best = ranked.size();
    for (int i = 0; i < 3; ++i) best = std::min(best, std::uniform_int_distribution<size_t>(0, ranked.size() - 1)(rng));
    return ranked[best].second;
  };
  auto mutate = [&](Candidate c) {
    const Space* space = space_of(c.template_name);
    const int changes = std::uniform_int_distribution<int>(1, 2)(rng);
    for (int i = 0; i < changes && space; ++i) {
      const Knob& knob = space->knobs[std::uniform_int_distribution<size_t>(0, space->knobs.size() - 1)(rng)];
      const auto at = std::find(knob.choices.begin(), knob.choices.end(), c.params.get(knob.name));
      int index = static_cast<int>(at - knob.choices.begin());
      if (std::uniform_real_distribution<double>(0, 1)(rng) < 0.6) {
        index += std::uniform_int_distribution<int>(0, 1)(rng) ? 1 : -1;  // a neighbouring value
      } else {
        index = std::uniform_int_distribution<int>(0, static_cast<int>(knob.choices.size()) - 1)(rng);
      }
      index = std::clamp(index, 0, static_cast<int>(knob.choices.size()) - 1);
      c.params.set(knob.name, knob.choices[index]);
    }
    return c;
  };
  auto crossover = [&](const Candidate& a, const Candidate& b) {
    Candidate c = a;
    if (a.template_name != b.template_name) return mutate(a);
    for (const auto& [name, value] : b.params.values()) {
      if (std::uniform_int_distribution<int>(0, 1)(rng)) c.params.set(name, value);
    }
    return c;
  };
  auto time_left = [&] { return options.budget_seconds - seconds_since(start) > std::max(evaluation_seconds, 0.05); };

  // Seeds: the caller's starting points, then every template's defaults.
  std::vector<Candidate> defaults;
  {
    std::lock_guard<std::mutex> lock(halide_compile_mutex());
    const ConvAlgorithm algorithm = lower(spec);
    for (const Space& s : spaces) {
      if (!is_autoscheduler(s)) defaults.push_back({s.schedule_template->name(), s.schedule_template->defaults(algorithm, *target)});
    }
  }
  std::vector<Candidate> queue;
  for (const ScheduleRequest& r : options.starting_points) {
    auto params = ScheduleParams::parse(r.params);
    if (!params.ok()) continue;
    // A starting point from another spec (the nearest tuned one) may name knob
    // values this spec does not allow (rows=16 on a 7-row image): each knob takes
    // the allowed value nearest to it, knobs it lacks take the default. A template
    // that does not apply here is measured as given, and rejected with its reason.
    Candidate start{r.template_name, *params};
    if (const Space* space = space_of(r.template_name); space && !is_autoscheduler(*space)) {
      const auto own_defaults = std::find_if(defaults.begin(), defaults.end(),
                                             [&](const Candidate& d) { return d.template_name == r.template_name; });
      Candidate fitted{r.template_name, {}};
      for (const Knob& knob : space->knobs) {
        const int wanted = params->has(knob.name) ? params->get(knob.name) : own_defaults->params.get(knob.name);
        fitted.params.set(knob.name, *std::min_element(knob.choices.begin(), knob.choices.end(), [&](int a, int b) {
          return std::abs(a - wanted) < std::abs(b - wanted);
        }));
      }
      start = fitted;
    }
    queue.push_back(start);
  }
  queue.insert(queue.end(), defaults.begin(), defaults.end());
  for (const Candidate& c : queue) {
    if (!time_left()) break;
    if (!measured.count(c.describe())) evaluate(c);
  }
  // Halide's autoschedulers spend seconds searching before anything compiles, far
  // more than a template candidate: each is measured once, and only while a quarter
  // of the budget (and at least 5 s) remains.
  for (const Space& s : spaces) {
    if (!is_autoscheduler(s)) continue;
    for (int algorithm : s.knobs.front().choices) {
      const double remaining = options.budget_seconds - seconds_since(start);
      if (remaining < std::max(5.0, 0.25 * options.budget_seconds)) break;
      evaluate({s.schedule_template->name(), ScheduleParams{{s.knobs.front().name, algorithm}}});
    }
  }
  // The search itself explores the templates convjit owns.
  spaces.erase(std::remove_if(spaces.begin(), spaces.end(), is_autoscheduler), spaces.end());

  while (time_left()) {
    Candidate next;
    bool fresh = false;
    for (int attempt = 0; attempt < 32 && !fresh; ++attempt) {
      const double r = std::uniform_real_distribution<double>(0, 1)(rng);
      if (ranked.size() < 2 || r < 0.25) {
        next = random_candidate();
      } else if (r < 0.85) {
        next = mutate(pick_parent());
      } else {
        next = crossover(pick_parent(), pick_parent());
      }
      fresh = !measured.count(next.describe());
    }
    if (!fresh) break;  // the reachable space is exhausted
    evaluate(next);
  }

  // Confirm the winner against the default, interleaved, so that one lucky timing
  // cannot install a slower kernel: with rotating buffer sets (cold caches, as the
  // search measured) and with one set reused (warm caches, as `convjit bench` and a
  // layer whose input the previous layer just wrote see). A winner must be faster
  // cold and at most kWarmSlack slower warm: on ResNet-50's 56x56 1x1 layers the
  // search picked cpu_direct kernels 1.09-1.18x faster cold that the bench timed at
  // 0.74-0.90x of the defaults (2026-11-22).
  //
  // The fastest autoscheduled kernel runs in the same rounds (cold and warm), so that
  // the tuned / autoscheduler ratios compare one moment of the machine: the search timed
  // them minutes apart, and on the shared 2-core machines a memory-bound layer's time
  // moved 2.7x between two tuning runs (MobileNetV2 conv2_2/expand's Adams2019 ratio
  // 1.1x and 3.0x with the same tuned kernel, 2026-12-02 and 12-03).
  constexpr double kWarmSlack = 1.05;
  constexpr int kRounds = 3;
  const bool challenger = result.best_description != reference_kernel->schedule();
  if (challenger || autoscheduler_kernel) {
    std::optional<Kernel> best_kernel;
    BufferSets warm_buffers(spec, options.seed, 1);
    Status confirmation = gpu ? warm_buffers.to_device() : Status();
    if (challenger && confirmation.ok()) {
      auto kernel = runtime.get_kernel(spec, target_text, result.best);
      if (kernel.ok()) best_kernel = *kernel;
      confirmation = kernel.status();
    }
    // Each contender's cold and warm medians, one per round.
    struct Timings {
      std::vector<double> cold, warm;
    };
    Timings best_times, default_times, autoscheduler_times;
    Status autoscheduler_status;
    auto time_both = [&](const Kernel& kernel, Timings& t, Status* status) {
      t.cold.push_back(median_ms(buffers, kernel, options.timing_runs, status));
      t.warm.push_back(median_ms(warm_buffers, kernel, options.timing_runs, status));
    };
    for (int round = 0; round < kRounds && confirmation.ok(); ++round) {
      if (best_kernel) time_both(*best_kernel, best_times, &confirmation);
      time_both(*reference_kernel, default_times, &confirmation);
      if (autoscheduler_kernel && autoscheduler_status.ok()) {
        time_both(*autoscheduler_kernel, autoscheduler_times, &autoscheduler_status);
      }
    }
    // A failed run leaves infinite times or fewer rounds: then the search's figures
    // stand, and the default stays.
    auto median_of_rounds = [](std::vector<double> v) {
      std::sort(v.begin(), v.end());
      return v.size() == kRounds ? v[kRounds / 2] : std::numeric_limits<double>::infinity();
    };
    if (confirmation.ok()) {
      result.default_ms = median_of_rounds(default_times.cold);
      result.default_warm_ms = median_of_rounds(default_times.warm);
      result.best_ms = best_kernel ? median_of_rounds(best_times.cold) : result.default_ms;
      result.best_warm_ms = best_kernel ? median_of_rounds(best_times.warm) : result.default_warm_ms;
    }
    if (confirmation.ok() && autoscheduler_status.ok() && autoscheduler_kernel &&
        std::isfinite(median_of_rounds(autoscheduler_times.cold))) {
      result.autoscheduler_ms = median_of_rounds(autoscheduler_times.cold);
      result.autoscheduler_warm_ms = median_of_rounds(autoscheduler_times.warm);
      result.autoscheduler_confirmed = true;
    }
    if (challenger && (!best_kernel || !confirmation.ok() || !(result.best_ms < result.default_ms) ||
                       !(result.best_warm_ms <= kWarmSlack * result.default_warm_ms))) {
      result.best = request_from_description(reference_kernel->schedule());
      result.best_description = reference_kernel->schedule();
      result.best_ms = result.default_ms;
      result.best_warm_ms = result.default_warm_ms;
      result.best_error = 0;
    }
  }
  return result;
}

}  // namespace convjit
