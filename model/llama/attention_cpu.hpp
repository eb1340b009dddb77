#pragma once
// Attention for several queries that read the same keys and values at once (the heads of
// one KV group, the rows of one prompt slice): each key and value is loaded once for all
// of them instead of once per query, which is what a long prompt's prefill is bound by.
// AVX-512 where the CPU has it, for heads of 16 to 128 dimensions in steps of 16.
//
// Each query's scores, softmax and weighted values come out with the bits of the one-query
// path (cpu::dot, cpu::softmax_weights, cpu::weighted_rows): the same products, summed in
// the same order per lane and reduced in the same order, so a row's result never depends
// on which other queries shared its pass.
#include <cstddef>
#include <cstdint>
#include <vector>

namespace adapterd::model::cpu {

/// Whether attend_many can take heads of `head_dim` here.
bool attend_many_available(size_t head_dim);

/// The keys and values the queries read: key t of the range at keys + key_at[t - first]
/// (values alike), fp32 or bf16.
struct attention_cache {
  const void* keys = nullptr;
  const void* values = nullptr;
  bool bf16 = false;
  const int64_t* key_at = nullptr;  // element offsets, per key from `first`
  const int64_t* value_at = nullptr;
  int64_t first = 0;  // the first key any query reads
};

/// One query: its vector, the keys it reads [first, total), and where its output goes.
struct attention_query {
  const float* q = nullptr;
  int64_t first = 0, total = 0;
  float* out = nullptr;
};

/// softmax(q . k * scale) . v for every query (up to 8 at a time share the key loads).
void attend_many(const attention_cache& cache, const attention_query* queries, size_t count,
                 size_t head_dim, float scale, std::vector<float>& scratch);

}  // namespace adapterd::model::cpu
