// The CUDA form of `convjit bench`: no oneDNN and no thread counts; the peer (cuDNN)
// is timed by bench/cudnn_compare.py through PyTorch on the GPU host.
#include "cuda_bench.h"

#include <cmath>
#include <cstdio>

#include "command_line.h"
#include "convjit/autotuner.h"
#include "convjit/runtime.h"
#include "spec_json.h"

namespace convjit {

int bench_cuda(const std::vector<Problem>& problems, const std::string& target, int repeat, bool json) {
  auto peak = cuda_fp32_peak_gflops();
  if (!peak.ok()) return report_error(peak.status());
  if (!json) {
    std::printf("convjit bench on CUDA device 0 (%s): FP32 peak %.1f TFLOP/s from the device's attributes; "
                "medians of %d runs after 2 warm-ups, data on the device, each run synchronized\n",
                target.c_str(), *peak / 1e3, repeat);
    std::printf("%-32s %8s %10s %8s %6s  %s\n", "layer", "ready_s", "convjit_ms", "TFLOP/s", "peak%", "schedule");
  }
  for (size_t i = 0; i < problems.size(); ++i) {
    const Problem& p = problems[i];
    const std::string name = p.name.empty() ? print_descriptor(p.spec) : p.name;
    if (!json) std::fprintf(stderr, "[bench] %zu/%zu %s\n", i + 1, problems.size(), name.c_str());
    auto kernel = Runtime::global().get_kernel(p.spec, target);
    if (!kernel.ok()) return report_error(kernel.status());
    auto ms = measure_kernel(*kernel, repeat);
    if (!ms.ok()) return report_error(ms.status());
    const double gflops = flops(p.spec) / (*ms * 1e6);
    if (json) {
      std::printf("{\"name\": %s, \"descriptor\": %s, \"target\": %s, \"convjit_ms\": %s, \"gflops\": %s, "
                  "\"peak_fraction\": %s, \"ready_ms\": %s, \"schedule\": %s}\n",
                  json_quote(name).c_str(), json_quote(print_descriptor(p.spec)).c_str(),
                  json_quote(kernel->target()).c_str(), json_positive_number(*ms).c_str(), json_positive_number(gflops).c_str(),
                  json_positive_number(gflops / *peak).c_str(), json_positive_number(kernel->compile_seconds() * 1e3).c_str(),
                  json_quote(kernel->schedule()).c_str());
    } else {
      std::printf("%-32s %8.3f %10.4f %8.2f %5.1f%%  %s\n", name.c_str(), kernel->compile_seconds(), *ms,
                  gflops / 1e3, 100 * gflops / *peak, kernel->schedule().c_str());
    }
    std::fflush(stdout);
  }
  return kExitOk;
}

}  // namespace convjit
