#pragma once
// The fp32 FMA peak of one core, measured: independent chains of fused multiply-adds in
// registers, 16 lanes each (8 with AVX2 only). The benches that print GFLOP/s print them
// against this, measured in the same run.
#include <immintrin.h>

#include <chrono>
#include <iostream>

namespace adapterd::bench {

__attribute__((target("avx512f"))) inline double fma_peak_avx512() {
  __m512 acc[12];
  for (auto& a : acc)
    a = _mm512_set1_ps(1.0f);
  const __m512 m = _mm512_set1_ps(0.999999f), c = _mm512_set1_ps(1e-7f);
  constexpr long iterations = 20'000'000;
  auto start = std::chrono::steady_clock::now();
  for (long i = 0; i < iterations; ++i)
#pragma GCC unroll 12
    for (int k = 0; k < 12; ++k)  // in registers: twelve independent chains
      acc[k] = _mm512_fmadd_ps(acc[k], m, c);
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  float sink = 0;
  alignas(64) float lanes[16];  // through memory: GCC 12's 512-bit reductions warn
  for (auto& a : acc) {
    _mm512_store_ps(lanes, a);
    sink += lanes[0];
  }
  if (sink == 42)
    std::cout << "";
  return 2.0 * 16 * 12 * iterations / s / 1e9;
}

__attribute__((target("avx2,fma"))) inline double fma_peak_avx2() {
  __m256 acc[12];
  for (auto& a : acc)
    a = _mm256_set1_ps(1.0f);
  const __m256 m = _mm256_set1_ps(0.999999f), c = _mm256_set1_ps(1e-7f);
  constexpr long iterations = 20'000'000;
  auto start = std::chrono::steady_clock::now();
  for (long i = 0; i < iterations; ++i)
#pragma GCC unroll 12
    for (int k = 0; k < 12; ++k)
      acc[k] = _mm256_fmadd_ps(acc[k], m, c);
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  float sink = 0;
  alignas(32) float lanes[8];
  for (auto& a : acc) {
    _mm256_store_ps(lanes, a);
    sink += lanes[0];
  }
  if (sink == 42)
    std::cout << "";
  return 2.0 * 8 * 12 * iterations / s / 1e9;
}

inline double fma_peak_per_core(bool avx512) {
  return avx512 ? fma_peak_avx512() : fma_peak_avx2();
}

}  // namespace adapterd::bench
