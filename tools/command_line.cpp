// Argument routing, usage texts, error reporting and command dispatch of the convjit tool.
#include "command_line.h"

#include <cstdio>
#include <exception>
#include <iostream>

#include "commands.h"
#include "convjit/descriptor.h"

namespace convjit {
namespace {

const char kProblemOptions[] =
    "Problem options (what the descriptor cannot say):\n"
    "  --deconv                      the descriptor describes a transposed convolution\n"
    "                                (i* entries are its input, o* its output)\n"
    "  --padding-mode MODE           zeros (default) | reflect | replicate | circular\n"
    "  --conv-mode MODE              cross_correlation (default) | convolution\n"
    "  --cover-all                   Chainer's cover_all: one more output row/column when\n"
    "                                the last stride does not reach the end\n"
    "  --wtag LAYOUT                 weight layout: oihw (default) | goihw (5-D) | iohw\n"
    "                                (default with --deconv) | mihw (depthwise) | oihw16o\n"
    "                                (5-D, output channels in blocks of 16, innermost)\n"
    "  --dt TYPE                     f32 (default) | f16\n"
    "  --compute-mode MODE           default | float32 (f16 data, f32 accumulation)\n"
    "  --bias                        the convolution adds a bias\n";

const char kDescriptor[] =
    "DESCRIPTOR is oneDNN benchdnn's convolution problem descriptor:\n"
    "  gXmbX_icXihXiwX_ocXohXowX_khXkwX_shXswX_phXpwX_dhXdwX_nNAME\n"
    "  entries in any order, '_' optional, n (a name) last; mb defaults to 2, strides to 1;\n"
    "  w entries copy h entries when absent; dh/dw are 0-based (dense = 0); ph/pw are\n"
    "  top/left padding, bottom/right padding is derived from oh/ow.\n"
    "  Example: mb1ic64ih56oc64oh56kh3ph1\n";

std::string general_usage() {
  return "usage: convjit COMMAND [options] DESCRIPTOR\n"
         "       convjit cache stats|list|verify|clear [--cache-dir DIR]\n"
         "       convjit tune DESCRIPTOR | --batch FILE --budget SECONDS\n"
         "       convjit aot --batch FILE --target T1[,T2...] --name NAME -o DIR\n"
         "       convjit bench DESCRIPTOR | --batch FILE [--threads 1,2] [--json]\n"
         "\n"
         "A JIT convolution compiler on Halide: runs, describes, compiles or tunes one\n"
         "convolution, and maintains the disk cache of compiled kernels.\n"
         "\n"
         "Commands:\n"
         "  run      run a convolution on .npy tensors and write the output as .npy\n"
         "  info     print the resolved spec, shapes, flops and cache key as JSON\n"
         "  compile  write what Halide generates for a convolution (stmt, html, asm, object)\n"
         "  cache    show, check or clear the disk cache of compiled kernels\n"
         "  tune     search schedules for the fastest kernel; record it in the tuning database\n"
         "  aot      generate a static library + C header for deployment (no Halide needed)\n"
         "  bench    time convjit against oneDNN on the same layers, 1 and 2 threads\n"
         "  help     print this text, or 'convjit help COMMAND' for a command's options\n"
         "\n"
         "'convjit COMMAND --help' prints the options of a command.\n"
         "\n" +
         std::string(kDescriptor) + "\n" + kProblemOptions +
         "\n"
         "Exit status: 0 on success, 1 on bad input or a failed compile or run, 2 on a\n"
         "usage error. Errors are one line on stderr starting with 'convjit: error: '.\n";
}

std::string run_usage() {
  return "usage: convjit run [problem options] DESCRIPTOR --src X.npy --wei W.npy\n"
         "                   [--bia B.npy] --dst Y.npy [--target host]\n"
         "\n"
         "Runs the convolution on NumPy .npy tensors (C order, little-endian '<f4' for\n"
         "--dt f32, '<f2' for --dt f16) and writes the output as .npy. The output file is\n"
         "written to a temporary file and renamed, so --dst is never left partial.\n"
         "\n"
         "Tensors (NCHW activations):\n"
         "  --src FILE     input, shape (mb, ic, ih, iw)\n"
         "  --wei FILE     weights in the --wtag layout: oihw (oc, ic/g, kh, kw),\n"
         "                 goihw (g, oc/g, ic/g, kh, kw), iohw (ic, oc/g, kh, kw),\n"
         "                 mihw (oc/ic, ic, kh, kw), oihw16o (oc/16, ic/g, kh, kw, 16)\n"
         "  --bia FILE     bias, shape (oc,); giving it adds a bias (implies --bias)\n"
         "  --dst FILE     output, shape (mb, oc, oh, ow)\n"
         "  --target T     'host' (default), 'host-cuda' (an NVIDIA GPU; host tensors are\n"
         "                 copied to it and back) or a Halide target string\n"
         "\n" +
         std::string(kDescriptor) + "\n" + kProblemOptions;
}

std::string info_usage() {
  return "usage: convjit info [problem options] DESCRIPTOR [--schedules [--target T]]\n"
         "       convjit info --batch FILE [--schedules [--target T]]\n"
         "\n"
         "Prints the resolved spec as one JSON object: every spec field (dilation 1-based,\n"
         "four-sided padding), input/weight/output shapes, flops, the canonical descriptor,\n"
         "the canonical cache key, its hash and the name if the descriptor gives one.\n"
         "\n"
         "  --batch FILE   read problems from a shape file (one problem a line, written as\n"
         "                 on the command line, '#' comments) and print one JSON object per\n"
         "                 line; no descriptor or problem options on the command line then\n"
         "  --schedules    add \"schedules\": every schedule template in the order the\n"
         "                 default is chosen from, with \"default\": true on the one that\n"
         "                 gives it, why a template does not apply, or its default\n"
         "                 parameters and knobs (name, choices, meaning): what --schedule\n"
         "                 'NAME(knob=value,...)' of compile, run and bench accepts\n"
         "  --target T     with --schedules: 'host' (default), 'host-cuda' or a Halide\n"
         "                 target string\n"
         "\n" +
         std::string(kDescriptor) + "\n" + kProblemOptions;
}

std::string cache_usage() {
  return "usage: convjit cache stats [--cache-dir DIR]\n"
         "       convjit cache list [--json] [--cache-dir DIR]\n"
         "       convjit cache verify [--remove-bad] [--cache-dir DIR]\n"
         "       convjit cache clear [--cache-dir DIR]\n"
         "\n"
         "Shows, checks or clears the disk cache of compiled kernels that 'convjit run' and\n"
         "every program using the runtime share.\n"
         "\n"
         "  stats          directory, whether the cache is in use (or why not), number of\n"
         "                 entries (kernels and Halide runtimes), total and maximum size\n"
         "  list           one line per entry, most recently used first: kind, size in\n"
         "                 bytes, last use (local time), target, schedule, spec (key fields\n"
         "                 at their default value left out) and file name\n"
         "    --json       one JSON object per entry instead, with the full key\n"
         "  verify         checks every entry (header, checksum, owner, mode) and prints one\n"
         "                 line per bad entry and 'N entries, M bad'; exit 1 if any is bad\n"
         "    --remove-bad removes the bad entries (exit 0 when all are gone)\n"
         "  clear          removes every entry and prints how many\n"
         "\n"
         "  --cache-dir DIR  the cache directory; default $CONVJIT_CACHE_DIR, else\n"
         "                 $XDG_CACHE_HOME/convjit, else ~/.cache/convjit\n"
         "\n"
         "Environment: CONVJIT_CACHE=off stops programs from using the cache (this command\n"
         "still works on it); CONVJIT_CACHE_MAX_BYTES bounds its size (default 1 GiB).\n";
}

std::string compile_usage() {
  return "usage: convjit compile [problem options] DESCRIPTOR --emit FORMAT -o FILE\n"
         "                       [--target host] [--schedule SCHEDULE]\n"
         "\n"
         "Writes what Halide generates for the convolution.\n"
         "\n"
         "  --emit FORMAT  stmt | html | asm | object | ptx (ptx needs a CUDA target)\n"
         "  -o FILE        output file (written to a temporary file, then renamed)\n"
         "  --target T     'host' (default), 'host-cuda' (PTX for capability 8.0; no GPU\n"
         "                 needed to compile) or a Halide target string\n"
         "  --schedule S   a schedule template instead of the default: 'NAME' (its\n"
         "                 defaults) or 'NAME(knob=value,...)' with every knob, as\n"
         "                 'convjit info --schedules' lists them, e.g. 'gpu_cublas(columns_layout=1,threads=64)'\n"
         "\n" +
         std::string(kDescriptor) + "\n" + kProblemOptions;
}

std::string tune_usage() {
  return "usage: convjit tune [problem options] DESCRIPTOR --budget SECONDS [--target T] [--db PATH]\n"
         "       convjit tune --batch FILE --budget SECONDS [--target T] [--db PATH]\n"
         "       convjit tune --export FILE | --import FILE [--db PATH]\n"
         "\n"
         "Autotunes each problem for SECONDS: an evolutionary search over the schedule\n"
         "templates' knobs, starting from the defaults and from the best record of the\n"
         "nearest tuned spec; every candidate is checked against the default kernel's\n"
         "output and timed with warm-up and medians. The winner (faster than the default\n"
         "with cold caches, and at most 5% slower with warm ones) is recorded in the\n"
         "tuning database, which every later request for the same spec and target uses.\n"
         "A progress line on stderr shows candidates, best time and time left; rejected\n"
         "candidates are listed with the reason.\n"
         "\n"
         "Options:\n"
         "  --budget SECONDS   tuning time per problem\n"
         "  --batch FILE       a shape file: one problem a line, as on the command line\n"
         "  --target T         host (default), host-cuda (needs a GPU to measure) or a Halide\n"
         "                     target string\n"
         "  --db PATH          the tuning database; default $CONVJIT_TUNING_DB, else\n"
         "                     tuning.sqlite in the kernel cache directory\n"
         "  --export FILE      write every record as JSON lines (for machines of the same kind)\n"
         "  --import FILE      add the records of a JSON lines file\n"
         "\n" +
         std::string(kDescriptor) + "\n" + kProblemOptions;
}

std::string aot_usage() {
  return "usage: convjit aot --batch FILE --target T1[,T2...] --name NAME -o DIR [--db PATH]\n"
         "       convjit aot --inspect LIB\n"
         "\n"
         "Compiles every problem of a shape file for every target ahead of time into\n"
         "DIR/lib/libNAME.a, DIR/include/NAME.h and DIR/lib/cmake/NAME/NAMEConfig.cmake:\n"
         "one entry point per problem (named after the descriptor's n<name>, else conv<i>),\n"
         "NAME_run() dispatching on a spec, and run-time dispatch over the targets (the\n"
         "first listed target the machine supports runs: by the CPU's features; a CUDA\n"
         "target embeds its PTX and runs only where the NVIDIA driver reports a device).\n"
         "Each problem uses its tuned schedule when the tuning database has one. Building\n"
         "against or running the library needs neither Halide nor LLVM. Nothing is left at\n"
         "DIR on failure.\n"
         "\n"
         "Options:\n"
         "  --batch FILE       the problems, one a line as on the command line\n"
         "  --target LIST      comma-separated: host and/or Halide target strings, e.g.\n"
         "                     x86-64-linux-avx512,x86-64-linux-avx2-fma,x86-64-linux-sse41\n"
         "                     or host-cuda,host (GPU where present, else the CPU)\n"
         "  --name NAME        a C identifier: the library, header and function prefix\n"
         "  -o DIR             the output directory (must not exist, or be empty)\n"
         "  --db PATH          the tuning database (default: as convjit tune)\n"
         "  --inspect LIB      print the provenance (versions, target, schedule, tuning record\n"
         "                     of every kernel) embedded in a generated library\n";
}

std::string bench_usage() {
  return "usage: convjit bench [problem options] DESCRIPTOR [options]\n"
         "       convjit bench --batch FILE [options]\n"
         "\n"
         "Times every layer through convjit (its tuned schedule when the tuning database has\n"
         "one, else the default) and, in the same process, through oneDNN: on its preferred\n"
         "blocked layouts with the data already reordered ('blocked'), and from NCHW to NCHW\n"
         "with the reorders timed ('nchw'). Prints per layer and thread count: times,\n"
         "ratios (oneDNN time / convjit time), GFLOP/s, the fraction of the FMA peak\n"
         "measured alongside the layer and the time the kernel took to be ready (a compile,\n"
         "or a cache load), then the geometric mean of the ratios. convjit and oneDNN's two\n"
         "forms run alternately, in 5 rounds of a warm-up run and N/5 timed runs each, with\n"
         "the FMA peak measured in every round: each time is the median of its N runs. Idle\n"
         "OpenMP workers are kept from spinning (OMP_WAIT_POLICY=passive).\n"
         "\n"
         "Options:\n"
         "  --batch FILE       a shape file: one problem a line, as on the command line\n"
         "  --threads LIST     thread counts, comma-separated (default 1,2)\n"
         "  --repeat N         timed runs per measurement, in 5 rounds (default 20)\n"
         "  --json             one JSON object per layer and thread count: name, descriptor,\n"
         "                     threads, convjit_ms, onednn_blocked_ms, onednn_nchw_ms, gflops,\n"
         "                     peak_fraction, peak_gflops, ready_ms, wtag, buffer_sets,\n"
         "                     schedule\n"
         "  --no-onednn        time convjit alone\n"
         "  --weights MODE     prepared (default): layers with 1 MiB of weights or\n"
         "                     more, whose output channels fill blocks of 16, are timed\n"
         "                     with their weights in oihw16o (preferred_weight_layout),\n"
         "                     reordered once beforehand (convert_weights), as oneDNN's\n"
         "                     weights are in both of its timings; given: every layer with\n"
         "                     its weights as the problem gives them (oihw, iohw, ...)\n"
         "  --buffers MODE     warm (default): every run reuses one copy of the layer's\n"
         "                     data, which stays in the caches it fits in; cold: each run\n"
         "                     (convjit's and oneDNN's) takes the next of 2-8 copies, more\n"
         "                     than a 32 MB last-level cache holds, as the tuner measures\n"
         "                     (CPU targets)\n"
         "  --target T         host (default), another CPU target string, or host-cuda: then\n"
         "                     CUDA device 0 is timed on device-resident data (no oneDNN, no\n"
         "                     threads) against its FP32 peak; bench/cudnn_compare.py adds\n"
         "                     cuDNN's times through PyTorch\n"
         "\n" +
         std::string(kDescriptor) + "\n" + kProblemOptions;
}

bool is_help(const std::string& arg) { return arg == "--help" || arg == "-h"; }

}  // namespace

std::string usage_text(const std::string& command) {
  if (command == "run") return run_usage();
  if (command == "info") return info_usage();
  if (command == "compile") return compile_usage();
  if (command == "cache") return cache_usage();
  if (command == "tune") return tune_usage();
  if (command == "aot") return aot_usage();
  if (command == "bench") return bench_usage();
  return general_usage();
}

bool route_arguments(const std::string& command, const std::vector<std::string>& args,
                     const std::vector<ToolOption>& tool_options, RoutedArguments* routed,
                     CommandError* error) {
  *routed = RoutedArguments();
  for (const std::string& arg : args) {
    if (is_help(arg)) {
      routed->help = true;
      return true;
    }
  }
  auto usage_error = [&](const std::string& message) {
    error->message = message + " (see 'convjit " + command + " --help')";
    error->exit_code = kExitUsage;
    return false;
  };
  std::vector<std::string> problem_options;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (arg.empty() || arg[0] != '-' || arg == "-") {
      if (!routed->descriptor.empty()) {
        return usage_error("unexpected argument '" + arg + "': the descriptor was already given as '" +
                           routed->descriptor + "'; a command takes one descriptor");
      }
      if (arg.empty()) return usage_error("the descriptor is an empty string");
      routed->descriptor = arg;
      continue;
    }
    const size_t eq = arg.find('=');
    const std::string name = arg.substr(0, eq);
    const ToolOption* tool = nullptr;
    for (const ToolOption& option : tool_options) {
      if (name == option.name) tool = &option;
    }
    if (tool != nullptr) {
      if (routed->options.count(name) != 0) {
        return usage_error("option " + name + " is given twice");
      }
      std::string value;
      if (!tool->takes_value) {
        if (eq != std::string::npos) return usage_error("option " + name + " takes no value");
      } else if (eq != std::string::npos) {
        value = arg.substr(eq + 1);
      } else if (i + 1 < args.size()) {
        value = args[++i];
      } else {
        return usage_error("option " + name + " is missing its value");
      }
      if (tool->takes_value && value.empty()) {
        return usage_error("option " + name + " has an empty value");
      }
      routed->options[name] = value;
      continue;
    }
    bool takes_value = false;
    if (is_problem_option(arg, &takes_value)) {
      problem_options.push_back(arg);
      if (takes_value) {
        if (i + 1 >= args.size()) return usage_error("option " + name + " is missing its value");
        problem_options.push_back(args[++i]);
      }
      continue;
    }
    return usage_error("unknown option '" + name + "' for 'convjit " + command + "'");
  }
  routed->problem_tokens = problem_options;
  if (!routed->descriptor.empty()) routed->problem_tokens.push_back(routed->descriptor);
  return true;
}

