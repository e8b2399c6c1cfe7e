// schedule_ab: times several schedules of one layer against each other, interleaved
// round by round, so that the machine's drift (other tenants, frequency) hits every
// schedule alike. Prints each schedule's median over rounds and its ratio to the
// first, with the spread of the per-round ratios. For deciding heuristic defaults on
// a noisy 2-core machine, where two separate runs of one kernel differ by 30%.
// Each run reads another of several buffer sets (the caches do not hold the layer,
// as when the tuner measures); --warm reuses one set, as `convjit bench` times.
//
// usage: schedule_ab [--rounds R] [--runs N] [--warm] [--target T] [problem options] DESCRIPTOR
//                    SCHEDULE... (TEMPLATE(k=v,...), TEMPLATE alone for its defaults, or default)
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "convjit/autotuner.h"
#include "convjit/descriptor.h"
#include "convjit/runtime.h"

namespace {

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  int rounds = 7, runs = 15;
  std::string target = "host";
  bool warm = false;
  std::vector<std::string> problem_tokens, schedules;
  bool have_descriptor = false;
  for (int i = 1; i < argc; ++i) {
    bool takes_value = false;
    if (!std::strcmp(argv[i], "--rounds") && i + 1 < argc) {
      rounds = std::max(1, std::atoi(argv[++i]));
    } else if (!std::strcmp(argv[i], "--runs") && i + 1 < argc) {
      runs = std::max(1, std::atoi(argv[++i]));
    } else if (!std::strcmp(argv[i], "--warm")) {
      warm = true;
    } else if (!std::strcmp(argv[i], "--target") && i + 1 < argc) {
      target = argv[++i];
    } else if (std::strchr(argv[i], '(') || !std::strcmp(argv[i], "default") ||
               (have_descriptor && argv[i][0] != '-')) {
      schedules.push_back(argv[i]);  // every bare word after the descriptor is a schedule
    } else if (argv[i][0] != '-' || convjit::is_problem_option(argv[i], &takes_value)) {
      have_descriptor = have_descriptor || argv[i][0] != '-';
      problem_tokens.push_back(argv[i]);
      if (takes_value && i + 1 < argc) problem_tokens.push_back(argv[++i]);
    } else {
      std::fprintf(stderr, "usage: %s [--rounds R] [--runs N] [--warm] [--target T] [problem options] DESCRIPTOR "
                           "TEMPLATE(k=v,...) | TEMPLATE | default ...\n", argv[0]);
      return 2;
    }
  }
  auto problem = convjit::parse_problem(problem_tokens);
  if (!problem.ok() || schedules.empty()) {
    std::fprintf(stderr, "schedule_ab: %s\n", problem.ok() ? "give at least one schedule" : problem.status().message().c_str());
    return 2;
  }
  std::vector<convjit::Kernel> kernels;
  for (const std::string& text : schedules) {
    convjit::StatusOr<convjit::Kernel> kernel = convjit::Status::internal("unset");
    if (text == "default") {
      kernel = convjit::Runtime::global().get_kernel(problem->spec, target);
    } else {
      auto request = convjit::parse_schedule_request(text, problem->spec, target);
      kernel = request.ok() ? convjit::Runtime::global().get_kernel(problem->spec, target, *request)
                            : convjit::StatusOr<convjit::Kernel>(request.status());
    }
    if (!kernel.ok()) {
      std::fprintf(stderr, "schedule_ab: %s: %s\n", text.c_str(), kernel.status().message().c_str());
      return 1;
    }
    kernels.push_back(*kernel);
  }
  std::vector<std::vector<double>> times(kernels.size()), ratios(kernels.size());
  for (int r = 0; r < rounds; ++r) {
    for (size_t k = 0; k < kernels.size(); ++k) {
      auto ms = convjit::measure_kernel(kernels[k], runs, warm);
      if (!ms.ok()) {
        std::fprintf(stderr, "schedule_ab: %s\n", ms.status().message().c_str());
        return 1;
      }
      times[k].push_back(*ms);
    }
    for (size_t k = 0; k < kernels.size(); ++k) ratios[k].push_back(times[0].back() / times[k].back());
  }
  std::printf("%s: %d rounds x median of %d runs, %s\n", convjit::print_descriptor(problem->spec).c_str(), rounds, runs,
              warm ? "one buffer set (warm)" : "rotating buffer sets");
  for (size_t k = 0; k < kernels.size(); ++k) {
    const auto [lo, hi] = std::minmax_element(ratios[k].begin(), ratios[k].end());
    std::printf("%9.4f ms  %5.2fx (rounds %.2f-%.2f)  %s\n", median(times[k]), median(ratios[k]), *lo, *hi,
                kernels[k].schedule().c_str());
  }
  return 0;
}
