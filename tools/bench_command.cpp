// `convjit bench`: every layer of a problem or shape file through convjit and, in the
// same process, through oneDNN, on 1 and 2 threads: times, ratios, GFLOP/s, fraction
// of the FMA peak measured in the same run, geometric means; a table or JSON lines.
// CUDA targets go to cuda_bench.h.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "command_line.h"
#include "commands.h"
#include "convjit/autotuner.h"
#include "convjit/descriptor.h"
#include "convjit/runtime.h"
#include "fma_peak.h"
#include "onednn_peer.h"
#include "spec_json.h"
#include "cuda_bench.h"

namespace convjit {
namespace {

// Rounds per layer and thread count of the side-by-side timing (time_side_by_side),
// the length of each FMA peak measurement, and the untimed runs after the first.
constexpr int kBenchRounds = 5;
constexpr double kPeakSeconds = 0.02;
constexpr double kSettleSeconds = 0.01;

// The layer as `--weights prepared` times it: in preferred_weight_layout (oihw16o
// where the channels allow it, which a user reorders once with convert_weights, as
// oneDNN's weights are reordered before it is timed).
ConvSpec with_prepared_weights(const ConvSpec& s) {
  ConvSpec prepared = s;
  prepared.weight_layout = preferred_weight_layout(s);
  return prepared;
}

StatusOr<std::vector<int>> parse_threads(const std::string& text) {
  std::vector<int> threads;
  std::istringstream in(text);
  std::string part;
  while (std::getline(in, part, ',')) {
    char* end = nullptr;
    const long t = std::strtol(part.c_str(), &end, 10);
    if (part.empty() || *end != '\0' || t < 1 || t > 256)
      return Status::invalid_argument("--threads '" + text + "': expected a comma-separated list of counts in [1, 256]");
    threads.push_back(static_cast<int>(t));
  }
  if (threads.empty()) return Status::invalid_argument("--threads '" + text + "': no thread count");
  return threads;
}

// Buffer sets of the kernel's shapes (zeros), each run on the next: one set (warm
// caches) or, cold, as many as the tuner rotates over (more than a 32 MB last-level
// cache holds); oneDNN is given as many.
class ConvjitRunner {
 public:
  ConvjitRunner(const Kernel& kernel, int sets) : kernel_(kernel), spec_(kernel.spec()) {
    const auto in = input_shape(spec_), out = output_shape(spec_);
    const auto w = weight_shape(spec_);
    in_dims_.assign(in.begin(), in.end());
    out_dims_.assign(out.begin(), out.end());
    w_dims_.assign(w.begin(), w.begin() + weight_rank(spec_));
    const int64_t elem = element_size(spec_.dtype);
    auto bytes = [&](const std::vector<int64_t>& dims) {
      int64_t n = elem;
      for (int64_t d : dims) n *= d;
      return static_cast<size_t>(n);
    };
    for (int k = 0; k < std::max(sets, 1); ++k) {
      Set set;
      set.src.assign(bytes(in_dims_), 0);
      set.wei.assign(bytes(w_dims_), 0);
      set.bias.assign(static_cast<size_t>(spec_.c_out * elem), 0);
      set.dst.assign(bytes(out_dims_), 0);
      sets_.push_back(std::move(set));
    }
  }
  Status run() {
    Set& set = sets_[next_];
    next_ = (next_ + 1) % sets_.size();
    const TensorView bias_view = TensorView::dense(set.bias.data(), {spec_.c_out});
    return kernel_.run(TensorView::dense(set.src.data(), in_dims_), TensorView::dense(set.wei.data(), w_dims_),
                       spec_.has_bias ? &bias_view : nullptr, TensorView::dense(set.dst.data(), out_dims_));
  }

