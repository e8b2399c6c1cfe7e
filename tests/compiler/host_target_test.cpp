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

}  // namespace
}  // namespace convjit
