// The process's CUDA device as convjit's kernels see it: whether one exists (and if
// not, why), and the one context and stream every CUDA kernel runs on.
//
// convjit never links libcuda: the driver is opened with dlopen on first use, so the
// library and its tools load and run CPU kernels on machines without NVIDIA's
// driver. By default kernels run in the primary context of device 0 (the one the
// CUDA runtime API, cuBLAS, cuDNN and PyTorch use) on the legacy default stream, so
// device pointers from those libraries work as they are; set_cuda_context() names
// another. Thread-safe.
#pragma once

#include <string>

#include "convjit/status.h"

namespace convjit {

// OK when a CUDA device can run kernels; else an error naming what is missing (no
// driver library, cuInit failure, no device). Checked once per process.
Status cuda_device_status();

// Device memory in the kernels' context, for timing CUDA kernels on device-resident
// data (the autotuner, convjit bench). Move-only; freed on destruction.
class CudaBuffer {
 public:
  static StatusOr<CudaBuffer> allocate(size_t bytes);
  CudaBuffer(CudaBuffer&& other) noexcept : pointer_(other.pointer_), bytes_(other.bytes_) { other.pointer_ = 0; }
  CudaBuffer(const CudaBuffer&) = delete;
  CudaBuffer& operator=(const CudaBuffer&) = delete;
  ~CudaBuffer();
  Status upload(const void* host);   // bytes() bytes
  Status download(void* host) const;  // bytes() bytes
  uint64_t pointer() const { return pointer_; }
  size_t bytes() const { return bytes_; }

 private:
  CudaBuffer(uint64_t pointer, size_t bytes) : pointer_(pointer), bytes_(bytes) {}
  uint64_t pointer_;
  size_t bytes_;
};

// Waits until all work queued on the kernels' stream has finished: CUDA kernels
// return once launched when their tensors live on the device.
Status cuda_synchronize();

// Installs convjit's context and stream callbacks into the loaded Halide runtime
// (`runtime_handle` from dlopen), so that Halide's CUDA calls use
// cuda_context()/cuda_stream() instead of a context of their own.
void install_cuda_context_callbacks(void* runtime_handle);

}  // namespace convjit
