// The GEMM form of a forward convolution: im2col (a Halide stage) feeding an extern
// matrix-multiply stage, `convjit_conv_gemm` (runtime/conv_gemm_bridge.cpp), which
// calls cuBLAS on a CUDA device (internal header: includes Halide.h).
//
// Per image n and group g the convolution is one matrix product
//   out[g](p, o) = sum_k columns[g](p, k) * W[g](k, o)
// with p an output position (x + w_out * y), k a weight row (i, ky, kx) in the
// weights' own memory order (OIHW / GOIHW), and o an output channel of the group.
// cuBLAS is column-major, so the NCHW output plane of each channel is a column of
// out[g] and the weights are used in place, without repacking.
#pragma once

#include <string>

#include "lowering.h"

namespace convjit {

// Empty when `spec` has a GEMM form; else why not (transposed, depthwise, a column
// matrix too large for 32-bit indexing).
std::string why_no_gemm_form(const ConvSpec& spec);

// Whether the GEMM reads the input as its column matrix (1x1, stride 1, no padding):
// then there is no im2col stage.
bool gemm_reads_input_directly(const ConvSpec& spec);

// The GEMM form of a spec that has one. `on_cuda`: the extern stage takes device
// buffers (Halide copies host inputs in first); else host buffers, on which the
// bridge runs its plain host loop (how the form is tested without a GPU).
ConvAlgorithm lower_as_gemm(const ConvSpec& spec, bool on_cuda);

// The extern stage's C symbol. Its arguments: the column buffer (x, y, k, n), the
// weight buffer, then groups, kw, kh, c_in/groups, c_out and on_cuda (1 or 0) as
// int32, then the output buffer (x, y, c, n); runtime/conv_gemm_bridge.cpp defines it.
constexpr const char* kConvGemmFunction = "convjit_conv_gemm";

}  // namespace convjit
