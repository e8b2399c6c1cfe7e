// oneDNN as a peer for side-by-side timing: the same convolution geometry run through
// Debian's oneDNN (libdnnl) in the same process, on its preferred blocked layouts and
// on plain NCHW with the reorders timed.
//
// Only timing: padding modes other than zeros and conv_mode are timed as the
// zero-padded cross-correlation of the same geometry (oneDNN has neither), which
// costs oneDNN the same work. f16 specs are not timed (Debian's oneDNN 2.6 has no
// f16 convolutions on these CPUs).
#pragma once

#include <memory>
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

// A oneDNN convolution set up once (primitive, buffers in both layouts, on `threads`
// OpenMP threads), run one call at a time, so that a caller can interleave its runs
// with its own: on a shared machine whose speed drifts over seconds, a ratio of two
// times measured one after the other drifts with it. With `buffer_sets` above 1 each
// call runs on the next of that many copies of the buffers (one primitive), so that
// the layer is not all in cache, as convjit's cold measurements rotate.
class OneDnnConvolution {
 public:
  static StatusOr<std::unique_ptr<OneDnnConvolution>> create(const ConvSpec& spec, int threads,
                                                             int buffer_sets = 1);
  virtual ~OneDnnConvolution() = default;
  virtual void run_blocked() = 0;  // preferred layouts, the data already in them
  virtual void run_nchw() = 0;     // reorder in, convolution, reorder out
  virtual const std::string& implementation() const = 0;  // oneDNN's name for its kernel
};

// Debian's oneDNN threads through OpenMP, whose idle workers spin by default and
// would steal the cores convjit is timed on. libgomp reads OMP_WAIT_POLICY when it
// loads, before main: a program that times both calls this first in main(); it
// re-executes the program with OMP_WAIT_POLICY=passive when that is not set yet.
void ensure_passive_openmp(char** argv);

}  // namespace convjit::peers
