// Every schedule template, CPU and CUDA, in the order the runtime chooses from.
//
// Order matters: the first applicable template that is preferred by default gives
// the default schedule; the autotuner searches every applicable one. Each template
// checks the target itself, so one list serves every target.
#pragma once

#include <string>
#include <vector>

#include "schedule_template.h"

namespace convjit {

const std::vector<const ScheduleTemplate*>& all_templates();

// The templates that apply to (algorithm, target), in order.
std::vector<const ScheduleTemplate*> applicable_templates(const ConvAlgorithm& algorithm,
                                                          const Halide::Target& target);

// The template named `name`, or nullptr.
const ScheduleTemplate* find_template(const std::string& name);

// The first applicable template that is preferred by default, with its heuristic defaults.
ScheduleChoice default_schedule(const ConvAlgorithm& algorithm, const Halide::Target& target);

}  // namespace convjit
