#include "model/llama/cpu_kernels.hpp"
#include "model/llama/lane_sums.hpp"
#include "model/llama/vector_exp.hpp"

#include <immintrin.h>
#include <sys/mman.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <new>
#include <vector>

// GCC 12's AVX-512 intrinsics pass _mm512_undefined_*() through as the unused operand of
// their masked builtins, which -Wuninitialized reports at every use (as in dense_avx512.cpp).
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"

namespace adapterd::model::cpu {

namespace {

#define ADAPTERD_AVX2 __attribute__((target("avx2,fma")))

ADAPTERD_AVX2 inline float hsum(__m256 v) {
  __m128 lo = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  __m128 shuf = _mm_movehdup_ps(lo);
  __m128 sums = _mm_add_ps(lo, shuf);
  shuf = _mm_movehl_ps(shuf, sums);
  return _mm_cvtss_f32(_mm_add_ss(sums, shuf));
}

// OUT weight rows (adjacent) times ROWS activation rows, accumulators in registers.
template <int OUT, int ROWS>
ADAPTERD_AVX2 void tile(const float* x, size_t ldx, const float* w, size_t k_dim, const float* bias,
                        float* y, size_t ldy, size_t j) {
  // The unroll pragmas keep acc in registers (GCC otherwise leaves it on the stack).
  __m256 acc[OUT][ROWS];
#pragma GCC unroll 8
  for (int o = 0; o < OUT; ++o)
#pragma GCC unroll 8
    for (int r = 0; r < ROWS; ++r)
      acc[o][r] = _mm256_setzero_ps();
  const size_t kv = k_dim & ~size_t(7);
  const float* wr = w + j * k_dim;
  for (size_t k = 0; k < kv; k += 8) {
    __m256 wv[OUT];
#pragma GCC unroll 8
    for (int o = 0; o < OUT; ++o)
      wv[o] = _mm256_loadu_ps(wr + o * k_dim + k);
#pragma GCC unroll 8
    for (int r = 0; r < ROWS; ++r) {
      __m256 xv = _mm256_loadu_ps(x + r * ldx + k);
#pragma GCC unroll 8
      for (int o = 0; o < OUT; ++o)
        acc[o][r] = _mm256_fmadd_ps(wv[o], xv, acc[o][r]);
    }
  }
  for (int o = 0; o < OUT; ++o)
    for (int r = 0; r < ROWS; ++r) {
      float s = hsum(acc[o][r]);
      for (size_t k = kv; k < k_dim; ++k)
        s += wr[o * k_dim + k] * x[r * ldx + k];
      y[r * ldy + j + o] = bias != nullptr ? s + bias[j + o] : s;
    }
}

template <int OUT>
ADAPTERD_AVX2 void tile_rows(const float* x, size_t rows, size_t ldx, const float* w, size_t k_dim,
                             const float* bias, float* y, size_t ldy, size_t j) {
  size_t r = 0;
  for (; r + 3 <= rows; r += 3)
    tile<OUT, 3>(x + r * ldx, ldx, w, k_dim, bias, y + r * ldy, ldy, j);
  switch (rows - r) {
    case 2: tile<OUT, 2>(x + r * ldx, ldx, w, k_dim, bias, y + r * ldy, ldy, j); break;
    case 1: tile<OUT, 1>(x + r * ldx, ldx, w, k_dim, bias, y + r * ldy, ldy, j); break;
    default: break;
  }
}

// The same tiles with 16-lane registers, where the CPU has AVX-512 (twice the registers,
// so 4 x 4 tiles keep all accumulators and operands in registers).
#define ADAPTERD_AVX512 __attribute__((target("avx512f,avx2,fma")))

// A fixed-order sum of the 16 lanes (GCC 12's _mm512_reduce_add_ps trips -Wuninitialized).
ADAPTERD_AVX512 inline float hsum512(__m512 v) {
  alignas(64) float lanes[16];
  _mm512_store_ps(lanes, v);
  __m256 a = _mm256_load_ps(lanes), b = _mm256_load_ps(lanes + 8);
  return hsum(_mm256_add_ps(a, b));
}

template <int OUT, int ROWS>
ADAPTERD_AVX512 void tile512(const float* x, size_t ldx, const float* w, size_t k_dim,
                             const float* bias, float* y, size_t ldy, size_t j) {
  __m512 acc[OUT][ROWS];
#pragma GCC unroll 8
  for (int o = 0; o < OUT; ++o)
#pragma GCC unroll 8
    for (int r = 0; r < ROWS; ++r)
      acc[o][r] = _mm512_setzero_ps();
  const size_t kv = k_dim & ~size_t(15);
  const float* wr = w + j * k_dim;
  const float* next = wr + OUT * k_dim;  // the following weight rows: fetch them meanwhile
  for (size_t k = 0; k < kv; k += 16) {
    if (ROWS > 1)
#pragma GCC unroll 8
      for (int o = 0; o < OUT; ++o)
        _mm_prefetch(reinterpret_cast<const char*>(next + o * k_dim + k), _MM_HINT_T0);
    __m512 wv[OUT];
#pragma GCC unroll 8
    for (int o = 0; o < OUT; ++o)
      wv[o] = _mm512_loadu_ps(wr + o * k_dim + k);
#pragma GCC unroll 8
    for (int r = 0; r < ROWS; ++r) {
      __m512 xv = _mm512_loadu_ps(x + r * ldx + k);
#pragma GCC unroll 8
      for (int o = 0; o < OUT; ++o)
        acc[o][r] = _mm512_fmadd_ps(wv[o], xv, acc[o][r]);
    }
  }
  for (int o = 0; o < OUT; ++o)
    for (int r = 0; r < ROWS; ++r) {
      float s = hsum512(acc[o][r]);
      for (size_t k = kv; k < k_dim; ++k)
        s += wr[o * k_dim + k] * x[r * ldx + k];
      y[r * ldy + j + o] = bias != nullptr ? s + bias[j + o] : s;
    }
}

template <int OUT>
ADAPTERD_AVX512 void tile512_rows(const float* x, size_t rows, size_t ldx, const float* w,
                                  size_t k_dim, const float* bias, float* y, size_t ldy, size_t j) {
  size_t r = 0;
  for (; r + 4 <= rows; r += 4)
    tile512<OUT, 4>(x + r * ldx, ldx, w, k_dim, bias, y + r * ldy, ldy, j);
  switch (rows - r) {
    case 3: tile512<OUT, 3>(x + r * ldx, ldx, w, k_dim, bias, y + r * ldy, ldy, j); break;
    case 2: tile512<OUT, 2>(x + r * ldx, ldx, w, k_dim, bias, y + r * ldy, ldy, j); break;
    case 1: tile512<OUT, 1>(x + r * ldx, ldx, w, k_dim, bias, y + r * ldy, ldy, j); break;
    default: break;
  }
}

// Many activation rows (tiles512_many): weight rows 16 at a time, eight by eight, each
// eight read once from memory as 8 streams in k order, span by span; within a span, the 8
// weight rows stay in L1 while every activation row passes by, 3 at a time (8 x 3
// accumulators). Each (weight row, activation row) pair keeps its 16 lanes in `partial`
// between spans and sums them as tile512 does, lane by lane in increasing k, then lane l +
// lane l+8 and so on: the bits are tile512's, whatever the tile or the batch.
constexpr size_t span_floats =
    512;  // 8 weight rows x 2 KiB stay in L1; 256 was as fast at 16 rows, slower at 64
constexpr size_t many_out = 16;  // weight rows per pass: sums16 finishes 16 outputs at once
// `packed`: the activation rows, 16 floats of each row in turn per k step (`step_floats`
// apart), so that one pointer walks them; `partial[o * rows_total + r]`. With FETCH > 0,
// the tile also asks for FETCH weight rows of the next span, from `fetch` on (k_dim floats
// apart), one line of each per step, into L2 (see span_all_rows).
template <int OUT, int ROWS, int FETCH = 0>
ADAPTERD_AVX512 void tile512_span(const float* packed, size_t step_floats, const float* wr,
                                  size_t k_dim, size_t k0, size_t k1, lanes16* partial,
                                  size_t rows_total, const float* fetch = nullptr) {
  __m512 acc[OUT][ROWS];
#pragma GCC unroll 8
  for (int o = 0; o < OUT; ++o)
#pragma GCC unroll 4
    for (int r = 0; r < ROWS; ++r)
      acc[o][r] = k0 == 0 ? _mm512_setzero_ps() : _mm512_load_ps(partial[o * rows_total + r].lane);
  const float* w_at = wr + k0;
  packed += k0 / 16 * step_floats;
  for (size_t k = k0; k < k1; k += 16, w_at += 16, packed += step_floats) {
    if constexpr (FETCH > 0) {
#pragma GCC unroll 8
      for (int f = 0; f < FETCH; ++f)
        _mm_prefetch(reinterpret_cast<const char*>(fetch + f * k_dim), _MM_HINT_T1);
      fetch += 16;
    }
    __m512 xv[ROWS];
#pragma GCC unroll 4
    for (int r = 0; r < ROWS; ++r)
      xv[r] = _mm512_load_ps(packed + r * 16);
#pragma GCC unroll 8
    for (int o = 0; o < OUT; ++o) {
      __m512 wv = _mm512_loadu_ps(w_at + o * k_dim);
      asm("" : "+v"(wv));  // one load for ROWS products: keeps GCC from folding it into each
#pragma GCC unroll 4
      for (int r = 0; r < ROWS; ++r)
        acc[o][r] = _mm512_fmadd_ps(wv, xv[r], acc[o][r]);
    }
  }
#pragma GCC unroll 8
  for (int o = 0; o < OUT; ++o)
#pragma GCC unroll 4
    for (int r = 0; r < ROWS; ++r)
      _mm512_store_ps(partial[o * rows_total + r].lane, acc[o][r]);
}

// One tile of span_all_rows, fetching `fetch_rows` rows of the next span (0, 2, 4 or 8).
template <int OUT, int ROWS>
ADAPTERD_AVX512 void tile512_span_fetching(size_t fetch_rows, const float* packed,
                                           size_t step_floats, const float* wr, size_t k_dim,
                                           size_t k0, size_t k1, lanes16* partial,
                                           size_t rows_total, const float* fetch) {
  switch (fetch_rows) {
    case 8:
      return tile512_span<OUT, ROWS, 8>(packed, step_floats, wr, k_dim, k0, k1, partial, rows_total,
                                        fetch);
    case 4:
      return tile512_span<OUT, ROWS, 4>(packed, step_floats, wr, k_dim, k0, k1, partial, rows_total,
                                        fetch);
    case 2:
      return tile512_span<OUT, ROWS, 2>(packed, step_floats, wr, k_dim, k0, k1, partial, rows_total,
                                        fetch);
    default:
      return tile512_span<OUT, ROWS>(packed, step_floats, wr, k_dim, k0, k1, partial, rows_total);
  }
}

// OUT weight rows times every activation row, over one span. The first tile reads the
// span's weights from memory and the others from L1, so the memory would idle while they
// run: with eight rows, up to four of the other tiles share the fetching of what comes
// next (the next span, or after the last one the next eight rows' first) into L2. The
// hardware's prefetch did not run that far ahead: one thread, 16 rows, 62-72 -> 68-84
// GFLOP/s from memory.
template <int OUT>
ADAPTERD_AVX512 void span_all_rows(const float* packed, size_t rows, const float* wr, size_t k_dim,
                                   size_t k0, size_t k1, size_t kv, lanes16* partial) {
  const size_t step_floats = rows * 16;
  // threes, and the rest in twos where a one would be left (a lone row loads a weight
  // vector per product)
  const size_t threes = rows % 3 == 1 && rows >= 4 ? rows / 3 - 1 : rows / 3;
  const size_t twos = (rows - 3 * threes) / 2, tiles = threes + twos + (rows - 3 * threes) % 2;
  const size_t fetchers = OUT == 8 ? std::min<size_t>(4, tiles - 1) : 0;
  const size_t per_fetcher = fetchers == 0 ? 0 : fetchers == 1 ? 8 : fetchers == 2 ? 4 : 2;
  const float* next = k1 < kv ? wr + k1 : wr + OUT * k_dim;
  size_t r = 0, tile = 0;
  // tile t (1 to fetchers) fetches rows (t - 1) * per_fetcher onwards
  auto fetch_rows = [&] { return tile >= 1 && tile <= fetchers ? per_fetcher : 0; };
  // (past the matrix's last rows it points beyond them: a prefetch never faults)
  auto fetch_at = [&] { return tile >= 1 ? next + (tile - 1) * per_fetcher * k_dim : next; };
  for (; r < 3 * threes; r += 3, ++tile)
    tile512_span_fetching<OUT, 3>(fetch_rows(), packed + r * 16, step_floats, wr, k_dim, k0, k1,
                                  partial + r, rows, fetch_at());
  for (; r + 2 <= rows; r += 2, ++tile)
    tile512_span_fetching<OUT, 2>(fetch_rows(), packed + r * 16, step_floats, wr, k_dim, k0, k1,
                                  partial + r, rows, fetch_at());
  if (r < rows)
    tile512_span<OUT, 1>(packed + r * 16, step_floats, wr, k_dim, k0, k1, partial + r, rows);
}

// One pass's rows (at most rows_per_pass) in the kernel's order: step by step, row by row.
ADAPTERD_AVX512 void pack_pass(const float* x, size_t rows, size_t ldx, size_t kv, float* out) {
  for (size_t step = 0; step < kv / 16; ++step)
    for (size_t r = 0; r < rows; ++r)
      _mm512_storeu_ps(out + (step * rows + r) * 16, _mm512_loadu_ps(x + r * ldx + step * 16));
}

// Weight rows [j_begin, j_end) times `rows` activation rows (rows > 4), packed by pack_pass.
ADAPTERD_AVX512 void tiles512_many(const float* x, const float* xp, size_t rows, size_t ldx,
                                   const float* w, size_t k_dim, const float* bias, float* y,
                                   size_t ldy, size_t j_begin, size_t j_end) {
  const size_t kv = k_dim & ~size_t(15);
  thread_local std::vector<lanes16> partial;
  partial.resize(many_out * rows);
  for (size_t j0 = j_begin; j0 < j_end; j0 += many_out) {
    const size_t j1 = std::min(j_end, j0 + many_out);
    // Eight weight rows over the whole k, then the next eight: with both eights in turn
    // per span, their accumulators, spans and the activation rows' span did not fit in L1
    // together (adapterd-dense: 16 rows 107 -> 115 GFLOP/s, 64 rows 80 -> 122).
    size_t j = j0;
    for (; j + 8 <= j1; j += 8)
      for (size_t k0 = 0; k0 < kv; k0 += span_floats)
        span_all_rows<8>(xp, rows, w + j * k_dim, k_dim, k0, std::min(kv, k0 + span_floats), kv,
                         partial.data() + (j - j0) * rows);
    for (; j < j1; ++j)
      for (size_t k0 = 0; k0 < kv; k0 += span_floats)
        span_all_rows<1>(xp, rows, w + j * k_dim, k_dim, k0, std::min(kv, k0 + span_floats), kv,
                         partial.data() + (j - j0) * rows);
    if (j1 - j0 == many_out && kv == k_dim) {
      for (size_t r = 0; r < rows; ++r) {
        __m512 s = sums16(partial.data() + r, rows);
        if (bias != nullptr)
          s = _mm512_add_ps(s, _mm512_loadu_ps(bias + j0));
        _mm512_storeu_ps(y + r * ldy + j0, s);
      }
      continue;
    }
    for (size_t j = j0; j < j1; ++j)
      for (size_t r = 0; r < rows; ++r) {
        const float* wr = w + j * k_dim;
        float s = kv == 0 ? 0.0f : hsum512(_mm512_load_ps(partial[(j - j0) * rows + r].lane));
        for (size_t k = kv; k < k_dim; ++k)
          s += wr[k] * x[r * ldx + k];
        y[r * ldy + j] = bias != nullptr ? s + bias[j] : s;
      }
  }
}

bool has_avx512() {
  static const bool ok =
      __builtin_cpu_supports("avx512f") && std::getenv("ADAPTERD_NO_AVX512") == nullptr;
  return ok;
}

}  // namespace

bool kernels_available() {
  static const bool ok = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")
                         && std::getenv("ADAPTERD_NO_CPU_KERNELS") == nullptr;
  return ok;
}

size_t packed_floats(size_t rows, size_t k_dim) {
  return has_avx512() && rows > 4 ? rows * (k_dim & ~size_t(15)) : 0;
}

// Pass after pass of at most rows_per_pass rows, each pass's rows step by step: a pass
// starting at row r starts at r * kv floats.
void pack_rows(const float* x, size_t rows, size_t ldx, size_t k_dim, float* packed) {
  const size_t kv = k_dim & ~size_t(15);
  for (size_t r = 0; r < rows; r += rows_per_pass)
    pack_pass(x + r * ldx, std::min(rows_per_pass, rows - r), ldx, kv, packed + r * kv);
}

void dense_rows_packed(const float* x, const float* packed, size_t rows, size_t ldx, const float* w,
                       size_t k_dim, const float* bias, float* y, size_t ldy, size_t j_begin,
                       size_t j_end) {
  const size_t kv = k_dim & ~size_t(15);
  for (size_t r = 0; r < rows; r += rows_per_pass)
    tiles512_many(x + r * ldx, packed + r * kv, std::min(rows_per_pass, rows - r), ldx, w, k_dim,
                  bias, y + r * ldy, ldy, j_begin, j_end);
}

void dense_rows(const float* x, size_t rows, size_t ldx, const float* w, size_t k_dim,
                const float* bias, float* y, size_t ldy, size_t j_begin, size_t j_end) {
  size_t j = j_begin;
  if (packed_floats(rows, k_dim) > 0) {
    // At most rows_per_pass at a time: the copy stays small (a long prompt would otherwise
    // grow each thread's copy to its size, for good).
    thread_local std::vector<lanes16> packed;
    for (size_t r = 0; r < rows; r += rows_per_pass) {
      const size_t pass = std::min(rows_per_pass, rows - r);
      packed.resize(packed_floats(pass, k_dim) / 16);
      pack_rows(x + r * ldx, pass, ldx, k_dim, packed.data()->lane);
      dense_rows_packed(x + r * ldx, packed.data()->lane, pass, ldx, w, k_dim, bias, y + r * ldy,
                        ldy, j_begin, j_end);
    }
    return;
  }
  if (has_avx512()) {
    for (; j + 4 <= j_end; j += 4)
      tile512_rows<4>(x, rows, ldx, w, k_dim, bias, y, ldy, j);
    for (; j < j_end; ++j)
      tile512_rows<1>(x, rows, ldx, w, k_dim, bias, y, ldy, j);
    return;
  }
  for (; j + 4 <= j_end; j += 4)
    tile_rows<4>(x, rows, ldx, w, k_dim, bias, y, ldy, j);
  for (; j < j_end; ++j)
    tile_rows<1>(x, rows, ldx, w, k_dim, bias, y, ldy, j);
}

namespace {

// bf16 to fp32 is exact: the bits moved up by 16.
ADAPTERD_AVX2 inline __m256 load_bf16(const uint16_t* p) {
  return _mm256_castsi256_ps(_mm256_slli_epi32(
      _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))), 16));
}

