// cpu_channel_vectorized: outputs narrower than 4 columns (1x1 images, late layers of
// small inputs), vectorized over output channels instead of x. Weights become
// gathers and the input a broadcast; still no scalar loop nest when c_out >= 4.
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
    if (target.arch != Halide::Target::X86) return "needs an x86 target";
    return "";  // any spec: the fallback of last resort
  }

  std::vector<Knob> knobs(const ConvAlgorithm& a, const Halide::Target& target) const override {
    const int max_lanes = std::min<int>(target.natural_vector_size<float>(), floor_pow2(a.spec.c_out));
    return {{"lanes", vector_widths_up_to(max_lanes), "vector width along output channels"}};
  }

  ScheduleParams defaults(const ConvAlgorithm& a, const Halide::Target& target) const override {
    return {{"lanes", std::min<int>(target.natural_vector_size<float>(), floor_pow2(a.spec.c_out))}};
  }

  void apply(ConvAlgorithm& a, const Halide::Target&, const ScheduleParams& p) const override {
    Var &x = a.x, &y = a.y, &c = a.c, &n = a.n;
    Func& out = a.output;
    Func& acc = a.accumulator;
    const int lanes = static_cast<int>(std::min<int64_t>(p.get("lanes"), a.spec.c_out));
    Var co("co"), ci("ci"), task("task");
    out.split(c, co, ci, lanes, TailStrategy::ShiftInwards).reorder(ci, x, y, co, n);
    if (lanes >= 4) out.vectorize(ci);
    out.fuse(co, n, task).parallel(task);
    stage_padded_input(a, out, task, 4);
    acc.compute_at(out, x);
    auto update = acc.update();
    update.reorder(c, a.r.x, a.r.y, a.r.z, x, y, n);
    if (lanes >= 4) {
      acc.vectorize(c);
      update.vectorize(c);
    }
  }
};

}  // namespace

const ScheduleTemplate& cpu_channel_vectorized_template() {
  static const CpuChannelVectorizedTemplate instance;
  return instance;
}

}  // namespace convjit
