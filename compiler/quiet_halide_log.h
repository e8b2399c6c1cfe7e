// QuietHalideLog: while alive, what Halide and its autoscheduler plugins write to
// std::cerr is held back instead of reaching the terminal.
//
// Halide's autoscheduler Adams2019 writes its progress ("Pass 0 of 1, cost: ...",
// "Best cost", cache hit counts) at its log level 0, which no setting silences, and
// the schedules it makes draw Halide compile-time warnings about storage folding of
// Funcs the user never wrote. During `convjit tune` both broke the tuner's own
// progress line. convjit writes with stdio (stderr), which this leaves alone.
//
// With HL_DEBUG_AUTOSCHEDULE or HL_DEBUG_CODEGEN set (asking Halide for its logs),
// nothing is held back. Not thread-safe: hold it under halide_compile_mutex(), as every
// Halide call in convjit is.
#pragma once

#include <cstdlib>
#include <iostream>
#include <sstream>

namespace convjit {

class QuietHalideLog {
 public:
  QuietHalideLog() {
    if (std::getenv("HL_DEBUG_AUTOSCHEDULE") || std::getenv("HL_DEBUG_CODEGEN")) return;
    saved_ = std::cerr.rdbuf(held_.rdbuf());
  }
  ~QuietHalideLog() {
    if (saved_) std::cerr.rdbuf(saved_);
  }
  QuietHalideLog(const QuietHalideLog&) = delete;
  QuietHalideLog& operator=(const QuietHalideLog&) = delete;

 private:
  std::ostringstream held_;
  std::streambuf* saved_ = nullptr;
};

}  // namespace convjit
