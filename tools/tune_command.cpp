// `convjit tune`: autotunes one problem or a shape file under a time budget per
// layer and records the winners in the tuning database; imports and exports records.
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "command_line.h"
#include "commands.h"
#include "convjit/autotuner.h"
#include "convjit/descriptor.h"
#include "convjit/runtime.h"
#include "convjit/tuning_database.h"

namespace convjit {
namespace {

StatusOr<double> parse_budget(const std::string& text) {
  char* end = nullptr;
  const double value = std::strtod(text.c_str(), &end);
  if (text.empty() || *end != '\0' || !(value > 0) || value > 86400) {
    return Status::invalid_argument("--budget '" + text + "': expected seconds per layer, > 0 and <= 86400");
  }
  return value;
}

// Tunes one problem: the nearest tuned spec's best record is the first candidate.
int tune_problem(TuningDatabase& db, const Problem& problem, const std::string& target_text, double budget,
                 const std::string& label) {
  auto target_string = resolve_target_string(target_text);
  if (!target_string.ok()) return report_error(target_string.status().message(), kExitUsage);
  TuneOptions options;
  options.budget_seconds = budget;
  auto nearest = db.nearest(problem.spec, *target_string, tuning_codegen_fingerprint());
  if (nearest.ok() && nearest->has_value()) {
    options.starting_points.push_back({(*nearest)->schedule_template, (*nearest)->schedule_params});
  }
  options.on_progress = [&](const TuneProgress& p) {
    std::fprintf(stderr, "\r[tune] %s: %d candidates (%d rejected), best %.3f ms, default %.3f ms, %.0f s left   ",
                 label.c_str(), p.candidates, p.rejected, p.best_ms, p.default_ms,
                 std::max(0.0, p.budget_seconds - p.elapsed_seconds));
    std::fflush(stderr);
  };
  auto result = tune(problem.spec, target_text, options);
  std::fputs("\n", stderr);
  if (!result.ok()) return report_error(result.status());

  TuningRecord record = make_tuning_record(problem.spec, *target_string);
  record.schedule_template = result->best.template_name;
  record.schedule_params = result->best.params;
  record.time_ms = result->best_ms;
  record.default_time_ms = result->default_ms;
  record.max_error = result->best_error;
  Status inserted = db.insert(record);
  if (!inserted.ok()) return report_error(inserted);
  // Halide's own autoscheduler, when the budget left room to measure it.
  // Its time comes from the rounds that confirmed the tuned one, unless a run there
  // failed: then it is the search's own timing, and says so.
  char autoscheduler[112] = "autoscheduler not measured";
  if (result->autoscheduler_ms > 0) {
    std::snprintf(autoscheduler, sizeof autoscheduler, "autoscheduler %9.3f ms (tuned x%.1f%s)", result->autoscheduler_ms,
                  result->autoscheduler_ms / result->best_ms, result->autoscheduler_confirmed ? "" : ", search timing");
  }
  // The warm-cache timings of the confirmation rounds, when they ran.
  char warm[128] = "";
  if (result->default_warm_ms > 0) {
    int used = std::snprintf(warm, sizeof warm, "  warm: default %.3f ms, tuned %.3f ms", result->default_warm_ms,
                             result->best_warm_ms);
    if (result->autoscheduler_warm_ms > 0 && used > 0 && static_cast<size_t>(used) < sizeof warm) {
      std::snprintf(warm + used, sizeof warm - used, ", autoscheduler %.3f ms (tuned x%.1f)", result->autoscheduler_warm_ms,
                    result->autoscheduler_warm_ms / result->best_warm_ms);
    }
  }
  std::printf("%-34s default %9.3f ms  tuned %9.3f ms  x%.2f  %s  %d candidates  %s%s\n",
              problem.name.empty() ? print_descriptor(problem.spec).c_str() : problem.name.c_str(),
              result->default_ms, result->best_ms, result->default_ms / result->best_ms, autoscheduler,
              result->candidates, result->best_description.c_str(), warm);
  // Rejected candidates, so that a schedule with no kernel, a failed run or wrong
  // sums is seen, not only counted.
  constexpr size_t kRejectionsShown = 5;
  for (size_t i = 0; i < result->rejections.size() && i < kRejectionsShown; ++i) {
    std::printf("  rejected %s\n", result->rejections[i].c_str());
  }
  if (result->rejections.size() > kRejectionsShown) {
    std::printf("  ... and %zu more rejected\n", result->rejections.size() - kRejectionsShown);
  }
  std::fflush(stdout);
  return kExitOk;
}

}  // namespace

int tune_command(const std::vector<std::string>& args) {
  RoutedArguments routed;
  CommandError error;
  if (!route_arguments("tune", args,
                       {{"--batch", true}, {"--budget", true}, {"--target", true}, {"--db", true},
                        {"--export", true}, {"--import", true}},
                       &routed, &error)) {
    return report_error(error);
  }
  if (routed.help) {
    std::fputs(usage_text("tune").c_str(), stdout);
    return kExitOk;
  }
  const std::string db_path = routed.options.count("--db") ? routed.options["--db"] : TuningDatabase::default_path();
  if (db_path.empty()) {
    return report_error("no tuning database: give --db PATH, or set CONVJIT_CACHE_DIR or HOME", kExitUsage);
  }
  auto db = TuningDatabase::open(db_path);
  if (!db.ok()) return report_error(db.status());

  if (routed.options.count("--export") || routed.options.count("--import")) {
    if (!routed.descriptor.empty() || routed.options.count("--batch")) {
      return report_error("--export and --import take no problems (see 'convjit tune --help')", kExitUsage);
    }
    if (routed.options.count("--import")) {
      auto imported = (*db)->import_jsonl(routed.options["--import"]);
      if (!imported.ok()) return report_error(imported.status());
      std::printf("imported %d records into %s\n", *imported, db_path.c_str());
    }
    if (routed.options.count("--export")) {
      Status exported = (*db)->export_jsonl(routed.options["--export"]);
      if (!exported.ok()) return report_error(exported);
      std::printf("exported the records of %s to %s\n", db_path.c_str(), routed.options["--export"].c_str());
    }
    return kExitOk;
  }

  if (!routed.options.count("--budget")) {
    return report_error("missing required option --budget SECONDS (see 'convjit tune --help')", kExitUsage);
  }
  auto budget = parse_budget(routed.options["--budget"]);
  if (!budget.ok()) return report_error(budget.status().message(), kExitUsage);
  const std::string target = routed.options.count("--target") ? routed.options["--target"] : "host";

  std::vector<Problem> problems;
  if (!problems_from_arguments("tune", routed, &problems, &error)) return report_error(error);
  std::fprintf(stderr, "[tune] %zu layer(s), %.0f s each, records in %s\n", problems.size(), *budget,
               db_path.c_str());
  for (size_t i = 0; i < problems.size(); ++i) {
    const std::string label = std::to_string(i + 1) + "/" + std::to_string(problems.size()) + " " +
                              (problems[i].name.empty() ? print_descriptor(problems[i].spec) : problems[i].name);
    if (int rc = tune_problem(**db, problems[i], target, *budget, label); rc != kExitOk) return rc;
  }
  return kExitOk;
}

}  // namespace convjit
