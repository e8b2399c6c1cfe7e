// The autotuner: searches the schedule templates' knob spaces for the fastest
// correct kernel of one spec on one target, within a time budget.
//
// Contract:
// - Any budget gives an answer: the default schedule is measured first, and the
//   result is never slower than it (the default wins ties and near-ties): a winner
//   is confirmed against it interleaved, with cold caches and with warm ones (one
//   buffer set reused), and must be faster cold and at most 5% slower warm. The
//   fastest autoscheduled kernel (Halide's own) runs in those rounds too, so that
//   the tuned / autoscheduler ratio is of one moment.
// - Every candidate's output is compared with the default kernel's output on the
//   same inputs before it may win (relative error <= 1e-4 for f32, 1e-2 for f16).
// - Timing: two warm-up runs, then the median of several runs that rotate over
//   several input/output buffer sets, so that caches are not flattered.
// - The search is evolutionary: mutations and crossovers of the best candidates so
//   far, with a share of random points of every applicable template.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "convjit/conv_spec.h"
#include "convjit/runtime.h"
#include "convjit/status.h"

namespace convjit {

struct TuneProgress {
  int candidates = 0;      // measured so far (the default included)
  int rejected = 0;        // failed to compile or gave wrong results
  double best_ms = 0;
  double default_ms = 0;
  double elapsed_seconds = 0;
  double budget_seconds = 0;
  std::string best_schedule;
};

struct TuneOptions {
  double budget_seconds = 60;
  uint32_t seed = 1;
  int timing_runs = 9;  // timed runs per candidate (after 2 warm-ups)
  // Schedules to measure first, e.g. the best record of the nearest tuned spec.
  std::vector<ScheduleRequest> starting_points;
  // Called after every candidate (a progress line, a plot, ...).
  std::function<void(const TuneProgress&)> on_progress;
};

// One point of the best-so-far curve.
struct TunePoint {
  double elapsed_seconds;
  double best_ms;
};

struct TuneResult {
  ScheduleRequest best;       // the winning schedule
  std::string best_description;
  double best_ms = 0;
  double default_ms = 0;
  double best_error = 0;      // relative error of the winner vs the default's output
  // Both again with warm caches (one buffer set reused), when confirmation rounds
  // ran (0 otherwise): for a winner other than the default, or beside an
  // autoscheduled kernel. A winner more than 5% slower warm loses.
  double best_warm_ms = 0;
  double default_warm_ms = 0;
  // Halide 14's own autoschedulers (Adams2019, Mullapudi2016) are candidates too;
  // the best of them, for comparison (0 when none could be measured). Timed again,
  // cold and warm, in the rounds that confirm best_ms and default_ms, interleaved
  // with them, so that the ratios compare one moment; autoscheduler_confirmed says
  // it was (false: autoscheduler_ms is the search's own timing, where a confirmation
  // run failed, and autoscheduler_warm_ms is 0).
  double autoscheduler_ms = 0;
  double autoscheduler_warm_ms = 0;
  std::string autoscheduler_description;
  bool autoscheduler_confirmed = false;
  int candidates = 0;
  int rejected = 0;
  // Why, for each rejected candidate: "SCHEDULE: no kernel: ..." (the template does
  // not apply, or the schedule does not compile), "SCHEDULE: failed to run: ..." or
  // "SCHEDULE: relative error E above the tolerance T".
  std::vector<std::string> rejections;
  std::vector<TunePoint> curve;
};

// Tunes (spec, target). Candidates are compiled in a private Runtime without the
// disk cache (they are many and mostly discarded).
StatusOr<TuneResult> tune(const ConvSpec& spec, const std::string& target, const TuneOptions& options);

// Measures one kernel as the tuner does (median milliseconds after 2 warm-ups,
// rotating buffer sets; a CUDA kernel on device-resident buffers, each run
// synchronized). `warm`: one buffer set for every run instead, as `convjit bench`
// times (its data stays in the caches the layer fits in).
StatusOr<double> measure_kernel(const Kernel& kernel, int timing_runs, bool warm = false);

// How many buffer sets cold measurements of `spec` rotate over: enough to overflow a
// 32 MB last-level cache, 2 to 8; 1 when two sets would pass 1 GiB.
int rotating_buffer_set_count(const ConvSpec& spec);

}  // namespace convjit
