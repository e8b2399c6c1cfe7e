// Kernel: checks caller tensors against the spec, describes them to Halide (with
// device copies or wrapped device pointers for CUDA kernels) and calls the compiled
// entry point.
#include <dlfcn.h>

#include <optional>
#include <sstream>

#include "HalideRuntime.h"
#include "compiled_kernel.h"
#include "convjit/runtime.h"
#include "cuda_device.h"
#include "halide_runtime_library.h"

namespace convjit {

CompiledKernel::~CompiledKernel() { unload_shared_object(library_); }

Kernel::Kernel(std::shared_ptr<const KernelImpl> impl) : impl_(std::move(impl)) {}

const ConvSpec& Kernel::spec() const { return impl_->spec(); }
const std::string& Kernel::target() const { return impl_->code().target(); }
const std::string& Kernel::schedule() const { return impl_->code().schedule(); }
const std::string& Kernel::key() const { return impl_->code().key(); }
double Kernel::compile_seconds() const { return impl_->code().compile_seconds(); }
bool Kernel::runs_on_cuda() const { return impl_->code().runs_on_cuda(); }

namespace {

constexpr int kMaxRank = 5;

// A halide_buffer_t over caller memory, with its dimension array inline.
struct BufferDescription {
  halide_buffer_t buffer{};
  halide_dimension_t dims[kMaxRank]{};
};

std::string shape_text(const std::vector<int64_t>& shape) {
  std::ostringstream out;
  out << "(";
  for (size_t i = 0; i < shape.size(); ++i) out << (i ? ", " : "") << shape[i];
  out << ")";
  return out.str();
}

template <typename Array>
std::vector<int64_t> to_vector(const Array& a, int rank) {
  return std::vector<int64_t>(a.begin(), a.begin() + rank);
}

Status describe(const char* name, const TensorView& view, const std::vector<int64_t>& expected,
                DataType dtype, BufferDescription* out) {
  const int rank = static_cast<int>(expected.size());
  if (view.data == nullptr) return Status::invalid_argument(std::string(name) + ": data pointer is null");
  if (static_cast<int>(view.shape.size()) != rank) {
    return Status::invalid_argument(std::string(name) + ": rank " + std::to_string(view.shape.size()) +
                                    " but the spec needs rank " + std::to_string(rank) + " with shape " +
                                    shape_text(expected));
  }
  for (int d = 0; d < rank; ++d) {
    if (view.shape[d] != expected[d]) {
      return Status::invalid_argument(std::string(name) + ": dimension " + std::to_string(d) + " is " +
                                      std::to_string(view.shape[d]) + " but the spec needs shape " +
                                      shape_text(expected));
    }
  }
  std::vector<int64_t> strides = view.strides;
  if (strides.empty()) {
    strides.assign(rank, 1);
    for (int d = rank - 2; d >= 0; --d) strides[d] = strides[d + 1] * expected[d + 1];
  } else if (static_cast<int>(strides.size()) != rank) {
    return Status::invalid_argument(std::string(name) + ": " + std::to_string(strides.size()) +
                                    " strides for rank " + std::to_string(rank));
  }
  if (strides[rank - 1] != 1) {
    return Status::invalid_argument(std::string(name) + ": innermost stride is " +
                                    std::to_string(strides[rank - 1]) +
                                    " but must be 1 (kernels load contiguous vectors along it)");
  }
  for (int d = 0; d < rank; ++d) {
    if (strides[d] < 0 || strides[d] > INT32_MAX) {
      return Status::invalid_argument(std::string(name) + ": stride " + std::to_string(strides[d]) +
                                      " of dimension " + std::to_string(d) +
                                      " must be in [0, 2^31) (32-bit indexing)");
    }
  }
  out->buffer.host = static_cast<uint8_t*>(view.data);
  out->buffer.type = halide_type_t(halide_type_float, dtype == DataType::kFloat16 ? 16 : 32, 1);
  out->buffer.dimensions = rank;
  out->buffer.dim = out->dims;
  for (int d = 0; d < rank; ++d) {
    // Halide lists dimensions innermost first.
    halide_dimension_t& dim = out->dims[rank - 1 - d];
    dim.min = 0;
    dim.extent = static_cast<int32_t>(expected[d]);
    dim.stride = static_cast<int32_t>(strides[d]);
  }
  return Status();
}

}  // namespace

namespace {

// The device side of one CUDA run: host tensors get device copies (inputs marked
// dirty on the host so Halide copies them in), device tensors are wrapped; after
// the run dst is copied back when it lives on the host, and every wrap and copy is
// released, whatever happened.
class CudaRun {
 public:
  explicit CudaRun(const HalideRuntimeLibrary::DeviceCalls& calls) : calls_(calls) {}
  CudaRun(const CudaRun&) = delete;
  CudaRun& operator=(const CudaRun&) = delete;

