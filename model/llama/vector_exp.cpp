#include "model/llama/vector_exp.hpp"

#include <immintrin.h>

#include <cfloat>
#include <cmath>
#include <cstdint>
#include <cstdlib>

// GCC 12's AVX-512 intrinsics pass _mm512_undefined_*() through as the unused operand of
// their masked builtins, which -Wmaybe-uninitialized reports at every use.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"

#define ADAPTERD_AVX512 __attribute__((target("avx512f,avx512dq,avx2,fma")))

namespace adapterd::model::cpu {

namespace {

// glibc's __exp2f_data (2.28 and later), as its expf reads it: 2^(i/32) with i << 47 taken
// off its bits, 32 / ln 2, the rounding shift and the polynomial's coefficients.
alignas(64) constexpr uint64_t table[32] = {
    0x3ff0000000000000, 0x3fefd9b0d3158574, 0x3fefb5586cf9890f, 0x3fef9301d0125b51,
    0x3fef72b83c7d517b, 0x3fef54873168b9aa, 0x3fef387a6e756238, 0x3fef1e9df51fdee1,
    0x3fef06fe0a31b715, 0x3feef1a7373aa9cb, 0x3feedea64c123422, 0x3feece086061892d,
    0x3feebfdad5362a27, 0x3feeb42b569d4f82, 0x3feeab07dd485429, 0x3feea47eb03a5585,
    0x3feea09e667f3bcd, 0x3fee9f75e8ec5f74, 0x3feea11473eb0187, 0x3feea589994cce13,
    0x3feeace5422aa0db, 0x3feeb737b0cdc5e5, 0x3feec49182a3f090, 0x3feed503b23e255d,
    0x3feee89f995ad3ad, 0x3feeff76f2fb5e47, 0x3fef199bdd85529c, 0x3fef3720dcef9069,
    0x3fef5818dcfba487, 0x3fef7c97337b9b5f, 0x3fefa4afa2a490da, 0x3fefd0765b6e4540};
constexpr uint64_t inv_ln2_n = 0x40471547652b82fe, shift = 0x4338000000000000,
                   c0 = 0x3ebc6af84b912394, c1 = 0x3f2ebfce50fac4f3, c2 = 0x3f962e42ff0c52d6,
                   one = 0x3ff0000000000000;
constexpr int first_special_top = 0x42b;  // the top 12 bits of |x| from 88.0 on: expf's slow path

bool has_avx512() {
  static const bool ok = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq")
                         && std::getenv("ADAPTERD_NO_AVX512") == nullptr;
  return ok;
}

// The lanes whose `special` bit is set, through std::exp.
template <int N>
void patch_special(const float* in, float* out, unsigned special) {
  for (int i = 0; i < N; ++i)
    if ((special >> i) & 1)
      out[i] = std::exp(in[i]);
}

// expf's main path in double precision over D's lanes, the operations and their order those
// of glibc's __expf_fma. Inlined into a function of D's own target (see the loops below).
#define ADAPTERD_INLINE inline __attribute__((always_inline))
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wpsabi"
template <class D>
ADAPTERD_INLINE typename D::floats exp_main(typename D::floats x) {
  const auto xd = D::widen(x);
  const auto kd_shifted = D::fmadd(D::constant(inv_ln2_n), xd, D::constant(shift));
  const auto kd = D::sub(kd_shifted, D::constant(shift));
  const auto r = D::fmsub(D::constant(inv_ln2_n), xd, kd);
  const auto z = D::fmadd(r, D::constant(c0), D::constant(c1));
  const auto r2 = D::mul(r, r);
  auto y = D::fmadd(r, D::constant(c2), D::constant(one));
  y = D::fmadd(z, r2, y);
  return D::narrow(D::mul(y, D::scale_of(kd_shifted)));
}
#pragma GCC diagnostic pop

// AVX2: four lanes. scale_of: 2^(k/32) from the table (a gather) and k's high bits.
struct doubles4 {
  using floats = __m128;
  using type = __m256d;
  static type widen(floats x) { return _mm256_cvtps_pd(x); }
  static floats narrow(type y) { return _mm256_cvtpd_ps(y); }
  static type constant(uint64_t bits) {
    return _mm256_castsi256_pd(_mm256_set1_epi64x(static_cast<long long>(bits)));
  }
  static type fmadd(type a, type b, type c) { return _mm256_fmadd_pd(a, b, c); }
  static type fmsub(type a, type b, type c) { return _mm256_fmsub_pd(a, b, c); }
  static type sub(type a, type b) { return _mm256_sub_pd(a, b); }
  static type mul(type a, type b) { return _mm256_mul_pd(a, b); }
  static type scale_of(type kd_shifted) {
    const __m256i ki = _mm256_castpd_si256(kd_shifted);
    const __m256i index = _mm256_and_si256(ki, _mm256_set1_epi64x(31));
    return _mm256_castsi256_pd(_mm256_add_epi64(
        _mm256_i64gather_epi64(reinterpret_cast<const long long*>(table), index, 8),
        _mm256_slli_epi64(ki, 47)));
  }
};

struct floats8 {
  using type = __m256;
  static constexpr int width = 8;
  static type load(const float* p) { return _mm256_loadu_ps(p); }
  static void store(float* p, type v) { _mm256_storeu_ps(p, v); }
  static type exp(type x) {
    alignas(32) float out[8];
    _mm256_store_ps(out, _mm256_setr_m128(exp_main<doubles4>(_mm256_castps256_ps128(x)),
                                          exp_main<doubles4>(_mm256_extractf128_ps(x, 1))));
    const __m256i top =
        _mm256_and_si256(_mm256_srli_epi32(_mm256_castps_si256(x), 20), _mm256_set1_epi32(0x7ff));
    const auto special = static_cast<unsigned>(_mm256_movemask_ps(
        _mm256_castsi256_ps(_mm256_cmpgt_epi32(top, _mm256_set1_epi32(first_special_top - 1)))));
    if (special != 0) {
      alignas(32) float in[8];
      _mm256_store_ps(in, x);
      patch_special<8>(in, out, special);
    }
    return _mm256_load_ps(out);
  }
  static type silu_mul(type g, type up) {
    const type e = exp(_mm256_xor_ps(g, _mm256_set1_ps(-0.0f)));
    return _mm256_mul_ps(_mm256_div_ps(g, _mm256_add_ps(_mm256_set1_ps(1.0f), e)), up);
  }
  static type shifted_exp(type p, float top, float below) {
    const type d = _mm256_sub_ps(p, _mm256_set1_ps(top));
    return _mm256_and_ps(exp(d), _mm256_cmp_ps(d, _mm256_set1_ps(below), _CMP_NLT_UQ));
  }
};

// AVX-512: eight lanes; the table read with two two-register permutes (16 entries each)
// instead of a gather.
struct doubles8 {
  using floats = __m256;
  using type = __m512d;
  ADAPTERD_AVX512 static type widen(floats x) { return _mm512_cvtps_pd(x); }
  ADAPTERD_AVX512 static floats narrow(type y) { return _mm512_cvtpd_ps(y); }
  ADAPTERD_AVX512 static type constant(uint64_t bits) {
    return _mm512_castsi512_pd(_mm512_set1_epi64(static_cast<long long>(bits)));
  }
  ADAPTERD_AVX512 static type fmadd(type a, type b, type c) { return _mm512_fmadd_pd(a, b, c); }
  ADAPTERD_AVX512 static type fmsub(type a, type b, type c) { return _mm512_fmsub_pd(a, b, c); }
  ADAPTERD_AVX512 static type sub(type a, type b) { return _mm512_sub_pd(a, b); }
  ADAPTERD_AVX512 static type mul(type a, type b) { return _mm512_mul_pd(a, b); }
  ADAPTERD_AVX512 static type scale_of(type kd_shifted) {
    const __m512i ki = _mm512_castpd_si512(kd_shifted);
    const __m512i* t64 = reinterpret_cast<const __m512i*>(table);
    const __m512i low =
        _mm512_permutex2var_epi64(_mm512_load_si512(t64), ki, _mm512_load_si512(t64 + 1));
    const __m512i high =
        _mm512_permutex2var_epi64(_mm512_load_si512(t64 + 2), ki, _mm512_load_si512(t64 + 3));
    const __mmask8 upper = _mm512_test_epi64_mask(ki, _mm512_set1_epi64(16));
    return _mm512_castsi512_pd(
        _mm512_add_epi64(_mm512_mask_blend_epi64(upper, low, high), _mm512_slli_epi64(ki, 47)));
  }
};

ADAPTERD_AVX512 __m256 exp8_avx512(__m256 x) {
  return exp_main<doubles8>(x);
}

struct floats16 {
  using type = __m512;
  static constexpr int width = 16;
  ADAPTERD_AVX512 static type load(const float* p) { return _mm512_loadu_ps(p); }
  ADAPTERD_AVX512 static void store(float* p, type v) { _mm512_storeu_ps(p, v); }
  ADAPTERD_AVX512 static type exp(type x) {
    const __m512i bits = _mm512_castps_si512(x);
    type y = _mm512_insertf32x8(_mm512_castps256_ps512(exp8_avx512(_mm512_castps512_ps256(x))),
                                exp8_avx512(_mm512_extractf32x8_ps(x, 1)), 1);
    const __m512i top = _mm512_and_si512(_mm512_srli_epi32(bits, 20), _mm512_set1_epi32(0x7ff));
    const unsigned special = _mm512_cmpgt_epi32_mask(top, _mm512_set1_epi32(first_special_top - 1));
    if (special != 0) {
      alignas(64) float in[16], out[16];
      _mm512_store_ps(in, x);
      _mm512_store_ps(out, y);
      patch_special<16>(in, out, special);
      y = _mm512_load_ps(out);
    }
    return y;
  }
  ADAPTERD_AVX512 static type silu_mul(type g, type up) {
    const type e = exp(_mm512_xor_ps(g, _mm512_set1_ps(-0.0f)));
    return _mm512_mul_ps(_mm512_div_ps(g, _mm512_add_ps(_mm512_set1_ps(1.0f), e)), up);
  }
  ADAPTERD_AVX512 static type shifted_exp(type p, float top, float below) {
    const type d = _mm512_sub_ps(p, _mm512_set1_ps(top));
    const __mmask16 keep = _mm512_cmp_ps_mask(d, _mm512_set1_ps(below), _CMP_NLT_UQ);
    return _mm512_maskz_mov_ps(keep, exp(d));
  }
};

// The loops over whole vectors, inlined into a function of the lanes' own target (a 512-bit
// vector passed between functions of different targets would not arrive whole). The caller
// does the rest one by one, as the scalar loops compute it. GCC checks the templates' ABI
// before it inlines them, hence -Wpsabi off around them.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wpsabi"
template <class L>
ADAPTERD_INLINE size_t exp_floats_with(const float* x, float* out, size_t n) {
  size_t i = 0;
  for (; i + L::width <= n; i += L::width)
    L::store(out + i, L::exp(L::load(x + i)));
  return i;
}
template <class L>
ADAPTERD_INLINE size_t silu_mul_with(float* gate, const float* up, size_t n) {
  size_t i = 0;
  for (; i + L::width <= n; i += L::width)
    L::store(gate + i, L::silu_mul(L::load(gate + i), L::load(up + i)));
  return i;
}
template <class L>
ADAPTERD_INLINE size_t shifted_exp_with(float* p, size_t n, float top, float below) {
  size_t i = 0;
  for (; i + L::width <= n; i += L::width)
    L::store(p + i, L::shifted_exp(L::load(p + i), top, below));
  return i;
}

#pragma GCC diagnostic pop

ADAPTERD_AVX512 size_t exp_avx512(const float* x, float* out, size_t n) {
  return exp_floats_with<floats16>(x, out, n);
}
ADAPTERD_AVX512 size_t silu_mul_avx512(float* gate, const float* up, size_t n) {
  return silu_mul_with<floats16>(gate, up, n);
}
ADAPTERD_AVX512 size_t shifted_exp_avx512(float* p, size_t n, float top, float below) {
  return shifted_exp_with<floats16>(p, n, top, below);
}

}  // namespace

void exp_floats(const float* x, float* out, size_t n) {
  size_t i = has_avx512() ? exp_avx512(x, out, n) : 0;
  i += exp_floats_with<floats8>(x + i, out + i, n - i);
  for (; i < n; ++i)
    out[i] = std::exp(x[i]);
}

void silu_mul_vector(float* gate, const float* up, size_t n) {
  size_t i = has_avx512() ? silu_mul_avx512(gate, up, n) : 0;
  i += silu_mul_with<floats8>(gate + i, up + i, n - i);
  for (; i < n; ++i)
    gate[i] = gate[i] / (1.0f + std::exp(-gate[i])) * up[i];
}

void normalise_vector(float* p, size_t n, float sum) {
  size_t i = 0;
  const __m256 sum8 = _mm256_set1_ps(sum), smallest = _mm256_set1_ps(FLT_MIN);
  for (; i + 8 <= n; i += 8) {
    const __m256 w = _mm256_div_ps(_mm256_loadu_ps(p + i), sum8);
    _mm256_storeu_ps(p + i, _mm256_and_ps(w, _mm256_cmp_ps(w, smallest, _CMP_NLT_UQ)));
  }
  for (; i < n; ++i) {
    p[i] /= sum;
    p[i] = p[i] < FLT_MIN ? 0.0f : p[i];
  }
}

void shifted_exp_vector(float* p, size_t n, float top, float below) {
  size_t i = has_avx512() ? shifted_exp_avx512(p, n, top, below) : 0;
  i += shifted_exp_with<floats8>(p + i, n - i, top, below);
  for (; i < n; ++i)
    p[i] = p[i] - top < below ? 0.0f : std::exp(p[i] - top);
}

}  // namespace adapterd::model::cpu
