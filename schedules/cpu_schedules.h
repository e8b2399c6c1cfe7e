// Default CPU schedules, one per convolution family, chosen by heuristics from the
// spec and the target's vector width (no tuning).
//
// Contract: apply_default_cpu_schedule mutates the algorithm's Funcs (schedule
// only, never the algorithm) and returns a description naming the schedule and the
// parameter values it chose; the description is part of the kernel's cache key.
#pragma once

#include <string>

#include "Halide.h"
#include "lowering.h"

namespace convjit {

struct AppliedSchedule {
  std::string name;        // e.g. "cpu_direct"
  std::string parameters;  // e.g. "vec=16,x_tile=32,c_tile=8,parallel=y.n"
  std::string describe() const { return name + "(" + parameters + ")"; }
};

AppliedSchedule apply_default_cpu_schedule(ConvAlgorithm& algorithm, const Halide::Target& target);

}  // namespace convjit
