#pragma once
// Where the rows of a Q8_0 or Q4_0 matrix lie: the layout dense.hpp's `matrix` describes.
// Plain arithmetic with internal linkage and no library code: the kernel files compile it
// with their own instruction sets, and the linker must not pick one of those copies for
// every file (see dense_tiles.inl).
#include <cstddef>

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

}  // namespace adapterd::model::quant
