// CUDA targets: PTX for every family, every GPU template and every benchmark layer
// passes NVIDIA's ptxas (no GPU needed); requests for CUDA kernels on a machine
// without a device fail with a clear error; with a device, every GPU template
// matches the naive reference.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <random>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "convjit/conv_spec.h"
#include "convjit/descriptor.h"
#include "convjit/runtime.h"
#include "gemm_lowering.h"
#include "reference_conv.h"
#include "layer_cases.h"
#include "square_conv.h"
#include "scoped_test_state.h"

namespace convjit {
namespace {

// ptxas from $CONVJIT_PTXAS, else the CUDA toolkit's default place; "" if absent.
std::string find_ptxas() {
  if (const char* env = std::getenv("CONVJIT_PTXAS"); env && *env) return env;
  const char* fixed = "/usr/local/cuda/bin/ptxas";
  return access(fixed, X_OK) == 0 ? fixed : "";
}

struct PtxasResult {
  bool ok = false;
  std::string output;
  int max_registers = 0;
};

PtxasResult run_ptxas(const std::string& ptxas, const std::string& ptx_path, const std::string& arch) {
  const std::string cmd = ptxas + " -v -arch=" + arch + " " + ptx_path + " -o /dev/null 2>&1";
  PtxasResult r;
  FILE* pipe = popen(cmd.c_str(), "r");
  if (!pipe) return r;
  char buf[512];
  while (fgets(buf, sizeof buf, pipe)) r.output += buf;
  const int status = pclose(pipe);
  r.ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
  static const std::regex used("Used ([0-9]+) registers");
  for (std::sregex_iterator it(r.output.begin(), r.output.end(), used), end; it != end; ++it)
    r.max_registers = std::max(r.max_registers, std::stoi((*it)[1]));
  return r;
}

std::vector<LayerCase> benchmark_layers() {
  std::vector<LayerCase> layers;
  auto problems = read_problem_file(CONVJIT_SOURCE_DIR "/bench/shapes");
  EXPECT_TRUE(problems.ok()) << problems.status().message();
  if (!problems.ok()) return layers;
  for (const Problem& p : *problems) layers.push_back({p.name, p.spec});
  return layers;
}

// Knob values in name order, as ScheduleRequest wants them.
std::string random_point(const ScheduleSpace& space, std::mt19937& rng) {
  std::vector<std::pair<std::string, int>> values;
  for (const ScheduleKnob& k : space.knobs)
    values.push_back({k.name, k.choices[std::uniform_int_distribution<size_t>(0, k.choices.size() - 1)(rng)]});
  std::sort(values.begin(), values.end());
  std::string out;
  for (const auto& [name, value] : values) out += (out.empty() ? "" : ",") + name + "=" + std::to_string(value);
  return out;
}

// Emits PTX for `spec` on each GPU template (defaults and one random point) and
// checks it with ptxas: capability 8.0 PTX for sm_80 and sm_90, 8.6 for sm_90.
void check_ptx(const LayerCase& c, std::mt19937& rng, bool random_points) {
  const std::string ptxas = find_ptxas();
  TempDir dir;
  auto spaces = schedule_spaces(c.spec, "host-cuda");
  ASSERT_TRUE(spaces.ok()) << c.name << ": " << spaces.status().message();
  int templates = 0;
  for (const ScheduleSpace& space : *spaces) {
    if (!space.not_applicable.empty() || space.template_name == "halide_autoscheduler") continue;
    ++templates;
    std::vector<std::string> points = {space.defaults};
    if (random_points) points.push_back(random_point(space, rng));
    for (const std::string& params : points) {
      const ScheduleRequest request{space.template_name, params};
      for (const auto& [target, arches] :
           std::vector<std::pair<std::string, std::vector<std::string>>>{
               {"host-cuda", {"sm_80", "sm_90"}}, {"host-cuda-cuda_capability_86", {"sm_90"}}}) {
        const std::string label = c.name + " " + space.template_name + "(" + params + ") " + target;
        const std::string path = dir.path() + "/kernel.ptx";
        const Status emitted = Runtime::global().emit(c.spec, target, EmitFormat::kPtx, path, &request);
        if (space.template_name == "gpu_cublas" && gemm_reads_input_directly(c.spec) && !c.spec.has_bias) {
          // cuBLAS alone: no Halide GPU code, and emit says so.
          EXPECT_FALSE(emitted.ok()) << label;
          EXPECT_NE(emitted.message().find("cuBLAS computes this kernel entirely"), std::string::npos)
              << label << ": " << emitted.message();
          continue;
        }
        ASSERT_TRUE(emitted.ok()) << label << ": " << emitted.message();
        for (const std::string& arch : arches) {
          const PtxasResult r = run_ptxas(ptxas, path, arch);
          EXPECT_TRUE(r.ok) << label << " ptxas -arch=" << arch << ":\n" << r.output;
          // 255 is the hardware's per-thread limit; more would not assemble at all.
          EXPECT_GT(r.max_registers, 0) << label << ": no kernel in the PTX\n" << r.output;
          EXPECT_LE(r.max_registers, 255) << label;
        }
      }
    }
  }
  EXPECT_GE(templates, 1) << c.name << ": no GPU template applies";
}

class PtxChecks : public testing::Test {
 protected:
  void SetUp() override {
    if (find_ptxas().empty()) GTEST_SKIP() << "ptxas not found (install the CUDA toolkit or set CONVJIT_PTXAS)";
  }
};

TEST_F(PtxChecks, EveryFamilyOnEveryGpuTemplatePassesPtxas) {
  std::mt19937 rng(20261121);
  for (const LayerCase& c : layer_cases()) check_ptx(c, rng, /*random_points=*/true);
}

TEST_F(PtxChecks, EveryBenchmarkLayerPassesPtxas) {
  std::mt19937 rng(5);
  for (const LayerCase& c : benchmark_layers()) check_ptx(c, rng, /*random_points=*/false);
}

TEST(CudaTargets, HostCudaGetsCapability80AndOtherGpuApisAreRefused) {
  auto cuda = resolve_target_string("host-cuda");
  ASSERT_TRUE(cuda.ok()) << cuda.status().message();
  EXPECT_NE(cuda->find("cuda_capability_80"), std::string::npos) << *cuda;
  auto cuda86 = resolve_target_string("host-cuda-cuda_capability_86");
  ASSERT_TRUE(cuda86.ok());
  EXPECT_NE(cuda86->find("cuda_capability_86"), std::string::npos) << *cuda86;
  EXPECT_EQ(cuda86->find("cuda_capability_80"), std::string::npos) << *cuda86;
  auto opencl = resolve_target_string("host-opencl");
  ASSERT_FALSE(opencl.ok());
  EXPECT_EQ(opencl.status().code(), StatusCode::kUnsupported);
  EXPECT_NE(opencl.status().message().find("CUDA"), std::string::npos) << opencl.status().message();
}

TEST(CudaTargets, CpuTemplatesSayWhyTheyDoNotApplyAndGpuTemplatesApply) {
  auto spaces = schedule_spaces(square_conv(16, 16, 8, 8, 3, 1, 1), "host-cuda");
  ASSERT_TRUE(spaces.ok());
  for (const ScheduleSpace& s : *spaces) {
    if (s.template_name.rfind("cpu_", 0) == 0) {
      EXPECT_NE(s.not_applicable.find("CPU target"), std::string::npos) << s.template_name << ": " << s.not_applicable;
    } else if (s.template_name.rfind("gpu_", 0) == 0) {
      EXPECT_EQ(s.not_applicable, "") << s.template_name;
    }
  }
  auto host = schedule_spaces(square_conv(16, 16, 8, 8, 3, 1, 1), "host");
  ASSERT_TRUE(host.ok());
  for (const ScheduleSpace& s : *host) {
    if (s.template_name.rfind("gpu_", 0) == 0) EXPECT_EQ(s.not_applicable, "needs a CUDA target");
  }
}

TEST(CudaTargets, PtxOfACpuTargetIsAClearError) {
  TempDir dir;
  const Status st = Runtime::global().emit(square_conv(4, 4, 6, 6, 3, 1, 1), "host", EmitFormat::kPtx, dir.path() + "/k.ptx");
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("CUDA target"), std::string::npos) << st.message();
}

TEST(CudaTargets, CpuKernelRefusesADeviceTensor) {
  const ConvSpec s = square_conv(2, 2, 4, 4, 1, 1, 0);
  auto kernel = Runtime::global().get_kernel(s, "host");
  ASSERT_TRUE(kernel.ok());
  std::vector<float> x(32), w(4), y(32);
  const Status st = kernel->run(TensorView::cuda(0x1000, {1, 2, 4, 4}), TensorView::dense(w.data(), {2, 2, 1, 1}),
                                nullptr, TensorView::dense(y.data(), {1, 2, 4, 4}));
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("CPU kernel"), std::string::npos) << st.message();
}

