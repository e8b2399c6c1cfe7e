// Teaches what a schedule is and how its knobs change the generated loops: lists every
// schedule template for one layer (applicable or why not, its knobs and defaults), then
// compiles the default point of each applicable template and points that change one knob
// at a time, times each, and prints the loop nest Halide lowered it to.
//
// Usage: explore_schedules [--template NAME]... [--values K] [--max-points N] [--runs R]
//                          [--html DIR] [DESCRIPTOR]
//   DESCRIPTOR     the layer (default a small 3x3 layer, mb1ic32ih28oc32oh28kh3ph1)
//   --template T   compile points of template T only (repeatable; default every applicable
//                  one). halide_autoscheduler takes tens of seconds a point: it searches.
//   --values K     other values tried per knob (default 2)
//   --max-points N points per template, its default included (default 8)
//   --runs R       timed runs per point (default 9)
//   --html DIR     also write Halide's HTML view of each point's statement into DIR
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "convjit/autotuner.h"
#include "convjit/descriptor.h"
#include "convjit/runtime.h"

namespace {

// Schedule parameters are "name=value,name=value"; a map keeps them in name order,
// the order the runtime prints them in.
using Params = std::map<std::string, int>;

Params parse_params(const std::string& text) {
  Params params;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find(',', start);
    if (end == std::string::npos) end = text.size();
    const std::string item = text.substr(start, end - start);
    const size_t eq = item.find('=');
    if (eq != std::string::npos) params[item.substr(0, eq)] = std::atoi(item.c_str() + eq + 1);
    start = end + 1;
  }
  return params;
}

std::string format_params(const Params& params) {
  std::string text;
  for (const auto& [name, value] : params) text += (text.empty() ? "" : ",") + name + "=" + std::to_string(value);
  return text;
}

// One point to compile: a template, its parameters, and what sets it apart.
struct Point {
  std::string template_name;
  Params params;
  std::string label;  // "default" or the knob changed, e.g. "lanes=4"
};

// Up to `count` of `choices` other than `skip`, spread over the list (smallest and
// largest first), so that two values show both directions of a knob.
std::vector<int> spread_choices(std::vector<int> choices, int skip, int count) {
  choices.erase(std::remove(choices.begin(), choices.end(), skip), choices.end());
  if (static_cast<int>(choices.size()) <= count) return choices;
  std::vector<int> picked;
  for (int i = 0; i < count; ++i) {
    const size_t index = count == 1 ? choices.size() - 1 : i * (choices.size() - 1) / (count - 1);
    picked.push_back(choices[index]);
  }
  return picked;
}

// The lanes of the first vector in a statement: the last argument of ramp(base,
// stride, lanes) or the N of a broadcast xN(value). 1 for a scalar statement.
int vector_lanes(const std::string& line) {
  const size_t ramp = line.find("ramp(");
  if (ramp != std::string::npos) {
    int depth = 0;
    size_t last_comma = 0;
    for (size_t i = ramp + 4; i < line.size(); ++i) {
      if (line[i] == '(') ++depth;
      if (line[i] == ')' && --depth == 0) return std::atoi(line.c_str() + last_comma + 1);
      if (line[i] == ',' && depth == 1) last_comma = i;
    }
  }
  for (size_t i = 1; i + 2 < line.size(); ++i) {
    const bool word_start = !std::isalnum(static_cast<unsigned char>(line[i - 1])) && line[i - 1] != '_' && line[i - 1] != '.';
    if (line[i] == 'x' && word_start && std::isdigit(static_cast<unsigned char>(line[i + 1]))) {
      size_t j = i + 1;
      while (j < line.size() && std::isdigit(static_cast<unsigned char>(line[j]))) ++j;
      if (j < line.size() && line[j] == '(') return std::atoi(line.c_str() + i + 1);
    }
  }
  return 1;
}

