// The host target convjit compiles for (compiler/host_target.h): never a feature set
// whose instructions this CPU lacks, whatever Halide's own detection says.
#include <gtest/gtest.h>

#include "host_target.h"
#include "pipeline_compiler.h"

namespace convjit {
namespace {

using Halide::Target;

TEST(HostTarget, KeepsSapphireRapidsOnlyWhereTheCpuHasItsVectorInstructions) {
  const Target& host = host_cpu_target();
  if (host.has_feature(Target::AVX512_SapphireRapids)) {
    EXPECT_TRUE(cpu_has_sapphire_rapids_vector_isa()) << host.to_string();
  }
  // Everything else Halide detected stays.
  const Target halide = Halide::get_host_target().without_feature(Target::AVX512_SapphireRapids);
  EXPECT_EQ(host.without_feature(Target::AVX512_SapphireRapids), halide)
      << host.to_string() << " against Halide's " << Halide::get_host_target().to_string();
}

TEST(HostTarget, HostTargetStringsResolveToTheCorrectedHost) {
  auto host = resolve_target("host");
  ASSERT_TRUE(host.ok()) << host.status().message();
  EXPECT_EQ(*host, host_cpu_target());
  auto with_cuda = resolve_target("host-cuda");
  ASSERT_TRUE(with_cuda.ok()) << with_cuda.status().message();
  EXPECT_EQ(with_cuda->has_feature(Target::AVX512_SapphireRapids),
            host_cpu_target().has_feature(Target::AVX512_SapphireRapids));
  EXPECT_TRUE(with_cuda->has_feature(Target::CUDA));
  // A target string that names the features itself is taken as written: it may be
  // for another machine (AOT).
  auto named = resolve_target("x86-64-linux-avx-avx2-avx512-avx512_cannonlake-avx512_sapphirerapids-avx512_skylake-f16c-fma-sse41");
  ASSERT_TRUE(named.ok()) << named.status().message();
  EXPECT_TRUE(named->has_feature(Target::AVX512_SapphireRapids));
}

// The 512-bit split trait (Zen 4) applies to the host's own target only: never to a
// target without AVX-512 or one whose x86 feature sets differ from this CPU's.
TEST(HostTarget, The512BitSplitTraitAppliesOnlyToTheHostsOwnAvx512Target) {
  const Target& host = host_cpu_target();
  EXPECT_FALSE(target_splits_512_bit_vectors(Target("x86-64-linux-avx-avx2-f16c-fma-sse41")));
  EXPECT_FALSE(target_splits_512_bit_vectors(Target("arm-64-linux")));
  EXPECT_EQ(target_splits_512_bit_vectors(host), cpu_splits_512_bit_vectors() && host.has_feature(Target::AVX512));
  // The host's target with a GPU feature is still this CPU's code.
  EXPECT_EQ(target_splits_512_bit_vectors(host.with_feature(Target::CUDA)), target_splits_512_bit_vectors(host));
  if (host.has_feature(Target::AVX512)) {
    const Target::Feature toggled = Target::AVX512_SapphireRapids;
    const Target other = host.has_feature(toggled) ? host.without_feature(toggled) : host.with_feature(toggled);
    EXPECT_FALSE(target_splits_512_bit_vectors(other)) << other.to_string();
  }
  EXPECT_EQ(default_schedule_cpu_traits(host), target_splits_512_bit_vectors(host) ? "avx512_in_halves" : "");
}

}  // namespace
}  // namespace convjit
