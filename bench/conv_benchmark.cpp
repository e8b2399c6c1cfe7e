// Google Benchmark program: every layer of a shape file through convjit and, in the
// same process, through oneDNN (blocked layouts, and NCHW with reorders), on 1 and 2
// threads, with GFLOP/s counters. convjit's weights are prepared once in its
// preferred layout (oihw16o where the channels allow), as oneDNN's are in its own.
//
// Usage: conv_benchmark [SHAPES_FILE] [benchmark flags, e.g. --benchmark_filter=res2]
// Default shapes: bench/shapes. oneDNN runs are timed by the peer (medians of 10 runs)
// and reported as manual time.
#include <benchmark/benchmark.h>

#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "convjit/descriptor.h"
#include "convjit/runtime.h"
#include "onednn_peer.h"

namespace {

using convjit::ConvSpec;
using convjit::TensorView;

std::vector<int64_t> dims(const int64_t* shape, int rank) { return {shape, shape + rank}; }

// convjit with its weights prepared once in preferred_weight_layout, as oneDNN's
// are in its preferred layout (`convjit bench --weights prepared`).
void run_convjit(benchmark::State& state, const convjit::Problem& problem, int threads) {
  ConvSpec s = problem.spec;
  s.weight_layout = convjit::preferred_weight_layout(s);
  convjit::set_num_threads(threads);
  auto kernel = convjit::Runtime::global().get_kernel(s, "host");
  if (!kernel.ok()) {
    state.SkipWithError(kernel.status().message().c_str());
    return;
  }
  const auto in = convjit::input_shape(s), out = convjit::output_shape(s);
  const auto w = convjit::weight_shape(s);
  const int64_t elem = convjit::element_size(s.dtype);
  int64_t n_w = 1;
  for (int d = 0; d < convjit::weight_rank(s); ++d) n_w *= w[d];
  std::vector<uint8_t> src(in[0] * in[1] * in[2] * in[3] * elem, 0), wei(n_w * elem, 0), bias(s.c_out * elem, 0),
      dst(out[0] * out[1] * out[2] * out[3] * elem);
  const TensorView bias_view = TensorView::dense(bias.data(), {s.c_out});
  for (auto _ : state) {
    convjit::Status st = kernel->run(TensorView::dense(src.data(), dims(in.data(), 4)),
                                     TensorView::dense(wei.data(), dims(w.data(), convjit::weight_rank(s))),
                                     s.has_bias ? &bias_view : nullptr, TensorView::dense(dst.data(), dims(out.data(), 4)));
    if (!st.ok()) {
      state.SkipWithError(st.message().c_str());
      return;
    }
  }
  state.counters["GFLOP/s"] = benchmark::Counter(convjit::flops(s) / 1e9, benchmark::Counter::kIsIterationInvariantRate);
  state.SetLabel(kernel->schedule());
}

void run_onednn(benchmark::State& state, const convjit::Problem& problem, int threads, bool blocked) {
  for (auto _ : state) {
    auto times = convjit::peers::time_onednn(problem.spec, threads, 10);
    if (!times.ok()) {
      state.SkipWithError(times.status().message().c_str());
      return;
    }
    state.SetIterationTime((blocked ? times->blocked_ms : times->nchw_ms) / 1e3);
    state.SetLabel(times->implementation);
  }
  state.counters["GFLOP/s"] =
      benchmark::Counter(convjit::flops(problem.spec) / 1e9, benchmark::Counter::kIsIterationInvariantRate);
}

}  // namespace

int main(int argc, char** argv) {
  convjit::peers::ensure_passive_openmp(argv);
  std::string shapes = CONVJIT_DEFAULT_SHAPES;
  if (argc > 1 && std::strncmp(argv[1], "--", 2) != 0) {
    shapes = argv[1];
    for (int i = 1; i + 1 < argc; ++i) argv[i] = argv[i + 1];
    --argc;
  }
  auto problems = convjit::read_problem_file(shapes);
  if (!problems.ok()) {
    std::fprintf(stderr, "conv_benchmark: error: %s\n", problems.status().message().c_str());
    return 1;
  }
  for (const convjit::Problem& p : *problems) {
    const std::string name = p.name.empty() ? convjit::print_descriptor(p.spec) : p.name;
    for (int threads : {1, 2}) {
      const std::string suffix = name + "/threads:" + std::to_string(threads);
      benchmark::RegisterBenchmark(("convjit/" + suffix).c_str(), run_convjit, p, threads)
          ->Unit(benchmark::kMillisecond)
          ->UseRealTime();
      if (convjit::peers::onednn_available()) {
        benchmark::RegisterBenchmark(("onednn_blocked/" + suffix).c_str(), run_onednn, p, threads, true)
            ->Unit(benchmark::kMillisecond)
            ->UseManualTime()
            ->Iterations(1);
        benchmark::RegisterBenchmark(("onednn_nchw/" + suffix).c_str(), run_onednn, p, threads, false)
            ->Unit(benchmark::kMillisecond)
            ->UseManualTime()
            ->Iterations(1);
      }
    }
  }
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