 private:
  struct Set {
    std::vector<uint8_t> src, wei, bias, dst;
  };
  const Kernel& kernel_;
  const ConvSpec spec_;
  std::vector<int64_t> in_dims_, out_dims_, w_dims_;
  std::vector<Set> sets_;
  size_t next_ = 0;
};

struct SideBySideTimes {
  double convjit_ms = 0, blocked_ms = 0, nchw_ms = 0;  // 0: not timed
  double peak_gflops = 0;  // the FMA peak, measured before and after the layer's rounds
};

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// Medians of `repeat` timed runs of convjit and of oneDNN's two forms (when `peer` is
// given), taken in rounds: in each round each contender runs once untimed (its data
// back in cache) and then a few timed runs. The machines are shared and their speed
// drifts over seconds, so 20 runs of one then 20 of the other compared two moments
// (two runs of the same layer differed by 40%); rounds compare the same moments, and
// the contenders take turns going first. The FMA peak, the denominator of the layer's
// fraction of peak, is measured (for kPeakSeconds) before and after the layer's rounds:
// one peak measured before all layers gave fractions from 48% to 136% for one layer
// across runs of an hour. The runs after a peak measurement are slow for a while, so
// none is timed until kSettleSeconds of untimed runs have passed: measured each round,
// just before convjit's turn, the peak doubled MobileNetV2 conv2_1/linear's median on
// 1 thread (0.26-0.29 ms against 0.15 with 100 runs; 2-core AMD EPYC Zen 4,
// 2026-12-02), and oneDNN's blocked form took 15-20% longer when it went there.
StatusOr<SideBySideTimes> time_side_by_side(const Kernel& kernel, peers::OneDnnConvolution* peer, int threads,
                                            int repeat, int buffer_sets) {
  ConvjitRunner convjit(kernel, buffer_sets);
  const int per_round = std::max(1, repeat / kBenchRounds);
  std::vector<double> mine, blocked, nchw;
  struct Contender {
    std::function<Status()> run;
    std::vector<double>* times;
  };
  std::vector<Contender> contenders = {{[&] { return convjit.run(); }, &mine}};
  if (peer) {
    contenders.push_back({[&] {
                            peer->run_blocked();
                            return Status();
                          },
                          &blocked});
    contenders.push_back({[&] {
                            peer->run_nchw();
                            return Status();
                          },
                          &nchw});
  }
  // One contender's turn in a round: an untimed run (its data back in cache; cold,
  // its code and one of its buffer sets), then `runs` timed ones.
  auto turn = [](std::vector<double>& times, int runs, const std::function<Status()>& body) -> Status {
    CONVJIT_RETURN_IF_ERROR(body());
    for (int i = 0; i < runs; ++i) {
      const auto start = std::chrono::steady_clock::now();
      CONVJIT_RETURN_IF_ERROR(body());
      times.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count());
    }
    return Status();
  };
  CONVJIT_RETURN_IF_ERROR(convjit.run());  // first-call costs (thread pool, page faults), once
  const double peak_before = peers::measure_fma_peak_gflops(threads, kPeakSeconds);
  const auto settle_start = std::chrono::steady_clock::now();
  do {
    for (const Contender& c : contenders) CONVJIT_RETURN_IF_ERROR(c.run());
  } while (std::chrono::duration<double>(std::chrono::steady_clock::now() - settle_start).count() < kSettleSeconds);
  for (int round = 0; static_cast<int>(mine.size()) < repeat; ++round) {
    const int runs = std::min(per_round, repeat - static_cast<int>(mine.size()));
    for (size_t i = 0; i < contenders.size(); ++i) {
      const Contender& who = contenders[(i + round) % contenders.size()];
      CONVJIT_RETURN_IF_ERROR(turn(*who.times, runs, who.run));
    }
  }
  const double peak_after = peers::measure_fma_peak_gflops(threads, kPeakSeconds);
  SideBySideTimes times;
  times.convjit_ms = median(mine);
  times.peak_gflops = (peak_before + peak_after) / 2;
  if (peer) {
    times.blocked_ms = median(blocked);
    times.nchw_ms = median(nchw);
  }
  return times;
}

}  // namespace