inline float bf16_value(uint16_t b) {
  const uint32_t u = static_cast<uint32_t>(b) << 16;
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}

// Eight values of an fp32 or bf16 operand (a bf16 KV cache), as fp32.
ADAPTERD_AVX2 inline __m256 load8(const float* p) {
  return _mm256_loadu_ps(p);
}
ADAPTERD_AVX2 inline __m256 load8(const uint16_t* p) {
  return load_bf16(p);
}
inline float value_of(float v) {
  return v;
}
inline float value_of(uint16_t v) {
  return bf16_value(v);
}

template <class T>
ADAPTERD_AVX2 float dot_avx2(const float* a, const T* b, size_t n) {
  __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
  size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), load8(b + i), acc0);
    acc1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), load8(b + i + 8), acc1);
  }
  float s = hsum(_mm256_add_ps(acc0, acc1));
  for (; i < n; ++i)
    s += a[i] * value_of(b[i]);
  return s;
}

// Up to 64 columns at a time in eight registers; the tail element by element, in the
// same t order.
template <class T>
ADAPTERD_AVX2 void weighted_rows_avx2(const float* weights, const T* v, size_t stride, size_t count,
                                      float* out, size_t n) {
  size_t i = 0;
  for (; i + 64 <= n; i += 64) {
    __m256 acc[8];
#pragma GCC unroll 8
    for (int c = 0; c < 8; ++c)
      acc[c] = _mm256_loadu_ps(out + i + 8 * c);
    for (size_t t = 0; t < count; ++t) {
      const __m256 w = _mm256_set1_ps(weights[t]);
      const T* row = v + t * stride + i;
#pragma GCC unroll 8
      for (int c = 0; c < 8; ++c)
        acc[c] = _mm256_fmadd_ps(w, load8(row + 8 * c), acc[c]);
    }
#pragma GCC unroll 8
    for (int c = 0; c < 8; ++c)
      _mm256_storeu_ps(out + i + 8 * c, acc[c]);
  }
  for (; i + 8 <= n; i += 8) {
    __m256 acc = _mm256_loadu_ps(out + i);
    for (size_t t = 0; t < count; ++t)
      acc = _mm256_fmadd_ps(_mm256_set1_ps(weights[t]), load8(v + t * stride + i), acc);
    _mm256_storeu_ps(out + i, acc);
  }
  for (; i < n; ++i) {
    float acc = out[i];
    for (size_t t = 0; t < count; ++t)
      acc += weights[t] * value_of(v[t * stride + i]);
    out[i] = acc;
  }
}

}  // namespace

