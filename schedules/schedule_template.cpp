// ScheduleParams text form and the helpers every template shares.
#include "schedule_template.h"

#include "cpu_templates.h"
#include "flat_lowering.h"
#include "gemm_lowering.h"

#include <algorithm>
#include <cstdlib>
#include <sstream>

namespace convjit {

int ScheduleParams::get(const std::string& knob) const {
  auto it = values_.find(knob);
  CONVJIT_CHECK(it != values_.end(), "schedule parameter '" + knob + "' is not set");
  return it->second;
}

std::string ScheduleParams::to_string() const {
  std::ostringstream out;
  bool first = true;
  for (const auto& [name, value] : values_) {
    out << (first ? "" : ",") << name << "=" << value;
    first = false;
  }
  return out.str();
}

StatusOr<ScheduleParams> ScheduleParams::parse(const std::string& text) {
  ScheduleParams params;
  std::istringstream in(text);
  std::string item;
  while (std::getline(in, item, ',')) {
    const size_t eq = item.find('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == item.size())
      return Status::invalid_argument("schedule parameters '" + text + "': '" + item + "' is not name=value");
    char* end = nullptr;
    const long value = std::strtol(item.c_str() + eq + 1, &end, 10);
    if (*end != '\0')
      return Status::invalid_argument("schedule parameters '" + text + "': '" + item + "' has a non-integer value");
    params.set(item.substr(0, eq), static_cast<int>(value));
  }
  return params;
}

std::string ScheduleChoice::describe() const {
  return std::string(schedule_template->name()) + "(" + params.to_string() + ")";
}

std::string needs_x86_cpu(const Halide::Target& target) {
  if (target.arch != Halide::Target::X86) return "needs an x86 target";
  if (target.has_gpu_feature()) return "needs a CPU target (this one has a GPU feature)";
  return "";
}

void ScheduleChoice::apply_to(ConvAlgorithm& algorithm, const Halide::Target& target) const {
  switch (schedule_template->form()) {
    case ScheduleTemplate::AlgorithmForm::kPlain:
      break;
    case ScheduleTemplate::AlgorithmForm::kTransposedPhases:
      if (!algorithm.phase_form) algorithm = lower(algorithm.spec, /*transposed_phases=*/true);
      break;
    case ScheduleTemplate::AlgorithmForm::kGemm:
      if (!algorithm.gemm_form) algorithm = lower_as_gemm(algorithm.spec, target.has_feature(Halide::Target::CUDA));
      break;
    case ScheduleTemplate::AlgorithmForm::kFlat:
      if (!algorithm.flat_form) algorithm = lower_as_flat(algorithm.spec);
      break;
  }
  schedule_template->apply(algorithm, target, params);
}

int floor_pow2(int64_t value) {
  int p = 1;
  while (static_cast<int64_t>(p) * 2 <= value) p *= 2;
  return p;
}

std::vector<int> input_channel_chunks(const ConvSpec& spec, std::initializer_list<int> sizes) {
  const int64_t per_group = spec.c_in / spec.groups;
  std::vector<int> chunks;
  for (int chunk : sizes) {
    if (per_group % chunk == 0 && per_group >= 2 * chunk) chunks.push_back(chunk);
  }
  return chunks;
}

bool tiles_redo_over_a_tenth(int64_t extent, int64_t tile) {
  return (extent + tile - 1) / tile * tile * 10 > extent * 11;
}

int clamp_pow2(int wanted, int64_t limit) {
  return std::max(1, std::min(wanted, floor_pow2(std::max<int64_t>(limit, 1))));
}

bool has_32_vector_registers(const Halide::Target& target) {
  return target.has_feature(Halide::Target::AVX512);
}

std::vector<int> vector_widths_up_to(int limit) {
  std::vector<int> widths;
  for (int w = 4; w <= limit; w *= 2) widths.push_back(w);
  if (widths.empty()) widths.push_back(limit);
  return widths;
}

void pack_weights_channel_innermost(ConvAlgorithm& a, const Halide::Func& consumer, const Halide::Func& owner,
                                    const Halide::Var& level, int lanes) {
  // Blocks of 16 output channels, innermost: already what the repacking makes.
  if (a.spec.weight_layout == WeightLayout::kOIHW16o) return;
  Halide::Func packed = a.weights.in(consumer);
  // OIHW (kx, ky, i, o), GOIHW (kx, ky, i, o, g), IOHW (kx, ky, o, i), MIHW (kx, ky, i, m)
  std::vector<Halide::Var> w = packed.args();
  const size_t o = a.spec.weight_layout == WeightLayout::kIOHW ? 2 : 3;
  std::vector<Halide::Var> storage = {w[o]};
  for (size_t d = 0; d < w.size(); ++d) {
    if (d != o) storage.push_back(w[d]);
  }
  packed.compute_at(owner, level).reorder_storage(storage);
  // ShiftInwards, not RoundUp: the repacked range of channels need not be a multiple
  // of the vector (all 33 channels of a spec when packed once, before the tasks), and
  // rounding up read weights past the last channel.
  packed.reorder(std::vector<Halide::VarOrRVar>(storage.begin(), storage.end()))
      .vectorize(w[o], lanes, Halide::TailStrategy::ShiftInwards);
  // Outside the owner's loops the packing runs once, before any task: split it
  // over the threads by its outermost dimension.
  if (level.same_as(Halide::Var::outermost())) packed.parallel(storage.back());
}

// The column-phase form's staged rows: each input row the consumer reads, split into
// stride_w column phases, through the padding. Short rows are unrolled, as in
// stage_padded_input, so that each vector's border clamp simplifies on its own.
static void stage_column_phases(ConvAlgorithm& a, const Halide::Func& consumer, const Halide::Var& level, int lanes,
                                bool from_padded_rows) {
  const ConvSpec& s = a.spec;
  // Past the last column, RoundUp reads through the padding's boundary condition (or,
  // without padding, the clamp lower() adds for a box that outgrows a phase).
  a.column_phases.compute_at(consumer, level).vectorize(a.q, lanes, Halide::TailStrategy::RoundUp).unroll(a.phase);
  const int64_t phase_width = (s.w_in + s.pad_left + s.pad_right + s.stride_w - 1) / s.stride_w;
  const bool unrolled = phase_width <= int64_t{kMaxUnrolledStagingVectors} * lanes;
  if (unrolled) a.column_phases.unroll(a.q);
  if (from_padded_rows && a.reads_padding) {
    // Each row is first copied padded, in dense vectors, into a buffer of one row
    // that the phase split then reads while it is in L1. Read straight through the
    // boundary condition instead, the phase vectors that cross a border load runs
    // of odd length (a phase's last vector: 18 values for 16 lanes at stride 2) that
    // LLVM assembles element by element.
    const Halide::Var x = a.input_extended.args()[0];
    a.input_extended.compute_at(a.column_phases, a.column_phases.args()[2])
        .vectorize(x, lanes, Halide::TailStrategy::RoundUp);
    if (unrolled) a.input_extended.unroll(x);
  }
}

std::vector<int> column_phases_choices(const ConvAlgorithm& a) {
  if (!has_column_phase_form(a.spec)) return {0};
  if (a.spec.stride_w >= 3 || a.spec.dilation_w > 1) return {1};
  return {0, 1};
}

std::vector<int> phase_rows_choices(const ConvAlgorithm& a) {
  if (has_column_phase_form(a.spec) && a.reads_padding) return {0, 1};
  return {0};
}

void stage_padded_input(ConvAlgorithm& a, const Halide::Func& consumer, const Halide::Var& level, int vector_width,
                        bool even_without_padding, bool phases_from_padded_rows) {
  if (a.column_phase_form) {
    stage_column_phases(a, consumer, level, vector_width, phases_from_padded_rows);
    return;
  }
  // Boundary-condition Funcs name their own pure vars; the first is x.
  const Halide::Var x = a.input_extended.args()[0];
  if (a.reads_padding) {
    a.input_extended.compute_at(consumer, level).vectorize(x, vector_width, Halide::TailStrategy::RoundUp);
    // Rows of a few vectors: unrolled, so that each vector's clamp simplifies on its
    // own into a dense load (shuffled at a border). Halide's loop partitioning found
    // no steady state in such short loops and left every vector a 16-lane gather.
    // Against the loop (medians of the ratio to oneDNN in the same rounds, 3 processes
    // of bench/schedule_ab --warm --rounds 3, 1 thread, 2-core AVX-512 Xeon,
    // 2026-11-22): 27x27 3x3 depthwise 2.9x faster, 15x15 5x5 depthwise 1.31x,
    // MobileNetV2 conv3_2/dw 1.23x, ResNet-50 3x3 res2a 1.05x, other layers within the
    // noise. Wide rows keep the loop: ResNet-50 conv1 (29 vectors) measured about 20%
    // slower unrolled.
    const ConvSpec& s = a.spec;
    const int64_t padded_width = s.w_in + s.pad_left + s.pad_right;
    if (padded_width <= int64_t{kMaxUnrolledStagingVectors} * vector_width) {
      a.input_extended.unroll(x);
    }
  } else if (even_without_padding) {
    // A plain copy of the rows: RoundUp would read past the input's last column.
    const int lanes = std::min<int>(vector_width, floor_pow2(a.spec.w_in));
    a.input_extended.compute_at(consumer, level).vectorize(x, lanes, Halide::TailStrategy::ShiftInwards);
  }
  // else input_extended is a plain wrapper: inline it.
}

}  // namespace convjit
