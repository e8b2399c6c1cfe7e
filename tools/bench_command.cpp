// `convjit bench`: every layer of a problem or shape file through convjit and, in the
// same process, through oneDNN, on 1 and 2 threads: times, ratios, GFLOP/s, fraction
// of the FMA peak measured in the same run, geometric means; a table or JSON lines.
// CUDA targets go to cuda_bench.h.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "command_line.h"
#include "commands.h"
#include "convjit/descriptor.h"
#include "convjit/runtime.h"
#include "fma_peak.h"
#include "onednn_peer.h"
#include "spec_json.h"
#include "cuda_bench.h"

namespace convjit {
namespace {

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

// Same method as the oneDNN peer: one buffer set, two warm-ups, median of `repeat`.
StatusOr<double> time_convjit(const Kernel& kernel, int repeat) {
  const ConvSpec& s = kernel.spec();
  const auto in = input_shape(s), out = output_shape(s);
  const auto w = weight_shape(s);
  const int64_t elem = element_size(s.dtype);
  int64_t n_w = 1;
  for (int d = 0; d < weight_rank(s); ++d) n_w *= w[d];
  std::vector<uint8_t> src(in[0] * in[1] * in[2] * in[3] * elem, 0), wei(n_w * elem, 0), bias(s.c_out * elem, 0),
      dst(out[0] * out[1] * out[2] * out[3] * elem);
  const TensorView bias_view = TensorView::dense(bias.data(), {s.c_out});
  auto run = [&] {
    return kernel.run(TensorView::dense(src.data(), {in.begin(), in.end()}),
                      TensorView::dense(wei.data(), {w.begin(), w.begin() + weight_rank(s)}),
                      s.has_bias ? &bias_view : nullptr, TensorView::dense(dst.data(), {out.begin(), out.end()}));
  };
  for (int i = 0; i < 2; ++i) CONVJIT_RETURN_IF_ERROR(run());
  std::vector<double> times;
  for (int i = 0; i < repeat; ++i) {
    const auto start = std::chrono::steady_clock::now();
    CONVJIT_RETURN_IF_ERROR(run());
    times.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count());
  }
  std::sort(times.begin(), times.end());
  return times[times.size() / 2];
}

}  // namespace

int bench_command(const std::vector<std::string>& args) {
  RoutedArguments routed;
  CommandError error;
  if (!route_arguments("bench", args,
                       {{"--batch", true}, {"--threads", true}, {"--repeat", true}, {"--json", false},
                        {"--no-onednn", false}, {"--target", true}, {"--weights", true}},
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

  std::vector<Problem> problems;
  if (!problems_from_arguments("bench", routed, &problems, &error)) return report_error(error);

  const std::string target = routed.options.count("--target") ? routed.options["--target"] : "host";
  auto resolved = resolve_target_string(target);
  if (!resolved.ok()) return report_error(resolved.status());
  if (resolved->find("-cuda") != std::string::npos) {
    if (routed.options.count("--threads")) {
      return report_error("--threads does not apply to a CUDA target (see 'convjit bench --help')", kExitUsage);
    }
    return bench_cuda(problems, target, repeat, json);
  }

  std::map<int, double> peak;
  for (int t : *threads) peak[t] = peers::measure_fma_peak_gflops(t);
  if (!json) {
    std::printf("convjit bench: %zu layer(s); threads: convjit's pool and OpenMP set to each count, "
                "OMP_WAIT_POLICY=%s; medians of %d runs after 2 warm-ups\n",
                problems.size(), std::getenv("OMP_WAIT_POLICY") ? std::getenv("OMP_WAIT_POLICY") : "unset", repeat);
    std::printf("convjit weights: %s\n",
                weights == "prepared"
                    ? "prepared: in preferred_weight_layout (oihw16o for layers with 1 MiB or more "
                      "in blocks of 16 channels; column wtag), reordered once beforehand as oneDNN's are"
                    : "as given (oihw, iohw, ...), repacked inside the kernel where its schedule needs it");
    for (int t : *threads) std::printf("measured FMA peak, %d thread(s): %.1f GFLOP/s\n", t, peak[t]);
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
      auto convjit_ms = time_convjit(*kernel, repeat);
      if (!convjit_ms.ok()) return report_error(convjit_ms.status());
      double blocked = 0, nchw = 0;
      if (with_onednn) {
        auto times = peers::time_onednn(p.spec, t, repeat);
        if (times.ok()) {
          blocked = times->blocked_ms;
          nchw = times->nchw_ms;
          log_ratio_blocked[t].push_back(std::log(blocked / *convjit_ms));
          log_ratio_nchw[t].push_back(std::log(nchw / *convjit_ms));
        }
      }
      const double gflops = flops(p.spec) / (*convjit_ms * 1e6);
      if (json) {
        std::printf("{\"name\": %s, \"descriptor\": %s, \"threads\": %d, \"convjit_ms\": %s, \"onednn_blocked_ms\": %s, "
                    "\"onednn_nchw_ms\": %s, \"gflops\": %s, \"peak_fraction\": %s, \"ready_ms\": %s, "
                    "\"wtag\": %s, \"schedule\": %s}\n",
                    json_quote(name).c_str(), json_quote(print_descriptor(p.spec)).c_str(), t,
                    json_positive_number(*convjit_ms).c_str(), json_positive_number(blocked).c_str(), json_positive_number(nchw).c_str(),
                    json_positive_number(gflops).c_str(), json_positive_number(gflops / peak[t]).c_str(),
                    json_positive_number(kernel->compile_seconds() * 1e3).c_str(), json_quote(to_string(timed.weight_layout)).c_str(),
                    json_quote(kernel->schedule()).c_str());
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
                    kernel->compile_seconds(), cell(*convjit_ms).c_str(),
                    cell(blocked).c_str(), cell(nchw).c_str(), ratio(blocked, *convjit_ms).c_str(),
                    ratio(nchw, *convjit_ms).c_str(), gflops, 100 * gflops / peak[t], to_string(timed.weight_layout),
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