void weighted_rows(const float* weights, const float* v, size_t stride, size_t count, float* out,
                   size_t n) {
  weighted_rows_avx2(weights, v, stride, count, out, n);
}

void weighted_rows(const float* weights, const uint16_t* v, size_t stride, size_t count, float* out,
                   size_t n) {
  weighted_rows_avx2(weights, v, stride, count, out, n);
}

float dot(const float* a, const float* b, size_t n) {
  return dot_avx2(a, b, n);
}

float dot(const float* a, const uint16_t* b, size_t n) {
  return dot_avx2(a, b, n);
}

void rms_norm_row(const float* x, const float* weight, size_t n, double eps, float* out) {
  float sum = 0;
  for (size_t i = 0; i < n; ++i)
    sum += x[i] * x[i];
  const float scale = 1.0f / std::sqrt(sum / static_cast<float>(n) + static_cast<float>(eps));
  for (size_t i = 0; i < n; ++i)
    out[i] = weight[i] * (x[i] * scale);
}

void softmax_weights(float* p, size_t n, float top) {
  if (kernels_available()) {
    shifted_exp_vector(p, n, top, softmax_denormal_below);
  } else {
    for (size_t i = 0; i < n; ++i)
      p[i] = p[i] - top < softmax_denormal_below ? 0.0f : std::exp(p[i] - top);
  }
  float sum = 0;
  for (size_t i = 0; i < n; ++i)  // in order: a vector's partial sums would move the bits
    sum += p[i];
  if (kernels_available())
    return normalise_vector(p, n, sum);
  for (size_t i = 0; i < n; ++i) {
    p[i] /= sum;
    p[i] = p[i] < std::numeric_limits<float>::min() ? 0.0f : p[i];
  }
}

