// ScheduleTemplate: a family of schedules for one kind of convolution, with the knob
// space the autotuner searches and heuristic defaults for users who never tune.
//
// Contract: knobs() lists, for a spec and target, only values that apply() accepts,
// so every point of the space (one choice per knob) is a valid schedule. apply()
// only schedules (never changes the algorithm) and is deterministic: equal
// (spec, target, params) give equal code, which is what lets the cache key name a
// schedule by its template name and parameters.
#pragma once

#include <initializer_list>
#include <map>
#include <string>
#include <vector>

#include "Halide.h"
#include "convjit/status.h"
#include "lowering.h"

namespace convjit {

// One value per knob, by name. Printed as "name=value,name=value" in name order.
class ScheduleParams {
 public:
  ScheduleParams() = default;
  ScheduleParams(std::initializer_list<std::pair<const std::string, int>> values) : values_(values) {}

  int get(const std::string& knob) const;  // aborts if absent: templates set every knob
  void set(const std::string& knob, int value) { values_[knob] = value; }
  bool has(const std::string& knob) const { return values_.count(knob) != 0; }
  const std::map<std::string, int>& values() const { return values_; }

  std::string to_string() const;
  // Parses to_string()'s form; errors name the offending text.
  static StatusOr<ScheduleParams> parse(const std::string& text);

  bool operator==(const ScheduleParams& other) const { return values_ == other.values_; }
  bool operator<(const ScheduleParams& other) const { return values_ < other.values_; }

 private:
  std::map<std::string, int> values_;
};

// A tunable dimension of a template and the values it may take for one spec.
struct Knob {
  std::string name;
  std::vector<int> choices;
  std::string meaning;  // one line for people exploring schedules
};

class ScheduleTemplate {
 public:
  virtual ~ScheduleTemplate() = default;
  virtual const char* name() const = 0;
  // Empty when the template applies to (spec, target); else the reason it does not.
  virtual std::string why_not_applicable(const ConvAlgorithm& algorithm, const Halide::Target& target) const = 0;
  // Whether the default schedule may come from this template for this spec (an
  // applicable template can still be a poor default; the autotuner tries it anyway).
  virtual bool preferred_by_default(const ConvAlgorithm&, const Halide::Target&) const { return true; }
  virtual std::vector<Knob> knobs(const ConvAlgorithm& algorithm, const Halide::Target& target) const = 0;
  // The heuristic choice: good without tuning on common layers.
  virtual ScheduleParams defaults(const ConvAlgorithm& algorithm, const Halide::Target& target) const = 0;
  virtual void apply(ConvAlgorithm& algorithm, const Halide::Target& target, const ScheduleParams& params) const = 0;
  // The form of the algorithm apply() schedules; applicability, knobs and defaults
  // see the plain form.
  enum class AlgorithmForm {
    kPlain,             // lower(spec)
    kTransposedPhases,  // lower(spec, true): a transposed convolution by column phase
    kGemm,              // lower_as_gemm(spec, ...): im2col and an extern GEMM
    kFlat,              // lower_as_flat(spec): a 1x1 convolution over flattened positions
  };
  virtual AlgorithmForm form() const { return AlgorithmForm::kPlain; }
};

// A template and a point of its space: what a kernel is compiled with.
struct ScheduleChoice {
  const ScheduleTemplate* schedule_template = nullptr;
  ScheduleParams params;
  std::string describe() const;  // "name(knob=value,...)"
  // Applies the schedule to `algorithm` (lowered in the plain form), lowering it
  // again first when the template schedules another form.
  void apply_to(ConvAlgorithm& algorithm, const Halide::Target& target) const;
};

// Numbers shared by templates.
// Fewer parallel tasks than this leave cores idle on uneven rows: templates then
// split channel blocks (or row strips) into tasks too.
constexpr int64_t kMinParallelTasks = 8;
// The widest staged input row, in vectors, whose copy is unrolled (stage_padded_input).
constexpr int kMaxUnrolledStagingVectors = 8;
int floor_pow2(int64_t value);
// Whether tiles of `tile` over `extent`, the last one shifted inwards (or rounded up),
// compute more than a tenth beyond it: the waste the default rules avoid.
bool tiles_redo_over_a_tenth(int64_t extent, int64_t tile);
// Of `sizes`, those that divide a group's input channels into two chunks or more
// (the c_in_chunk knobs of cpu_channel_blocked and cpu_pointwise).
std::vector<int> input_channel_chunks(const ConvSpec& spec, std::initializer_list<int> sizes);
// `wanted` shrunk to a power of two no larger than `limit` (at least 1).
int clamp_pow2(int wanted, int64_t limit);
// Powers of two from 4 up to `limit` (at least {limit} when limit < 4).
std::vector<int> vector_widths_up_to(int limit);
// Whether an x86 target has AVX-512's 32 vector registers; without it (AVX2) there
// are 16, and register tiles sized for 32 spill: the defaults take smaller ones.
bool has_32_vector_registers(const Halide::Target& target);

}  // namespace convjit

namespace convjit {

// Repacks the weights `consumer` reads, once per `level` of `owner`, into a scratch
// buffer with the output channel innermost, so that a vector of output channels is
// one dense load (in OIHW it is a gather with stride c_in*kh*kw). Nothing to do for
// weights given in blocks of 16 output channels (WeightLayout::kOIHW16o).
void pack_weights_channel_innermost(ConvAlgorithm& algorithm, const Halide::Func& consumer, const Halide::Func& owner,
                                    const Halide::Var& level, int lanes);

// Computes the padded input into a scratch buffer at `level` of `consumer`, so that
// boundary selects run once per input value and the hot loop loads dense vectors.
// Rounds its vector loop up so that Halide's loop partitioning keeps the interior
// free of clamps (a clamped ramp is a gather). When no padding is read it does
// nothing, unless `even_without_padding`: then it copies the rows the consumer reads,
// which gathers channel planes whose stride maps them onto few L1 sets into one
// dense block. In the column-phase form (ConvAlgorithm::column_phases) the hot loop
// reads the padded rows split by phase: those are staged instead, always, and with
// `phases_from_padded_rows` (where padding is read) split from a padded copy of each
// row (dense vectors) instead of read through the boundary condition.
void stage_padded_input(ConvAlgorithm& algorithm, const Halide::Func& consumer, const Halide::Var& level,
                        int vector_width, bool even_without_padding = false, bool phases_from_padded_rows = false);
// The choices of a `column_phases` knob (0 = staged rows read at the stride, 1 =
// staged split into column phases): both where the spec has a column-phase form,
// except at horizontal strides of 3 or more, or with a dilated kernel, only 1. Halide
// 14 compiles some vector loads at stride 3 or 4 from a staged buffer into aligned
// moves at unaligned addresses (SIGSEGV at run time; random depthwise and grouped
// candidates with narrow vectors, found 2026-12-02), and at stride 2 with taps 3
// columns apart (cpu_depthwise, unrolled taps, two vectors a tile, 4-16 lanes; found
// by a random sweep of larger specs, 2026-12-03; dilations 2, 4 and 5 ran); the
// phases load dense runs instead.
std::vector<int> column_phases_choices(const ConvAlgorithm& algorithm);
// The choices of a `phase_rows` knob: where a template's column phases may read
// padding, 0 = through the boundary condition, 1 = from a padded copy of each row
// (stage_padded_input); otherwise only 0.
std::vector<int> phase_rows_choices(const ConvAlgorithm& algorithm);

}  // namespace convjit
