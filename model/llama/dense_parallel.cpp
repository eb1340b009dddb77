#include "model/llama/dense_parallel.hpp"

#include <algorithm>

#include "model/llama/cpu_kernels.hpp"
#include "model/llama/parallel_parts.hpp"

namespace adapterd::model {

namespace {

// How a product with w is split between threads: in units of whole bands (eight rows for
// the unblocked formats), so that no band is cut and a batch-1 pass reads one stream
// (quant::matrix); a chunk is at least 64 rows, one pass of the widest tile.
struct matrix_split {
  size_t unit_rows, units, min_per_part, min_chunk;
};
matrix_split split_of(const quant::matrix& w) {
  const size_t unit = quant::band_rows_of(w);
  return {unit, (w.rows + unit - 1) / unit, std::max<size_t>(1, 32 / unit),
          std::max<size_t>(1, 64 / unit)};
}

// Up to this many activation rows (a decode step's batch), each thread puts them in its
// kernel's form for itself, at the start of its part. One shared copy, made by the calling
// thread while the others waited, took 7-10 us a product where the host gave ~60 GB/s
// (2.4-4 us in isolation): its writes had to take back the lines the other threads had
// read in the product before. Each thread's own copy costs it 2-5 us, and nobody waits
// (q4, ~0.5 B model, batch 1, both in one process: 140 against 133 tok/s there).
constexpr size_t own_activation_rows = 16;
static_assert(own_activation_rows <= cpu::rows_per_pass, "one pass of f32's many-row kernel");

}  // namespace

// The activations are put in the form the kernel reads once (per thread, or in `act`), then
// the rows run in parallel.
void dense_parallel(const quant::matrix& w, const float* x, size_t rows, size_t ldx,
                    const float* bias, float* y, size_t ldy, quant::activations& act) {
  const auto split = split_of(w);
  if (rows <= own_activation_rows) {
    thread_local quant::activations own;  // each pool thread's, reused
    parallel_set_up(
        split.units, split.min_per_part,
        [&] { quant::prepare(own, w.format, x, rows, ldx, w.cols); },
        [&](size_t begin, size_t end) {
          quant::dense_rows(w, own, bias, y, ldy, begin * split.unit_rows,
                            std::min(w.rows, end * split.unit_rows));
        },
        split.min_chunk);
    return;
  }
  // f32's many-row kernel reads the weights once per pass of cpu::rows_per_pass rows
  // whatever the split, so where it reorders the rows (AVX-512), the copy is made a pass
  // at a time: a long prompt's would otherwise stay in the scratch for good. The other
  // kernels take every row in one pass.
  const bool reordered =
      w.format == quant::weight_format::f32 && cpu::packed_floats(rows, w.cols) > 0;
  const size_t pass = reordered ? cpu::rows_per_pass : rows;
  for (size_t r = 0; r < rows; r += pass) {
    const size_t n = std::min(pass, rows - r);
    quant::prepare(act, w.format, x + r * ldx, n, ldx, w.cols);
    parallel(
        split.units, split.min_per_part,
        [&](size_t begin, size_t end) {
          quant::dense_rows(w, act, bias, y + r * ldy, ldy, begin * split.unit_rows,
                            std::min(w.rows, end * split.unit_rows));
        },
        split.min_chunk);
  }
}

}  // namespace adapterd::model
