// The Halide target of the CPU this process runs on: Halide's detection, less the
// feature sets this CPU cannot execute. Internal header (includes Halide.h).
//
// Halide 14 reads AVX512-VNNI plus AVX512-BF16 as Sapphire Rapids
// (avx512_sapphirerapids), and LLVM then compiles for that CPU, AVX512-FP16 and
// AVX-VNNI included. AMD's Zen 4 has the first two and not the others: its f16
// kernels died there on an illegal instruction (vmovw, an AVX512-FP16 move). Every
// "host" target convjit resolves, and the Halide runtime it loads, comes from here.
//
// Also what a target string cannot say about this CPU that default schedules use
// (cpu_splits_512_bit_vectors).
#pragma once

#include <string>

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

// Whether this CPU executes 512-bit vector instructions as two 256-bit halves: AMD's
// family 0x19 with AVX-512F (Zen 4). Zen 5 (family 0x1a) and Intel's AVX-512 cores
// run them whole. Halide's target cannot say this (Zen 4 and Zen 5 get the same
// target string), yet some schedules measure faster on 256-bit vectors there.
bool cpu_splits_512_bit_vectors();

// Whether code for `target` runs on this CPU with 512-bit vectors split in halves:
// `target` has AVX-512 and the same x86 feature sets as host_cpu_target(), and
// cpu_splits_512_bit_vectors(). False for a target with other feature sets (AOT for
// another machine).
bool target_splits_512_bit_vectors(const Halide::Target& target);

// The host traits that default schedules for `target` depend on beyond its target
// string, as text for the disk cache key: "avx512_in_halves" where
// target_splits_512_bit_vectors, else empty.
std::string default_schedule_cpu_traits(const Halide::Target& target);

}  // namespace convjit