// Prints the loop structure of a lowered statement (Runtime::emit with kStmt): loops,
// allocations, producers and parallel launches keep their lines and indentation; the
// stores between them are summarised as a count and a vector width, which is where
// unrolling (more stores) and vectorization (more lanes) show. Halide moves the body of
// a parallel loop into a function of its own ("parallel body" below), launched by
// halide_do_par_for from the entry point.
void print_loop_nest(const std::string& path) {
  std::ifstream in(path);
  std::string line;
  int stores = 0, max_lanes = 0;
  std::string store_indent;
  auto flush = [&] {
    if (stores == 0) return;
    std::printf("      %s  [%d store%s, %s]\n", store_indent.c_str(), stores, stores == 1 ? "" : "s",
                max_lanes > 1 ? ("vectors of " + std::to_string(max_lanes) + " lanes").c_str() : "scalar");
    stores = max_lanes = 0;
  };
  while (std::getline(in, line)) {
    const size_t first = line.find_first_not_of(' ');
    if (first == std::string::npos) continue;
    const std::string indent = line.substr(0, first), body = line.substr(first);
    auto starts = [&](const char* prefix) { return body.rfind(prefix, 0) == 0; };
    std::string shown;
    if (starts("external func ")) {
      shown = "parallel body " + body.substr(14, body.find(' ', 14) - 14);
    } else if (starts("external_plus_metadata func ")) {
      shown = "entry point " + body.substr(28, body.find(' ', 28) - 28);
    } else if (starts("for (") || starts("parallel (") || starts("allocate ") || starts("produce ")) {
      shown = body.substr(0, body.find(" {"));
    } else if (body.find("halide_do_par_for(") != std::string::npos) {
      // let closure_result = halide_do_par_for((void *)::BODY, MIN, EXTENT, closure)
      const size_t name = body.find("::") + 2, comma = body.find(',', name);
      const size_t extent_end = body.find(',', body.find(',', comma + 1) + 1);
      shown = "parallel for " + body.substr(name, comma - name) + " over [" +
              body.substr(comma + 2, extent_end - comma - 2) + ")";
    } else if (body.find("] = ") != std::string::npos && !starts("let ") && !starts("assert(")) {
      store_indent = indent;
      ++stores;
      max_lanes = std::max(max_lanes, vector_lanes(body));
      continue;
    } else {
      continue;
    }
    flush();
    std::printf("      %s%s\n", indent.c_str(), shown.c_str());
  }
  flush();
}

