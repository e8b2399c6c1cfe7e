// Compiles scheduled pipelines to objects and shared objects, and writes the
// readable forms of generated code; the only place Halide's exceptions are caught
// during compilation.
#include "pipeline_compiler.h"

#include "host_target.h"
#include "quiet_halide_log.h"

#include <spawn.h>
#include <sys/wait.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <optional>
#include <sstream>

extern char** environ;

namespace convjit {

namespace {

constexpr Halide::Target::Feature kCudaCapabilities[] = {
    Halide::Target::CUDACapability30, Halide::Target::CUDACapability32, Halide::Target::CUDACapability35,
    Halide::Target::CUDACapability50, Halide::Target::CUDACapability61, Halide::Target::CUDACapability70,
    Halide::Target::CUDACapability75, Halide::Target::CUDACapability80, Halide::Target::CUDACapability86};

}  // namespace

StatusOr<Halide::Target> resolve_target(const std::string& text) {
  if (!Halide::Target::validate_target_string(text)) {
    return Status::invalid_argument("target '" + text +
                                    "': not a Halide target string (e.g. host, host-cuda, x86-64-linux-avx2-fma)");
  }
  // Halide reads "host-cuda..." as the host CPU plus the features that follow; the
  // host CPU's part loses what this CPU cannot execute (host_target.h).
  Halide::Target target(text);
  if (text == "host" || text.rfind("host-", 0) == 0) target = without_features_this_cpu_lacks(target);
  if (target.arch != Halide::Target::X86) {
    return Status::unsupported("target '" + text + "': only x86 hosts are supported so far");
  }
  if (target.has_gpu_feature() && !target.has_feature(Halide::Target::CUDA)) {
    return Status::unsupported("target '" + text + "': the only GPU API supported is CUDA (e.g. host-cuda)");
  }
  if (target.has_feature(Halide::Target::CUDA)) {
    bool has_capability = false;
    for (const auto capability : kCudaCapabilities) has_capability |= target.has_feature(capability);
    // Without a capability Halide would emit sm_20 code, which CUDA 12 and later no
    // longer accept; 8.0 runs on A100 and, through the driver's JIT, on H100/H200.
    if (!has_capability) target.set_feature(Halide::Target::CUDACapability80);
  }
  return target;
}

bool is_gpu_target(const Halide::Target& target) { return target.has_feature(Halide::Target::CUDA); }

Status compile_to_object(const ConvAlgorithm& algorithm, const Halide::Target& target,
                         const std::string& function_name, const std::string& object_path) {
  return catch_halide_errors("compiling " + function_name, [&] {
    std::optional<QuietHalideLog> quiet;
    if (algorithm.halide_autoscheduled) quiet.emplace();
    Halide::Pipeline pipeline(algorithm.output);
    pipeline.compile_to_object(object_path, algorithm.arguments(), function_name,
                               target.with_feature(Halide::Target::NoRuntime));
  });
}

StatusOr<std::string> generate_ptx(const ConvAlgorithm& algorithm, const Halide::Target& target,
                                   const std::string& function_name) {
  if (!is_gpu_target(target)) {
    return Status::invalid_argument("PTX needs a CUDA target (e.g. host-cuda), not '" + target.to_string() + "'");
  }
  std::string ptx;
  CONVJIT_RETURN_IF_ERROR(catch_halide_errors("generating PTX for " + function_name, [&] {
    Halide::Pipeline pipeline(algorithm.output);
    const Halide::Module module = pipeline.compile_to_module(algorithm.arguments(), function_name,
                                                             target.with_feature(Halide::Target::NoRuntime));
    for (const Halide::Buffer<>& buffer : module.buffers()) {
      // Halide names it "<api>_gpu_source_kernels": NUL-terminated PTX text.
      if (buffer.name() == "cuda_gpu_source_kernels") {
        const char* text = reinterpret_cast<const char*>(buffer.data());
        ptx.assign(text, strnlen(text, buffer.size_in_bytes()));
      }
    }
  }));
  if (ptx.empty() && algorithm.gemm_form) {
    return Status::invalid_argument(function_name +
                                    ": no PTX: cuBLAS computes this kernel entirely (its GEMM reads the input "
                                    "in place and no bias kernel follows), so Halide generates no GPU code for it");
  }
  if (ptx.empty()) return Status::internal(function_name + ": Halide generated no GPU kernel (schedule has no GPU loops)");
  return ptx;
}

std::string cxx_driver() {
  if (const char* env = std::getenv("CONVJIT_CXX"); env && *env) return env;
#ifdef CONVJIT_BUILD_CXX
  return CONVJIT_BUILD_CXX;
#else
  return "c++";
#endif
}

Status run_program(const std::vector<std::string>& argv) {
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid;
  int rc = posix_spawnp(&pid, args[0], nullptr, nullptr, args.data(), environ);
  if (rc != 0) {
    return Status::internal("cannot start '" + argv[0] + "': " + std::strerror(rc) +
                            " (set CONVJIT_CXX to a C++ compiler driver)");
  }
  int wstatus = 0;
  while (waitpid(pid, &wstatus, 0) < 0) {
    if (errno != EINTR) return Status::internal("waiting for '" + argv[0] + "': " + std::strerror(errno));
  }
  if (!WIFEXITED(wstatus) || WEXITSTATUS(wstatus) != 0) {
    std::ostringstream cmd;
    for (const std::string& a : argv) cmd << a << ' ';
    return Status::internal("command failed: " + cmd.str());
  }
  return Status();
}

Status link_shared_object(const std::vector<std::string>& objects, const std::string& so_path) {
  std::vector<std::string> argv = {cxx_driver(), "-shared", "-o", so_path};
  argv.insert(argv.end(), objects.begin(), objects.end());
  return run_program(argv);
}

Status write_generated_code(const ConvAlgorithm& algorithm, const Halide::Target& target,
                            const std::string& function_name, ReadableForm form,
                            const std::string& path) {
  {
    // Halide reports an unwritable path only through an assertion deep inside;
    // check first so the user gets the path and the reason.
    std::ofstream probe(path, std::ios::binary | std::ios::app);
    if (!probe) return Status::invalid_argument("cannot write '" + path + "': " + std::strerror(errno));
  }
  return catch_halide_errors("generating code for " + function_name, [&] {
    Halide::Pipeline pipeline(algorithm.output);
    const auto args = algorithm.arguments();
    switch (form) {
      case ReadableForm::kStmt:
        pipeline.compile_to_lowered_stmt(path, args, Halide::StmtOutputFormat::Text, target);
        break;
      case ReadableForm::kHtml:
        pipeline.compile_to_lowered_stmt(path, args, Halide::StmtOutputFormat::HTML, target);
        break;
      case ReadableForm::kAssembly:
        pipeline.compile_to_assembly(path, args, function_name, target);
        break;
      case ReadableForm::kObject:
        pipeline.compile_to_object(path, args, function_name, target);
        break;
    }
  });
}

}  // namespace convjit
