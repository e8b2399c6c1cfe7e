// Text forms of a spec: oneDNN benchdnn's convolution problem descriptor, the
// command-line options that say what the descriptor cannot, and shape files.
//
// Descriptor grammar (DESIGN.md, "Text form of a spec"):
//   gXmbX_icXihXiwX_ocXohXowX_khXkwX_shXswX_phXpwX_dhXdwX_nNAME
// entries in any order, '_' optional, n (the name) last; mb defaults to 2,
// strides to 1; given only h entries, w copies them; dh/dw are 0-based;
// ph/pw are top/left padding and bottom/right padding is derived from oh/ow.
#pragma once

#include <string>
#include <vector>

#include "convjit/conv_spec.h"
#include "convjit/status.h"

namespace convjit {

// One problem: a spec and the name the descriptor gave it (may be empty).
struct Problem {
  ConvSpec spec;
  std::string name;
};

// Parses a descriptor. `transposed` (the --deconv option) makes it describe a
// transposed convolution whose i* entries are its input and o* its output; an
// output larger than the natural one (bottom padding = top padding) is then
// PyTorch's output_padding. Fields the descriptor cannot say keep the values of
// `base` (padding mode, conv mode, dtype, ...). The result is validated.
StatusOr<Problem> parse_descriptor(const std::string& text, const ConvSpec& base = ConvSpec());

// Prints the canonical descriptor of a valid spec: every entry explicit, in the
// order g mb ic ih iw oc oh ow kh kw sh sw ph pw dh dw, then n<name> if a name is
// given. parse_descriptor(print_descriptor(s), options of s) has the canonical key of s.
std::string print_descriptor(const ConvSpec& spec, const std::string& name = "");

// Parses a problem written as on the command line: options, then one descriptor.
// Options: --deconv, --padding-mode MODE, --conv-mode MODE, --cover-all,
// --wtag oihw|goihw|iohw|mihw (default oihw, iohw with --deconv), --dt f32|f16,
// --compute-mode default|float32, --bias. Any other token starting with "--" is
// an error naming it.
StatusOr<Problem> parse_problem(const std::vector<std::string>& tokens);

// Names of the options parse_problem understands and whether each takes a value,
// so that a command line can route them (e.g. "--padding-mode" -> true).
bool is_problem_option(const std::string& token, bool* takes_value);

// Reads a shape file: one problem a line, written as on the command line; '#'
// starts a comment; blank lines are skipped. Errors name the file and line.
StatusOr<std::vector<Problem>> read_problem_file(const std::string& path);
// Same, from text already in memory; `origin` names it in error messages.
StatusOr<std::vector<Problem>> parse_problem_text(const std::string& text, const std::string& origin);

// Splits a line on whitespace, honouring double quotes (benchdnn names may be quoted).
std::vector<std::string> split_command_line(const std::string& line);

}  // namespace convjit
