// The CPU schedule templates and the ordered list the runtime chooses from.
//
// Order matters: the first applicable template gives the default schedule (the
// channel-vectorized fallback applies to every spec, so Halide's autoschedulers,
// last, are never a default); the autotuner searches every applicable one.
#pragma once

#include <string>
#include <vector>

#include "schedule_template.h"

namespace convjit {

const ScheduleTemplate& cpu_direct_template();
const ScheduleTemplate& cpu_channel_blocked_template();
const ScheduleTemplate& cpu_transposed_template();
const ScheduleTemplate& cpu_depthwise_template();
const ScheduleTemplate& cpu_channel_vectorized_template();
const ScheduleTemplate& halide_autoscheduler_template();

// Every CPU template, most specific first.
const std::vector<const ScheduleTemplate*>& cpu_templates();

// The templates that apply to (algorithm, target), in order.
std::vector<const ScheduleTemplate*> applicable_cpu_templates(const ConvAlgorithm& algorithm,
                                                              const Halide::Target& target);

// The template named `name`, or nullptr.
const ScheduleTemplate* find_cpu_template(const std::string& name);

// The first applicable template that is preferred by default, with its heuristic defaults.
ScheduleChoice default_cpu_schedule(const ConvAlgorithm& algorithm, const Halide::Target& target);

}  // namespace convjit