  Status prepare(const char* name, const TensorView& view, BufferDescription* d, bool is_output) {
    if (view.memory == MemorySpace::kCuda) {
      d->buffer.host = nullptr;
      if (calls_.cuda_wrap_device_ptr(nullptr, &d->buffer, reinterpret_cast<uint64_t>(view.data)) != 0) {
        return Status::internal(std::string(name) + ": cannot wrap the device pointer: " +
                                HalideRuntimeLibrary::take_last_error());
      }
      wrapped_.push_back(&d->buffer);
    } else {
      if (!is_output) d->buffer.flags |= halide_buffer_flag_host_dirty;
      copied_.push_back(&d->buffer);
    }
    return Status();
  }

  Status finish(BufferDescription* dst, const TensorView& view) {
    if (view.memory == MemorySpace::kHost && calls_.copy_to_host(nullptr, &dst->buffer) != 0) {
      return Status::internal("dst: copying the result to the host failed: " + HalideRuntimeLibrary::take_last_error());
    }
    return Status();
  }

  ~CudaRun() {
    for (halide_buffer_t* b : wrapped_) calls_.cuda_detach_device_ptr(nullptr, b);
    for (halide_buffer_t* b : copied_) {
      if (b->device) calls_.device_free(nullptr, b);
    }
  }

 private:
  const HalideRuntimeLibrary::DeviceCalls& calls_;
  std::vector<halide_buffer_t*> wrapped_, copied_;
};

}  // namespace

Status Kernel::run(const TensorView& src, const TensorView& weights, const TensorView* bias,
                   const TensorView& dst) const {
  const ConvSpec& s = spec();
  BufferDescription in, w, b, out;
  CONVJIT_RETURN_IF_ERROR(describe("src", src, to_vector(input_shape(s), 4), s.dtype, &in));
  CONVJIT_RETURN_IF_ERROR(
      describe("weights", weights, to_vector(weight_shape(s), weight_rank(s)), s.dtype, &w));
  if (s.has_bias != (bias != nullptr)) {
    return Status::invalid_argument(s.has_bias ? "bias: the spec has a bias but none was given"
                                               : "bias: given, but the spec has no bias");
  }
  if (bias) CONVJIT_RETURN_IF_ERROR(describe("bias", *bias, {s.c_out}, s.dtype, &b));
  CONVJIT_RETURN_IF_ERROR(describe("dst", dst, to_vector(output_shape(s), 4), s.dtype, &out));

  std::optional<CudaRun> cuda;
  if (runs_on_cuda()) {
    CONVJIT_RETURN_IF_ERROR(cuda_device_status());
    cuda.emplace(impl_->code().runtime().device_calls());
    CONVJIT_RETURN_IF_ERROR(cuda->prepare("src", src, &in, false));
    CONVJIT_RETURN_IF_ERROR(cuda->prepare("weights", weights, &w, false));
    if (bias) CONVJIT_RETURN_IF_ERROR(cuda->prepare("bias", *bias, &b, false));
    CONVJIT_RETURN_IF_ERROR(cuda->prepare("dst", dst, &out, true));
  } else {
    for (const TensorView* view : {&src, &weights, bias, &dst}) {
      if (view && view->memory != MemorySpace::kHost) {
        return Status::invalid_argument("a CUDA device tensor was given to a CPU kernel (target " + target() + ")");
      }
    }
  }

  void* args[4];
  int count = 0;
  args[count++] = &in.buffer;
  args[count++] = &w.buffer;
  if (bias) args[count++] = &b.buffer;
  args[count++] = &out.buffer;
  const int rc = impl_->code().entry()(args);
  if (rc != 0) {
    std::string message = HalideRuntimeLibrary::take_last_error();
    return Status::internal("kernel " + key() + " failed with Halide error " + std::to_string(rc) +
                            (message.empty() ? "" : ": " + message));
  }
  if (cuda) return cuda->finish(&out, dst);
  return Status();
}

}  // namespace convjit
