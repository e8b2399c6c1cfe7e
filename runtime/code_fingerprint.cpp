// Fingerprints of Halide and of convjit's code generation for disk cache keys.
#include "code_fingerprint.h"

#include <dlfcn.h>
#include <sys/stat.h>

#include "Halide.h"
#include "codegen_fingerprint.h"

namespace convjit {

const std::string& halide_fingerprint() {
  static const std::string fingerprint = [] {
    std::string text = CONVJIT_HALIDE_VERSION;
    Dl_info info{};
    // Any function of libHalide locates the library file.
    if (dladdr(reinterpret_cast<void*>(&Halide::get_host_target), &info) && info.dli_fname) {
      struct stat st;
      if (stat(info.dli_fname, &st) == 0) {
        text += "/" + std::to_string(st.st_size) + "-" + std::to_string(st.st_mtim.tv_sec);
      }
    }
    return text;
  }();
  return fingerprint;
}

const std::string& codegen_fingerprint() {
  static const std::string fingerprint = CONVJIT_CODEGEN_FINGERPRINT;
  return fingerprint;
}

}  // namespace convjit
