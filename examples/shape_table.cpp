// Teaches how to benchmark a whole network's layers: reads a shape file, gets and runs
// each layer's kernel, and prints its time, GFLOP/s and share of the machine's FMA peak
// (measured by this program), then totals and geometric means.
//
// Usage: shape_table [--limit K] [--repeat N] [--threads T] [SHAPES_FILE]
//   SHAPES_FILE  one problem a line, as on the convjit command line (default: bench/shapes
//                of the source tree, 25 ResNet-50, MobileNetV2, ResNeXt, DeepLab, DCGAN layers)
//   --limit K    only the first K layers
//   --repeat N   timed runs per layer, after one warm-up; the median is reported (default 20)
//   --threads T  worker threads for the kernels and the peak (default: one per core)
#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "convjit/descriptor.h"
#include "convjit/runtime.h"
#include "fma_peak.h"

#ifndef CONVJIT_DEFAULT_SHAPES
#define CONVJIT_DEFAULT_SHAPES "bench/shapes"
#endif

namespace {

// Buffers for one layer, filled with small random values. f16 layers get the bits of
// random halves in [0.5, 1): the run time does not depend on the values, only their
// being ordinary numbers (no denormals, which are slow on some CPUs).
std::vector<uint8_t> random_buffer(const std::vector<int64_t>& dims, convjit::DataType dtype, unsigned seed) {
  int64_t count = 1;
  for (int64_t d : dims) count *= d;
  std::mt19937 rng(seed);
  std::vector<uint8_t> bytes(count * convjit::element_size(dtype));
  if (dtype == convjit::DataType::kFloat32) {
    std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
    float* values = reinterpret_cast<float*>(bytes.data());
    for (int64_t i = 0; i < count; ++i) values[i] = dist(rng);
  } else {
    std::uniform_int_distribution<int> mantissa(0, 1023);
    uint16_t* values = reinterpret_cast<uint16_t*>(bytes.data());
    for (int64_t i = 0; i < count; ++i) values[i] = static_cast<uint16_t>(0x3800 | mantissa(rng));
  }
  return bytes;
}

template <size_t N>
std::vector<int64_t> dims(const std::array<int64_t, N>& a, size_t rank = N) {
  return {a.begin(), a.begin() + rank};
}

}  // namespace

int main(int argc, char** argv) {
  std::string shapes = CONVJIT_DEFAULT_SHAPES;
  int limit = -1, repeat = 20;
  int threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--limit") && i + 1 < argc) {
      limit = std::max(0, std::atoi(argv[++i]));
    } else if (!std::strcmp(argv[i], "--repeat") && i + 1 < argc) {
      repeat = std::max(1, std::atoi(argv[++i]));
    } else if (!std::strcmp(argv[i], "--threads") && i + 1 < argc) {
      threads = std::max(1, std::atoi(argv[++i]));
    } else if (argv[i][0] != '-') {
      shapes = argv[i];
    } else {
      std::fprintf(stderr, "usage: %s [--limit K] [--repeat N] [--threads T] [SHAPES_FILE]\n", argv[0]);
      return 2;
    }
  }
  auto problems = convjit::read_problem_file(shapes);  // errors name the file and line
  if (!problems.ok()) {
    std::fprintf(stderr, "shape_table: %s\n", problems.status().message().c_str());
    return 1;
  }
  if (limit >= 0 && limit < static_cast<int>(problems->size())) problems->resize(limit);

  // The peak is measured here, on the same threads, so that "% peak" compares like with
  // like (turbo, other load on the machine) rather than a datasheet number.
  convjit::set_num_threads(threads);
  const double peak = convjit::peers::measure_fma_peak_gflops(threads);
  std::printf("%s: %zu layers, %d threads, median of %d runs; FMA peak %.1f GFLOP/s\n", shapes.c_str(),
              problems->size(), threads, repeat, peak);
  std::printf("%-32s %-58s %9s %9s %7s  %s\n", "layer", "descriptor", "ms", "GFLOP/s", "%peak", "schedule");

  double total_ms = 0, total_gflop = 0, log_gflops = 0, log_peak = 0;
  int measured = 0, failures = 0;
  for (const convjit::Problem& problem : *problems) {
    const convjit::ConvSpec& s = problem.spec;
    // get_kernel compiles the kernel, or loads it from the disk cache of an earlier
    // run; that time is not part of the table.
    auto kernel = convjit::Runtime::global().get_kernel(s, "host");
    if (!kernel.ok()) {
      std::printf("%-32s error: %s\n", problem.name.c_str(), kernel.status().message().c_str());
      ++failures;
      continue;
    }
    const std::vector<int64_t> src_dims = dims(convjit::input_shape(s)), dst_dims = dims(convjit::output_shape(s));
    const std::vector<int64_t> wei_dims = dims(convjit::weight_shape(s), convjit::weight_rank(s));
    const auto src = random_buffer(src_dims, s.dtype, 1), wei = random_buffer(wei_dims, s.dtype, 2);
    const auto bia = random_buffer({s.c_out}, s.dtype, 3);
    auto dst = random_buffer(dst_dims, s.dtype, 4);
    const convjit::TensorView bias_view = convjit::TensorView::dense(bia.data(), {s.c_out});
    auto run = [&] {
      return kernel->run(convjit::TensorView::dense(src.data(), src_dims), convjit::TensorView::dense(wei.data(), wei_dims),
                         s.has_bias ? &bias_view : nullptr, convjit::TensorView::dense(dst.data(), dst_dims));
    };
    convjit::Status status = run();  // warm-up: page faults, thread pool start, caches
    std::vector<double> ms;
    for (int r = 0; r < repeat && status.ok(); ++r) {
      const auto start = std::chrono::steady_clock::now();
      status = run();
      ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count());
    }
    if (!status.ok()) {
      std::printf("%-32s run error: %s\n", problem.name.c_str(), status.message().c_str());
      ++failures;
      continue;
    }
    std::sort(ms.begin(), ms.end());
    const double median = ms[ms.size() / 2];
    const double gflops = convjit::flops(s) / (median * 1e6);
    total_ms += median;
    total_gflop += convjit::flops(s) / 1e9;
    log_gflops += std::log(gflops);
    log_peak += std::log(gflops / peak);
    ++measured;
    std::printf("%-32s %-58s %9.3f %9.1f %6.1f%%  %s\n", problem.name.c_str(), convjit::print_descriptor(s).c_str(),
                median, gflops, 100 * gflops / peak, kernel->schedule().c_str());
  }
  if (measured > 0) {
    // Totals weigh layers by their work (the network's time); geometric means weigh
    // every layer alike (how convjit does on a typical layer).
    std::printf("total: %d layers, %.3f ms, %.2f GFLOP, %.1f GFLOP/s (%.1f%% of peak)\n", measured, total_ms,
                total_gflop, total_gflop / total_ms * 1e3, 100 * total_gflop / total_ms * 1e3 / peak);
    std::printf("geomean: %.1f GFLOP/s, %.1f%% of peak\n", std::exp(log_gflops / measured),
                100 * std::exp(log_peak / measured));
  }
  if (failures > 0) std::printf("%d layers failed\n", failures);
  return failures == 0 ? 0 : 1;
}
