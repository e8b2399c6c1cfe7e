// Parsing and printing of benchdnn convolution descriptors, the command-line options around them, and shape files.
#include "convjit/descriptor.h"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <limits>
#include <sstream>

namespace convjit {
namespace {

template <typename... Parts>
std::string cat(const Parts&... parts) {
  std::ostringstream out;
  (out << ... << parts);
  return out.str();
}

// The numeric entries of a descriptor, in print order.
enum Key { kG, kMb, kIc, kIh, kIw, kOc, kOh, kOw, kKh, kKw, kSh, kSw, kPh, kPw, kDh, kDw, kNumKeys };
constexpr const char* kKeyNames[kNumKeys] = {"g",  "mb", "ic", "ih", "iw", "oc", "oh", "ow",
                                             "kh", "kw", "sh", "sw", "ph", "pw", "dh", "dw"};
// Entries per axis, and each h entry's w twin (h-to-w copying and 1-D defaults use them).
constexpr Key kHKeys[] = {kIh, kOh, kKh, kSh, kPh, kDh};
constexpr Key kWKeys[] = {kIw, kOw, kKw, kSw, kPw, kDw};
// benchdnn's 3-D entries: recognised only to say why they are refused.
constexpr const char* kDepthKeys[] = {"id", "od", "kd", "sd", "pd", "dd"};
constexpr int64_t kMaxValue = std::numeric_limits<int32_t>::max();

struct Entries {
  int64_t value[kNumKeys] = {};
  bool given[kNumKeys] = {};
  size_t offset[kNumKeys] = {};
  std::string name;
};

Status descriptor_error(const std::string& text, const std::string& detail) {
  return Status::invalid_argument(cat("descriptor '", text, "': ", detail));
}

// The text of a bad entry for an error message: up to the next digit or separator.
std::string entry_text_at(const std::string& text, size_t pos) {
  size_t end = pos;
  while (end < text.size() && end - pos < 16 && !std::isdigit(static_cast<unsigned char>(text[end])) &&
         text[end] != '_')
    ++end;
  return text.substr(pos, std::max<size_t>(end - pos, 1));
}

Status tokenize(const std::string& text, Entries* e) {
  size_t pos = 0;
  while (pos < text.size()) {
    if (text[pos] == '_') {  // separators are decoration, allowed anywhere between entries
      ++pos;
      continue;
    }
    if (text[pos] == 'n') {  // the name runs to the end, so it may hold digits and '_'
      e->name = text.substr(pos + 1);
      if (e->name.size() >= 2 && e->name.front() == '"' && e->name.back() == '"')
        e->name = e->name.substr(1, e->name.size() - 2);
      return Status();
    }
    const std::string two = text.substr(pos, 2);
    for (const char* depth : kDepthKeys) {
      if (two == depth)
        return descriptor_error(text, cat("entry '", entry_text_at(text, pos), "' at offset ", pos,
                                          ": 3-D descriptors are not supported"));
    }
    int key = -1;
    for (int k = 0; k < kNumKeys; ++k) {
      if (text.compare(pos, std::strlen(kKeyNames[k]), kKeyNames[k]) == 0 &&
          (key < 0 || std::strlen(kKeyNames[k]) > std::strlen(kKeyNames[key])))
        key = k;
    }
    if (key < 0)
      return descriptor_error(text, cat("unknown entry '", entry_text_at(text, pos), "' at offset ", pos,
                                        ": expected g, mb, ic, ih, iw, oc, oh, ow, kh, kw, sh, sw, ph, "
                                        "pw, dh, dw, each followed by a number, or n<name> last"));
    const size_t start = pos;
    pos += std::strlen(kKeyNames[key]);
    const size_t digits = pos;
    int64_t value = 0;
    while (pos < text.size() && std::isdigit(static_cast<unsigned char>(text[pos]))) {
      // Saturate so that a long digit string cannot overflow before it is reported.
      if (value <= kMaxValue) value = value * 10 + (text[pos] - '0');
      ++pos;
    }
    if (pos == digits)
      return descriptor_error(text, cat("entry '", kKeyNames[key], "' at offset ", start,
                                        " has no number: each entry is a name followed by a "
                                        "non-negative decimal integer"));
    if (value > kMaxValue)
      return descriptor_error(text, cat("entry '", text.substr(start, pos - start), "' at offset ", start,
                                        ": value must be < 2^31"));
    if (e->given[key])
      return descriptor_error(text, cat("entry '", text.substr(start, pos - start), "' at offset ", start,
                                        " repeats '", kKeyNames[key], "' given at offset ", e->offset[key],
                                        ": each entry may appear once"));
    e->given[key] = true;
    e->value[key] = value;
    e->offset[key] = start;
  }
  return Status();
}

// Bottom (or right) padding and output_padding of one axis of a transposed
// descriptor, chosen so that every valid transposed spec prints and parses back
// to the same canonical form: an output up to max(stride, dilation)-1 beyond the
// natural one is output_padding (PyTorch's rule), anything else is bottom padding,
// and a bottom padding that would be negative becomes output_padding instead.
void derive_transposed_axis(int64_t in, int64_t out, bool out_given, int64_t kernel, int64_t stride,
                            int64_t dilation, int64_t pad_begin, int64_t* pad_end,
                            int64_t* output_padding) {
  *pad_end = pad_begin;
  *output_padding = 0;
  if (!out_given) return;
  const int64_t full = stride * (in - 1) + dilation * (kernel - 1) + 1;
  const int64_t natural = full - 2 * pad_begin;
  if (out >= natural && out - natural < std::max(stride, dilation)) {
    *output_padding = out - natural;
    return;
  }
  const int64_t end = full - out - pad_begin;
  *pad_end = end >= 0 ? end : 0;
  *output_padding = end >= 0 ? 0 : -end;
}

// Forward: the bottom (or right) padding that makes the output exactly `out`;
// negative when the last input rows are never read. The same padding gives `out`
// with cover_all too, since cover_all only adds stride-1 to a numerator that is
// then a multiple of the stride.
int64_t derive_forward_pad_end(int64_t in, int64_t out, int64_t kernel, int64_t stride,
                               int64_t dilation, int64_t pad_begin) {
  return (out - 1) * stride + dilation * (kernel - 1) + 1 - in - pad_begin;
}

bool needs_quotes(const std::string& name) {
  for (char ch : name) {
    if (ch == '_' || ch == '#' || std::isspace(static_cast<unsigned char>(ch))) return true;
  }
  return false;
}

}  // namespace

StatusOr<Problem> parse_descriptor(const std::string& text, const ConvSpec& base) {
  if (text.empty()) return Status::invalid_argument("empty descriptor: expected e.g. mb1ic3ih224oc64oh112kh7sh2ph3");
  Entries e;
  CONVJIT_RETURN_IF_ERROR(tokenize(text, &e));

  bool any_h = false, any_w = false;
  for (Key k : kHKeys) any_h |= e.given[k];
  for (Key k : kWKeys) any_w |= e.given[k];
  if (any_h && !any_w) {
    // benchdnn: a square problem may be written with h entries only.
    for (int i = 0; i < 6; ++i) {
      e.given[kWKeys[i]] = e.given[kHKeys[i]];
      e.value[kWKeys[i]] = e.value[kHKeys[i]];
    }
  } else if (any_w && !any_h) {
    // benchdnn: w entries only describe a 1-D problem of height 1.
    for (Key k : {kIh, kOh, kKh, kSh}) e.given[k] = true, e.value[k] = 1;
    for (Key k : {kPh, kDh}) e.given[k] = true, e.value[k] = 0;
  }
  const struct {
    Key key;
    const char* what;
  } required[] = {{kIc, "input channels"}, {kOc, "output channels"}, {kIh, "input height"},
                  {kIw, "input width"},    {kKh, "kernel height"},   {kKw, "kernel width"}};
  for (const auto& r : required) {
    if (!e.given[r.key])
      return descriptor_error(text, cat("missing ", kKeyNames[r.key], " (", r.what,
                                        "): ic, oc, ih/iw and kh/kw must be given"));
  }
  for (Key k : {kOh, kOw}) {
    if (e.given[k] && e.value[k] < 1)
      return descriptor_error(text, cat(kKeyNames[k], e.value[k], ": output size must be >= 1"));
  }
  auto value_or = [&](Key k, int64_t fallback) { return e.given[k] ? e.value[k] : fallback; };

  ConvSpec s = base;
  s.groups = value_or(kG, 1);
  s.n = value_or(kMb, 2);
  s.c_in = e.value[kIc];
  s.c_out = e.value[kOc];
  s.h_in = e.value[kIh];
  s.w_in = e.value[kIw];
  s.kh = e.value[kKh];
  s.kw = e.value[kKw];
  s.stride_h = value_or(kSh, 1);
  s.stride_w = value_or(kSw, 1);
  s.pad_top = value_or(kPh, 0);
  s.pad_left = value_or(kPw, 0);
  s.dilation_h = value_or(kDh, 0) + 1;  // benchdnn's dilation is 0-based
  s.dilation_w = value_or(kDw, 0) + 1;
  s.outsize_h = s.outsize_w = 0;  // a descriptor states sizes through padding only
  if (base.transposed) {
    derive_transposed_axis(s.h_in, e.value[kOh], e.given[kOh], s.kh, s.stride_h, s.dilation_h,
                           s.pad_top, &s.pad_bottom, &s.output_padding_h);
    derive_transposed_axis(s.w_in, e.value[kOw], e.given[kOw], s.kw, s.stride_w, s.dilation_w,
                           s.pad_left, &s.pad_right, &s.output_padding_w);
  } else {
    s.output_padding_h = s.output_padding_w = 0;
    s.pad_bottom = e.given[kOh] ? derive_forward_pad_end(s.h_in, e.value[kOh], s.kh, s.stride_h,
                                                         s.dilation_h, s.pad_top)
                                : s.pad_top;
    s.pad_right = e.given[kOw] ? derive_forward_pad_end(s.w_in, e.value[kOw], s.kw, s.stride_w,
                                                        s.dilation_w, s.pad_left)
                               : s.pad_left;
  }
  CONVJIT_RETURN_IF_ERROR(validate(s));
  return Problem{s, e.name};
}

std::string print_descriptor(const ConvSpec& s, const std::string& name) {
  std::ostringstream out;
  out << "g" << s.groups << "mb" << s.n << "ic" << s.c_in << "ih" << s.h_in << "iw" << s.w_in << "oc"
      << s.c_out << "oh" << output_h(s) << "ow" << output_w(s) << "kh" << s.kh << "kw" << s.kw << "sh"
      << s.stride_h << "sw" << s.stride_w << "ph" << s.pad_top << "pw" << s.pad_left << "dh"
      << s.dilation_h - 1 << "dw" << s.dilation_w - 1;
  if (!name.empty()) {
    // Quoted so that shape-file splitting and '#' comments leave the name whole.
    if (needs_quotes(name))
      out << "n\"" << name << "\"";
    else
      out << "n" << name;
  }
  return out.str();
}

namespace {

enum class Option { kDeconv, kPaddingMode, kConvMode, kCoverAll, kWtag, kDt, kComputeMode, kBias };

struct OptionInfo {
  const char* name;
  Option option;
  bool takes_value;
};

constexpr OptionInfo kOptions[] = {
    {"--deconv", Option::kDeconv, false},           {"--padding-mode", Option::kPaddingMode, true},
    {"--conv-mode", Option::kConvMode, true},       {"--cover-all", Option::kCoverAll, false},
    {"--wtag", Option::kWtag, true},                {"--dt", Option::kDt, true},
    {"--compute-mode", Option::kComputeMode, true}, {"--bias", Option::kBias, false},
};

const OptionInfo* find_option(const std::string& name) {
  for (const OptionInfo& o : kOptions) {
    if (name == o.name) return &o;
  }
  return nullptr;
}

// Applies a value option to `spec`, or says why the value is wrong.
Status apply_value(const OptionInfo& o, const std::string& value, ConvSpec* spec, bool* wtag_given) {
  auto prefixed = [&](const Status& s) { return Status(s.code(), cat(o.name, ": ", s.message())); };
  switch (o.option) {
    case Option::kPaddingMode: {
      auto v = parse_padding_mode(value);
      if (!v.ok()) return prefixed(v.status());
      spec->padding_mode = *v;
      return Status();
    }
    case Option::kConvMode: {
      auto v = parse_conv_mode(value);
      if (!v.ok()) return prefixed(v.status());
      spec->conv_mode = *v;
      return Status();
    }
    case Option::kWtag: {
      auto v = parse_weight_layout(value);
      if (!v.ok()) return prefixed(v.status());
      spec->weight_layout = *v;
      *wtag_given = true;
      return Status();
    }
    case Option::kDt: {
      auto v = parse_data_type(value);
      if (!v.ok()) return prefixed(v.status());
      spec->dtype = *v;
      return Status();
    }
    case Option::kComputeMode: {
      auto v = parse_compute_mode(value);
      if (!v.ok()) return prefixed(v.status());
      spec->compute_mode = *v;
      return Status();
    }
    default:
      break;
  }
  CONVJIT_CHECK(false, cat("option ", o.name, " takes no value"));
  return Status();
}

}  // namespace

bool is_problem_option(const std::string& token, bool* takes_value) {
  const size_t eq = token.find('=');
  const OptionInfo* o = find_option(token.substr(0, eq));
  if (o == nullptr) return false;
  // In the --opt=value form the value travels inside the token.
  if (takes_value != nullptr) *takes_value = o->takes_value && eq == std::string::npos;
  return true;
}

StatusOr<Problem> parse_problem(const std::vector<std::string>& tokens) {
  ConvSpec base;
  bool wtag_given = false;
  const std::string* descriptor = nullptr;
  // Options may stand before or after the descriptor: with one problem per line
  // there is nothing for an option to apply to but that problem.
  for (size_t i = 0; i < tokens.size(); ++i) {
    const std::string& token = tokens[i];
    if (token.empty() || token[0] != '-') {
      if (descriptor != nullptr)
        return Status::invalid_argument(cat("two descriptors '", *descriptor, "' and '", token,
                                            "': a problem has exactly one descriptor"));
      descriptor = &token;
      continue;
    }
    const size_t eq = token.find('=');
    const std::string name = token.substr(0, eq);
    const OptionInfo* o = find_option(name);
    if (o == nullptr)
      return Status::invalid_argument(cat("unknown option '", name,
                                          "': expected --deconv, --padding-mode, --conv-mode, "
                                          "--cover-all, --wtag, --dt, --compute-mode or --bias"));
    if (!o->takes_value) {
      if (eq != std::string::npos)
        return Status::invalid_argument(cat("option '", token, "': ", name, " takes no value"));
      if (o->option == Option::kDeconv) base.transposed = true;
      if (o->option == Option::kCoverAll) base.cover_all = true;
      if (o->option == Option::kBias) base.has_bias = true;
      continue;
    }
    std::string value;
    if (eq != std::string::npos) {
      value = token.substr(eq + 1);
    } else if (i + 1 < tokens.size()) {
      value = tokens[++i];
    } else {
      return Status::invalid_argument(cat("option ", name, " is missing its value"));
    }
    CONVJIT_RETURN_IF_ERROR(apply_value(*o, value, &base, &wtag_given));
  }
  if (descriptor == nullptr)
    return Status::invalid_argument("no descriptor: a problem needs one, e.g. mb1ic3ih224oc64oh112kh7sh2ph3");
  // PyTorch and Chainer store transposed weights as (c_in, c_out/g, kh, kw).
  if (base.transposed && !wtag_given) base.weight_layout = WeightLayout::kIOHW;
  return parse_descriptor(*descriptor, base);
}

std::vector<std::string> split_command_line(const std::string& line) {
  std::vector<std::string> tokens;
  std::string current;
  bool in_token = false, in_quotes = false;
  for (char ch : line) {
    if (ch == '"') {
      // Quotes group, and are dropped as a shell drops them; n"a b" becomes na b.
      in_quotes = !in_quotes;
      in_token = true;
    } else if (!in_quotes && std::isspace(static_cast<unsigned char>(ch))) {
      if (in_token) tokens.push_back(current);
      current.clear();
      in_token = false;
    } else {
      current += ch;
      in_token = true;
    }
  }
  if (in_token) tokens.push_back(current);
  return tokens;
}

StatusOr<std::vector<Problem>> parse_problem_text(const std::string& text, const std::string& origin) {
  std::vector<Problem> problems;
  std::istringstream in(text);
  std::string line;
  for (int line_number = 1; std::getline(in, line); ++line_number) {
    bool in_quotes = false;
    for (size_t i = 0; i < line.size(); ++i) {
      if (line[i] == '"') in_quotes = !in_quotes;
      if (line[i] == '#' && !in_quotes) {
        line.resize(i);
        break;
      }
    }
    const std::vector<std::string> tokens = split_command_line(line);
    if (tokens.empty()) continue;
    StatusOr<Problem> p = parse_problem(tokens);
    if (!p.ok()) return Status(p.status().code(), cat(origin, ":", line_number, ": ", p.status().message()));
    problems.push_back(std::move(p).value());
  }
  if (problems.empty()) return Status::invalid_argument(cat(origin, ": no problems found"));
  return problems;
}

StatusOr<std::vector<Problem>> read_problem_file(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  if (!file) return Status::not_found(cat("cannot open shape file '", path, "': ", std::strerror(errno)));
  std::ostringstream text;
  text << file.rdbuf();
  if (file.bad()) return Status::not_found(cat("cannot read shape file '", path, "': ", std::strerror(errno)));
  return parse_problem_text(text.str(), path);
}

}  // namespace convjit
