// CompiledKernel: loaded machine code for one cache key; KernelImpl: a request's
// view of it (the spec as the caller wrote it, which may differ from the canonical
// spec the code was compiled for only in how it is written).
#pragma once

#include <memory>
#include <string>

#include "convjit/conv_spec.h"
#include "halide_runtime_library.h"
#include "pipeline_compiler.h"
#include "shared_object_loader.h"

namespace convjit {

// Owns a loaded shared object; unloads it when the last Kernel using it is gone.
class CompiledKernel {
 public:
  using ArgvFunction = int (*)(void**);
  // `runtime` is the process's Halide runtime the code was loaded against.
  CompiledKernel(LoadedObject library, ArgvFunction entry, const HalideRuntimeLibrary* runtime,
                 const Halide::Target& target, std::string schedule, std::string key, double compile_seconds,
                 int64_t code_bytes)
      : library_(library), entry_(entry), runtime_(runtime), target_(target.to_string()),
        runs_on_cuda_(is_gpu_target(target)), schedule_(std::move(schedule)), key_(std::move(key)),
        compile_seconds_(compile_seconds), code_bytes_(code_bytes) {}
  ~CompiledKernel();
  CompiledKernel(const CompiledKernel&) = delete;
  CompiledKernel& operator=(const CompiledKernel&) = delete;

  ArgvFunction entry() const { return entry_; }
  const std::string& target() const { return target_; }
  const HalideRuntimeLibrary& runtime() const { return *runtime_; }
  // Whether its code runs on a CUDA device (its target has the cuda feature).
  bool runs_on_cuda() const { return runs_on_cuda_; }
  const std::string& schedule() const { return schedule_; }
  const std::string& key() const { return key_; }
  // Time to make it ready: compile, or load from the disk cache.
  double compile_seconds() const { return compile_seconds_; }
  int64_t code_bytes() const { return code_bytes_; }  // size of its shared object

 private:
  LoadedObject library_;
  ArgvFunction entry_;
  const HalideRuntimeLibrary* runtime_;
  std::string target_;
  bool runs_on_cuda_;
  std::string schedule_, key_;
  double compile_seconds_;
  int64_t code_bytes_;
};

class KernelImpl {
 public:
  KernelImpl(ConvSpec spec, std::shared_ptr<const CompiledKernel> code)
      : spec_(std::move(spec)), code_(std::move(code)) {}
  const ConvSpec& spec() const { return spec_; }
  const CompiledKernel& code() const { return *code_; }

 private:
  ConvSpec spec_;
  std::shared_ptr<const CompiledKernel> code_;
};

}  // namespace convjit