// A file name under the system's temporary directory that no other process uses.
std::string temp_path(const char* suffix) {
  std::string pattern = (std::filesystem::temp_directory_path() / "convjit_explore_XXXXXX").string() + suffix;
  const int fd = mkstemps(pattern.data(), static_cast<int>(std::strlen(suffix)));
  if (fd >= 0) close(fd);
  return pattern;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> problem_tokens;  // problem options (--deconv, ...) and the descriptor
  std::string html_dir;
  std::vector<std::string> only_templates;
  int values = 2, max_points = 8, runs = 9;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--template") && i + 1 < argc) {
      only_templates.push_back(argv[++i]);
    } else if (!std::strcmp(argv[i], "--values") && i + 1 < argc) {
      values = std::max(0, std::atoi(argv[++i]));
    } else if (!std::strcmp(argv[i], "--max-points") && i + 1 < argc) {
      max_points = std::max(1, std::atoi(argv[++i]));
    } else if (!std::strcmp(argv[i], "--runs") && i + 1 < argc) {
      runs = std::max(1, std::atoi(argv[++i]));
    } else if (!std::strcmp(argv[i], "--html") && i + 1 < argc) {
      html_dir = argv[++i];
    } else if (bool takes_value = false; argv[i][0] != '-' || convjit::is_problem_option(argv[i], &takes_value)) {
      problem_tokens.push_back(argv[i]);
      if (takes_value && i + 1 < argc) problem_tokens.push_back(argv[++i]);
    } else {
      std::fprintf(stderr,
                   "usage: %s [--template NAME]... [--values K] [--max-points N] [--runs R] [--html DIR]\n"
                   "          [problem options, e.g. --deconv] [DESCRIPTOR]\n",
                   argv[0]);
      return 2;
    }
  }
  if (problem_tokens.empty() || problem_tokens.back()[0] == '-') problem_tokens.push_back("mb1ic32ih28oc32oh28kh3ph1");
  auto problem = convjit::parse_problem(problem_tokens);
  if (!problem.ok()) {
    std::fprintf(stderr, "explore_schedules: %s\n", problem.status().message().c_str());
    return 1;
  }
  const convjit::ConvSpec& spec = problem->spec;

  // 1. The space: every template, most specific first. The runtime's default schedule
  //    is the defaults of the first applicable one (unless a tuning record replaces it).
  auto spaces = convjit::schedule_spaces(spec, "host");
  if (!spaces.ok()) {
    std::fprintf(stderr, "explore_schedules: %s\n", spaces.status().message().c_str());
    return 1;
  }
  std::printf("layer %s on %s\n\n", convjit::print_descriptor(spec).c_str(), convjit::host_target_string().c_str());
  std::vector<Point> points;
  for (const convjit::ScheduleSpace& space : *spaces) {
    if (!space.not_applicable.empty()) {
      std::printf("template %s: not applicable: %s\n\n", space.template_name.c_str(), space.not_applicable.c_str());
      continue;
    }
    std::printf("template %s: applicable, defaults %s\n", space.template_name.c_str(), space.defaults.c_str());
    for (const convjit::ScheduleKnob& knob : space.knobs) {
      std::string choices;
      for (int c : knob.choices) choices += (choices.empty() ? "" : " ") + std::to_string(c);
      std::printf("  %-10s {%s}\n  %-10s %s\n", knob.name.c_str(), choices.c_str(), "", knob.meaning.c_str());
    }
    std::printf("\n");
    if (!only_templates.empty() &&
        std::find(only_templates.begin(), only_templates.end(), space.template_name) == only_templates.end()) {
      continue;
    }

    // 2. The points to compare: the default, then one knob changed at a time, taking
    //    each knob's first other value before any knob's second, so that a small
    //    --max-points still touches many knobs.
    const Params defaults = parse_params(space.defaults);
    std::vector<Point> template_points = {{space.template_name, defaults, "default"}};
    std::vector<std::vector<int>> others;
    for (const convjit::ScheduleKnob& knob : space.knobs) {
      const auto it = defaults.find(knob.name);
      others.push_back(it == defaults.end() ? std::vector<int>{} : spread_choices(knob.choices, it->second, values));
    }
    for (int round = 0; round < values; ++round) {
      for (size_t k = 0; k < space.knobs.size(); ++k) {
        if (round >= static_cast<int>(others[k].size()) || static_cast<int>(template_points.size()) >= max_points) continue;
        Params changed = defaults;
        changed[space.knobs[k].name] = others[k][round];
        template_points.push_back(
            {space.template_name, changed, space.knobs[k].name + "=" + std::to_string(others[k][round])});
      }
    }
    points.insert(points.end(), template_points.begin(), template_points.end());
  }

  // 3. Compile, time and show each point. Runtime::get_kernel with a ScheduleRequest
  //    compiles exactly that schedule; emit() writes what Halide lowered it to.
  struct Row {
    std::string label, schedule;
    double ms;
  };
  std::vector<Row> rows;
  const std::string stmt_path = temp_path(".stmt");
  if (!html_dir.empty()) std::filesystem::create_directories(html_dir);
  for (size_t i = 0; i < points.size(); ++i) {
    const Point& point = points[i];
    const convjit::ScheduleRequest request{point.template_name, format_params(point.params)};
    auto kernel = convjit::Runtime::global().get_kernel(spec, "host", request);
    if (!kernel.ok()) {
      std::printf("%s %s: %s\n", point.template_name.c_str(), point.label.c_str(), kernel.status().message().c_str());
      continue;
    }
    auto ms = convjit::measure_kernel(*kernel, runs);
    if (!ms.ok()) {
      std::printf("%s: %s\n", kernel->schedule().c_str(), ms.status().message().c_str());
      continue;
    }
    rows.push_back({point.template_name + " " + point.label, kernel->schedule(), *ms});
    std::printf("== %s %s: %s, %.4f ms\n", point.template_name.c_str(), point.label.c_str(),
                kernel->schedule().c_str(), *ms);
    if (convjit::Status st = convjit::Runtime::global().emit(spec, "host", convjit::EmitFormat::kStmt, stmt_path, &request);
        st.ok()) {
      print_loop_nest(stmt_path);
    } else {
      std::printf("   (no statement: %s)\n", st.message().c_str());
    }
    if (!html_dir.empty()) {
      const std::string html = html_dir + "/" + point.template_name + "_" + std::to_string(i) + ".html";
      convjit::Status st = convjit::Runtime::global().emit(spec, "host", convjit::EmitFormat::kHtml, html, &request);
      std::printf("   HTML view: %s\n", st.ok() ? html.c_str() : st.message().c_str());
    }
    std::printf("\n");
  }
  std::remove(stmt_path.c_str());
  if (rows.empty()) {
    std::fprintf(stderr, "explore_schedules: no point could be compiled\n");
    return 1;
  }

  // 4. The table. The reference is the first row: the default of the first applicable
  //    template, i.e. what an untuned get_kernel(spec) compiles.
  int label_width = 5, schedule_width = 8;
  for (const Row& row : rows) {
    label_width = std::max(label_width, static_cast<int>(row.label.size()));
    schedule_width = std::max(schedule_width, static_cast<int>(row.schedule.size()));
  }
  std::printf("%-*s  %-*s %9s %11s\n", label_width, "point", schedule_width, "schedule", "ms", "vs default");
  for (const Row& row : rows) {
    std::printf("%-*s  %-*s %9.4f %10.2fx\n", label_width, row.label.c_str(), schedule_width, row.schedule.c_str(),
                row.ms, rows[0].ms / row.ms);
  }
  return 0;
}
