// Teaches the autotuner: tunes one layer within a time budget with convjit::tune,
// follows it through TuneOptions::on_progress, and draws its best-so-far curve against
// the default schedule and Halide's own autoscheduler as an SVG chart written by hand.
//
// Usage: tune_and_plot [--budget SECONDS] [-o FILE] [DESCRIPTOR]
//   DESCRIPTOR        the layer (default a small 3x3 layer, mb1ic32ih28oc32oh28kh3ph1)
//   --budget SECONDS  tuning time (default 20)
//   -o FILE           the chart (default tune_curve.svg)
// The result is only printed: `convjit tune` is the command that stores it in the
// tuning database, where get_kernel() then finds it.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "convjit/autotuner.h"
#include "convjit/descriptor.h"
#include "convjit/runtime.h"

namespace {

// Text inside SVG is XML: descriptors may hold quotes, schedules '<' never, but be safe.
std::string xml_escape(const std::string& text) {
  std::string out;
  for (char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      default: out += c;
    }
  }
  return out;
}

std::string format(const char* fmt, double value) {
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, fmt, value);
  return buffer;
}

// A "nice" tick step (1, 2 or 5 times a power of ten) giving about `ticks` ticks over `range`.
double nice_step(double range, int ticks) {
  const double raw = range / ticks;
  const double magnitude = std::pow(10.0, std::floor(std::log10(raw)));
  const double normalized = raw / magnitude;
  return (normalized < 1.5 ? 1 : normalized < 3 ? 2 : normalized < 7 ? 5 : 10) * magnitude;
}

// Tick labels with as many decimals as the step needs (0.05 -> 2, 0.5 -> 1, 5 -> 0).
std::string tick_label(double value, double step) {
  const int decimals = std::max(0, static_cast<int>(-std::floor(std::log10(step) + 1e-9)));
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%.*f", decimals, value);
  return buffer;
}

