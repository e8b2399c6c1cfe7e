// `convjit info`: prints the resolved spec of one problem, or of every problem of a shape
// file, as JSON; with --schedules, also every schedule template's knobs for a target.
#include <cstdio>

#include "command_line.h"
#include "commands.h"
#include "convjit/descriptor.h"
#include "spec_json.h"

namespace convjit {

int info_command(const std::vector<std::string>& args) {
  RoutedArguments routed;
  CommandError error;
  if (!route_arguments("info", args, {{"--batch", true}, {"--schedules", false}, {"--target", true}}, &routed, &error)) return report_error(error);
  if (routed.help) {
    std::fputs(usage_text("info").c_str(), stdout);
    return kExitOk;
  }

  std::vector<Problem> problems;
  auto batch = routed.options.find("--batch");
  if (batch != routed.options.end()) {
    // A shape file line carries its own options; mixing in command-line ones would
    // leave it unclear which wins.
    if (!routed.problem_tokens.empty()) {
      return report_error("--batch takes the descriptor and problem options from each line of " +
                              batch->second + "; give none on the command line "
                              "(see 'convjit info --help')",
                          kExitUsage);
    }
    StatusOr<std::vector<Problem>> read = read_problem_file(batch->second);
    if (!read.ok()) return report_error(read.status());
    problems = std::move(read).value();
  } else {
    if (routed.descriptor.empty()) {
      return report_error("missing DESCRIPTOR (see 'convjit info --help')", kExitUsage);
    }
    StatusOr<Problem> problem = parse_problem(routed.problem_tokens);
    if (!problem.ok()) return report_error(problem.status());
    problems.push_back(std::move(problem).value());
  }

  const bool with_schedules = routed.options.count("--schedules") != 0;
  if (routed.options.count("--target") && !with_schedules) {
    return report_error("--target applies only with --schedules (see 'convjit info --help')", kExitUsage);
  }
  const std::string target = routed.options.count("--target") ? routed.options["--target"] : "host";

  // Built completely before printing, so that stdout holds no partial output on error.
  std::string out;
  for (const Problem& problem : problems) {
    if (!with_schedules) {
      out += problem_to_json(problem) + "\n";
      continue;
    }
    auto spaces = schedule_spaces(problem.spec, target);
    if (!spaces.ok()) return report_error(spaces.status());
    out += problem_to_json(problem, &*spaces) + "\n";
  }
  std::fputs(out.c_str(), stdout);
  if (std::fflush(stdout) != 0) return report_error("cannot write to stdout", kExitFailure);
  return kExitOk;
}

}  // namespace convjit