// The inputs, reference and run of one spec on one kernel.
double run_against_reference(const Kernel& kernel, const ConvSpec& s, Status* status) {
  const std::vector<double> src = random_values(input_elements(s), 1), wei = random_values(weight_elements(s), 2),
                            bias = random_values(s.c_out, 3);
  const auto in = input_shape(s), out = output_shape(s);
  const auto w = weight_shape(s);
  const std::vector<int64_t> in_dims(in.begin(), in.end()), out_dims(out.begin(), out.end()),
      w_dims(w.begin(), w.begin() + weight_rank(s));
  std::vector<double> actual;
  std::vector<double> s_src = src, s_wei = wei, s_bias = bias;
  if (s.dtype == DataType::kFloat16) {
    s_src = round_to_half(src);
    s_wei = round_to_half(wei);
    s_bias = round_to_half(bias);
    std::vector<uint16_t> x = to_half(s_src), k = to_half(s_wei), b = to_half(s_bias), y(output_elements(s));
    const TensorView bv = TensorView::dense(b.data(), {s.c_out});
    *status = kernel.run(TensorView::dense(x.data(), in_dims), TensorView::dense(k.data(), w_dims),
                         s.has_bias ? &bv : nullptr, TensorView::dense(y.data(), out_dims));
    actual = from_half(y);
  } else {
    std::vector<float> x = to_float(src), k = to_float(wei), b = to_float(bias), y(output_elements(s));
    const TensorView bv = TensorView::dense(b.data(), {s.c_out});
    *status = kernel.run(TensorView::dense(x.data(), in_dims), TensorView::dense(k.data(), w_dims),
                         s.has_bias ? &bv : nullptr, TensorView::dense(y.data(), out_dims));
    actual = from_float(y);
  }
  return relative_error(actual, reference_conv(s, s_src, s_wei, s.has_bias ? &s_bias : nullptr));
}

