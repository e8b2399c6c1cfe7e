// The JSON form of a resolved problem that `convjit info` prints: every ConvSpec field,
// the tensor shapes, flops, the canonical descriptor, cache key and hash.
#pragma once

#include <string>
#include <vector>

#include "convjit/descriptor.h"
#include "convjit/runtime.h"

namespace convjit {

// One JSON object on one line (no trailing newline) for a valid problem. Dilation is
// 1-based and padding four-sided, as in ConvSpec; "name" is present only when the
// descriptor gave one. With `schedules`, a "schedules" array follows: per template, in
// the order the runtime chooses from, its name, whether it gives the default schedule,
// why it does not apply, or its default parameters and knobs with their choices.
std::string problem_to_json(const Problem& problem, const std::vector<ScheduleSpace>* schedules = nullptr);

// `text` as a JSON string literal, quotes included.
std::string json_quote(const std::string& text);

// A measurement (a time, a rate) as a JSON number with 6 significant digits; null
// when it was not measured (zero, negative or not finite).
std::string json_positive_number(double value);

}  // namespace convjit
