#include <cstring>

#include <catch2/catch.hpp>

#include "model/io/safetensors.hpp"

using namespace adapterd::model;

namespace {

std::vector<std::byte> floats(std::initializer_list<float> xs) {
  std::vector<std::byte> out(xs.size() * 4);
  std::memcpy(out.data(), xs.begin(), out.size());
  return out;
}

std::vector<std::byte> image_with_header(const std::string& header, size_t data_bytes) {
  std::vector<std::byte> out(8);
  for (int i = 0; i < 8; ++i)
    out[i] = static_cast<std::byte>((header.size() >> (8 * i)) & 0xff);
  for (char c : header)
    out.push_back(static_cast<std::byte>(c));
  out.resize(out.size() + data_bytes);
  return out;
}

}  // namespace

TEST_CASE("safetensors round-trips tensors and metadata", "[safetensors]") {
  std::vector<tensor_blob> blobs{{"b", dtype::f32, {2}, floats({3, 4})},
                                 {"a", dtype::f32, {1, 2}, floats({1, 2})}};
  auto file = safetensors_file::parse(encode_safetensors(blobs, {{"format", "pt"}}), "mem");
  REQUIRE(file);
  REQUIRE((*file)->tensors().size() == 2);
  const auto* a = (*file)->find("a");
  REQUIRE(a != nullptr);
  CHECK(a->shape == std::vector<int64_t>{1, 2});
  float values[2];
  std::memcpy(values, a->data, 8);
  CHECK(values[0] == 1.0f);
  CHECK(values[1] == 2.0f);
  CHECK((*file)->metadata().at("format") == "pt");
  CHECK(reinterpret_cast<uintptr_t>(a->data) % 8 == 0);
}

TEST_CASE("safetensors rejects truncated and lying headers", "[safetensors]") {
  auto good = encode_safetensors({{"w", dtype::f32, {4}, floats({1, 2, 3, 4})}});
  SECTION("shorter than the length prefix") {
    auto r = safetensors_file::parse({good.begin(), good.begin() + 5}, "mem");
    REQUIRE_FALSE(r);
    CHECK(r.err().code == errc::invalid_model);
  }
  SECTION("data truncated") {
    auto r = safetensors_file::parse({good.begin(), good.end() - 4}, "mem");
    REQUIRE_FALSE(r);
    CHECK(r.err().message.find("truncated") != std::string::npos);
  }
  SECTION("header length past the end") {
    auto bad = good;
    bad[5] = std::byte{0x7f};
    CHECK_FALSE(safetensors_file::parse(bad, "mem"));
  }
  SECTION("header is not JSON") {
    CHECK_FALSE(safetensors_file::parse(image_with_header("{not json", 0), "mem"));
  }
  SECTION("size does not match the shape") {
    auto img = image_with_header(R"({"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", 8);
    CHECK_FALSE(safetensors_file::parse(img, "mem"));
  }
  SECTION("offsets reversed") {
    auto img = image_with_header(R"({"w":{"dtype":"F32","shape":[0],"data_offsets":[8,0]}})", 8);
    CHECK_FALSE(safetensors_file::parse(img, "mem"));
  }
  SECTION("unknown dtype") {
    auto img = image_with_header(R"({"w":{"dtype":"F8X","shape":[1],"data_offsets":[0,1]}})", 1);
    CHECK_FALSE(safetensors_file::parse(img, "mem"));
  }
  SECTION("huge dimensions do not overflow") {
    auto img = image_with_header(
      R"({"w":{"dtype":"F32","shape":[4294967296,4294967296,16],"data_offsets":[0,0]}})", 0);
    CHECK_FALSE(safetensors_file::parse(img, "mem"));
  }
  SECTION("wrong field types") {
    auto img = image_with_header(R"({"w":{"dtype":1,"shape":"x","data_offsets":[0]}})", 0);
    CHECK_FALSE(safetensors_file::parse(img, "mem"));
  }
}

TEST_CASE("safetensors open reports a missing file", "[safetensors]") {
  auto r = safetensors_file::open("/nonexistent/model.safetensors");
  REQUIRE_FALSE(r);
  CHECK(r.err().code == errc::not_found);
}
