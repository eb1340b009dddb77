// The weight formats: GGUF's block layouts byte for byte, the kernels right against a
// double-precision product of the same quantised numbers, the same bits from the AVX2 and
// AVX-512 paths, and a row's result independent of its batch in every format; then whole
// models held in each format.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "model/base_model.hpp"
#include "model/io/tiny_model.hpp"
#include "model/quant/blocks.hpp"
#include "model/quant/dense.hpp"

using namespace adapterd::model;
using namespace adapterd::model::quant;

namespace {

std::vector<float> random_floats(size_t n, uint32_t seed, float scale = 1) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> u(0, scale);
  std::vector<float> v(n);
  for (auto& x : v)
    x = u(rng);
  return v;
}

const weight_format all_formats[] = {weight_format::f32, weight_format::bf16, weight_format::q8_0,
                                     weight_format::q4_0};

struct packed {
  std::vector<uint8_t> bytes;
  matrix m;
  packed(weight_format f, const std::vector<float>& w, size_t rows, size_t cols)
      : bytes(rows * row_bytes(f, cols)), m(pack_matrix(f, w.data(), rows, cols, bytes.data())) {}
};

std::vector<float> product(const matrix& w, const float* x, size_t rows, size_t ldx, size_t j_begin,
                           size_t j_end) {
  activations a;
  prepare(a, w.format, x, rows, ldx, w.cols);
  std::vector<float> y(rows * w.rows, -1);
  dense_rows(w, a, nullptr, y.data(), w.rows, j_begin, j_end);
  return y;
}

}  // namespace

TEST_CASE("Q8_0 and Q4_0 blocks are GGUF's, byte for byte", "[quant]") {
  STATIC_REQUIRE(sizeof(block_q8_0) == 34);
  STATIC_REQUIRE(sizeof(block_q4_0) == 18);
  std::vector<float> x(32);
  for (size_t i = 0; i < 32; ++i)
    x[i] = static_cast<float>(i) - 12.0f;  // -12 ... 19
  block_q8_0 q8;
  quantize_row_q8_0(x.data(), &q8, 32);
  CHECK(q8.d == f32_to_fp16(19.0f / 127.0f));
  CHECK(q8.qs[31] == 127);
  CHECK(q8.qs[12] == 0);
  CHECK(q8.qs[0] == static_cast<int8_t>(std::round(-12.0f * 127.0f / 19.0f)));
  block_q4_0 q4;
  quantize_row_q4_0(x.data(), &q4, 32);
  // The largest magnitude (19) maps to -8, so d = 19 / -8; weight i sits in byte i's low
  // nibble and weight i + 16 in its high nibble.
  CHECK(q4.d == f32_to_fp16(19.0f / -8.0f));
  CHECK((q4.qs[15] >> 4) == 0);    // weight 31 = 19 -> -8 + 8 = 0
  CHECK((q4.qs[12] & 0x0f) == 8);  // weight 12 = 0 -> 8
  std::vector<float> back(32);
  dequantize_row_q4_0(&q4, back.data(), 32);
  const float d4 = std::fabs(fp16_to_f32(q4.d));
  for (size_t i = 0; i < 32; ++i)
    CHECK(std::fabs(back[i] - x[i]) <= d4 / 2 + 1e-4f);
  dequantize_row_q8_0(&q8, back.data(), 32);
  const float d8 = fp16_to_f32(q8.d);
  for (size_t i = 0; i < 32; ++i)
    CHECK(std::fabs(back[i] - x[i]) <= d8 / 2 + 1e-4f);
}

