#pragma once
// Matrix times activation rows for weights held in a block format (bf16, Q8_0, Q4_0), on
// the CPU. Decode reads every weight once per step, so these kernels are bound by memory
// bandwidth: the formats' point is fewer bytes per weight.
//
// The instruction set is chosen at run time: AVX-512 VNNI (vpdpbusd) for the integer
// formats and AVX-512 BF16 (vdpbf16ps) for bf16 where the CPU has them, AVX2 otherwise.
// For the integer formats both compute the same exact integer block sums and the same
// float steps after, so they give identical bits. For bf16, the AVX-512 path rounds the
// activations to bf16 (vdpbf16ps multiplies bf16 pairs), the AVX2 path keeps them fp32.
//
// Every output element is summed in one fixed order whatever the number of rows and the
// split of columns between threads: a row's result never depends on its batch.
#include <cstddef>
#include <cstdint>
#include <vector>

#include "model/llama/lane_sums.hpp"
#include "model/quant/blocks.hpp"
#include "model/quant/weight_format.hpp"

namespace adapterd::model::quant {

/// A [rows, cols] weight matrix in one format, row-major; `stride` bytes between rows.
///
/// Q8_0 and Q4_0 rows come in groups of eight: for each block, the eight rows' fp16
/// scales, then their quants one row after another (a "group block"). Groups come in bands
/// of `band_groups` (the last band may have fewer), interleaved block by block: the band's
/// group blocks of block 0, then of block 1, and so on. Each block keeps GGUF's bytes (a
/// GGUF file repacks without re-quantising, as llama.cpp's own x8 layouts do). A band is
/// what a batch-1 pass of the AVX-512 kernel reads side by side, so that the pass reads
/// one stream: a core keeps more lines in flight along one stream than along eight (one
/// thread of the ~0.5 B model's q4 decode shapes read ~25 against ~19 GB/s). The AVX2
/// kernel takes one group at a time, and its matrices keep bands of one. The rows after
/// the last whole group are plain GGUF blocks.
///
/// bf16 rows, where AVX-512 BF16 runs them, come in groups of eight too: each 32-weight
/// chunk (64 bytes) of the eight rows one after another (bf16_rows_at), so that a batch-1
/// tile of eight rows reads one stream (one thread ~30 against ~20 GB/s in a microbench
/// here). Elsewhere, and after the last whole group, they are plain.
struct matrix {
  weight_format format = weight_format::f32;
  size_t rows = 0, cols = 0, stride = 0;  // stride: the bytes of one row (as if plain)
  size_t grouped_rows = 0;                // the rows stored in groups of eight (or 0)
  const uint8_t* data = nullptr;
  size_t band_groups = 1;  // groups per band
};

/// Packs a [rows, cols] fp32 matrix into `dst` (rows * row_bytes(format, cols) bytes), in
/// the layout the kernels this CPU runs read best, and describes it.
matrix pack_matrix(weight_format format, const float* src, size_t rows, size_t cols, uint8_t* dst);
/// The same for matrices of one width that run as one (q/k/v): their rows one part after
/// another, packed without a joined copy.
struct row_source {
  const float* data;  // rows x cols, contiguous
  size_t rows;
};
matrix pack_matrix(weight_format format, const std::vector<row_source>& parts, size_t cols,
                   uint8_t* dst);

/// The rows of one band of w (eight for the unblocked formats, whose rows the kernels take
/// eight at a time).
inline size_t band_rows_of(const matrix& w) {
  return 8 * w.band_groups;
}

/// Whether `cols` fits format f's blocks (a matrix that does not stays f32).
bool fits(weight_format f, size_t cols);

/// The format a matrix of `cols` columns is held in when `requested` is asked for: the
/// output head (or a tied token table) stays Q8_0 under Q4_0, as llama.cpp keeps
/// `output.weight` at 6 bits or more (its error reaches every logit directly), and a matrix
/// whose rows do not fill whole blocks stays f32. Loading and the size estimate both ask here.
weight_format stored_format(weight_format requested, size_t cols, bool head);

/// Activation rows in the form the kernels of one format read, made once per product.
struct activations {
  weight_format format = weight_format::f32;
  const float* x = nullptr;  // f32: the rows as given
  size_t rows = 0, ldx = 0, cols = 0;
  std::vector<block_q8_act> q8;          // q8_0 and q4_0: rows x cols/32 blocks
  std::vector<uint16_t> bf16;            // bf16 on AVX-512 BF16: rows x cols
  std::vector<cpu::lanes16> f32_packed;  // f32, many rows: cpu::pack_rows's copy, else empty
};
void prepare(activations& a, weight_format f, const float* x, size_t rows, size_t ldx, size_t cols);

/// y[r * ldy + j] = bias[j] + sum_k w[j, k] * x[r, k] for j in [j_begin, j_end).
/// Single-threaded: split j across threads.
void dense_rows(const matrix& w, const activations& a, const float* bias, float* y, size_t ldy,
                size_t j_begin, size_t j_end);

/// Row r of w, back in fp32 (the embedding lookup of a quantised table).
void dequantize_row(const matrix& w, size_t r, float* out);

/// The instruction set the kernels use: "avx512" or "avx2". Tests force "avx2" to check
/// that both give the same results.
const char* kernel_isa();
void force_avx2_kernels(bool on);

}  // namespace adapterd::model::quant