// The chart: time on x, kernel time on y from 0 (so that the gain reads as a share of
// the default), the best-so-far curve as steps (it only changes when a candidate wins),
// and one dashed reference line per comparison.
std::string render_svg(const convjit::TuneResult& result, const std::string& title, double budget) {
  const double width = 820, height = 580;
  const double left = 80, right = 30, top = 84, bottom = 150;  // margins: titles above, legend below
  const double plot_w = width - left - right, plot_h = height - top - bottom;

  double x_max = budget, y_max = std::max(result.default_ms, result.best_ms);
  for (const convjit::TunePoint& p : result.curve) {
    x_max = std::max(x_max, p.elapsed_seconds);
    y_max = std::max(y_max, p.best_ms);
  }
  // An autoscheduler far slower than the default would squash the curve into the
  // bottom of the chart: beyond 3x the scale ignores it and its line sits on the top edge.
  const bool autoscheduler_off_scale = result.autoscheduler_ms > 3 * y_max;
  if (!autoscheduler_off_scale) y_max = std::max(y_max, result.autoscheduler_ms);
  const double x_step = nice_step(x_max, 8), y_step = nice_step(y_max * 1.05, 6);
  x_max = std::ceil(x_max / x_step) * x_step;
  y_max = std::ceil(y_max * 1.05 / y_step) * y_step;
  auto px = [&](double seconds) { return left + seconds / x_max * plot_w; };
  auto py = [&](double ms) { return top + plot_h - ms / y_max * plot_h; };

  std::ostringstream svg;
  svg << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << width << "\" height=\"" << height
      << "\" viewBox=\"0 0 " << width << " " << height << "\" font-family=\"sans-serif\" font-size=\"12\">\n";
  svg << "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
  svg << "<text x=\"" << width / 2 << "\" y=\"26\" text-anchor=\"middle\" font-size=\"16\" font-weight=\"bold\">"
      << xml_escape(title) << "</text>\n";
  const double elapsed = result.curve.empty() ? 0 : result.curve.back().elapsed_seconds;
  svg << "<text x=\"" << width / 2 << "\" y=\"47\" text-anchor=\"middle\" fill=\"#444\">"
      << xml_escape("best " + format("%.3f ms", result.best_ms) + ", " +
                    format("%.2fx", result.default_ms / result.best_ms) + " as fast as the default, after " +
                    std::to_string(result.candidates) + " candidates in " + format("%.1f s", elapsed))
      << "</text>\n";
  svg << "<text x=\"" << width / 2 << "\" y=\"65\" text-anchor=\"middle\" fill=\"#666\" font-size=\"11\">"
      << xml_escape(result.best_description) << "</text>\n";

  // Grid and ticks.
  for (double x = 0; x <= x_max + x_step / 2; x += x_step) {
    svg << "<line x1=\"" << px(x) << "\" y1=\"" << top << "\" x2=\"" << px(x) << "\" y2=\"" << top + plot_h
        << "\" stroke=\"#e4e4e4\"/>\n";
    svg << "<text x=\"" << px(x) << "\" y=\"" << top + plot_h + 18 << "\" text-anchor=\"middle\">"
        << tick_label(x, x_step) << "</text>\n";
  }
  for (double y = 0; y <= y_max + y_step / 2; y += y_step) {
    svg << "<line x1=\"" << left << "\" y1=\"" << py(y) << "\" x2=\"" << left + plot_w << "\" y2=\"" << py(y)
        << "\" stroke=\"#e4e4e4\"/>\n";
    svg << "<text x=\"" << left - 8 << "\" y=\"" << py(y) + 4 << "\" text-anchor=\"end\">" << tick_label(y, y_step)
        << "</text>\n";
  }
  svg << "<rect x=\"" << left << "\" y=\"" << top << "\" width=\"" << plot_w << "\" height=\"" << plot_h
      << "\" fill=\"none\" stroke=\"#333\"/>\n";
  svg << "<text x=\"" << left + plot_w / 2 << "\" y=\"" << top + plot_h + 40
      << "\" text-anchor=\"middle\">tuning time (s)</text>\n";
  svg << "<text transform=\"translate(22," << top + plot_h / 2
      << ") rotate(-90)\" text-anchor=\"middle\">kernel time (ms)</text>\n";

  // Reference lines, then the curve on top of them.
  struct Entry {
    std::string label, color, dash;
    bool marker = false;  // a hollow dot instead of a line sample
  };
  std::vector<Entry> legend = {{"best so far, as found during the search", "#1f77b4", ""}};
  auto reference = [&](double ms, const std::string& label, const std::string& color) {
    const double y = std::max(py(ms), top);  // off-scale lines on the top edge
    svg << "<line x1=\"" << left << "\" y1=\"" << y << "\" x2=\"" << left + plot_w << "\" y2=\"" << y
        << "\" stroke=\"" << color << "\" stroke-width=\"1.5\" stroke-dasharray=\"6,4\"/>\n";
    legend.push_back({label, color, "6,4", false});
    if (py(ms) < top) {
      svg << "<text x=\"" << left + 6 << "\" y=\"" << top + 14 << "\" fill=\"" << color << "\">&#8593; "
          << format("%.3f ms", ms) << " (off scale)</text>\n";
    }
  };
  reference(result.default_ms, "default schedule: " + format("%.3f ms", result.default_ms), "#d62728");
  if (result.autoscheduler_ms > 0) {  // 0 when no autoscheduler candidate was measured
    // The description is "halide_autoscheduler(algorithm=N)": keep what names the variant.
    std::string variant = result.autoscheduler_description;
    if (variant.rfind("halide_autoscheduler", 0) == 0) variant = variant.substr(20);
    reference(result.autoscheduler_ms,
              "Halide autoscheduler" + variant + ": " + format("%.3f ms", result.autoscheduler_ms) +
                  (autoscheduler_off_scale ? " (off scale, above)" : ""),
              "#9467bd");
  }
  if (!result.curve.empty()) {
    std::ostringstream path;
    path << "M" << px(result.curve[0].elapsed_seconds) << "," << py(result.curve[0].best_ms);
    for (size_t i = 1; i < result.curve.size(); ++i) {
      path << " H" << px(result.curve[i].elapsed_seconds) << " V" << py(result.curve[i].best_ms);
    }
    svg << "<path d=\"" << path.str() << "\" fill=\"none\" stroke=\"#1f77b4\" stroke-width=\"2.5\"/>\n";
    // A dot where a new best was found.
    for (size_t i = 0; i < result.curve.size(); ++i) {
      if (i == 0 || result.curve[i].best_ms < result.curve[i - 1].best_ms) {
        svg << "<circle cx=\"" << px(result.curve[i].elapsed_seconds) << "\" cy=\"" << py(result.curve[i].best_ms)
            << "\" r=\"3.5\" fill=\"#1f77b4\"/>\n";
      }
    }
    // The tuner re-measures the winner interleaved with the default before it reports
    // them (TuneResult::best_ms, default_ms), so the end of the curve and the reported
    // best can differ by the noise of the search-time measurements.
    svg << "<circle cx=\"" << px(result.curve.back().elapsed_seconds) << "\" cy=\"" << py(result.best_ms)
        << "\" r=\"5\" fill=\"none\" stroke=\"#2ca02c\" stroke-width=\"2\"/>\n";
    legend.push_back({"best, re-measured alongside the default: " + format("%.3f ms", result.best_ms), "#2ca02c", "",
                      true});
  }

  // Legend, under the x axis: inside the plot it would hide a line sooner or later.
  const double box_x = left, box_y = top + plot_h + 52;
  for (size_t i = 0; i < legend.size(); ++i) {
    const double y = box_y + 10 + 20 * i;
    if (legend[i].marker) {
      svg << "<circle cx=\"" << box_x + 24 << "\" cy=\"" << y << "\" r=\"5\" fill=\"none\" stroke=\""
          << legend[i].color << "\" stroke-width=\"2\"/>\n";
    } else {
      svg << "<line x1=\"" << box_x + 10 << "\" y1=\"" << y << "\" x2=\"" << box_x + 38 << "\" y2=\"" << y
          << "\" stroke=\"" << legend[i].color << "\" stroke-width=\"2.5\""
          << (legend[i].dash.empty() ? "" : " stroke-dasharray=\"" + legend[i].dash + "\"") << "/>\n";
    }
    svg << "<text x=\"" << box_x + 44 << "\" y=\"" << y + 4 << "\">" << xml_escape(legend[i].label) << "</text>\n";
  }
  svg << "</svg>\n";
  return svg.str();
}

}  // namespace