namespace {

// Row r's block b must lie where dense.hpp's matrix says, with GGUF's bytes.
template <class Block, class Quantise>
void check_layout(const packed& p, const std::vector<float>& w, Quantise quantise) {
  const matrix& m = p.m;
  const size_t nb = m.cols / 32, band_rows = 8 * m.band_groups;
  std::vector<Block> row(nb);
  for (size_t r = 0; r < m.rows; ++r) {
    quantise(&w[r * m.cols], row.data(), m.cols);
    for (size_t b = 0; b < nb; ++b) {
      size_t d_at = r * m.stride + b * sizeof(Block), qs_at = d_at + 2;
      if (r < m.grouped_rows) {
        const size_t first = r / band_rows * band_rows;
        const size_t groups = std::min(m.band_groups, (m.grouped_rows - first) / 8);
        const size_t group_block =
            first * m.stride + (b * groups + (r - first) / 8) * 8 * sizeof(Block);
        d_at = group_block + 2 * (r % 8);
        qs_at = group_block + 16 + (r % 8) * sizeof(row[b].qs);
      }
      INFO("row " << r << " block " << b);
      CHECK(std::memcmp(&p.bytes[d_at], &row[b].d, 2) == 0);
      CHECK(std::memcmp(&p.bytes[qs_at], row[b].qs, sizeof(row[b].qs)) == 0);
    }
  }
}

}  // namespace

TEST_CASE("Q8_0, Q4_0 and bf16 matrices are laid out in groups and bands as dense.hpp says",
          "[quant]") {
  // 150 rows: full bands, a band of fewer groups, and six plain rows after the groups
  const size_t out = 150, cols = 96;
  auto w = random_floats(out * cols, 9, 0.1f);
  for (bool avx2 : {false, true}) {
    force_avx2_kernels(avx2);
    const bool vnni = std::string(kernel_isa()) == "avx512";
    packed q8(weight_format::q8_0, w, out, cols), q4(weight_format::q4_0, w, out, cols);
    CHECK(q8.m.grouped_rows == 144);
    CHECK(q8.m.band_groups == (vnni ? 4u : 1u));
    CHECK(q4.m.band_groups == (vnni ? 8u : 1u));
    check_layout<block_q8_0>(q8, w, quantize_row_q8_0);
    check_layout<block_q4_0>(q4, w, quantize_row_q4_0);
    // bf16: in groups of eight by 32-weight chunks where AVX-512 BF16 reads them
    packed bf16(weight_format::bf16, w, out, cols);
    const bool grouped = bf16.m.grouped_rows > 0;
    if (!avx2)
      CHECK(grouped == (std::string(kernel_isa()) == "avx512"));
    CHECK(bf16.m.grouped_rows == (grouped ? 144u : 0u));
    std::vector<float> back(cols);
    for (size_t r = 0; r < out; ++r) {
      dequantize_row(bf16.m, r, back.data());
      for (size_t k = 0; k < cols; ++k) {
        const size_t at = r < bf16.m.grouped_rows
                              ? r / 8 * 8 * bf16.m.stride + (k / 32 * 8 + r % 8) * 64 + k % 32 * 2
                              : r * bf16.m.stride + 2 * k;
        uint16_t stored;
        std::memcpy(&stored, &bf16.bytes[at], 2);
        REQUIRE(stored == f32_to_bf16(w[r * cols + k]));
        REQUIRE(back[k] == bf16_to_f32(stored));
      }
    }
  }
  force_avx2_kernels(false);
  // The fallback kernels read either layout: a matrix packed for AVX-512 gives the fallback
  // the same bits as one packed for it.
  auto x = random_floats(3 * cols, 10);
  for (auto f : {weight_format::bf16, weight_format::q8_0, weight_format::q4_0}) {
    INFO(name_of(f));
    packed fast_layout(f, w, out, cols);
    force_avx2_kernels(true);
    packed plain_layout(f, w, out, cols);
    for (size_t rows : {1, 3}) {
      auto a = product(fast_layout.m, x.data(), rows, cols, 0, out);
      auto b = product(plain_layout.m, x.data(), rows, cols, 0, out);
      CHECK(std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0);
    }
    force_avx2_kernels(false);
  }
}