bool have_cuda_device() {
  // A tiny CUDA kernel's run says whether a device exists without a driver probe here.
  const ConvSpec s = square_conv(1, 1, 2, 2, 1, 1, 0);
  auto kernel = Runtime::global().get_kernel(s, "host-cuda");
  if (!kernel.ok()) return false;
  Status st;
  run_against_reference(*kernel, s, &st);
  return st.ok();
}

TEST(CudaTargets, KernelCompilesWithoutADeviceAndRunningSaysWhatIsMissing) {
  const ConvSpec s = square_conv(8, 8, 10, 10, 3, 1, 1);
  auto kernel = Runtime::global().get_kernel(s, "host-cuda");
  ASSERT_TRUE(kernel.ok()) << kernel.status().message();
  EXPECT_NE(kernel->target().find("cuda_capability_80"), std::string::npos) << kernel->target();
  EXPECT_EQ(kernel->schedule().rfind("gpu_", 0), 0u) << kernel->schedule();
  Status st;
  const double error = run_against_reference(*kernel, s, &st);
  if (st.ok()) {
    EXPECT_LE(error, 1e-4);  // a device is present: the result must be right
  } else {
    EXPECT_EQ(st.code(), StatusCode::kUnavailable) << st.message();
    EXPECT_NE(st.message().find("no CUDA device"), std::string::npos) << st.message();
  }
}