int report_error(const std::string& message, int exit_code) {
  // One line whatever the message holds: callers (and tests) rely on it.
  std::string line;
  bool pending_break = false;
  for (char c : message) {
    if (c == '\n' || c == '\r') {
      pending_break = !line.empty();
      continue;
    }
    if (pending_break) {
      line += "; ";
      pending_break = false;
    }
    line += c;
  }
  if (line.empty()) line = "unknown error";
  std::fflush(stdout);
  std::fprintf(stderr, "convjit: error: %s\n", line.c_str());
  return exit_code;
}

int report_error(const CommandError& error) { return report_error(error.message, error.exit_code); }

int report_error(const Status& status) { return report_error(status.message(), kExitFailure); }

bool problems_from_arguments(const std::string& command, const RoutedArguments& routed,
                             std::vector<Problem>* problems, CommandError* error) {
  auto batch = routed.options.find("--batch");
  if (batch != routed.options.end()) {
    if (!routed.problem_tokens.empty()) {
      *error = {"--batch takes the problems from " + batch->second +
                    "; give no descriptor or problem options on the command line",
                kExitUsage};
      return false;
    }
    auto read = read_problem_file(batch->second);
    if (!read.ok()) {
      *error = {read.status().message(), kExitFailure};
      return false;
    }
    *problems = *read;
    return true;
  }
  if (routed.descriptor.empty()) {
    *error = {"missing DESCRIPTOR or --batch FILE (see 'convjit " + command + " --help')", kExitUsage};
    return false;
  }
  auto problem = parse_problem(routed.problem_tokens);
  if (!problem.ok()) {
    *error = {problem.status().message(), kExitFailure};
    return false;
  }
  problems->assign(1, *problem);
  return true;
}

