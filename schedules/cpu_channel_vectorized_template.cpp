// cpu_channel_vectorized: outputs narrower than 4 columns (1x1 images, late layers of
// small inputs), vectorized over output channels instead of x. Weights become
// gathers and the input a broadcast. With a single output channel it vectorizes the
// widest remaining output axis instead, so only an output of one value per image and
// channel is left scalar.
#include <algorithm>

#include "cpu_templates.h"

namespace convjit {
namespace {

using Halide::Func;
using Halide::TailStrategy;
using Halide::Var;

class CpuChannelVectorizedTemplate final : public ScheduleTemplate {
 public:
  const char* name() const override { return "cpu_channel_vectorized"; }

  std::string why_not_applicable(const ConvAlgorithm&, const Halide::Target& target) const override {
    if (std::string why = needs_x86_cpu(target); !why.empty()) return why;
    return "";  // any spec: the fallback of last resort
  }

  std::vector<Knob> knobs(const ConvAlgorithm& a, const Halide::Target& target) const override {
    const int max_lanes = std::min<int>(target.natural_vector_size<float>(), floor_pow2(vector_extent(a.spec)));
    return {{"lanes", vector_widths_up_to(max_lanes), "vector width along output channels (or x, y)"}};
  }

  ScheduleParams defaults(const ConvAlgorithm& a, const Halide::Target& target) const override {
    return {{"lanes", std::min<int>(target.natural_vector_size<float>(), floor_pow2(vector_extent(a.spec)))}};
  }

  void apply(ConvAlgorithm& a, const Halide::Target&, const ScheduleParams& p) const override {
    const ConvSpec& s = a.spec;
    if (s.c_out == 1 && (output_w(s) > 1 || output_h(s) > 1)) return apply_single_channel(a, p.get("lanes"));
    Var &x = a.x, &y = a.y, &c = a.c, &n = a.n;
    Func& out = a.output;
    Func& acc = a.accumulator;
    const int lanes = static_cast<int>(std::min<int64_t>(p.get("lanes"), s.c_out));
    Var co("co"), ci("ci"), task("task");
    out.split(c, co, ci, lanes, TailStrategy::ShiftInwards).reorder(ci, x, y, co, n);
    if (lanes >= 2) out.vectorize(ci);
    out.fuse(co, n, task).parallel(task);
    stage_padded_input(a, out, task, 4);
    acc.compute_at(out, x);
    auto update = acc.update();
    update.reorder(c, a.r.x, a.r.y, a.r.z, x, y, n);
    if (lanes >= 2) {
      acc.vectorize(c);
      update.vectorize(c);
    }
  }

 private:
  // The axis this template vectorizes: output channels, or with one channel the
  // wider of x and y.
  static int64_t vector_extent(const ConvSpec& s) {
    if (s.c_out > 1) return s.c_out;
    return std::max(output_w(s), output_h(s));
  }

  // One output channel: vectorize x (or y when the output is one column).
  static void apply_single_channel(ConvAlgorithm& a, int requested_lanes) {
    const ConvSpec& s = a.spec;
    Var &x = a.x, &y = a.y, &n = a.n;
    Func& out = a.output;
    Func& acc = a.accumulator;
    const bool along_x = output_w(s) >= output_h(s);
    Var& axis = along_x ? x : y;
    const int lanes = static_cast<int>(std::min<int64_t>(requested_lanes, along_x ? output_w(s) : output_h(s)));
    Var outer("outer"), inner("inner"), task("task");
    out.split(axis, outer, inner, lanes, TailStrategy::ShiftInwards).vectorize(inner);
    out.parallel(n);
    stage_padded_input(a, out, n, 4);
    acc.compute_at(out, outer).vectorize(axis);
    acc.update().reorder(axis, a.r.x, a.r.y, a.r.z).vectorize(axis);
  }
};

}  // namespace

const ScheduleTemplate& cpu_channel_vectorized_template() {
  static const CpuChannelVectorizedTemplate instance;
  return instance;
}

}  // namespace convjit
