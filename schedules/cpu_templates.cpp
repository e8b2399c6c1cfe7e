// The ordered list of CPU schedule templates and the default choice.
#include "cpu_templates.h"

namespace convjit {

const std::vector<const ScheduleTemplate*>& cpu_templates() {
  static const std::vector<const ScheduleTemplate*> all = {
      &cpu_depthwise_template(), &cpu_transposed_template(), &cpu_channel_blocked_template(), &cpu_direct_template(),
      &cpu_channel_vectorized_template(), &halide_autoscheduler_template()};
  return all;
}

std::vector<const ScheduleTemplate*> applicable_cpu_templates(const ConvAlgorithm& a, const Halide::Target& t) {
  std::vector<const ScheduleTemplate*> result;
  for (const ScheduleTemplate* candidate : cpu_templates()) {
    if (candidate->why_not_applicable(a, t).empty()) result.push_back(candidate);
  }
  return result;
}

const ScheduleTemplate* find_cpu_template(const std::string& name) {
  for (const ScheduleTemplate* candidate : cpu_templates()) {
    if (name == candidate->name()) return candidate;
  }
  return nullptr;
}

ScheduleChoice default_cpu_schedule(const ConvAlgorithm& a, const Halide::Target& t) {
  for (const ScheduleTemplate* candidate : applicable_cpu_templates(a, t)) {
    if (candidate->preferred_by_default(a, t)) return {candidate, candidate->defaults(a, t)};
  }
  CONVJIT_CHECK(false, "cpu_channel_vectorized applies to every spec");
  return {};
}

}  // namespace convjit
