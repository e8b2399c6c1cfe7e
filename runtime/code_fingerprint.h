// The parts of a disk cache key that name the code generator, not the kernel.
#pragma once

#include <string>

namespace convjit {

// Halide's version and the identity (size, modification time) of the libHalide
// this process uses: a rebuilt or patched Halide of the same version still counts
// as another code generator.
const std::string& halide_fingerprint();

// A hash of convjit's own code-generation sources, computed at build time.
const std::string& codegen_fingerprint();

}  // namespace convjit
