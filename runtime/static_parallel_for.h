// static_parallel_for: the parallel loops of convjit's JIT-compiled kernels, run on a
// pool that gives each thread the same contiguous share of a loop on every call
// (installed as the Halide runtime's do_par_for by halide_runtime_library.cpp).
//
// Why: Halide 14's own pool hands the iterations out in order to whichever thread
// asks first, so from one call to the next a thread runs other channels (or rows) and
// finds their data in the other core's L2. Running a kernel again on the same tensors
// (the benchmark, a layer over a video's frames) then pays for moving the data between
// cores. Measured on MobileNetV2's conv3_2/dw (2-core AVX-512 Xeon, 2026-11-22,
// convjit bench, 2 threads): its 144 channel tasks took 0.080-0.085 ms; the same
// kernel split into 2 contiguous halves, 0.047-0.068 ms.
//
// Each participant runs its own share front to back; when it is done it takes the
// last remaining iteration of another share, so a thread slowed down by another
// tenant on its core does not hold the loop up. A loop inside a task, or a loop
// started while another caller's loop holds the pool, runs serially on its caller.
#pragma once

#include <cstdint>

namespace convjit {

// Halide's halide_task_t: runs iteration `index` of a loop body.
using ParallelTask = int (*)(void* user_context, int index, uint8_t* closure);

// Runs task(user_context, i, closure) for i in [min, min + size), with Halide's
// halide_do_par_for contract: returns 0, or the nonzero result of one of the
// iterations (the first seen; the iterations not started by then are skipped).
int static_parallel_for(void* user_context, ParallelTask task, int min, int size, uint8_t* closure);

// Threads that share a loop from the next one on, the caller included; 0 or less:
// the default, $HL_NUM_THREADS when set, else the machine's CPU count.
void set_static_parallel_threads(int threads);
int static_parallel_threads();

}  // namespace convjit
