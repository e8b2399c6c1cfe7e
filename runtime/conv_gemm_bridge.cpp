// convjit_conv_gemm: the extern stage of the GEMM form (compiler/gemm_lowering.h).
// It turns the column and weight buffers into strided-batched matrix products and
// runs them with cuBLAS on device buffers, or with a plain loop on host buffers
// (the GEMM form compiled for a CPU, which tests the formulation without a GPU).
//
// This file is built into an object of its own that travels with generated code:
// linked into the process's Halide runtime library (runtime/halide_runtime_library.cpp)
// and archived into AOT libraries. So it uses the C library only (no C++ runtime,
// no exceptions), and opens cuBLAS and the CUDA driver with dlopen: neither is ever
// a link dependency, and a machine without them fails only when a GEMM kernel runs,
// with a message naming the library.
//
// cuBLAS runs in the context and on the stream of Halide's kernels (the runtime's
// halide_cuda_acquire_context / halide_cuda_get_stream, which convjit points at the
// context set_cuda_context chose), so it is ordered with the im2col and bias
// kernels around it. FP32 data uses the default math mode (no TF32); FP16 data
// multiplies on tensor cores with FP32 accumulation (CUBLAS_COMPUTE_32F).
#include <dlfcn.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "HalideRuntime.h"

// Weak: present in the Halide runtime this object is linked with; absent in a test
// binary that calls the host path through Halide's JIT.
extern "C" {
__attribute__((weak)) void halide_error(void* user_context, const char* message);
__attribute__((weak)) int halide_cuda_acquire_context(void* user_context, void** context, bool create);
__attribute__((weak)) int halide_cuda_release_context(void* user_context);
__attribute__((weak)) int halide_cuda_get_stream(void* user_context, void* context, void** stream);
__attribute__((weak)) const halide_device_interface_t* halide_cuda_device_interface();
__attribute__((weak)) int halide_copy_to_device(void* user_context, halide_buffer_t* buf,
                                                const halide_device_interface_t* device_interface);
__attribute__((weak)) int halide_device_malloc(void* user_context, halide_buffer_t* buf,
                                               const halide_device_interface_t* device_interface);
}

namespace {

// Halide's error handler carries the message to the failing call's Status; without
// a Halide runtime (the JIT test) it goes to stderr.
int fail(const char* message) {
  if (halide_error) {
    halide_error(nullptr, message);
  } else {
    fprintf(stderr, "%s\n", message);
  }
  return -1;
}

// ---- The plan: the strided-batched GEMM calls of one run ---------------------------

// Column-major C = op(A) * B over `batch` matrices, each at its own stride; offsets
// and strides in elements of each buffer's type.
struct GemmCall {
  bool transpose_a = false;
  int m = 0, n = 0, k = 0;
  int64_t a_offset = 0, b_offset = 0, c_offset = 0;
  int lda = 0, ldb = 0, ldc = 0;
  int64_t a_batch_stride = 0, b_batch_stride = 0, c_batch_stride = 0;
  int batch = 1;
};

struct Operands {
  halide_buffer_t* columns;
  halide_buffer_t* weights;
  halide_buffer_t* out;
};

int64_t offset_of(const halide_buffer_t* b, int dim, int64_t coordinate) {
  return (coordinate - b->dim[dim].min) * static_cast<int64_t>(b->dim[dim].stride);
}

// All the GEMM calls of one stage run: one per image (and row, when rows are apart),
// batched over groups; with one group and merged rows, a single call batched over
// images. `base` holds what every call shares.
struct Plan {
  GemmCall base;
  int call_count = 0, rows = 1;
  bool batched_images = false;
  int images = 1, groups = 1;
  int64_t a_first = 0;                 // the first image's first row in the columns
  int64_t a_row_stride = 0, a_image_stride = 0, c_row_stride = 0, c_image_stride = 0;
  int64_t a_group_stride = 0, b_group_stride = 0, c_group_stride = 0;