TEST_CASE("fp16 and bf16 conversions round-trip and round to nearest even", "[quant]") {
  size_t checked = 0;
  for (uint32_t h = 0; h < 0x10000; ++h) {
    const float f = fp16_to_f32(static_cast<uint16_t>(h));
    if (std::isnan(f))
      continue;
    REQUIRE(f32_to_fp16(f) == h);
    ++checked;
  }
  CHECK(checked == 0x10000 - 2 * 1023 + 0);                     // every half but the NaNs
  CHECK(fp16_to_f32(f32_to_fp16(1.0f + 1.0f / 4096)) == 1.0f);  // a tie rounds to even
  CHECK(fp16_to_f32(f32_to_fp16(65520.0f)) == INFINITY);        // beyond the largest half
  CHECK(bf16_to_f32(f32_to_bf16(1.0f + 1.0f / 256)) == 1.0f);   // a tie rounds to even
  CHECK(bf16_to_f32(f32_to_bf16(1.0f + 3.0f / 256)) == 1.0f + 4.0f / 256);
  CHECK(std::isnan(bf16_to_f32(f32_to_bf16(NAN))));
}

TEST_CASE("activations are prepared for the kernels bit for bit as the scalar reference",
          "[quant]") {
  const size_t rows = 3, cols = 96, ldx = 100;
  auto x = random_floats(rows * ldx, 7, 3);
  // ties for the rounding: block 1 of row 0 holds 127 at its largest, so its scale is 1 and
  // the halves below are exact ties (nearest even); block 2 is all zeros (scale 0)
  for (size_t i = 0; i < 32; ++i)
    x[32 + i] = i == 0 ? 127.0f : static_cast<float>(i % 9) - 4.5f;
  std::fill(x.begin() + 64, x.begin() + 96, 0.0f);
  // values bf16 treats apart: a tie, a subnormal, a NaN, an infinity, the largest float
  const float special[] = {1.0f + 1.0f / 256, 1e-40f, NAN, -INFINITY, 3.4028235e38f};
  std::copy(std::begin(special), std::end(special), x.begin() + ldx + 3);
  activations a;
  prepare(a, weight_format::q8_0, x.data(), rows, ldx, cols);
  for (size_t r = 0; r < rows; ++r) {
    std::vector<block_q8_act> ref(cols / 32);
    quantize_row_q8_act(&x[r * ldx], ref.data(), cols);
    for (size_t b = 0; b < cols / 32; ++b) {
      if (r == 1 && b == 0)
        continue;  // the NaN's block: its scale is whatever max makes of a NaN
      INFO("row " << r << " block " << b);
      CHECK(std::memcmp(&a.q8[r * (cols / 32) + b], &ref[b],
                        offsetof(block_q8_act, d) + sizeof(float))
            == 0);
    }
  }
  CHECK(a.q8[1].qs[1] == static_cast<int8_t>(std::nearbyint(x[33])));  // -3.5 -> -4, to even
  prepare(a, weight_format::bf16, x.data(), rows, ldx, cols);
  if (a.bf16.empty())
    return;  // no AVX-512 BF16 here: the kernel reads fp32 activations
  for (size_t r = 0; r < rows; ++r)
    for (size_t k = 0; k < cols; ++k) {
      INFO("row " << r << " value " << k << " = " << x[r * ldx + k]);
      CHECK(a.bf16[r * cols + k] == f32_to_bf16(x[r * ldx + k]));
    }
}

