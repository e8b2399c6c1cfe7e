// Compilation of a scheduled convolution pipeline for a target: object code linked
// into a loadable shared object, or the human-readable forms (statement, HTML,
// assembly). Internal header (includes Halide.h).
//
// One code path serves run-time compilation and (later) the disk cache and AOT:
// each kernel is compiled with Halide's NoRuntime feature and finds the one Halide
// runtime of the process (runtime/halide_runtime_library.h) when it is loaded.
// Halide's exceptions stop here: every function returns a Status.
#pragma once

#include <string>

#include "Halide.h"
#include "convjit/status.h"
#include "lowering.h"

namespace convjit {

// "host", "host-cuda" or a Halide target string ("x86-64-linux-avx2-fma",
// "x86-64-linux-cuda-cuda_capability_86", ...). The result is the host's or the
// given target; a CUDA target without a capability gets cuda_capability_80 (see
// the .cpp). Errors name the string and the rule.
StatusOr<Halide::Target> resolve_target(const std::string& text);

// Whether kernels for `target` run on a CUDA device (their buffers then need
// device copies or device pointers).
bool is_gpu_target(const Halide::Target& target);

// The PTX text of a CUDA-target pipeline: every GPU kernel of `algorithm`
// (already scheduled), as Halide hands it to the CUDA driver.
StatusOr<std::string> generate_ptx(const ConvAlgorithm& algorithm, const Halide::Target& target,
                                   const std::string& function_name);

// Compiles `algorithm` (already scheduled) to an object file exporting
// `function_name(halide_buffer_t*...)` and `function_name_argv(void**)`, without
// a Halide runtime of its own.
Status compile_to_object(const ConvAlgorithm& algorithm, const Halide::Target& target,
                         const std::string& function_name, const std::string& object_path);

// The system C++ compiler driver: $CONVJIT_CXX, else the compiler convjit was built
// with, else "c++".
std::string cxx_driver();

// Runs argv[0] (looked up in PATH) with arguments, without a shell, so paths need
// no quoting; an error names the command line.
Status run_program(const std::vector<std::string>& argv);

// Links object files into a shared object with cxx_driver().
Status link_shared_object(const std::vector<std::string>& objects, const std::string& so_path);

enum class ReadableForm { kStmt, kHtml, kAssembly, kObject };
// Writes what Halide generates for the scheduled `algorithm` in the given form
// (the object form includes a Halide runtime so that it links on its own; PTX
// comes from generate_ptx).
Status write_generated_code(const ConvAlgorithm& algorithm, const Halide::Target& target,
                            const std::string& function_name, ReadableForm form,
                            const std::string& path);

// Runs `body`, turning a Halide exception into an internal Status prefixed by `what`.
template <typename Body>
Status catch_halide_errors(const std::string& what, Body&& body) {
  try {
    body();
  } catch (const Halide::Error& e) {
    return Status::internal(what + ": Halide error: " + e.what());
  } catch (const std::exception& e) {
    return Status::internal(what + ": " + e.what());
  }
  return Status();
}

}  // namespace convjit
