// The README's demo: requests JIT kernels for a few ResNet-50 and MobileNetV2 layers
// through the public API, checks each against the naive reference convolution, and
// prints where each kernel came from (compiled, or the disk cache of an earlier run),
// the time until it was ready, its run time and GFLOP/s.
//
// Usage: convjit_demo [--batch SHAPES_FILE] [--repeat N]
// Without --batch it runs the embedded default layers below.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "convjit/descriptor.h"
#include "convjit/runtime.h"
#include "reference_conv.h"

namespace {

// benchdnn descriptors (DESIGN.md), named after the network layer they come from.
const char* const kDefaultLayers = R"(
# ResNet-50
mb1ic64ih56oc64oh56kh3ph1n"resnet_50:res2a_branch2b"
mb1ic64ih56oc256oh56kh1ph0n"resnet_50:res2a_branch2c"
mb1ic256ih56oc512oh28kh1sh2n"resnet_50:res3a_branch1"
mb1ic512ih7oc512oh7kh3ph1n"resnet_50:res5a_branch2b"
# MobileNetV2
mb1ic3ih224oc32oh112kh3sh2ph1n"mobilenet_v2:conv1"
g32mb1ic32ih112oc32oh112kh3ph1n"mobilenet_v2:conv2_1/dw"
g96mb1ic96ih112oc96oh56kh3sh2ph1n"mobilenet_v2:conv2_2/dw"
mb1ic32ih112oc16oh112kh1n"mobilenet_v2:conv2_1/linear"
)";

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

std::vector<int64_t> dims(const std::array<int64_t, 4>& a) { return {a.begin(), a.end()}; }

}  // namespace

int main(int argc, char** argv) {
  using namespace convjit;
  std::string batch_file;
  int repeat = 10;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--batch") && i + 1 < argc) {
      batch_file = argv[++i];
    } else if (!std::strcmp(argv[i], "--repeat") && i + 1 < argc) {
      repeat = std::max(1, std::atoi(argv[++i]));
    } else {
      std::fprintf(stderr, "usage: %s [--batch SHAPES_FILE] [--repeat N]\n", argv[0]);
      return 2;
    }
  }
  auto problems = batch_file.empty() ? parse_problem_text(kDefaultLayers, "embedded layers")
                                     : read_problem_file(batch_file);
  if (!problems.ok()) {
    std::fprintf(stderr, "convjit_demo: error: %s\n", problems.status().message().c_str());
    return 1;
  }

  std::printf("convjit demo: host target %s\n", host_target_string().c_str());
  std::printf("%-30s %-58s %-8s %9s %10s %9s %9s  %s\n", "layer", "descriptor", "from", "ready_s",
              "run_ms", "GFLOP/s", "rel_err", "schedule");
  int failures = 0;
  for (const Problem& problem : *problems) {
    const ConvSpec& s = problem.spec;
    const CacheStats before = Runtime::global().stats();
    auto kernel = Runtime::global().get_kernel(s, "host");
    const CacheStats after = Runtime::global().stats();
    const char* origin = after.compiles > before.compiles     ? "compiled"
                         : after.disk_hits > before.disk_hits ? "disk"
                                                              : "memory";
    if (!kernel.ok()) {
      std::printf("%-30s error: %s\n", problem.name.c_str(), kernel.status().message().c_str());
      ++failures;
      continue;
    }
    // Inputs in [-1, 1]; f16 specs run on the same values rounded to half.
    const auto src = random_values(input_elements(s), 1);
    const auto wei = random_values(weight_elements(s), 2);
    const auto bia = random_values(s.c_out, 3);
    const auto w_shape = weight_shape(s);
    const std::vector<int64_t> wdims(w_shape.begin(), w_shape.begin() + weight_rank(s));
    std::vector<float> src_f = to_float(src), wei_f = to_float(wei), bia_f = to_float(bia);
    std::vector<float> dst_f(output_elements(s));
    const TensorView bias_view = TensorView::dense(bia_f.data(), {s.c_out});
    auto run_once = [&] {
      return kernel->run(TensorView::dense(src_f.data(), dims(input_shape(s))),
                         TensorView::dense(wei_f.data(), wdims), s.has_bias ? &bias_view : nullptr,
                         TensorView::dense(dst_f.data(), dims(output_shape(s))));
    };
    Status status = run_once();  // warm-up: first touch of the buffers, thread pool start
    std::vector<double> times;
    for (int r = 0; r < repeat && status.ok(); ++r) {
      const auto start = std::chrono::steady_clock::now();
      status = run_once();
      times.push_back(seconds_since(start));
    }
    if (!status.ok()) {
      std::printf("%-30s run error: %s\n", problem.name.c_str(), status.message().c_str());
      ++failures;
      continue;
    }
    std::sort(times.begin(), times.end());
    const double median = times[times.size() / 2];
    const double error = relative_error(from_float(dst_f), reference_conv(s, src, wei, s.has_bias ? &bia : nullptr));
    const bool ok = error <= 1e-4;
    failures += ok ? 0 : 1;
    std::printf("%-30s %-58s %-8s %9.3f %10.3f %9.1f %9.1e  %s%s\n", problem.name.c_str(),
                print_descriptor(s).c_str(), origin, kernel->compile_seconds(), median * 1e3,
                flops(s) / median / 1e9, error, kernel->schedule().c_str(), ok ? "" : "  MISMATCH");
  }
  const CacheStats stats = Runtime::global().stats();
  std::printf("kernels: %lld compiled (%.2f s), %lld loaded from the disk cache (%.3f s), %lld memory hits; %s\n",
              static_cast<long long>(stats.compiles), stats.compile_seconds,
              static_cast<long long>(stats.disk_hits), stats.load_seconds, static_cast<long long>(stats.hits),
              failures == 0 ? "all layers match the reference" : "SOME LAYERS FAILED");
  return failures == 0 ? 0 : 1;
}