TEST_CASE("each format's product matches a double-precision product of the numbers it holds",
          "[quant]") {
  const size_t rows = 5, out = 37, cols = 256;
  auto w = random_floats(out * cols, 1, 0.05f);
  auto x = random_floats(rows * cols, 2);
  for (auto f : all_formats) {
    INFO(name_of(f));
    packed p(f, w, out, cols);
    auto y = product(p.m, x.data(), rows, cols, 0, out);
    std::vector<float> wd(cols);
    for (size_t r = 0; r < rows; ++r)
      for (size_t j = 0; j < out; ++j) {
        dequantize_row(p.m, j, wd.data());
        double ref = 0, mag = 0;
        if (f == weight_format::q8_0 || f == weight_format::q4_0) {
          std::vector<block_q8_act> xa(cols / 32);
          quantize_row_q8_act(&x[r * cols], xa.data(),
                              cols);  // the activations as the kernel sees them
          for (size_t k = 0; k < cols; ++k) {
            const double xv = static_cast<double>(xa[k / 32].d) * xa[k / 32].qs[k % 32];
            ref += wd[k] * xv;
            mag += std::fabs(wd[k] * xv);
          }
        } else {
          for (size_t k = 0; k < cols; ++k) {
            const double xv = f == weight_format::bf16 ? bf16_to_f32(f32_to_bf16(x[r * cols + k]))
                                                       : x[r * cols + k];
            ref += wd[k] * xv;
            mag += std::fabs(wd[k] * x[r * cols + k]);
          }
        }
        // bf16 on AVX2 keeps the activations fp32: within bf16's rounding of them.
        const double tol = (f == weight_format::bf16 ? 8e-3 : 1e-5) * mag + 1e-6;
        CHECK(std::fabs(y[r * out + j] - ref) <= tol);
      }
  }
}

TEST_CASE("the AVX2 and AVX-512 VNNI paths give the same bits for int8 and q4", "[quant]") {
  // 83 rows: one activation row reads a band side by side on AVX-512 (q4: eight groups, then
  // the short band's two; int8: four, four, two), then three rows after the groups; four
  // activation rows read two groups at a time.
  const size_t cols = 320;
  for (size_t out : {19, 83})
    for (size_t rows : {1, 4}) {
      auto w = random_floats(out * cols, 3, 0.1f);
      auto x = random_floats(rows * cols, 4);
      for (auto f : {weight_format::q8_0, weight_format::q4_0}) {
        INFO(name_of(f) << " on " << kernel_isa() << ", " << out << " x " << rows);
        packed p(f, w, out, cols);
        auto fast = product(p.m, x.data(), rows, cols, 0, out);
        force_avx2_kernels(true);
        auto fallback = product(p.m, x.data(), rows, cols, 0, out);
        force_avx2_kernels(false);
        CHECK(std::memcmp(fast.data(), fallback.data(), fast.size() * sizeof(float)) == 0);
      }
    }
}

TEST_CASE("in every format a row's result is the same bits alone, in any batch and any split",
          "[quant]") {
  const size_t out = 83, cols = 192, batch = 7;  // alone: 8 groups side by side; batched: 2
  auto w = random_floats(out * cols, 5, 0.1f);
  auto x = random_floats(batch * cols, 6);
  for (bool avx2 : {false, true}) {
    force_avx2_kernels(avx2);
    for (auto f : all_formats) {
      INFO(name_of(f) << (avx2 ? " (AVX2)" : ""));
      packed p(f, w, out, cols);
      auto together = product(p.m, x.data(), batch, cols, 0, out);
      for (size_t r = 0; r < batch; ++r) {
        auto alone = product(p.m, &x[r * cols], 1, cols, 0, out);
        CHECK(std::memcmp(alone.data(), &together[r * out], out * sizeof(float)) == 0);
        // and split at odd column boundaries (inside a group, inside a band), as threads
        // split it
        for (size_t at : {13, 40}) {
          auto split = product(p.m, &x[r * cols], 1, cols, 0, at);
          auto rest = product(p.m, &x[r * cols], 1, cols, at, out);
          std::copy(rest.begin() + at, rest.end(), split.begin() + at);
          CHECK(std::memcmp(alone.data(), split.data(), out * sizeof(float)) == 0);
        }
      }
    }
  }
  force_avx2_kernels(false);
}