  GemmCall call(int i) const {
    GemmCall g = base;
    const int image = batched_images ? 0 : i / rows, row = batched_images ? 0 : i % rows;
    g.a_offset = a_first + row * a_row_stride + image * a_image_stride;
    g.c_offset = row * c_row_stride + image * c_image_stride;
    if (batched_images) {
      g.batch = images;
      g.a_batch_stride = a_image_stride;
      g.b_batch_stride = 0;
      g.c_batch_stride = c_image_stride;
    } else {
      g.batch = groups;
      g.a_batch_stride = a_group_stride;
      g.b_batch_stride = b_group_stride;
      g.c_batch_stride = c_group_stride;
    }
    return g;
  }
};

// ---- Host execution: the reference semantics of a GemmCall ---------------------

float half_to_float(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000) << 16;
  uint32_t exponent = (h >> 10) & 0x1f, mantissa = h & 0x3ff, bits;
  if (exponent == 0x1f) {
    bits = sign | 0x7f800000u | (mantissa << 13);
  } else if (exponent != 0) {
    bits = sign | ((exponent + 112) << 23) | (mantissa << 13);
  } else if (mantissa == 0) {
    bits = sign;
  } else {  // subnormal: normalize
    exponent = 113;
    while ((mantissa & 0x400) == 0) {
      mantissa <<= 1;
      --exponent;
    }
    bits = sign | (exponent << 23) | ((mantissa & 0x3ff) << 13);
  }
  float f;
  memcpy(&f, &bits, 4);
  return f;
}

uint16_t float_to_half(float f) {  // round to nearest even
  uint32_t bits;
  memcpy(&bits, &f, 4);
  const uint16_t sign = static_cast<uint16_t>((bits >> 16) & 0x8000);
  const uint32_t magnitude = bits & 0x7fffffffu;
  if (magnitude >= 0x7f800000u) return sign | 0x7c00 | (magnitude > 0x7f800000u ? 0x200 : 0);
  if (magnitude >= 0x477ff000u) return sign | 0x7c00;  // rounds past the largest half
  if (magnitude < 0x38800000u) {  // a subnormal half: units of 2^-24
    if (magnitude < 0x33000000u) return sign;  // below 2^-25 (exactly 2^-25 ties to 0)
    const uint32_t mantissa = (magnitude & 0x7fffff) | 0x800000;
    const int shift = 126 - static_cast<int>(magnitude >> 23);  // 14..24
    uint32_t value = mantissa >> shift;
    const uint32_t rest = mantissa & ((1u << shift) - 1), half_way = 1u << (shift - 1);
    if (rest > half_way || (rest == half_way && (value & 1))) ++value;
    return sign | static_cast<uint16_t>(value);
  }
  uint32_t value = ((magnitude >> 13) - (112u << 10));
  const uint32_t rest = magnitude & 0x1fff;
  if (rest > 0x1000 || (rest == 0x1000 && (value & 1))) ++value;
  return sign | static_cast<uint16_t>(value);
}

float load(const halide_buffer_t* b, int64_t index) {
  if (b->type.bits == 16) return half_to_float(reinterpret_cast<const uint16_t*>(b->host)[index]);
  return reinterpret_cast<const float*>(b->host)[index];
}

void store(halide_buffer_t* b, int64_t index, float value) {
  if (b->type.bits == 16) {
    reinterpret_cast<uint16_t*>(b->host)[index] = float_to_half(value);
  } else {
    reinterpret_cast<float*>(b->host)[index] = value;
  }
}

void run_call_on_host(const Operands& o, const GemmCall& g) {
  for (int b = 0; b < g.batch; ++b) {
    const int64_t a0 = g.a_offset + b * g.a_batch_stride, b0 = g.b_offset + b * g.b_batch_stride;
    const int64_t c0 = g.c_offset + b * g.c_batch_stride;
    for (int j = 0; j < g.n; ++j) {
      for (int i = 0; i < g.m; ++i) {
        float sum = 0.0f;
        for (int l = 0; l < g.k; ++l) {
          const int64_t a_index = g.transpose_a ? a0 + l + static_cast<int64_t>(i) * g.lda
                                                : a0 + i + static_cast<int64_t>(l) * g.lda;
          sum += load(o.columns, a_index) * load(o.weights, b0 + l + static_cast<int64_t>(j) * g.ldb);
        }
        store(o.out, c0 + i + static_cast<int64_t>(j) * g.ldc, sum);
      }
    }
  }
}

int run_on_host(const Operands& o, const Plan& plan) {
  if (o.out->host == nullptr || o.columns->host == nullptr || o.weights->host == nullptr) {
    return fail("convjit_conv_gemm: the host form was given a buffer without host memory");
  }
  for (int i = 0; i < plan.call_count; ++i) run_call_on_host(o, plan.call(i));
  return 0;
}

// ---- Device execution through cuBLAS ----------------------------------------------