int main(int argc, char** argv) {
  std::string descriptor = "mb1ic32ih28oc32oh28kh3ph1";
  std::string output = "tune_curve.svg";
  double budget = 20;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--budget") && i + 1 < argc) {
      budget = std::max(0.1, std::atof(argv[++i]));
    } else if (!std::strcmp(argv[i], "-o") && i + 1 < argc) {
      output = argv[++i];
    } else if (argv[i][0] != '-') {
      descriptor = argv[i];
    } else {
      std::fprintf(stderr, "usage: %s [--budget SECONDS] [-o FILE] [DESCRIPTOR]\n", argv[0]);
      return 2;
    }
  }
  auto problem = convjit::parse_descriptor(descriptor);
  if (!problem.ok()) {
    std::fprintf(stderr, "tune_and_plot: %s\n", problem.status().message().c_str());
    return 1;
  }
  const std::string layer = convjit::print_descriptor(problem->spec, problem->name);

  // The tuner measures the default schedule first, then searches every applicable
  // template; on_progress is called after each candidate, from the calling thread.
  convjit::TuneOptions options;
  options.budget_seconds = budget;
  options.on_progress = [](const convjit::TuneProgress& p) {
    std::fprintf(stderr, "\r[%5.1f/%.0f s] %3d candidates (%d rejected), best %.3f ms (default %.3f ms)   ",
                 p.elapsed_seconds, p.budget_seconds, p.candidates, p.rejected, p.best_ms, p.default_ms);
    std::fflush(stderr);
  };
  std::printf("tuning %s for %.0f s on %s\n", layer.c_str(), budget, convjit::host_target_string().c_str());
  std::fflush(stdout);  // before the progress lines on stderr
  auto result = convjit::tune(problem->spec, "host", options);
  std::fputs("\n", stderr);
  if (!result.ok()) {
    std::fprintf(stderr, "tune_and_plot: %s\n", result.status().message().c_str());
    return 1;
  }

  std::printf("best:          %s  %.3f ms (relative error %.1e vs the default's output)\n",
              result->best_description.c_str(), result->best_ms, result->best_error);
  std::printf("default:       %.3f ms  (default / best = %.2fx)\n", result->default_ms,
              result->default_ms / result->best_ms);
  if (result->autoscheduler_ms > 0) {
    std::printf("autoscheduler: %s  %.3f ms\n", result->autoscheduler_description.c_str(), result->autoscheduler_ms);
  } else {
    std::printf("autoscheduler: not measured within the budget\n");
  }
  std::printf("candidates:    %d measured, %d rejected, %zu curve points\n", result->candidates, result->rejected,
              result->curve.size());

  std::ofstream file(output);
  file << render_svg(*result, "convjit tune: " + layer, budget);
  file.close();
  if (!file) {
    std::fprintf(stderr, "tune_and_plot: cannot write %s\n", output.c_str());
    return 1;
  }
  std::printf("chart:         %s\n", output.c_str());
  return 0;
}
