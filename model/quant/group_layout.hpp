#pragma once
// Where the rows of a Q8_0, Q4_0 or bf16 matrix lie: the layout dense.hpp's `matrix` describes.
// Plain arithmetic with internal linkage and no library code: the kernel files compile it
// with their own instruction sets, and the linker must not pick one of those copies for
// every file (see dense_tiles.inl).
#include <cstddef>
#include <cstdint>

namespace adapterd::model::quant {

/// A group of eight rows: its block 0 at `offset` bytes, block b at offset + b * block_stride.
struct group_place {
  size_t offset, block_stride;
};

/// The group of rows [j, j + 8), j a multiple of 8 below grouped_rows, of a matrix whose
/// rows are `stride` bytes (as if plain), in bands of `band_groups` groups.
template <class Block>
static inline group_place place_of_group(size_t band_groups, size_t stride, size_t grouped_rows,
                                         size_t j) {
  constexpr size_t group_block = 8 * sizeof(Block);
  const size_t band_rows = 8 * band_groups, first = j / band_rows * band_rows;
  const size_t left = (grouped_rows - first) / 8;
  const size_t groups = left < band_groups ? left : band_groups;
  return {first * stride + (j - first) / 8 * group_block, groups * group_block};
}

/// bf16 rows: in a group of eight, chunk c (weights 32c..32c+31, one 64-byte line) of row j
/// lies at the group's start + (8c + j % 8) * 64; after the groups, rows are plain. `first`
/// is row j's chunk 0, the next row's at + row_step, the next chunk's at + chunk_step.
struct bf16_rows {
  const uint8_t* first;
  size_t row_step, chunk_step;
};
static inline bf16_rows bf16_rows_at(const uint8_t* w, size_t stride, size_t grouped_rows,
                                     size_t j) {
  if (j < grouped_rows)
    return {w + j / 8 * 8 * stride + j % 8 * 64, 64, 512};
  return {w + j * stride, stride, 64};
}

/// Whether a tile of n rows (8 or 4) can start at row j and end by j_end: inside the groups
/// only where it stays in one group.
static inline bool bf16_tile_fits(size_t j, size_t n, size_t j_end, size_t grouped_rows) {
  return j + n <= j_end && (j >= grouped_rows || j % n == 0);
}

}  // namespace adapterd::model::quant
