// gpu_cublas: the GEMM form (compiler/gemm_lowering.h) on a CUDA device: an im2col
// kernel writes the column matrix, cuBLAS multiplies it with the weights in place
// (FP32, or FP16 on tensor cores with FP32 accumulation), and a bias kernel adds the
// bias and rounds to the data type. 1x1 stride-1 layers without padding need no
// im2col: cuBLAS reads the input itself.
//
// A tuning candidate, never a default: cuBLAS's speed per layer is measured by the
// autotuner against the Halide kernels, and the im2col matrix costs kh*kw times the
// input's memory traffic.
#include "gemm_lowering.h"
#include "gpu_templates.h"

namespace convjit {
namespace {

using Halide::Var;

// Fuses every loop of `f` into one and spreads it over blocks of `threads` threads
// (the pure loops of a point-wise stage: consecutive threads take consecutive
// points of the innermost stored dimension, so loads and stores coalesce).
void one_thread_per_point(Halide::Func f, const std::vector<Var>& loop_order, int threads) {
  Var block("block"), thread("thread");
  f.gpu_tile(fuse_loops(f, loop_order), block, thread, threads, Halide::TailStrategy::GuardWithIf);
}

class GpuCublasTemplate final : public ScheduleTemplate {
 public:
  const char* name() const override { return "gpu_cublas"; }

  std::string why_not_applicable(const ConvAlgorithm& a, const Halide::Target& target) const override {
    if (!is_cuda_target(target)) return "needs a CUDA target";
    return why_no_gemm_form(a.spec);
  }

  bool preferred_by_default(const ConvAlgorithm&, const Halide::Target&) const override { return false; }

  AlgorithmForm form() const override { return AlgorithmForm::kGemm; }

  std::vector<Knob> knobs(const ConvAlgorithm& a, const Halide::Target&) const override {
    const bool has_columns = !gemm_reads_input_directly(a.spec);
    return {
        {"columns_layout", has_columns ? std::vector<int>{0, 1} : std::vector<int>{0},
         "im2col matrix stored with 0: x innermost (cuBLAS reads it as is), 1: the weight row k innermost (read transposed)"},
        {"threads", {64, 128, 256}, "threads per block of the im2col and bias kernels"},
    };
  }

  ScheduleParams defaults(const ConvAlgorithm&, const Halide::Target&) const override {
    return {{"columns_layout", 0}, {"threads", 128}};
  }

  void apply(ConvAlgorithm& a, const Halide::Target&, const ScheduleParams& p) const override {
    CONVJIT_CHECK(a.gemm_form, "gpu_cublas needs the GEMM form (lower_as_gemm)");
    const int threads = p.get("threads");
    if (a.gemm_columns.defined()) {
      const Var k = a.gemm_columns.args()[2];
      a.gemm_columns.compute_root();
      if (p.get("columns_layout") == 1) {
        a.gemm_columns.reorder_storage(k, a.x, a.y, a.n);
        one_thread_per_point(a.gemm_columns, {k, a.x, a.y, a.n}, threads);
      } else {
        one_thread_per_point(a.gemm_columns, {a.x, a.y, k, a.n}, threads);
      }
    }
    if (a.spec.has_bias) one_thread_per_point(a.output, {a.x, a.y, a.c, a.n}, threads);
  }
};

}  // namespace

const ScheduleTemplate& gpu_cublas_template() {
  static const GpuCublasTemplate instance;
  return instance;
}

}  // namespace convjit