namespace {

std::shared_ptr<const base_model> load_as(const std::string& dir, const std::string& weights) {
  load_options options;
  options.device = "cpu";
  options.weights = weights;
  auto m = base_model::load(dir, options);
  REQUIRE(m);
  return *m;
}

std::vector<int32_t> greedy_alone(const base_model& m, const std::vector<int32_t>& ids,
                                  const lora_adapter* a) {
  generation_params p;
  p.max_new_tokens = 10;
  auto out = m.generate_ids(ids, p, a);
  REQUIRE(out);
  return out->output_ids;
}

// Each request's greedy tokens in one batch of them all equal its tokens alone.
void check_batched_as_alone(
    const base_model& m,
    const std::vector<std::pair<std::vector<int32_t>, const lora_adapter*>>& requests) {
  std::vector<std::unique_ptr<generation>> rows;
  std::vector<std::vector<int32_t>> alone;
  for (const auto& [ids, adapter] : requests) {
    alone.push_back(greedy_alone(m, ids, adapter));
    generation_params p;
    p.max_new_tokens = 10;
    auto g = m.begin(ids, p, adapter);
    REQUIRE(g);
    rows.push_back(std::move(*g));
  }
  std::vector<generation*> batch;
  for (auto& r : rows)
    batch.push_back(r.get());
  for (int step = 0; step < 12; ++step)
    REQUIRE_FALSE(m.step(batch));
  for (size_t i = 0; i < rows.size(); ++i)
    CHECK(rows[i]->output().output_ids == alone[i]);
}

}  // namespace

TEST_CASE("a model held in each format: sizes as estimated, adapters unmerged, batch-invariant",
          "[quant][model]") {
  auto dir = (std::filesystem::temp_directory_path() / "adapterd-quant-test").string();
  tiny_model_spec spec;
  spec.adapters = 2;
  REQUIRE(write_tiny_model(spec, dir + "/m", dir + "/a"));
  auto f32 = load_as(dir + "/m", "f32");
  const std::vector<std::string> prompts{"a quantised model", "serves adapters",
                                         "unmerged and exact"};
  for (const char* name : {"f32", "bf16", "int8", "q4"}) {
    INFO(name);
    auto m = load_as(dir + "/m", name);
    CHECK(m->weights_format() == name);
    load_options options;
    options.device = "cpu";
    options.weights = name;
    auto estimate = estimate_weight_bytes(dir + "/m", options);
    REQUIRE(estimate);
    CHECK(*estimate == m->weight_bytes());
    if (std::string(name) != "f32")
      CHECK(m->weight_bytes() < f32->weight_bytes());
    // The same adapter files serve every format: no re-quantisation per adapter.
    auto a1 = m->load_adapter(dir + "/a");
    auto a2 = m->load_adapter(dir + "/a-1");
    REQUIRE(a1);
    REQUIRE(a2);
    std::vector<const lora_adapter*> adapters{nullptr, a1->get(), a2->get()};
    std::vector<std::pair<std::vector<int32_t>, const lora_adapter*>> requests;
    for (size_t i = 0; i < prompts.size() * adapters.size(); ++i)
      requests.emplace_back(m->tok().encode(prompts[i % prompts.size()], true),
                            adapters[i / prompts.size()]);
    check_batched_as_alone(*m, requests);
    // Teacher-forced logits stay near f32's, the adapter's term included: the error's RMS
    // against the logits' own spread (a random model amplifies rounding more than a trained one).
    auto ids = m->tok().encode("the logits of every format stay close", true);
    auto f32_adapter = f32->load_adapter(dir + "/a");
    REQUIRE(f32_adapter);
    for (bool with_adapter : {false, true}) {
      auto reference = f32->logits(ids, with_adapter ? f32_adapter->get() : nullptr);
      auto got = m->logits(ids, with_adapter ? a1->get() : nullptr);
      REQUIRE(reference);
      REQUIRE(got);
      REQUIRE(got->size() == reference->size());
      double err = 0, spread = 0, mean = 0;
      for (float v : *reference)
        mean += v / static_cast<double>(reference->size());
      for (size_t k = 0; k < got->size(); ++k) {
        err += std::pow((*got)[k] - (*reference)[k], 2);
        spread += std::pow((*reference)[k] - mean, 2);
      }
      const double relative = std::sqrt(err / spread);
      // q4's bound is loose here: 4-bit steps on random Gaussian weights are coarse. The
      // fidelity bench bounds it on trained models (perplexity).
      CHECK(relative <= (std::string(name) == "q4" ? 0.6 : 0.05));
    }
  }
}

