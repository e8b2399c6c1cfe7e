// The public runtime API: request a compiled kernel for a (spec, target), run it on
// caller-owned memory. Users need no Halide header and catch no exception.
//
// Contract:
// - Runtime::get_kernel compiles a kernel at most once per cache key: concurrent
//   requests for one key wait for the single compile; any number of threads may
//   call get_kernel at once.
// - A Kernel is immutable once returned; Kernel::run may be called from many
//   threads at once, on distinct or shared inputs (outputs must not alias).
// - Memory passed to run() stays owned by the caller and is only read (src,
//   weights, bias) or written (dst) during the call.
// - A Kernel handle keeps its compiled code loaded while it lives, even after the
//   Runtime that made it is destroyed.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "convjit/conv_spec.h"
#include "convjit/status.h"

namespace convjit {

// Caller-owned tensor: pointer, shape (outermost first, e.g. NCHW) and strides in
// elements, outermost first. Empty strides mean dense C order. The innermost
// stride must be 1 (the kernels vectorize along it).
struct TensorView {
  void* data = nullptr;
  std::vector<int64_t> shape;
  std::vector<int64_t> strides;

  static TensorView dense(void* data, std::vector<int64_t> shape) {
    return TensorView{data, std::move(shape), {}};
  }
  static TensorView dense(const void* data, std::vector<int64_t> shape) {
    return TensorView{const_cast<void*>(data), std::move(shape), {}};
  }
};

class KernelImpl;

// A compiled convolution for one spec and target.
class Kernel {
 public:
  explicit Kernel(std::shared_ptr<const KernelImpl> impl);

  const ConvSpec& spec() const;
  // The Halide target string the kernel was compiled for (e.g. "x86-64-linux-avx512...").
  const std::string& target() const;
  // The schedule that was applied, e.g. "cpu_dense(x=32,c=8)".
  const std::string& schedule() const;
  // The cache key: canonical spec, schedule and target.
  const std::string& key() const;
  // Wall time spent generating and loading this kernel's code, in seconds.
  double compile_seconds() const;

  // Runs the convolution. Shapes must equal input_shape/weight_shape/output_shape
  // of the spec; `bias` must be given exactly when spec().has_bias. Element type
  // is spec().dtype. Returns an error naming the tensor, the dimension and the
  // expected value when a view does not match.
  Status run(const TensorView& src, const TensorView& weights, const TensorView* bias,
             const TensorView& dst) const;

 private:
  std::shared_ptr<const KernelImpl> impl_;
};

// Counters of one Runtime's in-memory kernel cache.
struct CacheStats {
  int64_t hits = 0;           // requests served by an existing or in-flight compile
  int64_t misses = 0;         // requests that started a compile
  int64_t compile_failures = 0;
  double compile_seconds = 0;  // total time spent compiling
  int64_t entries = 0;
};

// What Halide generated for a spec, for people who want to read the code.
enum class EmitFormat { kStmt, kHtml, kAssembly, kObject };
StatusOr<EmitFormat> parse_emit_format(const std::string& text);  // stmt html asm object

class RuntimeImpl;

class Runtime {
 public:
  Runtime();
  ~Runtime();
  Runtime(const Runtime&) = delete;
  Runtime& operator=(const Runtime&) = delete;

  // The process-wide runtime used by the command line and the examples.
  static Runtime& global();

  // Returns the kernel for (spec, target), compiling it on first request.
  // `target` is "host" (the CPU this runs on: AVX-512 where present, else AVX2, ...)
  // or a Halide target string. The spec is validated first.
  StatusOr<Kernel> get_kernel(const ConvSpec& spec, const std::string& target = "host");

  CacheStats stats() const;

  // Writes what Halide generates for (spec, target) to `path` in `format`.
  Status emit(const ConvSpec& spec, const std::string& target, EmitFormat format,
              const std::string& path);

 private:
  std::unique_ptr<RuntimeImpl> impl_;
};

// The Halide target string that "host" resolves to on this machine.
std::string host_target_string();

// Sets the number of worker threads of the process's one Halide thread pool
// (0 = one per core). Affects kernels run afterwards.
void set_num_threads(int threads);

}  // namespace convjit
