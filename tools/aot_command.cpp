// `convjit aot`: generates a deployable static library, header and CMake package for
// the specs of a shape file and a list of CPU targets; `--inspect` prints a library's
// provenance.
#include <cstdio>
#include <sstream>
#include <string>
#include <vector>

#include "command_line.h"
#include "commands.h"
#include "convjit/aot_library.h"
#include "convjit/descriptor.h"
#include "convjit/tuning_database.h"

namespace convjit {
namespace {

std::vector<std::string> split_commas(const std::string& text) {
  std::vector<std::string> parts;
  std::istringstream in(text);
  std::string part;
  while (std::getline(in, part, ',')) parts.push_back(part);
  return parts;
}

}  // namespace

int aot_command(const std::vector<std::string>& args) {
  RoutedArguments routed;
  CommandError error;
  if (!route_arguments("aot", args,
                       {{"--batch", true}, {"--target", true}, {"--name", true}, {"-o", true}, {"--db", true},
                        {"--inspect", true}},
                       &routed, &error)) {
    return report_error(error);
  }
  if (routed.help) {
    std::fputs(usage_text("aot").c_str(), stdout);
    return kExitOk;
  }
  if (!routed.problem_tokens.empty()) {
    return report_error("convjit aot takes its specs from --batch FILE, not from the command line", kExitUsage);
  }
  if (routed.options.count("--inspect")) {
    if (routed.options.size() != 1) return report_error("--inspect LIB takes no other option", kExitUsage);
    auto text = inspect_aot_library(routed.options["--inspect"]);
    if (!text.ok()) return report_error(text.status());
    std::fputs(text->c_str(), stdout);
    return kExitOk;
  }
  for (const char* required : {"--batch", "--target", "--name", "-o"}) {
    if (!routed.options.count(required)) {
      return report_error(std::string("missing required option ") + required + " (see 'convjit aot --help')",
                          kExitUsage);
    }
  }
  auto problems = read_problem_file(routed.options["--batch"]);
  if (!problems.ok()) return report_error(problems.status());
  AotOptions options;
  options.problems = *problems;
  options.targets = split_commas(routed.options["--target"]);
  options.name = routed.options["--name"];
  options.output_directory = routed.options["-o"];
  options.tuning_database = routed.options.count("--db") ? routed.options["--db"] : TuningDatabase::default_path();
  options.on_progress = [](const std::string& line) { std::fprintf(stderr, "%s\n", line.c_str()); };
  Status status = generate_aot_library(options);
  if (!status.ok()) return report_error(status);
  std::printf("%s: %zu specs x %zu targets in %s (include/%s.h, lib/lib%s.a, lib/cmake/%s)\n",
              options.name.c_str(), options.problems.size(), options.targets.size(),
              options.output_directory.c_str(), options.name.c_str(), options.name.c_str(), options.name.c_str());
  return kExitOk;
}

}  // namespace convjit