void silu_mul(float* gate, const float* up, size_t n) {
  if (kernels_available())
    return silu_mul_vector(gate, up, n);
  for (size_t i = 0; i < n; ++i)
    gate[i] = gate[i] / (1.0f + std::exp(-gate[i])) * up[i];
}

namespace {

// `streams` equal parts of p, read side by side: a core keeps more lines in flight over
// several streams than over one, as the decode tiles do over several weight rows.
template <int streams>
ADAPTERD_AVX2 float sum_streams(const float* p, size_t n) {
  const size_t part = n / streams / 64 * 64;
  __m256 acc[streams][2];
#pragma GCC unroll 8
  for (int s = 0; s < streams; ++s)
    acc[s][0] = acc[s][1] = _mm256_setzero_ps();
  for (size_t i = 0; i < part; i += 16)
#pragma GCC unroll 8
    for (int s = 0; s < streams; ++s) {
      const float* at = p + s * part + i;
      acc[s][0] = _mm256_add_ps(acc[s][0], _mm256_loadu_ps(at));
      acc[s][1] = _mm256_add_ps(acc[s][1], _mm256_loadu_ps(at + 8));
    }
  __m256 total = _mm256_setzero_ps();
  for (int s = 0; s < streams; ++s)
    total = _mm256_add_ps(total, _mm256_add_ps(acc[s][0], acc[s][1]));
  float sum = hsum(total);
  for (size_t i = streams * part; i < n; ++i)
    sum += p[i];
  return sum;
}

}  // namespace

float sum_floats(const float* p, size_t n, int streams) {
  switch (streams) {
    case 2: return sum_streams<2>(p, n);
    case 4: return sum_streams<4>(p, n);
    case 8: return sum_streams<8>(p, n);
    default: return sum_streams<1>(p, n);
  }
}

std::shared_ptr<float> allocate_huge(size_t floats) {
  constexpr size_t huge = size_t(2) << 20;
  const size_t bytes = ((floats * sizeof(float) + huge - 1) / huge) * huge;
  void* p = nullptr;
  if (posix_memalign(&p, huge, bytes) != 0)
    throw std::bad_alloc();
  madvise(p, bytes, MADV_HUGEPAGE);  // advice only: without THP the pages stay small
  return std::shared_ptr<float>(static_cast<float*>(p), [](float* q) { std::free(q); });
}

}  // namespace adapterd::model::cpu
