// FMA peak measurement: enough independent accumulator chains per thread to cover
// the FMA latency (4 cycles) times the two FMA ports of recent x86 cores.
#include "fma_peak.h"

#include <immintrin.h>

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

namespace convjit::peers {
namespace {

constexpr int kChains = 12;
constexpr long kIterations = 1 << 22;

__attribute__((target("avx512f"))) float fma_loop_avx512(long iterations) {
  __m512 acc[kChains];
  for (int i = 0; i < kChains; ++i) acc[i] = _mm512_set1_ps(static_cast<float>(i));
  const __m512 a = _mm512_set1_ps(0.999999f), b = _mm512_set1_ps(1e-7f);
  for (long it = 0; it < iterations; ++it) {
    for (int i = 0; i < kChains; ++i) acc[i] = _mm512_fmadd_ps(acc[i], a, b);
  }
  __m512 sum = acc[0];
  for (int i = 1; i < kChains; ++i) sum = _mm512_add_ps(sum, acc[i]);
  float lanes[16];
  _mm512_storeu_ps(lanes, sum);
  return lanes[0];
}

__attribute__((target("avx2,fma"))) float fma_loop_avx2(long iterations) {
  __m256 acc[kChains];
  for (int i = 0; i < kChains; ++i) acc[i] = _mm256_set1_ps(static_cast<float>(i));
  const __m256 a = _mm256_set1_ps(0.999999f), b = _mm256_set1_ps(1e-7f);
  for (long it = 0; it < iterations; ++it) {
    for (int i = 0; i < kChains; ++i) acc[i] = _mm256_fmadd_ps(acc[i], a, b);
  }
  __m256 sum = acc[0];
  for (int i = 1; i < kChains; ++i) sum = _mm256_add_ps(sum, acc[i]);
  float lanes[8];
  _mm256_storeu_ps(lanes, sum);
  return lanes[0];
}

}  // namespace

double measure_fma_peak_gflops(int threads, double seconds) {
  const bool avx512 = __builtin_cpu_supports("avx512f");
  const int lanes = avx512 ? 16 : 8;
  auto loop = [avx512](long n) { return avx512 ? fma_loop_avx512(n) : fma_loop_avx2(n); };
  // Size the run: time one short loop, then scale to `seconds`.
  const auto probe_start = std::chrono::steady_clock::now();
  volatile float sink = loop(kIterations / 16);
  const double probe = std::chrono::duration<double>(std::chrono::steady_clock::now() - probe_start).count();
  const long iterations = static_cast<long>(kIterations / 16 * (seconds / std::max(probe, 1e-6)));
  std::vector<std::thread> workers;
  std::atomic<int> ready{0};
  const auto start = std::chrono::steady_clock::now();
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&] {
      ready.fetch_add(1);
      sink = loop(iterations);
    });
  }
  for (auto& w : workers) w.join();
  const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  (void)sink;
  return 2.0 * lanes * kChains * static_cast<double>(iterations) * threads / elapsed / 1e9;
}

}  // namespace convjit::peers
