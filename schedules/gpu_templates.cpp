// Helpers shared by the CUDA schedule templates.
#include "gpu_templates.h"

namespace convjit {

bool is_cuda_target(const Halide::Target& target) { return target.has_feature(Halide::Target::CUDA); }

Halide::Var fuse_loops(Halide::Func f, const std::vector<Halide::Var>& innermost_first) {
  Halide::Var fused = innermost_first[0];
  for (size_t d = 1; d < innermost_first.size(); ++d) {
    Halide::Var next("fused_" + std::to_string(d));
    f.fuse(fused, innermost_first[d], next);
    fused = next;
  }
  return fused;
}

void spread_over_block_threads(Halide::Func staged, int threads_x, int threads_y, int threads_z) {
  const Halide::Var fused = fuse_loops(staged, staged.args());
  // fused = ((rest * threads_z + z) * threads_y + y) * threads_x + x
  Halide::Var rest("rest"), in_block("in_block"), yz("yz"), tx("tx"), ty("ty"), tz("tz");
  staged.split(fused, rest, in_block, threads_x * threads_y * threads_z, Halide::TailStrategy::GuardWithIf)
      .split(in_block, yz, tx, threads_x)
      .split(yz, tz, ty, threads_y)
      .reorder(tx, ty, tz, rest)
      .gpu_threads(tx, ty, tz);
}

}  // namespace convjit
