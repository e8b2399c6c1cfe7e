// The Halide target of the CPU this process runs on: Halide's detection, less the
// feature sets this CPU cannot execute. Internal header (includes Halide.h).
//
// Halide 14 reads AVX512-VNNI plus AVX512-BF16 as Sapphire Rapids
// (avx512_sapphirerapids), and LLVM then compiles for that CPU, AVX512-FP16 and
// AVX-VNNI included. AMD's Zen 4 has the first two and not the others: its f16
// kernels died there on an illegal instruction (vmovw, an AVX512-FP16 move). Every
// "host" target convjit resolves, and the Halide runtime it loads, comes from here.
#pragma once

#include "Halide.h"

namespace convjit {

// `target` without the feature sets this CPU lacks instructions for (only
// avx512_sapphirerapids so far: kept when the CPU has AVX512-FP16 and AVX-VNNI): for
// targets that start from Halide's host detection ("host", "host-cuda", ...).
Halide::Target without_features_this_cpu_lacks(Halide::Target target);

// Halide::get_host_target() through without_features_this_cpu_lacks. Thread-safe;
// detects once per process.
const Halide::Target& host_cpu_target();

// Whether this CPU executes everything avx512_sapphirerapids lets LLVM emit that
// avx512_cannonlake does not (AVX512-FP16 and AVX-VNNI, from CPUID leaf 7).
bool cpu_has_sapphire_rapids_vector_isa();

}  // namespace convjit
