// CUDA driver access through dlopen, the caller-settable context and stream, and
// the callbacks that hand them to Halide's CUDA runtime.
#include "cuda_device.h"

#include <dlfcn.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <type_traits>
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
  CUresult (*cuDeviceGetAttribute)(int*, int, CUdevice) = nullptr;
  CUresult (*cuCtxPushCurrent)(CUcontext) = nullptr;
  CUresult (*cuCtxPopCurrent)(CUcontext*) = nullptr;
  CUresult (*cuCtxSynchronize)() = nullptr;
  CUresult (*cuStreamSynchronize)(CUstream) = nullptr;
  CUresult (*cuMemAlloc)(uint64_t*, size_t) = nullptr;
  CUresult (*cuMemFree)(uint64_t) = nullptr;
  CUresult (*cuMemcpyHtoD)(uint64_t, const void*, size_t) = nullptr;
  CUresult (*cuMemcpyDtoH)(void*, uint64_t, size_t) = nullptr;
  Status status;
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
    auto find = [&](auto& slot, const char* name) {
      slot = reinterpret_cast<std::remove_reference_t<decltype(slot)>>(dlsym(lib, name));
      return slot != nullptr;
    };
    // The _v2 names are the 64-bit entry points cuda.h maps the plain names to.
    const bool complete = find(d->cuInit, "cuInit") && find(d->cuDeviceGetCount, "cuDeviceGetCount") &&
                          find(d->cuDeviceGet, "cuDeviceGet") &&
                          find(d->cuDevicePrimaryCtxRetain, "cuDevicePrimaryCtxRetain") &&
                          find(d->cuDeviceGetAttribute, "cuDeviceGetAttribute") &&
                          find(d->cuCtxPushCurrent, "cuCtxPushCurrent_v2") &&
                          find(d->cuCtxPopCurrent, "cuCtxPopCurrent_v2") &&
                          find(d->cuCtxSynchronize, "cuCtxSynchronize") &&
                          find(d->cuStreamSynchronize, "cuStreamSynchronize") &&
                          find(d->cuMemAlloc, "cuMemAlloc_v2") && find(d->cuMemFree, "cuMemFree_v2") &&
                          find(d->cuMemcpyHtoD, "cuMemcpyHtoD_v2") && find(d->cuMemcpyDtoH, "cuMemcpyDtoH_v2");
    if (!complete) {
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

// Makes the kernels' context current for the driver calls of one scope.
class ScopedContext {
 public:
  ScopedContext() {
    status_ = driver().status;
    if (!status_.ok()) return;
    CUcontext context = nullptr;
    if (CUresult rc = convjit_cuda_acquire_context(nullptr, &context, true); rc != kCudaSuccess) {
      status_ = Status::internal("cannot get the CUDA context: CUDA error " + std::to_string(rc));
    } else if (CUresult rc2 = driver().cuCtxPushCurrent(context); rc2 != kCudaSuccess) {
      status_ = Status::internal("cannot make the CUDA context current: CUDA error " + std::to_string(rc2));
    } else {
      pushed_ = true;
    }
  }
  ~ScopedContext() {
    CUcontext ignored;
    if (pushed_) driver().cuCtxPopCurrent(&ignored);
  }
  const Status& status() const { return status_; }

 private:
  Status status_;
  bool pushed_ = false;
};

Status check(CUresult rc, const std::string& what) {
  return rc == kCudaSuccess ? Status() : Status::internal(what + " failed with CUDA error " + std::to_string(rc));
}

}  // namespace

Status cuda_device_status() { return driver().status; }

StatusOr<CudaBuffer> CudaBuffer::allocate(size_t bytes) {
  ScopedContext scope;
  CONVJIT_RETURN_IF_ERROR(scope.status());
  uint64_t pointer = 0;
  CONVJIT_RETURN_IF_ERROR(check(driver().cuMemAlloc(&pointer, std::max<size_t>(bytes, 1)),
                                "cuMemAlloc of " + std::to_string(bytes) + " bytes"));
  return CudaBuffer(pointer, bytes);
}

CudaBuffer::~CudaBuffer() {
  if (pointer_ == 0) return;
  ScopedContext scope;
  if (scope.status().ok()) driver().cuMemFree(pointer_);
}

Status CudaBuffer::upload(const void* host) {
  ScopedContext scope;
  CONVJIT_RETURN_IF_ERROR(scope.status());
  return check(driver().cuMemcpyHtoD(pointer_, host, bytes_), "cuMemcpyHtoD");
}

Status CudaBuffer::download(void* host) const {
  ScopedContext scope;
  CONVJIT_RETURN_IF_ERROR(scope.status());
  return check(driver().cuMemcpyDtoH(host, pointer_, bytes_), "cuMemcpyDtoH");
}

Status cuda_synchronize() {
  ScopedContext scope;
  CONVJIT_RETURN_IF_ERROR(scope.status());
  CUstream stream = chosen_stream.load();
  return stream ? check(driver().cuStreamSynchronize(stream), "cuStreamSynchronize")
                : check(driver().cuCtxSynchronize(), "cuCtxSynchronize");
}

StatusOr<double> cuda_fp32_peak_gflops() {
  const Driver& d = driver();
  if (!d.status.ok()) return d.status;
  // CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT = 16, CLOCK_RATE = 13 (kHz),
  // COMPUTE_CAPABILITY_MAJOR = 75, _MINOR = 76.
  int sms = 0, khz = 0, major = 0, minor = 0;
  CUdevice device = 0;
  if (d.cuDeviceGet(&device, 0) != kCudaSuccess || d.cuDeviceGetAttribute(&sms, 16, device) != kCudaSuccess ||
      d.cuDeviceGetAttribute(&khz, 13, device) != kCudaSuccess ||
      d.cuDeviceGetAttribute(&major, 75, device) != kCudaSuccess ||
      d.cuDeviceGetAttribute(&minor, 76, device) != kCudaSuccess) {
    return Status::internal("cannot read the attributes of CUDA device 0");
  }
  // FP32 lanes per SM: 64 on Volta/Turing (7.x) and A100 (8.0); 128 on Maxwell,
  // Pascal 6.1, Ampere GA10x, Ada and Hopper. H100 SXM: 132 SMs x 1.98 GHz x 128 x 2
  // = 67 TFLOP/s, NVIDIA's published FP32 figure.
  const int lanes = major == 7 || (major == 8 && minor == 0) ? 64 : 128;
  return 2.0 * lanes * sms * (khz / 1e6);
}

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
