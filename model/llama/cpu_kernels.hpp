#pragma once
// Hand-written CPU kernels for decode, where a step multiplies a few activation rows by
// every weight once and is bound by reading the weights: libtorch's per-op overhead and
// BLAS GEMV at one row stream far below the machine's bandwidth. AVX2+FMA, chosen at run
// time (AVX-512 tiles where the CPU has them); callers fall back to libtorch where
// kernels_available() is false.
//
// Every output element is summed in one fixed order (8-lane partial sums over k, the same
// horizontal reduction, then the scalar tail), whatever the number of rows and however
// the rows are tiled: a row's result never depends on what else is in the batch.
#include <cstddef>
#include <cstdint>
#include <memory>

namespace adapterd::model::cpu {

bool kernels_available();

/// y[r * ldy + j] = bias[j] + sum_k w[j * k_dim + k] * x[r * ldx + k], for r < rows and
/// j in [j_begin, j_end). bias may be null. Single-threaded: split j across threads.
void dense_rows(const float* x, size_t rows, size_t ldx, const float* w, size_t k_dim,
                const float* bias, float* y, size_t ldy, size_t j_begin, size_t j_end);

/// The many-row kernel (more than 4 rows, AVX-512) takes the rows in passes of at most this
/// many (each pass reads the weights once), and reads them reordered, 16 floats of each in
/// turn per k step. pack_rows() makes that copy once per product rather than per chunk of
/// columns (dense_parallel makes one per thread for a decode batch, one shared copy
/// for a prompt). packed_floats() is its size: 0 where dense_rows reads x as given.
constexpr size_t rows_per_pass = 64;
size_t packed_floats(size_t rows, size_t k_dim);
void pack_rows(const float* x, size_t rows, size_t ldx, size_t k_dim, float* packed);
/// dense_rows over rows that pack_rows() made `packed` of (x still gives the k tail).
void dense_rows_packed(const float* x, const float* packed, size_t rows, size_t ldx, const float* w,
                       size_t k_dim, const float* bias, float* y, size_t ldy, size_t j_begin,
                       size_t j_end);

/// out = x * rsqrt(mean(x^2) + eps) * weight, over n floats.
void rms_norm_row(const float* x, const float* weight, size_t n, double eps, float* out);

/// The dot product of n floats (vectorised; the same order for the same n).
float dot(const float* a, const float* b, size_t n);
/// out[i] += sum over t < count of weights[t] * v[t * stride + i], for i < n: the attention
/// output over a row's values, summed in t order as repeated axpy would (the same bits),
/// with the partial sums in registers rather than memory. Calls over consecutive runs of
/// t (a paged cache's blocks) give the bits of one call over all of them.
void weighted_rows(const float* weights, const float* v, size_t stride, size_t count, float* out,
                   size_t n);
void weighted_rows(const float* weights, const uint16_t* v, size_t stride, size_t count, float* out,
                   size_t n);
/// The same over a bf16 operand (a bf16 KV cache, --kv-dtype=bf16).
float dot(const float* a, const uint16_t* b, size_t n);

/// p[i] = exp(p[i] - top) / sum, in place (top: the largest p[i]); the attention weights.
/// A weight under FLT_MIN is zero, never a denormal: every multiply-add that reads a
/// denormal takes a microcode assist (tens of times slower), and a long prompt makes many.
/// Zeroing them changes no sum, each being below the last bit of the largest weight.
void softmax_weights(float* p, size_t n, float top);
/// Scores this far under the top weigh zero: expf is under FLT_MIN below -87.34.
constexpr float softmax_denormal_below = -87.0f;

/// gate[i] = silu(gate[i]) * up[i], in place.
void silu_mul(float* gate, const float* up, size_t n);

/// The sum of n floats, read once as `streams` (1, 2, 4 or 8) parts side by side: the
/// bandwidth probe of the roofline report, which takes the fastest.
float sum_floats(const float* p, size_t n, int streams = 1);

/// Memory for weights: 2 MiB aligned and advised into transparent huge pages, which halve
/// the TLB misses of streaming hundreds of megabytes per token.
std::shared_ptr<float> allocate_huge(size_t floats);

}  // namespace adapterd::model::cpu