int run_command_line(const std::vector<std::string>& args) {
  try {
    if (args.empty()) {
      std::fputs(general_usage().c_str(), stderr);
      return report_error("no command given; expected run, info, compile, cache, tune, aot, bench or help", kExitUsage);
    }
    const std::string& command = args[0];
    std::vector<std::string> rest(args.begin() + 1, args.end());
    if (is_help(command)) {
      std::fputs(general_usage().c_str(), stdout);
      return kExitOk;
    }
    if (command == "help") {
      if (rest.size() > 1) return report_error("'convjit help' takes at most one command", kExitUsage);
      std::string topic = rest.empty() ? "" : rest[0];
      if (!topic.empty() && topic != "run" && topic != "info" && topic != "compile" && topic != "cache" &&
          topic != "tune" && topic != "aot" && topic != "bench") {
        std::fputs(general_usage().c_str(), stderr);
        return report_error("unknown command '" + topic + "'; expected run, info, compile, cache, tune, aot or bench",
                            kExitUsage);
      }
      std::fputs(usage_text(topic).c_str(), stdout);
      return kExitOk;
    }
    if (command == "run") return run_command(rest);
    if (command == "info") return info_command(rest);
    if (command == "compile") return compile_command(rest);
    if (command == "cache") return cache_command(rest);
    if (command == "tune") return tune_command(rest);
    if (command == "aot") return aot_command(rest);
    if (command == "bench") return bench_command(rest);
    std::fputs(general_usage().c_str(), stderr);
    return report_error("unknown command '" + command + "'; expected run, info, compile, cache, tune, aot, bench or help",
                        kExitUsage);
  } catch (const std::bad_alloc&) {
    return report_error("out of memory", kExitFailure);
  } catch (const std::exception& e) {
    return report_error(std::string("internal error: ") + e.what(), kExitFailure);
  } catch (...) {
    return report_error("internal error: unknown exception", kExitFailure);
  }
}

}  // namespace convjit
