// Measures the machine's single-precision FMA peak, in GFLOP/s, with the widest
// vector FMA the CPU has (AVX-512 or AVX2), on a given number of threads.
#pragma once

namespace convjit::peers {

// Runs independent FMA chains on `threads` threads for about `seconds` and returns
// the rate achieved; the denominator of every "fraction of peak" convjit reports.
double measure_fma_peak_gflops(int threads, double seconds = 0.3);

}  // namespace convjit::peers
