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

bool cpu_splits_512_bit_vectors() {
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  if (!__get_cpuid(0, &eax, &ebx, &ecx, &edx)) return false;
  // The vendor string "AuthenticAMD" in EBX, EDX, ECX.
  const bool amd = ebx == 0x68747541 && edx == 0x69746e65 && ecx == 0x444d4163;
  if (!amd || !__get_cpuid(1, &eax, &ebx, &ecx, &edx)) return false;
  const unsigned base_family = (eax >> 8) & 0xf;
  const unsigned family = base_family == 0xf ? base_family + ((eax >> 20) & 0xff) : base_family;
  if (family != 0x19 || !__get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx)) return false;
  return (ebx >> 16) & 1;  // AVX-512F: CPUID.(EAX=7,ECX=0):EBX[16]; Zen 3 (also 0x19) lacks it
}

bool target_splits_512_bit_vectors(const Halide::Target& target) {
  static const bool splits = cpu_splits_512_bit_vectors();
  if (!splits || !target.has_feature(Halide::Target::AVX512)) return false;
  const Halide::Target& host = host_cpu_target();
  if (target.arch != host.arch || target.bits != host.bits || target.os != host.os) return false;
  for (Halide::Target::Feature f :
       {Halide::Target::SSE41, Halide::Target::AVX, Halide::Target::AVX2, Halide::Target::FMA,
        Halide::Target::F16C, Halide::Target::AVX512, Halide::Target::AVX512_KNL, Halide::Target::AVX512_Skylake,
        Halide::Target::AVX512_Cannonlake, Halide::Target::AVX512_SapphireRapids}) {
    if (target.has_feature(f) != host.has_feature(f)) return false;
  }
  return true;
}

std::string default_schedule_cpu_traits(const Halide::Target& target) {
  return target_splits_512_bit_vectors(target) ? "avx512_in_halves" : "";
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
