// The convjit command line: routing of arguments between the tool's own options and the
// problem options of parse_problem, usage texts, exit codes and the one-line error report.
//
// Contract: every failure of a command ends in exactly one line on stderr that starts
// with "convjit: error: " and an exit code of kExitFailure (bad input, failed compile or
// run) or kExitUsage (unknown command or option, missing or repeated option).
#pragma once

#include <map>
#include <string>
#include <vector>

#include "convjit/descriptor.h"
#include "convjit/status.h"

namespace convjit {

enum ExitCode { kExitOk = 0, kExitFailure = 1, kExitUsage = 2 };

// An error of a command, with the exit code it ends the process with.
struct CommandError {
  std::string message;
  int exit_code = kExitFailure;
};

// A tool option of one command: "--src" takes a value (the file), "--cover-all"-style
// flags do not.
struct ToolOption {
  const char* name;
  bool takes_value;
};

// A command line split by route_arguments.
struct RoutedArguments {
  bool help = false;                           // --help or -h was given
  std::map<std::string, std::string> options;  // tool options: name -> value ("" for flags)
  std::vector<std::string> problem_tokens;     // problem options, then the descriptor
  std::string descriptor;                      // empty when none was given
};

// Splits the arguments after the command name. Tool options (given in `tool_options`,
// either "--opt VALUE" or "--opt=VALUE") go to `options`, parse_problem's options and
// their values to `problem_tokens`, the one positional argument is the descriptor.
// Unknown options, a missing value, a repeated tool option or a second positional
// argument are usage errors. --help / -h anywhere short-circuits to help = true.
bool route_arguments(const std::string& command, const std::vector<std::string>& args,
                     const std::vector<ToolOption>& tool_options, RoutedArguments* routed,
                     CommandError* error);

// The problems of a command that takes one problem (options and DESCRIPTOR) or a
// shape file (--batch FILE, then neither); false with *error when neither, both, or
// a bad problem or file was given.
bool problems_from_arguments(const std::string& command, const RoutedArguments& routed,
                             std::vector<Problem>* problems, CommandError* error);

// Usage text of a command ("run", "info", "compile", "cache", "tune"), or the general one for "".
std::string usage_text(const std::string& command);

// Prints "convjit: error: MESSAGE" as one line (newlines in MESSAGE, e.g. from a
// compiler's diagnostics, are folded into "; ") and returns `exit_code`.
int report_error(const std::string& message, int exit_code);
int report_error(const CommandError& error);
int report_error(const Status& status);  // kExitFailure

// Dispatches a whole command line (argv without the program name) to its command and
// returns the process exit code. Never throws.
int run_command_line(const std::vector<std::string>& args);

}  // namespace convjit
