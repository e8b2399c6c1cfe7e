// Builds and loads the process's one Halide runtime; scratch directories for
// intermediate object files.
#include "halide_runtime_library.h"

#include <dirent.h>
#include <dlfcn.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <mutex>

#include <type_traits>

#include "code_fingerprint.h"
#include "conv_gemm_bridge_object.h"
#include "cuda_device.h"
#include "pipeline_compiler.h"
#include "shared_object_loader.h"
#include "static_parallel_for.h"

namespace convjit {
namespace {

thread_local std::string last_error;

// Installed as Halide's error handler: keeps the message for the failing call to
// return as a Status instead of printing it.
extern "C" void record_halide_error(void* /*user_context*/, const char* message) {
  last_error = message ? message : "unknown Halide runtime error";
  while (!last_error.empty() && (last_error.back() == '\n')) last_error.pop_back();
}

}  // namespace

std::mutex& halide_compile_mutex() {
  static std::mutex m;
  return m;
}

StatusOr<ScratchDirectory> ScratchDirectory::create() {
  const char* tmp = std::getenv("TMPDIR");
  std::string templ = std::string(tmp && *tmp ? tmp : "/tmp") + "/convjit-XXXXXX";
  if (mkdtemp(templ.data()) == nullptr) {
    return Status::internal("cannot create a scratch directory from '" + templ + "': " + std::strerror(errno));
  }
  return ScratchDirectory(templ);
}

ScratchDirectory::~ScratchDirectory() {
  if (path_.empty()) return;
  if (DIR* dir = opendir(path_.c_str())) {
    while (dirent* entry = readdir(dir)) {
      const std::string name = entry->d_name;
      if (name != "." && name != "..") unlink(file(name).c_str());
    }
    closedir(dir);
  }
  rmdir(path_.c_str());
}

HalideRuntimeLibrary::HalideRuntimeLibrary(void* handle) : handle_(handle) {
  set_num_threads_ = reinterpret_cast<int (*)(int)>(dlsym(handle_, "halide_set_num_threads"));
  shutdown_thread_pool_ = reinterpret_cast<void (*)()>(dlsym(handle_, "halide_shutdown_thread_pool"));
  using ErrorHandler = void (*)(void*, const char*);
  auto set_error_handler =
      reinterpret_cast<ErrorHandler (*)(ErrorHandler)>(dlsym(handle_, "halide_set_error_handler"));
  CONVJIT_CHECK(set_num_threads_ && shutdown_thread_pool_ && set_error_handler,
                "Halide runtime lacks its entry points");
  set_error_handler(&record_halide_error);
  // Parallel loops on convjit's pool: the same share of a loop for each thread on
  // every call (static_parallel_for.h has the measurements).
  using DoParFor = int (*)(void*, ParallelTask, int, int, uint8_t*);
  auto set_do_par_for = reinterpret_cast<DoParFor (*)(DoParFor)>(dlsym(handle_, "halide_set_custom_do_par_for"));
  CONVJIT_CHECK(set_do_par_for, "Halide runtime lacks halide_set_custom_do_par_for");
  set_do_par_for(&static_parallel_for);
  auto find = [&](auto& slot, const char* name) {
    slot = reinterpret_cast<std::remove_reference_t<decltype(slot)>>(dlsym(handle_, name));
    CONVJIT_CHECK(slot != nullptr, std::string("Halide runtime lacks ") + name);
  };
  find(device_calls_.copy_to_host, "halide_copy_to_host");
  find(device_calls_.device_free, "halide_device_free");
  find(device_calls_.cuda_wrap_device_ptr, "halide_cuda_wrap_device_ptr");
  find(device_calls_.cuda_detach_device_ptr, "halide_cuda_detach_device_ptr");
  // Device memory freed after each run goes back to Halide's pool, not the driver.
  auto reuse = reinterpret_cast<int (*)(void*, bool)>(dlsym(handle_, "halide_reuse_device_allocations"));
  if (reuse) reuse(nullptr, true);
  install_cuda_context_callbacks(handle_);
}

StatusOr<HalideRuntimeLibrary*> HalideRuntimeLibrary::get(const Halide::Target& kernel_target,
                                                           DiskCache* disk_cache) {
  static std::mutex mutex;
  static HalideRuntimeLibrary* instance = nullptr;  // never unloaded: kernels may outlive everything
  std::lock_guard<std::mutex> lock(mutex);
  if (instance) return instance;

  // The runtime needs the kernels' OS and architecture; CPU features do not change
  // it. It always carries the CUDA module, so CPU and CUDA kernels share it.
  const Halide::Target runtime_target =
      Halide::Target(kernel_target.os, kernel_target.arch, kernel_target.bits).with_feature(Halide::Target::CUDA);
  const std::string key = "runtime target=" + runtime_target.to_string() + " halide=" + halide_fingerprint() +
                          " codegen=" + codegen_fingerprint();
  if (disk_cache) {
    auto cached = disk_cache->read(key);
    if (cached.ok()) {
      auto handle = load_shared_object(*cached, "halide_runtime", /*global_symbols=*/true);
      if (handle.ok()) {
        instance = new HalideRuntimeLibrary(handle->handle);  // its memory file stays open for good
        return instance;
      }
    }
  }

  auto scratch = ScratchDirectory::create();
  if (!scratch.ok()) return scratch.status();
  const std::string object = scratch->file("halide_runtime.o");
  const std::string bridge = scratch->file("conv_gemm_bridge.o");
  const std::string library = scratch->file("halide_runtime.so");
  {
    std::lock_guard<std::mutex> compile_lock(halide_compile_mutex());
    CONVJIT_RETURN_IF_ERROR(catch_halide_errors("compiling the Halide runtime", [&] {
      Halide::compile_standalone_runtime(object, runtime_target);
    }));
  }
  // The GEMM form's extern stage lives beside the runtime it calls into.
  CONVJIT_RETURN_IF_ERROR(write_whole_file(bridge, conv_gemm_bridge_object()));
  CONVJIT_RETURN_IF_ERROR(link_shared_object({object, bridge}, library));
  if (disk_cache) {
    auto bytes = read_whole_file(library);
    if (bytes.ok()) {
      DiskCacheEntry entry;
      entry.key = key;
      entry.kind = "runtime";
      entry.target = runtime_target.to_string();
      (void)disk_cache->write(entry, *bytes);
    }
  }
  void* handle = dlopen(library.c_str(), RTLD_NOW | RTLD_GLOBAL);
  if (!handle) return Status::internal(std::string("cannot load the Halide runtime: ") + dlerror());
  instance = new HalideRuntimeLibrary(handle);
  return instance;
}

void HalideRuntimeLibrary::set_num_threads(int threads) const {
  // Halide 14's pool keeps the workers it has started: lowering the count after they
  // exist had no effect (a 1-thread run measured as fast as a 2-thread one). Stopping
  // the pool first makes the next parallel loop start exactly `threads` workers.
  shutdown_thread_pool_();
  set_num_threads_(threads);
  set_static_parallel_threads(threads);
}

std::string HalideRuntimeLibrary::take_last_error() {
  std::string message;
  message.swap(last_error);
  return message;
}

}  // namespace convjit
