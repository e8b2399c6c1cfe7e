// JSON printing of a resolved problem for `convjit info`.
#include "spec_json.h"

#include <cmath>
#include <cstdio>

namespace convjit {
namespace {

// Builds `"key": value` pairs in insertion order, which is the order a reader sees.
class JsonObject {
 public:
  void add_raw(const char* key, const std::string& value) {
    text_ += text_.empty() ? "{" : ", ";
    text_ += json_quote(key) + ": " + value;
  }
  void add(const char* key, int64_t value) { add_raw(key, std::to_string(value)); }
  void add(const char* key, bool value) { add_raw(key, value ? "true" : "false"); }
  void add(const char* key, const std::string& value) { add_raw(key, json_quote(value)); }
  void add(const char* key, const char* value) { add_raw(key, json_quote(value)); }
  template <typename Container>
  void add_array(const char* key, const Container& values, size_t count) {
    std::string a = "[";
    for (size_t i = 0; i < count; ++i) a += (i ? ", " : "") + std::to_string(values[i]);
    add_raw(key, a + "]");
  }
  std::string finish() const { return text_.empty() ? "{}" : text_ + "}"; }

 private:
  std::string text_;
};

// Flop counts are integers that may exceed 2^53; print them exactly while they are
// representable, otherwise in exponent form (still valid JSON).
std::string number(double value) {
  if (!std::isfinite(value)) return "null";
  char buffer[64];
  if (std::fabs(value) < 9.0e15 && value == std::floor(value)) {
    std::snprintf(buffer, sizeof(buffer), "%.0f", value);
  } else {
    std::snprintf(buffer, sizeof(buffer), "%.17g", value);
  }
  return buffer;
}

}  // namespace

std::string json_quote(const std::string& text) {
  std::string out = "\"";
  for (unsigned char c : text) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20) {
          char buffer[8];
          std::snprintf(buffer, sizeof(buffer), "\\u%04x", c);
          out += buffer;
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  return out + "\"";
}

std::string json_positive_number(double value) {
  if (!std::isfinite(value) || value <= 0) return "null";
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%.6g", value);
  return buffer;
}

std::string problem_to_json(const Problem& problem, const std::vector<ScheduleSpace>* schedules) {
  const ConvSpec& s = problem.spec;
  JsonObject j;
  if (!problem.name.empty()) j.add("name", problem.name);
  j.add("n", s.n);
  j.add("c_in", s.c_in);
  j.add("h_in", s.h_in);
  j.add("w_in", s.w_in);
  j.add("c_out", s.c_out);
  j.add("kh", s.kh);
  j.add("kw", s.kw);
  j.add("stride_h", s.stride_h);
  j.add("stride_w", s.stride_w);
  j.add("pad_top", s.pad_top);
  j.add("pad_bottom", s.pad_bottom);
  j.add("pad_left", s.pad_left);
  j.add("pad_right", s.pad_right);
  j.add("dilation_h", s.dilation_h);
  j.add("dilation_w", s.dilation_w);
  j.add("groups", s.groups);
  j.add("depthwise_multiplier", depthwise_multiplier(s));
  j.add("transposed", s.transposed);
  j.add("output_padding_h", s.output_padding_h);
  j.add("output_padding_w", s.output_padding_w);
  j.add("outsize_h", s.outsize_h);
  j.add("outsize_w", s.outsize_w);
  j.add("cover_all", s.cover_all);
  j.add("padding_mode", to_string(s.padding_mode));
  j.add("conv_mode", to_string(s.conv_mode));
  j.add("dtype", to_string(s.dtype));
  j.add("compute_mode", to_string(s.compute_mode));
  j.add("wtag", to_string(s.weight_layout));
  j.add("bias", s.has_bias);
  j.add_array("input_shape", input_shape(s), 4);
  j.add_array("weight_shape", weight_shape(s), static_cast<size_t>(weight_rank(s)));
  j.add_array("output_shape", output_shape(s), 4);
  j.add_raw("flops", number(flops(s)));
  j.add("descriptor", print_descriptor(s, problem.name));
  j.add("canonical_key", canonical_key(s));
  j.add("hash", canonical_hash(s));
  if (schedules) {
    std::string list = "[";
    for (const ScheduleSpace& space : *schedules) {
      JsonObject t;
      t.add("template", space.template_name);
      t.add("default", space.is_default);
      t.add("applies", space.not_applicable.empty());
      if (!space.not_applicable.empty()) {
        t.add("why_not", space.not_applicable);
      } else {
        t.add("defaults", space.defaults);
        std::string knobs = "[";
        for (const ScheduleKnob& k : space.knobs) {
          JsonObject knob;
          knob.add("name", k.name);
          knob.add_array("choices", k.choices, k.choices.size());
          knob.add("meaning", k.meaning);
          knobs += (knobs.size() > 1 ? ", " : "") + knob.finish();
        }
        t.add_raw("knobs", knobs + "]");
      }
      list += (list.size() > 1 ? ", " : "") + t.finish();
    }
    j.add_raw("schedules", list + "]");
  }
  return j.finish();
}

}  // namespace convjit