using CublasHandle = void*;
using CublasStatus = int;
constexpr int kCudaR32F = 0, kCudaR16F = 2;          // cudaDataType
constexpr int kCublasCompute32F = 68;                // cublasComputeType_t
constexpr int kCublasGemmDefault = -1;               // cublasGemmAlgo_t
constexpr int kCublasDefaultMath = 0;                // no TF32 for FP32 data
constexpr int kCublasOpN = 0, kCublasOpT = 1;

struct Cublas {
  const char* error = nullptr;  // why it cannot be used; null once loaded
  char error_text[512] = {0};
  CublasStatus (*create)(CublasHandle*) = nullptr;
  CublasStatus (*set_stream)(CublasHandle, void*) = nullptr;
  CublasStatus (*set_math_mode)(CublasHandle, int) = nullptr;
  CublasStatus (*gemm)(CublasHandle, int, int, int, int, int, const void*, const void*, int, int, long long,
                       const void*, int, int, long long, const void*, void*, int, int, long long, int, int,
                       int) = nullptr;
  const char* (*status_string)(CublasStatus) = nullptr;
  int (*push_context)(void*) = nullptr;
  int (*pop_context)(void**) = nullptr;
};

Cublas cublas;
pthread_once_t cublas_once = PTHREAD_ONCE_INIT;

void load_cublas() {
  // CUDA 13, 12 and 11 builds of cuBLAS share these entry points.
  const char* names[] = {"libcublas.so.13", "libcublas.so.12", "libcublas.so.11", "libcublas.so"};
  void* library = nullptr;
  for (const char* name : names) {
    if ((library = dlopen(name, RTLD_NOW | RTLD_LOCAL)) != nullptr) break;
  }
  if (!library) {
    snprintf(cublas.error_text, sizeof cublas.error_text,
             "convjit_conv_gemm: cannot load cuBLAS (libcublas.so.13, .so.12, .so.11 or libcublas.so; "
             "add its folder to LD_LIBRARY_PATH): %s", dlerror());
    cublas.error = cublas.error_text;
    return;
  }
  void* driver = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
  cublas.create = reinterpret_cast<decltype(cublas.create)>(dlsym(library, "cublasCreate_v2"));
  cublas.set_stream = reinterpret_cast<decltype(cublas.set_stream)>(dlsym(library, "cublasSetStream_v2"));
  cublas.set_math_mode = reinterpret_cast<decltype(cublas.set_math_mode)>(dlsym(library, "cublasSetMathMode"));
  cublas.gemm = reinterpret_cast<decltype(cublas.gemm)>(dlsym(library, "cublasGemmStridedBatchedEx"));
  cublas.status_string = reinterpret_cast<decltype(cublas.status_string)>(dlsym(library, "cublasGetStatusString"));
  if (driver) {
    cublas.push_context = reinterpret_cast<decltype(cublas.push_context)>(dlsym(driver, "cuCtxPushCurrent_v2"));
    cublas.pop_context = reinterpret_cast<decltype(cublas.pop_context)>(dlsym(driver, "cuCtxPopCurrent_v2"));
  }
  if (!cublas.create || !cublas.set_stream || !cublas.set_math_mode || !cublas.gemm) {
    cublas.error = "convjit_conv_gemm: the cuBLAS library found lacks cublasGemmStridedBatchedEx (CUDA 11 or newer "
                   "is needed)";
  } else if (!cublas.push_context || !cublas.pop_context) {
    cublas.error = "convjit_conv_gemm: the CUDA driver (libcuda.so.1) cannot be opened";
  } else if (!halide_cuda_acquire_context || !halide_cuda_release_context || !halide_cuda_get_stream ||
             !halide_cuda_device_interface || !halide_copy_to_device || !halide_device_malloc) {
    cublas.error = "convjit_conv_gemm: linked without Halide's CUDA runtime";
  }
}

// One cuBLAS handle per context, made on first use and kept for the process.
struct HandleTable {
  pthread_mutex_t mutex = PTHREAD_MUTEX_INITIALIZER;
  void* contexts[16] = {nullptr};
  CublasHandle handles[16] = {nullptr};
  int count = 0;
};
HandleTable handle_table;

int cublas_failure(const char* what, CublasStatus status) {
  char message[256];
  snprintf(message, sizeof message, "convjit_conv_gemm: %s failed: %s (cuBLAS status %d)", what,
           cublas.status_string ? cublas.status_string(status) : "?", status);
  return fail(message);
}

