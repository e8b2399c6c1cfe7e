// The Halide target of the CPU this process runs on (host_target.h has why it is
// not Halide's own detection).
#include "host_target.h"

#include <cpuid.h>

namespace convjit {

bool cpu_has_sapphire_rapids_vector_isa() {
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  if (!__get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx)) return false;
  const bool avx512_fp16 = (edx >> 23) & 1;   // CPUID.(EAX=7,ECX=0):EDX[23]
  if (eax < 1 || !__get_cpuid_count(7, 1, &eax, &ebx, &ecx, &edx)) return false;
  const bool avx_vnni = (eax >> 4) & 1;       // CPUID.(EAX=7,ECX=1):EAX[4]
  return avx512_fp16 && avx_vnni;
}

Halide::Target without_features_this_cpu_lacks(Halide::Target target) {
  static const bool sapphire_rapids = cpu_has_sapphire_rapids_vector_isa();
  if (!sapphire_rapids) target = target.without_feature(Halide::Target::AVX512_SapphireRapids);
  return target;
}

const Halide::Target& host_cpu_target() {
  static const Halide::Target target = without_features_this_cpu_lacks(Halide::get_host_target());
  return target;
}

}  // namespace convjit