TEST(CudaTargets, CublasKernelLoadsAgainstTheBridgeAndRunningSaysWhatIsMissing) {
  // Loading resolves the kernel's call to convjit_conv_gemm in the process's Halide
  // runtime library, where the bridge object is linked.
  RuntimeOptions options;
  options.disk.enabled = false;
  options.tuning_database = "";
  Runtime runtime(options);
  ConvSpec s = square_conv(8, 12, 9, 9, 3, 1, 1);
  s.has_bias = true;
  for (const char* params : {"columns_layout=0,threads=128", "columns_layout=1,threads=64"}) {
    auto kernel = runtime.get_kernel(s, "host-cuda", ScheduleRequest{"gpu_cublas", params});
    ASSERT_TRUE(kernel.ok()) << kernel.status().message();
    EXPECT_EQ(kernel->schedule(), std::string("gpu_cublas(") + params + ")");
    Status st;
    const double error = run_against_reference(*kernel, s, &st);
    if (st.ok()) {
      EXPECT_LE(error, 1e-4) << params;
    } else {
      EXPECT_EQ(st.code(), StatusCode::kUnavailable) << st.message();
    }
  }
  // Where cuBLAS does everything (1x1, no padding, no bias) the kernel has no GPU
  // loops of its own but runs the same way.
  auto pointwise = runtime.get_kernel(square_conv(8, 12, 9, 9, 1, 1, 0), "host-cuda",
                                      ScheduleRequest{"gpu_cublas", "columns_layout=0,threads=128"});
  ASSERT_TRUE(pointwise.ok()) << pointwise.status().message();
  // Not a default: the tuner weighs cuBLAS against the Halide kernels.
  auto by_default = runtime.get_kernel(square_conv(8, 12, 9, 9, 1, 1, 0), "host-cuda");
  ASSERT_TRUE(by_default.ok());
  EXPECT_EQ(by_default->schedule().rfind("gpu_cublas", 0), std::string::npos) << by_default->schedule();
}

TEST(CudaTargets, CublasSaysWhyItDoesNotApply) {
  ConvSpec transposed = square_deconv(8, 4, 5, 5, 4, 2, 1);
  for (const ConvSpec& s : {transposed, ConvSpec::depthwise(1, 8, 9, 9, 1, 3, 3)}) {
    auto spaces = schedule_spaces(s, "host-cuda");
    ASSERT_TRUE(spaces.ok());
    bool found = false;
    for (const ScheduleSpace& space : *spaces) {
      if (space.template_name != "gpu_cublas") continue;
      found = true;
      EXPECT_NE(space.not_applicable, "");
    }
    EXPECT_TRUE(found);
  }
}

TEST(CudaDevice, EveryGpuTemplateMatchesTheReference) {
  if (!have_cuda_device()) GTEST_SKIP() << "no CUDA device: GPU correctness is checked on a GPU host";
  RuntimeOptions options;
  options.disk.enabled = false;
  options.tuning_database = "";
  Runtime runtime(options);
  std::mt19937 rng(77);
  for (const LayerCase& c : layer_cases()) {
    auto spaces = schedule_spaces(c.spec, "host-cuda");
    ASSERT_TRUE(spaces.ok());
    for (const ScheduleSpace& space : *spaces) {
      if (!space.not_applicable.empty()) continue;
      std::vector<std::string> points = {space.defaults};
      if (space.template_name != "halide_autoscheduler") {
        for (int k = 0; k < 3; ++k) points.push_back(random_point(space, rng));
      }
      for (const std::string& params : points) {
        const std::string label = c.name + " " + space.template_name + "(" + params + ")";
        auto kernel = runtime.get_kernel(c.spec, "host-cuda", ScheduleRequest{space.template_name, params});
        ASSERT_TRUE(kernel.ok()) << label << ": " << kernel.status().message();
        Status st;
        const double error = run_against_reference(*kernel, c.spec, &st);
        ASSERT_TRUE(st.ok()) << label << ": " << st.message();
        EXPECT_LE(error, c.spec.dtype == DataType::kFloat16 ? 1e-2 : 1e-4) << label;
      }
    }
  }
}

}  // namespace
}  // namespace convjit
