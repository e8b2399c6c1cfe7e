// schedule_ab: times several schedules of one layer against each other, interleaved
// round by round, so that the machine's drift (other tenants, frequency) hits every
// schedule alike. Prints each schedule's median over rounds and its ratio to the
// first, with the spread of the per-round ratios. For deciding heuristic defaults on
// a noisy 2-core machine, where two separate runs of one kernel differ by 30%.
// Each run reads another of several buffer sets (the caches do not hold the layer,
// as when the tuner measures); --warm reuses one set, as `convjit bench` times.
// The candidate `onednn` times oneDNN's kernel on its preferred layouts (data already
// in them, as `convjit bench` times it) in the same rounds, on HL_NUM_THREADS threads
// (else all cores): the distance to the peer, measured at the same moments. Without
// --warm it rotates over as many copies of the layer as convjit's runs do.
//
// usage: schedule_ab [--rounds R] [--runs N] [--warm] [--target T] [problem options] DESCRIPTOR
//                    SCHEDULE... (TEMPLATE(k=v,...), TEMPLATE alone for its defaults, default or onednn)
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "convjit/autotuner.h"
#include "convjit/descriptor.h"
#include "convjit/runtime.h"
#include "onednn_peer.h"

namespace {

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// The median of `runs` timed calls of oneDNN's blocked form, after one untimed call on
// each of its `sets` buffer sets.
double time_onednn_blocked(convjit::peers::OneDnnConvolution& peer, int sets, int runs) {
  for (int i = 0; i < sets; ++i) peer.run_blocked();
  std::vector<double> ms;
  for (int i = 0; i < runs; ++i) {
    const auto start = std::chrono::steady_clock::now();
    peer.run_blocked();
    ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count());
  }
  return median(ms);
}

// HL_NUM_THREADS, as Halide's pool reads it, else every core.
int halide_threads() {
  const char* text = std::getenv("HL_NUM_THREADS");
  const int n = text ? std::atoi(text) : 0;
  return n > 0 ? n : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
}

}  // namespace

int main(int argc, char** argv) {
  convjit::peers::ensure_passive_openmp(argv);  // idle OpenMP workers would spin on convjit's cores
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
    } else if (std::strchr(argv[i], '(') || !std::strcmp(argv[i], "default") || !std::strcmp(argv[i], "onednn") ||
               (have_descriptor && argv[i][0] != '-')) {
      schedules.push_back(argv[i]);  // every bare word after the descriptor is a schedule
    } else if (argv[i][0] != '-' || convjit::is_problem_option(argv[i], &takes_value)) {
      have_descriptor = have_descriptor || argv[i][0] != '-';
      problem_tokens.push_back(argv[i]);
      if (takes_value && i + 1 < argc) problem_tokens.push_back(argv[++i]);
    } else {
      std::fprintf(stderr, "usage: %s [--rounds R] [--runs N] [--warm] [--target T] [problem options] DESCRIPTOR "
                           "TEMPLATE(k=v,...) | TEMPLATE | default | onednn ...\n", argv[0]);
      return 2;
    }
  }
  auto problem = convjit::parse_problem(problem_tokens);
  if (!problem.ok() || schedules.empty()) {
    std::fprintf(stderr, "schedule_ab: %s\n", problem.ok() ? "give at least one schedule" : problem.status().message().c_str());
    return 2;
  }
  // One contender per schedule: a convjit kernel, or oneDNN (index in `peer_at`).
  std::vector<convjit::Kernel> kernels;
  std::vector<std::string> names;
  std::unique_ptr<convjit::peers::OneDnnConvolution> peer;
  const int peer_sets = warm ? 1 : convjit::rotating_buffer_set_count(problem->spec);
  size_t peer_at = schedules.size();
  for (const std::string& text : schedules) {
    if (text == "onednn") {
      if (peer) continue;
      auto created = convjit::peers::OneDnnConvolution::create(problem->spec, halide_threads(), peer_sets);
      if (!created.ok()) {
        std::fprintf(stderr, "schedule_ab: onednn: %s\n", created.status().message().c_str());
        return 1;
      }
      peer = std::move(*created);
      peer_at = names.size();
      names.push_back("oneDNN blocked (" + peer->implementation() + ", " + std::to_string(halide_threads()) +
                      " threads" + (warm ? "" : ", " + std::to_string(peer_sets) + " buffer sets") + ")");
      continue;
    }
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
    names.push_back(kernels.back().schedule());
  }
  std::vector<std::vector<double>> times(names.size()), ratios(names.size());
  for (int r = 0; r < rounds; ++r) {
    for (size_t k = 0, kernel = 0; k < names.size(); ++k) {
      if (k == peer_at) {
        times[k].push_back(time_onednn_blocked(*peer, peer_sets, runs));
        continue;
      }
      auto ms = convjit::measure_kernel(kernels[kernel++], runs, warm);
      if (!ms.ok()) {
        std::fprintf(stderr, "schedule_ab: %s\n", ms.status().message().c_str());
        return 1;
      }
      times[k].push_back(*ms);
    }
    for (size_t k = 0; k < names.size(); ++k) ratios[k].push_back(times[0].back() / times[k].back());
  }
  std::printf("%s: %d rounds x median of %d runs, %s\n", convjit::print_descriptor(problem->spec).c_str(), rounds, runs,
              warm ? "one buffer set (warm)" : "rotating buffer sets");
  for (size_t k = 0; k < names.size(); ++k) {
    const auto [lo, hi] = std::minmax_element(ratios[k].begin(), ratios[k].end());
    std::printf("%9.4f ms  %5.2fx (rounds %.2f-%.2f)  %s\n", median(times[k]), median(ratios[k]), *lo, *hi,
                names[k].c_str());
  }
  return 0;
}
