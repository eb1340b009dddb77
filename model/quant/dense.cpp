#include "model/quant/dense.hpp"

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "model/llama/cpu_kernels.hpp"
#include "model/quant/group_layout.hpp"
#include "model/quant/kernel_entries.hpp"

namespace adapterd::model::quant {

namespace {

struct cpu_features {
  bool vnni = false, bf16 = false;
};

cpu_features detect() {
  cpu_features f;
  __builtin_cpu_init();
  const bool avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl")
                      && __builtin_cpu_supports("avx512bw");
  f.vnni = avx512 && __builtin_cpu_supports("avx512vnni");
  f.bf16 = avx512 && __builtin_cpu_supports("avx512bf16");
  // ADAPTERD_KERNELS=avx2 runs the fallback on a CPU that has more (to compare them).
  const char* forced = std::getenv("ADAPTERD_KERNELS");
  if (forced != nullptr && std::string(forced) == "avx2")
    f = cpu_features{};
  return f;
}

const cpu_features& features() {
  static const cpu_features f = detect();
  return f;
}

std::atomic<bool> avx2_forced{false};

bool use_vnni() {
  return features().vnni && !avx2_forced.load(std::memory_order_relaxed);
}
bool use_bf16() {
  return features().bf16 && !avx2_forced.load(std::memory_order_relaxed);
}

}  // namespace

bool fits(weight_format f, size_t cols) {
  switch (f) {
    case weight_format::f32: return true;
    case weight_format::bf16: return cols % 32 == 0;  // the AVX-512 tile's step
    case weight_format::q8_0:
    case weight_format::q4_0: return cols % block_size == 0;
  }
  return false;
}

weight_format stored_format(weight_format requested, size_t cols, bool head) {
  const auto f = head && requested == weight_format::q4_0 ? weight_format::q8_0 : requested;
  return fits(f, cols) ? f : weight_format::f32;
}

void prepare(activations& a, weight_format f, const float* x, size_t rows, size_t ldx,
             size_t cols) {
  a.format = f;
  a.x = x;
  a.rows = rows;
  a.ldx = ldx;
  a.cols = cols;
  a.f32_packed.clear();
  if (f == weight_format::f32) {
    if (const size_t floats = cpu::packed_floats(rows, cols)) {
      a.f32_packed.resize(floats / 16);
      cpu::pack_rows(x, rows, ldx, cols, a.f32_packed.data()->lane);
    }
  } else if (f == weight_format::q8_0 || f == weight_format::q4_0) {
    const size_t nb = cols / block_size;
    a.q8.resize(rows * nb);
    if (cpu::kernels_available())
      return avx2::quantize_rows_q8_act(x, ldx, rows, cols, a.q8.data());
    for (size_t r = 0; r < rows; ++r)
      quantize_row_q8_act(x + r * ldx, &a.q8[r * nb], cols);
  } else if (f == weight_format::bf16 && use_bf16()) {
    a.bf16.resize(rows * cols);
    avx2::round_rows_bf16(x, ldx, rows, cols, a.bf16.data());
  }
}

void dense_rows(const matrix& w, const activations& a, const float* bias, float* y, size_t ldy,
                size_t j_begin, size_t j_end) {
  switch (w.format) {
    case weight_format::f32: {
      const auto* wf = reinterpret_cast<const float*>(w.data);
      if (!a.f32_packed.empty())
        return cpu::dense_rows_packed(a.x, a.f32_packed.data()->lane, a.rows, a.ldx, wf, w.cols,
                                      bias, y, ldy, j_begin, j_end);
      return cpu::dense_rows(a.x, a.rows, a.ldx, wf, w.cols, bias, y, ldy, j_begin, j_end);
    }
    case weight_format::bf16:
      if (use_bf16())
        return avx512::dense_bf16(w.data, w.stride, w.grouped_rows, a.bf16.data(), a.rows, a.cols,
                                  bias, y, ldy, j_begin, j_end);
      return avx2::dense_bf16(w.data, w.stride, w.grouped_rows, a.x, a.ldx, a.rows, a.cols, bias, y,
                              ldy, j_begin, j_end);
    case weight_format::q8_0:
      return (use_vnni() ? avx512::dense_q8_0 : avx2::dense_q8_0)(
          w.data, w.stride, w.grouped_rows, w.band_groups, a.q8.data(), a.rows, a.cols, bias, y,
          ldy, j_begin, j_end);
    case weight_format::q4_0:
      return (use_vnni() ? avx512::dense_q4_0 : avx2::dense_q4_0)(
          w.data, w.stride, w.grouped_rows, w.band_groups, a.q8.data(), a.rows, a.cols, bias, y,
          ldy, j_begin, j_end);
  }
}

namespace {

bool blocked(weight_format f) {
  return f == weight_format::q8_0 || f == weight_format::q4_0;
}

// Where row r's block b of w lies: its scale at .first, its quants at .second.
template <class Block>
std::pair<size_t, size_t> block_at(const matrix& w, size_t r, size_t b) {
  if (r >= w.grouped_rows) {
    const size_t at = r * w.stride + b * sizeof(Block);
    return {at, at + 2};
  }
  const auto g = place_of_group<Block>(w.band_groups, w.stride, w.grouped_rows, r / 8 * 8);
  const size_t at = g.offset + b * g.block_stride;
  return {at + 2 * (r % 8), at + 16 + (r % 8) * sizeof(Block::qs)};
}

// Row r's block b as a plain GGUF block, wherever the layout put its bytes.
template <class Block>
Block block_of(const matrix& w, size_t r, size_t b) {
  Block out;
  const auto [d, qs] = block_at<Block>(w, r, b);
  std::memcpy(&out.d, w.data + d, 2);
  std::memcpy(out.qs, w.data + qs, sizeof(out.qs));
  return out;
}

// Row r of w from fp32 `src` into its blocks, wherever the layout puts them.
template <class Block, class Quantise>
void pack_blocked_row(const matrix& w, size_t r, const float* src, uint8_t* dst, Quantise quantise,
                      std::vector<Block>& row) {
  const size_t nb = w.cols / block_size;
  row.resize(nb);
  quantise(src, row.data(), w.cols);
  for (size_t b = 0; b < nb; ++b) {
    const auto [d, qs] = block_at<Block>(w, r, b);
    std::memcpy(dst + d, &row[b].d, 2);
    std::memcpy(dst + qs, row[b].qs, sizeof(row[b].qs));
  }
}

template <class Block, class Dequantise>
void unpack_blocked(const matrix& w, size_t r, float* out, Dequantise dequantise) {
  for (size_t b = 0; b < w.cols / block_size; ++b) {
    const Block blk = block_of<Block>(w, r, b);
    dequantise(&blk, out + b * block_size, block_size);
  }
}

}  // namespace

void dequantize_row(const matrix& w, size_t r, float* out) {
  const uint8_t* row = w.data + r * w.stride;
  switch (w.format) {
    case weight_format::f32: std::memcpy(out, row, w.cols * sizeof(float)); return;
    case weight_format::bf16: {
      const auto at = bf16_rows_at(w.data, w.stride, w.grouped_rows, r);
      for (size_t k = 0; k < w.cols; ++k) {
        uint16_t b;
        std::memcpy(&b, at.first + k / 32 * at.chunk_step + k % 32 * 2, sizeof b);
        out[k] = bf16_to_f32(b);
      }
      return;
    }
    case weight_format::q8_0: return unpack_blocked<block_q8_0>(w, r, out, dequantize_row_q8_0);
    case weight_format::q4_0: return unpack_blocked<block_q4_0>(w, r, out, dequantize_row_q4_0);
  }
}

matrix pack_matrix(weight_format format, const std::vector<row_source>& parts, size_t cols,
                   uint8_t* dst) {
  matrix w;
  w.format = format;
  for (const auto& p : parts)
    w.rows += p.rows;
  w.cols = cols;
  w.stride = row_bytes(format, cols);
  w.data = dst;
  // Groups as the kernels this CPU runs read them best (see matrix): the integer formats
  // always; bf16 where AVX-512 BF16 tiles read eight rows side by side.
  const bool grouped = blocked(format) || (format == weight_format::bf16 && use_bf16());
  w.grouped_rows = grouped ? w.rows / 8 * 8 : 0;
  // As many groups as a batch-1 pass of the AVX-512 kernel takes side by side
  // (dense_avx512.cpp); the AVX2 kernel takes one group at a time.
  if (use_vnni())
    w.band_groups = format == weight_format::q4_0 ? 8 : format == weight_format::q8_0 ? 4 : 1;
  std::vector<block_q8_0> q8;
  std::vector<block_q4_0> q4;
  size_t r = 0;
  for (const auto& part : parts)
    for (size_t i = 0; i < part.rows; ++i, ++r) {
      const float* src = part.data + i * cols;
      switch (format) {
        case weight_format::f32: std::memcpy(dst + r * w.stride, src, cols * sizeof(float)); break;
        case weight_format::bf16: {
          const auto at = bf16_rows_at(dst, w.stride, w.grouped_rows, r);
          auto* row = const_cast<uint8_t*>(at.first);  // within dst
          for (size_t k = 0; k < cols; ++k) {
            const uint16_t b = f32_to_bf16(src[k]);
            std::memcpy(row + k / 32 * at.chunk_step + k % 32 * 2, &b, sizeof b);
          }
          break;
        }
        case weight_format::q8_0: pack_blocked_row(w, r, src, dst, quantize_row_q8_0, q8); break;
        case weight_format::q4_0: pack_blocked_row(w, r, src, dst, quantize_row_q4_0, q4); break;
      }
    }
  return w;
}

matrix pack_matrix(weight_format format, const float* src, size_t rows, size_t cols, uint8_t* dst) {
  return pack_matrix(format, {row_source{src, rows}}, cols, dst);
}

const char* kernel_isa() {
  return use_vnni() ? "avx512" : "avx2";
}

void force_avx2_kernels(bool on) {
  avx2_forced.store(on, std::memory_order_relaxed);
}

}  // namespace adapterd::model::quant