// Called with the context current.
int handle_for(void* context, CublasHandle* handle) {
  pthread_mutex_lock(&handle_table.mutex);
  for (int i = 0; i < handle_table.count; ++i) {
    if (handle_table.contexts[i] == context) {
      *handle = handle_table.handles[i];
      pthread_mutex_unlock(&handle_table.mutex);
      return 0;
    }
  }
  int result = 0;
  if (handle_table.count == 16) {
    result = fail("convjit_conv_gemm: cuBLAS handles for more than 16 CUDA contexts");
  } else if (CublasStatus status = cublas.create(handle); status != 0) {
    result = cublas_failure("cublasCreate", status);
  } else if (CublasStatus status = cublas.set_math_mode(*handle, kCublasDefaultMath); status != 0) {
    result = cublas_failure("cublasSetMathMode", status);
  } else {
    handle_table.contexts[handle_table.count] = context;
    handle_table.handles[handle_table.count] = *handle;
    ++handle_table.count;
  }
  pthread_mutex_unlock(&handle_table.mutex);
  return result;
}

int data_type(const halide_buffer_t* b) { return b->type.bits == 16 ? kCudaR16F : kCudaR32F; }

char* device_pointer(const halide_buffer_t* b) { return reinterpret_cast<char*>(static_cast<uintptr_t>(b->device)); }

// Halide copies a Func's result to the device before a CUDA extern stage, but not a
// pipeline input it passes through (the weights; the input of a 1x1 layer), and it
// leaves a pipeline output it hands over on the host: the bridge moves them itself.
// Input copies stay with the buffer (their owner frees them, as for every kernel).
int move_to_device(const Operands& o) {
  const halide_device_interface_t* cuda = halide_cuda_device_interface();
  if (halide_copy_to_device(nullptr, o.columns, cuda) != 0 || halide_copy_to_device(nullptr, o.weights, cuda) != 0) {
    return fail("convjit_conv_gemm: copying the GEMM's inputs to the device failed");
  }
  if (o.out->device == 0 && halide_device_malloc(nullptr, o.out, cuda) != 0) {
    return fail("convjit_conv_gemm: allocating the GEMM's output on the device failed");
  }
  return 0;
}

int run_on_device(const Operands& o, const Plan& plan) {
  pthread_once(&cublas_once, load_cublas);
  if (cublas.error) return fail(cublas.error);
  if (int moved = move_to_device(o); moved != 0) return moved;
  void* context = nullptr;
  void* stream = nullptr;
  if (halide_cuda_acquire_context(nullptr, &context, true) != 0) {
    return fail("convjit_conv_gemm: no CUDA context for cuBLAS");
  }
  int result = 0;
  CublasHandle handle = nullptr;
  if (halide_cuda_get_stream(nullptr, context, &stream) != 0) {
    result = fail("convjit_conv_gemm: no CUDA stream for cuBLAS");
  } else if (cublas.push_context(context) != 0) {
    result = fail("convjit_conv_gemm: cannot make the kernels' CUDA context current");
  } else {
    // The handle's stream is set per call under the table's lock: a handle is shared
    // by every thread running kernels in this context.
    if ((result = handle_for(context, &handle)) == 0) {
      pthread_mutex_lock(&handle_table.mutex);
      if (CublasStatus status = cublas.set_stream(handle, stream); status != 0) {
        result = cublas_failure("cublasSetStream", status);
      }
      const float one = 1.0f, zero = 0.0f;
      const int type_a = data_type(o.columns), type_c = data_type(o.out);
      const int a_bytes = o.columns->type.bytes(), b_bytes = o.weights->type.bytes(), c_bytes = o.out->type.bytes();
      for (int i = 0; result == 0 && i < plan.call_count; ++i) {
        const GemmCall g = plan.call(i);
        CublasStatus status = cublas.gemm(
            handle, g.transpose_a ? kCublasOpT : kCublasOpN, kCublasOpN, g.m, g.n, g.k, &one,
            device_pointer(o.columns) + g.a_offset * a_bytes, type_a, g.lda, g.a_batch_stride,
            device_pointer(o.weights) + g.b_offset * b_bytes, type_a, g.ldb, g.b_batch_stride, &zero,
            device_pointer(o.out) + g.c_offset * c_bytes, type_c, g.ldc, g.c_batch_stride, g.batch,
            kCublasCompute32F, kCublasGemmDefault);
        if (status != 0) result = cublas_failure("cublasGemmStridedBatchedEx", status);
      }
      pthread_mutex_unlock(&handle_table.mutex);
    }
    void* popped = nullptr;
    cublas.pop_context(&popped);
  }
  halide_cuda_release_context(nullptr);
  if (result == 0) o.out->flags |= halide_buffer_flag_device_dirty;
  return result;
}

