// The ordered list of schedule templates and the default choice.
#include "schedule_templates.h"

#include "cpu_templates.h"
#include "gpu_templates.h"

namespace convjit {

const std::vector<const ScheduleTemplate*>& all_templates() {
  static const std::vector<const ScheduleTemplate*> all = {
      &cpu_depthwise_template(), &cpu_transposed_phases_template(), &cpu_transposed_template(),
      &cpu_pointwise_template(),  &cpu_channel_blocked_template(),
      &cpu_direct_template(),    &cpu_channel_vectorized_template(),
      &gpu_staged_template(),    &gpu_tiled_template(),     &gpu_cublas_template(),
      &halide_autoscheduler_template()};
  return all;
}

std::vector<const ScheduleTemplate*> applicable_templates(const ConvAlgorithm& a, const Halide::Target& t) {
  std::vector<const ScheduleTemplate*> result;
  for (const ScheduleTemplate* candidate : all_templates()) {
    if (candidate->why_not_applicable(a, t).empty()) result.push_back(candidate);
  }
  return result;
}

const ScheduleTemplate* find_template(const std::string& name) {
  for (const ScheduleTemplate* candidate : all_templates()) {
    if (name == candidate->name()) return candidate;
  }
  return nullptr;
}

ScheduleChoice default_schedule(const ConvAlgorithm& a, const Halide::Target& t) {
  for (const ScheduleTemplate* candidate : applicable_templates(a, t)) {
    if (candidate->preferred_by_default(a, t)) return {candidate, candidate->defaults(a, t)};
  }
  CONVJIT_CHECK(false, "cpu_channel_vectorized or gpu_tiled applies to every spec on its target");
  return {};
}

}  // namespace convjit
