// Compiles scheduled pipelines to objects and shared objects, and writes the
// readable forms of generated code; the only place Halide's exceptions are caught
// during compilation.
#include "pipeline_compiler.h"

#include <spawn.h>
#include <sys/wait.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

extern char** environ;

namespace convjit {

StatusOr<Halide::Target> resolve_target(const std::string& text) {
  if (text == "host") return Halide::get_host_target();
  if (!Halide::Target::validate_target_string(text)) {
    return Status::invalid_argument("target '" + text +
                                    "': not a Halide target string (e.g. host, x86-64-linux-avx2-fma)");
  }
  Halide::Target target(text);
  if (target.arch != Halide::Target::X86) {
    return Status::unsupported("target '" + text + "': only x86 CPU targets are supported so far");
  }
  if (target.has_gpu_feature()) {
    return Status::unsupported("target '" + text + "': GPU targets are not supported yet");
  }
  return target;
}

Status compile_to_object(const ConvAlgorithm& algorithm, const Halide::Target& target,
                         const std::string& function_name, const std::string& object_path) {
  return catch_halide_errors("compiling " + function_name, [&] {
    Halide::Pipeline pipeline(algorithm.output);
    pipeline.compile_to_object(object_path, algorithm.arguments(), function_name,
                               target.with_feature(Halide::Target::NoRuntime));
  });
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