// ---- Bounds queries and the entry point --------------------------------------------

bool is_bounds_query(const halide_buffer_t* b) { return b->host == nullptr && b->device == 0; }

void set_dim(halide_buffer_t* b, int d, int32_t min, int32_t extent) {
  b->dim[d].min = min;
  b->dim[d].extent = extent;
}

}  // namespace

// Halide's extern-stage contract: called first with null buffers to learn the input
// regions an output region needs (bounds query), then with the data.
// `on_cuda`: 1 for the CUDA form (cuBLAS), 0 for the host form (the plain loop).
extern "C" int convjit_conv_gemm(halide_buffer_t* columns, halide_buffer_t* weights, int32_t groups, int32_t kw,
                                 int32_t kh, int32_t cig, int32_t c_out, int32_t on_cuda, halide_buffer_t* out) {
  const int32_t k = cig * kh * kw, cog = c_out / groups;
  // (Buffers Halide itself passes through, such as the input's, may be real ones
  // during the query: any query buffer marks one.)
  if (is_bounds_query(columns) || is_bounds_query(weights) || is_bounds_query(out)) {
    // Columns by output position: the same x, y and n as the output, every row k.
    set_dim(columns, 0, out->dim[0].min, out->dim[0].extent);
    set_dim(columns, 1, out->dim[1].min, out->dim[1].extent);
    set_dim(columns, 2, 0, groups * k);
    set_dim(columns, 3, out->dim[3].min, out->dim[3].extent);
    const int32_t extents[] = {kw, kh, cig, weights->dimensions == 5 ? cog : c_out, groups};
    for (int d = 0; d < weights->dimensions; ++d) set_dim(weights, d, 0, extents[d]);
    return 0;
  }
  if (out->dim[2].min != 0 || out->dim[2].extent != c_out) {
    return fail("convjit_conv_gemm: the output's channels must be computed whole");
  }
  // Row k = (i, ky, kx) of a group's weight matrix is one dense run per output channel.
  const halide_dimension_t* wd = weights->dim;
  if (wd[0].stride != 1 || wd[1].stride != kw || wd[2].stride != kh * kw) {
    return fail("convjit_conv_gemm: the weights must be dense within each output channel "
                "(strides 1, kw, kh*kw for kx, ky, i)");
  }
  const int32_t width = out->dim[0].extent, height = out->dim[1].extent, images = out->dim[3].extent;
  const halide_dimension_t *cd = columns->dim, *od = out->dim;
  // A position p = x + width * y is one index when rows follow each other directly.
  const bool a_along_p = cd[0].stride == 1;
  const int32_t a_position_stride = a_along_p ? 1 : cd[0].stride;
  if (!a_along_p && cd[2].stride != 1) {
    return fail("convjit_conv_gemm: the column matrix needs a unit stride along x or k");
  }
  if (od[0].stride != 1) return fail("convjit_conv_gemm: the output needs a unit stride along x");
  const bool merge_rows = cd[1].stride == width * a_position_stride && od[1].stride == width;

  Plan plan;
  plan.base.transpose_a = !a_along_p;
  plan.base.m = merge_rows ? width * height : width;
  plan.base.n = cog;
  plan.base.k = k;
  plan.base.lda = a_along_p ? cd[2].stride : a_position_stride;
  plan.base.ldb = wd[3].stride;
  plan.base.ldc = od[2].stride;
  plan.rows = merge_rows ? 1 : height;
  plan.batched_images = groups == 1 && merge_rows;
  plan.call_count = plan.batched_images ? 1 : images * plan.rows;
  plan.images = images;
  plan.groups = groups;
  plan.a_first = offset_of(columns, 0, od[0].min) + offset_of(columns, 1, od[1].min) + offset_of(columns, 2, 0) +
                 offset_of(columns, 3, od[3].min);
  plan.a_row_stride = cd[1].stride;
  plan.a_image_stride = cd[3].stride;
  plan.c_row_stride = od[1].stride;
  plan.c_image_stride = od[3].stride;
  // Group g's weights: OIHW holds them cog channels apart, GOIHW one group apart.
  plan.b_group_stride = weights->dimensions == 5 ? wd[4].stride : int64_t{cog} * wd[3].stride;
  plan.a_group_stride = int64_t{k} * cd[2].stride;
  plan.c_group_stride = int64_t{cog} * od[2].stride;

  const Operands operands = {columns, weights, out};
  return on_cuda ? run_on_device(operands, plan) : run_on_host(operands, plan);
}
