// CUDA driver access through dlopen, the caller-settable context and stream, and
// the callbacks that hand them to Halide's CUDA runtime.
#include "cuda_device.h"

#include <dlfcn.h>

#include <atomic>
#include <mutex>

#include "convjit/runtime.h"

namespace convjit {
namespace {

// The few driver entry points convjit calls itself (Halide's runtime loads its own).
using CUresult = int;
using CUdevice = int;
using CUcontext = void*;
using CUstream = void*;
constexpr CUresult kCudaSuccess = 0;

struct Driver {
  CUresult (*cuInit)(unsigned) = nullptr;
  CUresult (*cuDeviceGetCount)(int*) = nullptr;
  CUresult (*cuDeviceGet)(CUdevice*, int) = nullptr;
  CUresult (*cuDevicePrimaryCtxRetain)(CUcontext*, CUdevice) = nullptr;
  Status status;
  CUcontext primary_context = nullptr;
};

const Driver& driver() {
  static const Driver* loaded = [] {
    auto* d = new Driver();  // lives for the process: kernels may run at exit
    void* lib = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
      d->status = Status::unavailable("no CUDA device: the NVIDIA driver library libcuda.so.1 cannot be loaded (" +
                                      std::string(dlerror()) + ")");
      return d;
    }
    d->cuInit = reinterpret_cast<decltype(d->cuInit)>(dlsym(lib, "cuInit"));
    d->cuDeviceGetCount = reinterpret_cast<decltype(d->cuDeviceGetCount)>(dlsym(lib, "cuDeviceGetCount"));
    d->cuDeviceGet = reinterpret_cast<decltype(d->cuDeviceGet)>(dlsym(lib, "cuDeviceGet"));
    d->cuDevicePrimaryCtxRetain =
        reinterpret_cast<decltype(d->cuDevicePrimaryCtxRetain)>(dlsym(lib, "cuDevicePrimaryCtxRetain"));
    if (!d->cuInit || !d->cuDeviceGetCount || !d->cuDeviceGet || !d->cuDevicePrimaryCtxRetain) {
      d->status = Status::unavailable("no CUDA device: libcuda.so.1 lacks the driver API entry points");
      return d;
    }
    int count = 0;
    if (CUresult rc = d->cuInit(0); rc != kCudaSuccess) {
      d->status = Status::unavailable("no CUDA device: cuInit failed with CUDA error " + std::to_string(rc));
    } else if (CUresult rc2 = d->cuDeviceGetCount(&count); rc2 != kCudaSuccess || count == 0) {
      d->status = Status::unavailable("no CUDA device: the driver reports " + std::to_string(count) + " devices");
    }
    return d;
  }();
  return *loaded;
}

// The context and stream of every kernel; null context = device 0's primary one.
std::atomic<CUcontext> chosen_context{nullptr};
std::atomic<CUstream> chosen_stream{nullptr};

CUresult primary_context(CUcontext* out) {
  static std::mutex mutex;
  static CUcontext primary = nullptr;
  std::lock_guard<std::mutex> lock(mutex);
  if (!primary) {
    const Driver& d = driver();
    if (!d.status.ok()) return 100;  // CUDA_ERROR_NO_DEVICE
    CUdevice device = 0;
    if (CUresult rc = d.cuDeviceGet(&device, 0); rc != kCudaSuccess) return rc;
    // Retained for the process's lifetime: kernels may run until exit.
    if (CUresult rc = d.cuDevicePrimaryCtxRetain(&primary, device); rc != kCudaSuccess) return rc;
  }
  *out = primary;
  return kCudaSuccess;
}

// Halide's contract: acquire stores a valid context or returns an error; Halide
// pushes it around each call and calls release after. The context is thread-safe,
// so no lock is held between the two.
extern "C" int convjit_cuda_acquire_context(void*, void** context, bool create) {
  CUcontext chosen = chosen_context.load();
  if (chosen) {
    *context = chosen;
    return 0;
  }
  if (!create) {
    *context = nullptr;
    return 0;
  }
  return primary_context(context);
}

extern "C" int convjit_cuda_release_context(void*) { return 0; }

extern "C" int convjit_cuda_get_stream(void*, void*, void** stream) {
  *stream = chosen_stream.load();
  return 0;
}

}  // namespace

Status cuda_device_status() { return driver().status; }

void install_cuda_context_callbacks(void* runtime_handle) {
  using Acquire = int (*)(void*, void**, bool);
  using Release = int (*)(void*);
  using GetStream = int (*)(void*, void*, void**);
  auto set_acquire = reinterpret_cast<Acquire (*)(Acquire)>(dlsym(runtime_handle, "halide_set_cuda_acquire_context"));
  auto set_release = reinterpret_cast<Release (*)(Release)>(dlsym(runtime_handle, "halide_set_cuda_release_context"));
  auto set_stream = reinterpret_cast<GetStream (*)(GetStream)>(dlsym(runtime_handle, "halide_set_cuda_get_stream"));
  CONVJIT_CHECK(set_acquire && set_release && set_stream, "the Halide runtime was built without its CUDA module");
  set_acquire(&convjit_cuda_acquire_context);
  set_release(&convjit_cuda_release_context);
  set_stream(&convjit_cuda_get_stream);
}

void set_cuda_context(void* context, void* stream) {
  chosen_context.store(context);
  chosen_stream.store(stream);
}

}  // namespace convjit
