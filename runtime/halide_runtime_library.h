// The process's one Halide runtime (thread pool, error handler, allocator), shared
// by every kernel convjit loads.
//
// Kernels are compiled with Halide's NoRuntime feature, so their halide_* symbols
// stay undefined; this library compiles Halide's standalone runtime once per
// process, links it into a shared object and loads it with RTLD_GLOBAL before any
// kernel, so every kernel binds to the same thread pool. It also holds
// convjit_conv_gemm, the extern stage of GEMM-form kernels (conv_gemm_bridge.cpp).
// Thread-safe.
#pragma once

#include <mutex>
#include <string>

#include "Halide.h"
#include "convjit/disk_cache.h"
#include "convjit/status.h"

namespace convjit {

class HalideRuntimeLibrary {
 public:
  // Loads the runtime on first call: from `disk_cache` when it holds one for this
  // Halide and target (milliseconds), else by compiling it (about a second) and
  // storing it there. Later calls return it at once.
  static StatusOr<HalideRuntimeLibrary*> get(const Halide::Target& kernel_target,
                                             DiskCache* disk_cache = nullptr);

  // Not while kernels run: the pool is restarted.
  void set_num_threads(int threads) const;

  // The last message Halide's runtime reported on this thread, cleared by the read.
  static std::string take_last_error();

  // The runtime's device entry points (it is built with Halide's CUDA module, which
  // opens the driver only when a CUDA kernel first runs).
  struct DeviceCalls {
    int (*copy_to_host)(void*, halide_buffer_t*) = nullptr;
    int (*device_free)(void*, halide_buffer_t*) = nullptr;
    int (*cuda_wrap_device_ptr)(void*, halide_buffer_t*, uint64_t) = nullptr;
    int (*cuda_detach_device_ptr)(void*, halide_buffer_t*) = nullptr;
  };
  const DeviceCalls& device_calls() const { return device_calls_; }

 private:
  explicit HalideRuntimeLibrary(void* handle);
  void* handle_;
  int (*set_num_threads_)(int) = nullptr;
  void (*shutdown_thread_pool_)() = nullptr;
  DeviceCalls device_calls_;
};

// A fresh private directory for intermediate files, removed with its contents on
// destruction (the compiled code stays usable: loaded objects survive unlinking).
class ScratchDirectory {
 public:
  static StatusOr<ScratchDirectory> create();
  ScratchDirectory(ScratchDirectory&& other) noexcept : path_(std::move(other.path_)) { other.path_.clear(); }
  ScratchDirectory(const ScratchDirectory&) = delete;
  ~ScratchDirectory();
  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  explicit ScratchDirectory(std::string path) : path_(std::move(path)) {}
  std::string path_;
};

// Serializes Halide lowering and code generation: Halide 14 does not promise that
// compiling several pipelines on several threads at once is safe.
std::mutex& halide_compile_mutex();

}  // namespace convjit
