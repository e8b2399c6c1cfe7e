// The CUDA schedule templates and the launch limits they respect.
//
// Every GPU template maps output tiles to thread blocks and output points to
// threads, accumulates several outputs per thread in registers, and keeps the block
// within the limits every CUDA GPU since sm_20 has, so a schedule that compiles
// also launches. Halide 14 emits PTX for them (compiler/pipeline_compiler.h).
#pragma once

#include "schedule_template.h"

namespace convjit {

const ScheduleTemplate& gpu_tiled_template();
const ScheduleTemplate& gpu_staged_template();
// Not a Halide loop nest for the sums: cuBLAS (the GEMM form), a tuning candidate.
const ScheduleTemplate& gpu_cublas_template();

// CUDA limits that hold on every device Halide 14 targets (capability 3.0 to 8.6
// and, through the driver's JIT, newer): threads per block, and static shared
// memory per block (more needs an opt-in Halide 14 does not make).
constexpr int kGpuMaxThreadsPerBlock = 1024;
constexpr int64_t kGpuMaxSharedBytes = 48 * 1024;

// True for targets whose kernels run through Halide's CUDA runtime.
bool is_cuda_target(const Halide::Target& target);

// Fuses the pure loops of `f`, given innermost first, into one loop and returns it.
Halide::Var fuse_loops(Halide::Func f, const std::vector<Halide::Var>& innermost_first);

// Lays the loops of a Func that a whole block computes together (a staged tile)
// over the block's threads: all its dimensions are fused into one and spread over
// threads shaped (threads_x, threads_y, threads_z), the block's own shape, so
// staging never enlarges the block.
void spread_over_block_threads(Halide::Func staged, int threads_x, int threads_y, int threads_z);

}  // namespace convjit
