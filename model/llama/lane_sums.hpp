#pragma once
// Sixteen 16-lane partial sums reduced at once, each in the order of the kernels' one-at-a-
// time reduction (hsum512 in cpu_kernels.cpp, cpu::dot's two 8-lane accumulators): lane l +
// lane l+8, then + lane l+4, then (0+1) + (2+3), done on four vectors' lanes side by side.
// AVX-512: for code compiled for it (the function carries its own target, so no copy of it
// can run on a CPU without).
#include <immintrin.h>

#include <cstddef>

namespace adapterd::model::cpu {

struct alignas(64) lanes16 {
  float lane[16];
};

// GCC 12's AVX-512 intrinsics pass _mm512_undefined_*() through as the unused operand of
// their masked builtins, which -Wuninitialized reports at every use (as in dense_avx512.cpp).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"

/// Lane i: the sum of v[i * stride]'s 16 lanes.
__attribute__((target("avx512f"))) inline __m512 sums16(const lanes16* v, size_t stride = 1) {
  __m512 eight[8], four[4], two[2];
  for (int i = 0; i < 8; ++i) {  // lanes 0-7: l + (l + 8) of v[2i], lanes 8-15: of v[2i + 1]
    const __m512 a = _mm512_load_ps(v[2 * i * stride].lane),
                 b = _mm512_load_ps(v[(2 * i + 1) * stride].lane);
    eight[i] = _mm512_add_ps(_mm512_shuffle_f32x4(a, b, 0x44), _mm512_shuffle_f32x4(a, b, 0xee));
  }
  for (int i = 0; i < 4; ++i)  // quarter q: l + (l + 4) of v[4i + q]
    four[i] = _mm512_add_ps(_mm512_shuffle_f32x4(eight[2 * i], eight[2 * i + 1], 0x88),
                            _mm512_shuffle_f32x4(eight[2 * i], eight[2 * i + 1], 0xdd));
  for (int i = 0; i < 2; ++i)  // quarter q: (0+1), (2+3) of v[8i + q], then of v[8i + 4 + q]
    two[i] =
        _mm512_add_ps(_mm512_shuffle_ps(four[2 * i], four[2 * i + 1], _MM_SHUFFLE(2, 0, 2, 0)),
                      _mm512_shuffle_ps(four[2 * i], four[2 * i + 1], _MM_SHUFFLE(3, 1, 3, 1)));
  // lane 4q + m: the sum of v[4m + q]
  const __m512 sums = _mm512_add_ps(_mm512_shuffle_ps(two[0], two[1], _MM_SHUFFLE(2, 0, 2, 0)),
                                    _mm512_shuffle_ps(two[0], two[1], _MM_SHUFFLE(3, 1, 3, 1)));
  return _mm512_permutexvar_ps(
      _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15), sums);
}

#pragma GCC diagnostic pop

}  // namespace adapterd::model::cpu
