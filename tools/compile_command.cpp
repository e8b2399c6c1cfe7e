// `convjit compile`: writes what Halide generates for one problem (stmt, html, assembly,
// an object file or PTX) through the runtime's emit(), with the default schedule or
// one named by --schedule.
#include <sys/stat.h>

#include <cstdio>
#include <optional>

#include "atomic_file.h"
#include "command_line.h"
#include "commands.h"
#include "convjit/descriptor.h"
#include "convjit/runtime.h"

namespace convjit {
int compile_command(const std::vector<std::string>& args) {
  RoutedArguments routed;
  CommandError error;
  if (!route_arguments("compile", args, {{"--emit", true}, {"-o", true}, {"--target", true}, {"--schedule", true}},
                       &routed, &error)) {
    return report_error(error);
  }
  if (routed.help) {
    std::fputs(usage_text("compile").c_str(), stdout);
    return kExitOk;
  }
  if (routed.descriptor.empty()) {
    return report_error("missing DESCRIPTOR (see 'convjit compile --help')", kExitUsage);
  }
  for (const char* required : {"--emit", "-o"}) {
    if (routed.options.count(required) == 0) {
      return report_error(std::string("missing required option ") + required +
                              " (see 'convjit compile --help')",
                          kExitUsage);
    }
  }
  StatusOr<EmitFormat> format = parse_emit_format(routed.options["--emit"]);
  if (!format.ok()) return report_error(format.status().message(), kExitUsage);
  std::string target = routed.options.count("--target") ? routed.options["--target"] : "host";

  StatusOr<Problem> problem = parse_problem(routed.problem_tokens);
  if (!problem.ok()) return report_error(problem.status());
  std::optional<ScheduleRequest> schedule;
  if (routed.options.count("--schedule")) {
    auto parsed = parse_schedule_request(routed.options["--schedule"], problem->spec, target);
    if (!parsed.ok()) return report_error(parsed.status());
    schedule = *parsed;
  }

  // Halide writes the temporary file; only a complete one is renamed onto -o.
  StatusOr<AtomicFile> out = AtomicFile::create(routed.options["-o"]);
  if (!out.ok()) return report_error(out.status());
  Status emitted = Runtime::global().emit(problem->spec, target, *format, out->temp_path(),
                                         schedule ? &*schedule : nullptr);
  if (!emitted.ok()) return report_error(emitted);
  // An emitter that wrote somewhere else would otherwise leave an empty -o file.
  struct stat st;
  if (stat(out->temp_path().c_str(), &st) != 0 || st.st_size == 0) {
    return report_error("emit reported success but wrote nothing to '" + out->temp_path() +
                            "' for -o " + out->path(),
                        kExitFailure);
  }
  Status committed = out->commit();
  if (!committed.ok()) return report_error(committed);
  return kExitOk;
}

}  // namespace convjit