TEST_CASE("weight formats that cannot be are clear errors", "[quant][model]") {
  auto dir = (std::filesystem::temp_directory_path() / "adapterd-quant-test-errors").string();
  REQUIRE(write_tiny_model(tiny_model_spec{}, dir + "/m", dir + "/a"));
  load_options options;
  options.device = "cpu";
  options.weights = "q3_k";
  auto bad = base_model::load(dir + "/m", options);
  REQUIRE_FALSE(bad);
  CHECK(bad.err().code == errc::invalid_argument);
  CHECK(bad.err().message.find("weights must be auto, f32, bf16, int8 or q4") != std::string::npos);
  options.weights = "int8";
  options.dtype = "bfloat16";
  auto mixed = base_model::load(dir + "/m", options);
  REQUIRE_FALSE(mixed);
  CHECK(mixed.err().message.find("float32 compute") != std::string::npos);
  options.dtype = "auto";
  auto m = base_model::load(dir + "/m", options);
  REQUIRE(m);
  auto adapter = (*m)->load_adapter(dir + "/a");
  REQUIRE(adapter);
  auto merged = (*m)->merged_with(**adapter);
  REQUIRE_FALSE(merged);
  CHECK(merged.err().message.find("f32 weights") != std::string::npos);
}

TEST_CASE("a bf16 KV cache: half the bytes, the same tokens alone and batched, logits near fp32's",
          "[quant][kv]") {
  auto dir = (std::filesystem::temp_directory_path() / "adapterd-quant-test-kv").string();
  REQUIRE(write_tiny_model(tiny_model_spec{}, dir + "/m", dir + "/a"));
  for (const char* weights : {"f32", "int8"}) {
    INFO(weights);
    load_options options;
    options.device = "cpu";
    options.weights = weights;
    options.kv_pool_tokens = 256;
    auto fp32_kv = base_model::load(dir + "/m", options);
    options.kv_dtype = "bfloat16";
    auto bf16_kv = base_model::load(dir + "/m", options);
    REQUIRE(fp32_kv);
    REQUIRE(bf16_kv);
    CHECK((*bf16_kv)->kv_dtype() == "bfloat16");
    CHECK((*bf16_kv)->kv_cache_bytes(100) * 2 == (*fp32_kv)->kv_cache_bytes(100));
    CHECK((*bf16_kv)->kv_pool_bytes() * 2 == (*fp32_kv)->kv_pool_bytes());
    auto estimate = estimate_kv_bytes(dir + "/m", options, 100);
    REQUIRE(estimate);
    CHECK(*estimate == (*bf16_kv)->kv_cache_bytes(100));
    const auto& m = **bf16_kv;
    auto adapter = m.load_adapter(dir + "/a");
    REQUIRE(adapter);
    std::vector<std::vector<int32_t>> prompts{m.tok().encode("a cache in bf16", true),
                                              m.tok().encode("keeps every row's tokens", true)};
    std::vector<std::pair<std::vector<int32_t>, const lora_adapter*>> requests;
    for (size_t i = 0; i < 4; ++i)
      requests.emplace_back(prompts[i / 2], i % 2 ? adapter->get() : nullptr);
    check_batched_as_alone(m, requests);
    auto ids = m.tok().encode("the keys and values rounded to bf16 move the logits a little", true);
    auto reference =
        (*fp32_kv)->logits(ids, nullptr, true);  // through the cache, one token at a time
    auto got = m.logits(ids, nullptr, true);
    REQUIRE(reference);
    REQUIRE(got);
    double err = 0, spread = 0;
    for (size_t k = 0; k < got->size(); ++k) {
      err += std::pow((*got)[k] - (*reference)[k], 2);
      spread += std::pow((*reference)[k], 2);
    }
    CHECK(std::sqrt(err / spread) < 0.02);
    CHECK(err > 0);  // the cache really is bf16
  }
}