int bench_command(const std::vector<std::string>& args) {
  RoutedArguments routed;
  CommandError error;
  if (!route_arguments("bench", args,
                       {{"--batch", true}, {"--threads", true}, {"--repeat", true}, {"--json", false},
                        {"--no-onednn", false}, {"--target", true}, {"--weights", true}, {"--buffers", true}},
                       &routed, &error)) {
    return report_error(error);
  }
  if (routed.help) {
    std::fputs(usage_text("bench").c_str(), stdout);
    return kExitOk;
  }
  // Idle OpenMP workers must not spin on the cores convjit is timed on; libgomp reads
  // the policy when it loads, so the process starts again with it set.
  std::vector<std::string> argv_text = {"convjit", "bench"};
  argv_text.insert(argv_text.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (std::string& a : argv_text) argv.push_back(a.data());
  argv.push_back(nullptr);
  peers::ensure_passive_openmp(argv.data());

  auto threads = parse_threads(routed.options.count("--threads") ? routed.options["--threads"] : "1,2");
  if (!threads.ok()) return report_error(threads.status().message(), kExitUsage);
  int repeat = 20;
  if (routed.options.count("--repeat")) {
    repeat = std::atoi(routed.options["--repeat"].c_str());
    if (repeat < 1 || repeat > 100000) return report_error("--repeat '" + routed.options["--repeat"] + "': expected 1..100000", kExitUsage);
  }
  const bool json = routed.options.count("--json") != 0;
  const bool with_onednn = !routed.options.count("--no-onednn") && peers::onednn_available();
  const std::string weights = routed.options.count("--weights") ? routed.options["--weights"] : "prepared";
  if (weights != "prepared" && weights != "given") {
    return report_error("--weights '" + weights + "': expected prepared or given (see 'convjit bench --help')", kExitUsage);
  }
  const std::string buffers = routed.options.count("--buffers") ? routed.options["--buffers"] : "warm";
  if (buffers != "warm" && buffers != "cold") {
    return report_error("--buffers '" + buffers + "': expected warm or cold (see 'convjit bench --help')", kExitUsage);
  }
  const bool cold = buffers == "cold";

  std::vector<Problem> problems;
  if (!problems_from_arguments("bench", routed, &problems, &error)) return report_error(error);

  const std::string target = routed.options.count("--target") ? routed.options["--target"] : "host";
  auto resolved = resolve_target_string(target);
  if (!resolved.ok()) return report_error(resolved.status());
  if (resolved->find("-cuda") != std::string::npos) {
    if (routed.options.count("--threads")) {
      return report_error("--threads does not apply to a CUDA target (see 'convjit bench --help')", kExitUsage);
    }
    if (cold) return report_error("--buffers cold: only for CPU targets so far", kExitUsage);
    return bench_cuda(problems, target, repeat, json);
  }

  if (!json) {
    std::map<int, double> initial_peak;
    for (int t : *threads) initial_peak[t] = peers::measure_fma_peak_gflops(t);
    std::printf("convjit bench: %zu layer(s); threads: convjit's pool and OpenMP set to each count, "
                "OMP_WAIT_POLICY=%s; medians of %d runs each, convjit and oneDNN alternating in rounds of %d (a warm-up "
                "run each per round)\n",
                problems.size(), std::getenv("OMP_WAIT_POLICY") ? std::getenv("OMP_WAIT_POLICY") : "unset", repeat,
                std::max(1, repeat / kBenchRounds));
    std::printf("convjit weights: %s\n",
                weights == "prepared"
                    ? "prepared: in preferred_weight_layout (oihw16o for layers with 1 MiB or more "
                      "in blocks of 16 channels; column wtag), reordered once beforehand as oneDNN's are"
                    : "as given (oihw, iohw, ...), repacked inside the kernel where its schedule needs it");
    std::printf("buffers: %s\n", cold ? "cold: each run (convjit's and oneDNN's) on the next of 2-8 copies of the "
                                        "layer's data, more than a 32 MB last-level cache holds (the count per layer: JSON's buffer_sets)"
                                      : "warm: one copy of the layer's data, reused by every run");
    for (int t : *threads) {
      std::printf("measured FMA peak, %d thread(s): %.1f GFLOP/s (before the layers; each layer's peak%% is "
                  "against the mean of the peaks measured before and after its rounds)\n", t, initial_peak[t]);
    }
    std::printf("oneDNN: %s; 'blocked' = its preferred layouts, data already reordered; 'nchw' = NCHW in "
                "and out, reorders timed; ratio = oneDNN time / convjit time (> 1: convjit faster)\n",
                with_onednn ? "Debian's libdnnl" : "not timed");
    std::printf("%-32s %3s %8s %10s %10s %10s %8s %8s %8s %6s %-7s  %s\n", "layer", "thr", "ready_s", "convjit_ms",
                "dnnl_blk", "dnnl_nchw", "ratio_b", "ratio_n", "GFLOP/s", "peak%", "wtag", "schedule");
  }
  std::map<int, std::vector<double>> log_ratio_blocked, log_ratio_nchw;
  for (size_t i = 0; i < problems.size(); ++i) {
    const Problem& p = problems[i];
    const std::string name = p.name.empty() ? print_descriptor(p.spec) : p.name;
    if (!json) std::fprintf(stderr, "[bench] %zu/%zu %s\n", i + 1, problems.size(), name.c_str());
    const ConvSpec timed = weights == "prepared" ? with_prepared_weights(p.spec) : p.spec;
    auto kernel = Runtime::global().get_kernel(timed, target);
    if (!kernel.ok()) return report_error(kernel.status());
    for (int t : *threads) {
      set_num_threads(t);
      // A geometry oneDNN rejects (or an f16 spec) is timed by convjit alone.
      std::unique_ptr<peers::OneDnnConvolution> peer;
      const int buffer_sets = cold ? rotating_buffer_set_count(timed) : 1;
      if (with_onednn) {
        auto created = peers::OneDnnConvolution::create(p.spec, t, buffer_sets);
        if (created.ok()) peer = std::move(*created);
      }
      auto times = time_side_by_side(*kernel, peer.get(), t, repeat, buffer_sets);
      if (!times.ok()) return report_error(times.status());
      const double blocked = times->blocked_ms, nchw = times->nchw_ms;
      const double convjit_ms = times->convjit_ms, peak = times->peak_gflops;
      if (peer) {
        log_ratio_blocked[t].push_back(std::log(blocked / convjit_ms));
        log_ratio_nchw[t].push_back(std::log(nchw / convjit_ms));
      }
      const double gflops = flops(p.spec) / (convjit_ms * 1e6);
      if (json) {
        std::printf("{\"name\": %s, \"descriptor\": %s, \"threads\": %d, \"convjit_ms\": %s, \"onednn_blocked_ms\": %s, "
                    "\"onednn_nchw_ms\": %s, \"gflops\": %s, \"peak_fraction\": %s, \"peak_gflops\": %s, \"ready_ms\": %s, "
                    "\"wtag\": %s, \"buffer_sets\": %d, \"schedule\": %s}\n",
                    json_quote(name).c_str(), json_quote(print_descriptor(p.spec)).c_str(), t,
                    json_positive_number(convjit_ms).c_str(), json_positive_number(blocked).c_str(), json_positive_number(nchw).c_str(),
                    json_positive_number(gflops).c_str(), json_positive_number(gflops / peak).c_str(), json_positive_number(peak).c_str(),
                    json_positive_number(kernel->compile_seconds() * 1e3).c_str(), json_quote(to_string(timed.weight_layout)).c_str(),
                    buffer_sets, json_quote(kernel->schedule()).c_str());
      } else {
        auto cell = [](double v) {
          char buf[32];
          if (v > 0) std::snprintf(buf, sizeof buf, "%10.3f", v);
          else std::snprintf(buf, sizeof buf, "%10s", "n/a");
          return std::string(buf);
        };
        auto ratio = [](double peer, double mine) {
          char buf[32];
          if (peer > 0) std::snprintf(buf, sizeof buf, "%7.2fx", peer / mine);
          else std::snprintf(buf, sizeof buf, "%8s", "n/a");
          return std::string(buf);
        };
        std::printf("%-32s %3d %8.3f %s %s %s %s %s %8.1f %5.1f%% %-7s  %s\n", name.c_str(), t,
                    kernel->compile_seconds(), cell(convjit_ms).c_str(),
                    cell(blocked).c_str(), cell(nchw).c_str(), ratio(blocked, convjit_ms).c_str(),
                    ratio(nchw, convjit_ms).c_str(), gflops, 100 * gflops / peak, to_string(timed.weight_layout),
                    kernel->schedule().c_str());
      }
      std::fflush(stdout);
    }
  }
  if (!json) {
    for (int t : *threads) {
      auto geomean = [](const std::vector<double>& logs) {
        double sum = 0;
        for (double l : logs) sum += l;
        return logs.empty() ? 0.0 : std::exp(sum / logs.size());
      };
      if (!log_ratio_blocked[t].empty()) {
        std::printf("geomean over %zu layers, %d thread(s): oneDNN blocked / convjit = %.2fx, oneDNN NCHW / convjit = %.2fx\n",
                    log_ratio_blocked[t].size(), t, geomean(log_ratio_blocked[t]), geomean(log_ratio_nchw[t]));
      }
    }
  }
  return kExitOk;
}

}  // namespace convjit
