// The compiled object of conv_gemm_bridge.cpp (the GEMM form's extern stage),
// embedded at build time (cmake/embed_bytes.cmake): linked into the process's Halide
// runtime library and archived into AOT libraries with CUDA targets.
#pragma once

#include <cstddef>
#include <string>

namespace convjit {

extern const unsigned char kConvGemmBridgeObject[];
extern const std::size_t kConvGemmBridgeObject_size;

inline std::string conv_gemm_bridge_object() {
  return std::string(reinterpret_cast<const char*>(kConvGemmBridgeObject), kConvGemmBridgeObject_size);
}

}  // namespace convjit
