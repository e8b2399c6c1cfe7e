// The CPU schedule templates (schedule_templates.h orders them with the others).
#pragma once

#include <string>

#include "schedule_template.h"

namespace convjit {

const ScheduleTemplate& cpu_direct_template();
const ScheduleTemplate& cpu_pointwise_template();
const ScheduleTemplate& cpu_channel_blocked_template();
const ScheduleTemplate& cpu_transposed_template();
const ScheduleTemplate& cpu_transposed_phases_template();
const ScheduleTemplate& cpu_depthwise_template();
const ScheduleTemplate& cpu_channel_vectorized_template();
// Halide's own autoschedulers: Adams2019 and Mullapudi2016 on CPU targets, Li2018
// on CUDA targets.
const ScheduleTemplate& halide_autoscheduler_template();

// Empty when `target` is an x86 CPU target without a GPU feature; else the reason.
std::string needs_x86_cpu(const Halide::Target& target);

// Whether cpu_channel_blocked's defaults take register tiles of two channel vectors
// for `spec` (AVX-512 only): 64 or more output channels, by 7 columns on rows a multiple
// of 7, else by 8 to 11 columns that divide the row (forward), or by 8 on rows a
// multiple of 8 with a stride dividing 8 (transposed, so that every column of a tile
// keeps its phase).
bool channel_blocked_takes_two_vectors(const ConvSpec& spec, int lanes);

// The column count of those tiles: forward 7, or 8 to 11 dividing the row; transposed 8.
int channel_blocked_two_vector_columns(const ConvSpec& spec);

// Whether cpu_channel_blocked is the default for the transposed `spec`: where it takes
// two channel vectors, and with one vector on ungrouped layers of two vectors of
// channels or more, unless each column phase of the output holds two vectors (there
// cpu_transposed_phases stays). cpu_transposed_phases and cpu_transposed yield such
// specs to it.
bool channel_blocked_takes_transposed(const ConvSpec& spec, int lanes);

}  // namespace convjit
