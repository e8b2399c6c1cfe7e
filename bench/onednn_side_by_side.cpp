// Side-by-side timing of convjit's default kernels and oneDNN on the same layers,
// in one process: GFLOP/s, ratio, fraction of the FMA peak measured here, and the
// JIT compile time of each convjit kernel.
//
// Usage: onednn_side_by_side [--repeat N] [--threads T] DESCRIPTOR...
// (forward f32 descriptors; defaults to the ResNet-50 res2 3x3 and MobileNetV2
// depthwise layers). oneDNN is timed twice: "blocked" gives it its preferred
// layouts with the data already reordered (untimed); "nchw" starts and ends in
// NCHW and includes its reorders in the time. convjit always works on NCHW.
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>
#include <thread>
#include <unistd.h>
#include <vector>

#include "convjit/descriptor.h"
#include "convjit/runtime.h"
#include "dnnl.hpp"
#include "fma_peak.h"

namespace {

using convjit::ConvSpec;
using dnnl::memory;

double median_seconds(int repeat, const std::function<void()>& body) {
  body();  // warm-up: page faults, thread pools, caches
  body();
  std::vector<double> t;
  for (int i = 0; i < repeat; ++i) {
    const auto start = std::chrono::steady_clock::now();
    body();
    t.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

std::vector<float> random_floats(size_t count, unsigned seed) {
  std::vector<float> v(count);
  unsigned state = seed * 2654435761u + 1;
  for (float& x : v) {
    state = state * 1664525u + 1013904223u;
    x = static_cast<float>(state >> 8) / static_cast<float>(1u << 24) * 2.f - 1.f;
  }
  return v;
}

struct OneDnnTimes {
  double blocked = 0, nchw = 0;
  std::string implementation;
};

OneDnnTimes time_onednn(const ConvSpec& s, int repeat, const float* src_data, const float* wei_data,
                        const float* bias_data) {
  dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  dnnl::stream stream(engine);
  const memory::dims src_dims = {s.n, s.c_in, s.h_in, s.w_in};
  const memory::dims dst_dims = {s.n, s.c_out, convjit::output_h(s), convjit::output_w(s)};
  const bool grouped = s.groups > 1;
  const memory::dims wei_dims = grouped ? memory::dims{s.groups, s.c_out / s.groups, s.c_in / s.groups, s.kh, s.kw}
                                        : memory::dims{s.c_out, s.c_in, s.kh, s.kw};
  const memory::dims bias_dims = {s.c_out};
  const auto f32 = memory::data_type::f32;
  const auto plain_wei_tag = grouped ? memory::format_tag::goihw : memory::format_tag::oihw;
  memory src_plain({src_dims, f32, memory::format_tag::nchw}, engine, const_cast<float*>(src_data));
  memory wei_plain({wei_dims, f32, plain_wei_tag}, engine, const_cast<float*>(wei_data));
  memory bias_mem({bias_dims, f32, memory::format_tag::x}, engine, const_cast<float*>(bias_data));
  memory dst_plain({dst_dims, f32, memory::format_tag::nchw}, engine);

  auto any = [&](const memory::dims& d) { return memory::desc(d, f32, memory::format_tag::any); };
  dnnl::convolution_forward::desc desc(
      dnnl::prop_kind::forward_inference, dnnl::algorithm::convolution_direct, any(src_dims), any(wei_dims),
      memory::desc(bias_dims, f32, memory::format_tag::x), any(dst_dims), {s.stride_h, s.stride_w},
      {s.dilation_h - 1, s.dilation_w - 1}, {s.pad_top, s.pad_left}, {s.pad_bottom, s.pad_right});
  dnnl::convolution_forward::primitive_desc pd(desc, engine);
  OneDnnTimes times;
  times.implementation = pd.impl_info_str();
  memory src_b(pd.src_desc(), engine), wei_b(pd.weights_desc(), engine), dst_b(pd.dst_desc(), engine);
  dnnl::reorder(src_plain, src_b).execute(stream, src_plain, src_b);
  dnnl::reorder(wei_plain, wei_b).execute(stream, wei_plain, wei_b);
  stream.wait();
  dnnl::convolution_forward conv(pd);
  auto run_blocked = [&] {
    conv.execute(stream, {{DNNL_ARG_SRC, src_b}, {DNNL_ARG_WEIGHTS, wei_b}, {DNNL_ARG_BIAS, bias_mem},
                          {DNNL_ARG_DST, dst_b}});
    stream.wait();
  };
  times.blocked = median_seconds(repeat, run_blocked);
  // NCHW in and out: the activations' reorders are part of the work; the weights are
  // reordered once, as a framework would cache them.
  dnnl::reorder to_blocked(src_plain, src_b), to_plain(dst_b, dst_plain);
  times.nchw = median_seconds(repeat, [&] {
    to_blocked.execute(stream, src_plain, src_b);
    conv.execute(stream, {{DNNL_ARG_SRC, src_b}, {DNNL_ARG_WEIGHTS, wei_b}, {DNNL_ARG_BIAS, bias_mem},
                          {DNNL_ARG_DST, dst_b}});
    to_plain.execute(stream, dst_b, dst_plain);
    stream.wait();
  });
  return times;
}

}  // namespace

int main(int argc, char** argv) {
  int repeat = 30;
  int threads = static_cast<int>(std::thread::hardware_concurrency());
  std::vector<std::string> descriptors;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--repeat") && i + 1 < argc) {
      repeat = std::max(1, std::atoi(argv[++i]));
    } else if (!std::strcmp(argv[i], "--threads") && i + 1 < argc) {
      threads = std::max(1, std::atoi(argv[++i]));
    } else if (argv[i][0] == '-') {
      std::fprintf(stderr, "usage: %s [--repeat N] [--threads T] DESCRIPTOR...\n", argv[0]);
      return 2;
    } else {
      descriptors.push_back(argv[i]);
    }
  }
  if (descriptors.empty()) {
    descriptors = {"mb1ic64ih56oc64oh56kh3ph1n\"resnet_50:res2a_branch2b\"",
                   "g32mb1ic32ih112oc32oh112kh3ph1n\"mobilenet_v2:conv2_1/dw\""};
  }
  // Idle OpenMP workers must not spin on the cores convjit is being timed on. libgomp
  // reads its settings when it loads, before main: set them and start again.
  if (!std::getenv("OMP_WAIT_POLICY")) {
    setenv("OMP_WAIT_POLICY", "passive", 1);
    execv("/proc/self/exe", argv);
    std::perror("re-executing with OMP_WAIT_POLICY=passive");
  }
  omp_set_num_threads(threads);
  convjit::set_num_threads(threads);
  const double peak = convjit::bench::measure_fma_peak_gflops(threads);
  std::printf("threads=%d (Halide pool and OpenMP), OMP_WAIT_POLICY=%s, repeat=%d, medians after warm-up\n",
              threads, std::getenv("OMP_WAIT_POLICY"), repeat);
  std::printf("measured FMA peak: %.1f GFLOP/s\n", peak);
  std::printf("%-34s %9s %9s %8s %9s %9s %9s %7s %7s\n", "layer", "compile_s", "convjit", "peak%",
              "dnnl_blk", "dnnl_nchw", "ratio_blk", "ratio_nchw", "");
  for (const std::string& text : descriptors) {
    convjit::ConvSpec base;
    base.has_bias = true;
    auto problem = convjit::parse_descriptor(text, base);
    if (!problem.ok()) {
      std::fprintf(stderr, "error: %s\n", problem.status().message().c_str());
      return 1;
    }
    const ConvSpec& s = problem->spec;
    auto kernel = convjit::Runtime::global().get_kernel(s, "host");
    if (!kernel.ok()) {
      std::fprintf(stderr, "error: %s\n", kernel.status().message().c_str());
      return 1;
    }
    const auto w_shape = convjit::weight_shape(s);
    size_t w_count = 1;
    for (int d = 0; d < convjit::weight_rank(s); ++d) w_count *= w_shape[d];
    const auto src = random_floats(s.n * s.c_in * s.h_in * s.w_in, 1);
    const auto wei = random_floats(w_count, 2);
    const auto bias = random_floats(s.c_out, 3);
    std::vector<float> dst(s.n * s.c_out * convjit::output_h(s) * convjit::output_w(s));
    const auto in = convjit::input_shape(s), out = convjit::output_shape(s);
    const convjit::TensorView bias_view = convjit::TensorView::dense(bias.data(), {s.c_out});
    const double t_convjit = median_seconds(repeat, [&] {
      convjit::Status st = kernel->run(convjit::TensorView::dense(src.data(), {in.begin(), in.end()}),
                                       convjit::TensorView::dense(wei.data(), {w_shape.begin(), w_shape.begin() + convjit::weight_rank(s)}),
                                       &bias_view, convjit::TensorView::dense(dst.data(), {out.begin(), out.end()}));
      if (!st.ok()) {
        std::fprintf(stderr, "error: %s\n", st.message().c_str());
        std::exit(1);
      }
    });
    const OneDnnTimes dnnl_times = time_onednn(s, repeat, src.data(), wei.data(), bias.data());
    const double gflop = convjit::flops(s) / 1e9;
    std::printf("%-34s %9.2f %9.1f %7.1f%% %9.1f %9.1f %9.2fx %9.2fx   (GFLOP/s; oneDNN impl %s)\n",
                problem->name.c_str(), kernel->compile_seconds(), gflop / t_convjit,
                100.0 * gflop / t_convjit / peak, gflop / dnnl_times.blocked, gflop / dnnl_times.nchw,
                dnnl_times.blocked / t_convjit, dnnl_times.nchw / t_convjit, dnnl_times.implementation.c_str());
  }
  std::printf("ratio = oneDNN time / convjit time (> 1: convjit faster)\n");
  return 0;
}
