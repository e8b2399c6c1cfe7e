// oneDNN as a peer for side-by-side timing: the same convolution geometry run through
// Debian's oneDNN (libdnnl) in the same process, on its preferred blocked layouts and
// on plain NCHW with the reorders timed.
//
// Only timing: padding modes other than zeros and conv_mode are timed as the
// zero-padded cross-correlation of the same geometry (oneDNN has neither), which
// costs oneDNN the same work. f16 specs are not timed (Debian's oneDNN 2.6 has no
// f16 convolutions on these CPUs).
#pragma once

#include <string>

#include "convjit/conv_spec.h"
#include "convjit/status.h"

namespace convjit::peers {

// True when convjit was built with oneDNN (found by CMake).
bool onednn_available();

struct OneDnnTimes {
  double blocked_ms = 0;  // oneDNN's preferred layouts, data already reordered (untimed)
  double nchw_ms = 0;     // NCHW in and out, activation reorders included in the time
  std::string implementation;  // oneDNN's name for the kernel it chose
};

// Medians of `repeat` runs after two warm-ups, on `threads` OpenMP threads.
StatusOr<OneDnnTimes> time_onednn(const ConvSpec& spec, int threads, int repeat);

// Debian's oneDNN threads through OpenMP, whose idle workers spin by default and
// would steal the cores convjit is timed on. libgomp reads OMP_WAIT_POLICY when it
// loads, before main: a program that times both calls this first in main(); it
// re-executes the program with OMP_WAIT_POLICY=passive when that is not set yet.
void ensure_passive_openmp(char** argv);

}  // namespace convjit::peers
