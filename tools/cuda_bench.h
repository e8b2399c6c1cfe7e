// `convjit bench --target host-cuda`: the GPU form of the side-by-side benchmark.
#pragma once

#include <string>
#include <vector>

#include "convjit/descriptor.h"

namespace convjit {

// Times every problem's CUDA kernel on device-resident data and prints per layer the
// time, TFLOP/s and fraction of the device's FP32 peak (a table, or JSON lines that
// bench/cudnn_compare.py joins with cuDNN's times). Returns the exit code.
int bench_cuda(const std::vector<Problem>& problems, const std::string& target, int repeat, bool json);

}  // namespace convjit
