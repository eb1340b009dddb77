#pragma once
// The safetensors format, read and written without libtorch: an 8-byte little-endian
// header length, a JSON header naming each tensor's dtype, shape and byte range, then
// the raw data. Files are memory-mapped so that weights whose dtype already matches
// the compute dtype are used in place, without a copy.
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "model/result.hpp"

namespace adapterd::model {

enum class dtype { f32, f16, bf16, f64, i64, i32, i16, i8, u8, boolean };

/// Bytes per element, and the safetensors spelling ("F32", "BF16", ...).
size_t element_size(dtype type);
const char* to_string(dtype type);

struct tensor_view {
  std::string name;
  dtype type = dtype::f32;
  std::vector<int64_t> shape;
  const std::byte* data = nullptr;
  size_t nbytes = 0;

  int64_t numel() const;
};

class safetensors_file {
public:
  /// Maps and validates a file; every header lie (offsets past the end, sizes that do
  /// not match the shape, unknown dtypes, truncation) is an error, never a crash.
  static result<std::shared_ptr<const safetensors_file>> open(const std::string& path);

  /// Validates an in-memory image (tests, and files written by this project).
  static result<std::shared_ptr<const safetensors_file>> parse(std::vector<std::byte> bytes,
                                                               std::string origin);

  const std::vector<tensor_view>& tensors() const { return tensors_; }
  const tensor_view* find(const std::string& name) const;
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  const std::string& origin() const { return origin_; }

  /// Keeps the mapping alive for as long as someone uses tensor data in place.
  std::shared_ptr<const void> storage() const { return storage_; }

private:
  static result<std::shared_ptr<const safetensors_file>> from_storage(
    std::shared_ptr<const void> storage, const std::byte* begin, size_t size, std::string origin);

  std::string origin_;
  std::shared_ptr<const void> storage_;
  std::vector<tensor_view> tensors_;
  std::map<std::string, size_t> index_;
  std::map<std::string, std::string> metadata_;
};

/// A tensor to write: raw little-endian bytes of `type` in row-major order.
struct tensor_blob {
  std::string name;
  dtype type = dtype::f32;
  std::vector<int64_t> shape;
  std::vector<std::byte> bytes;
};

/// Serialises tensors (sorted by name, as Hugging Face does) to a safetensors image.
std::vector<std::byte> encode_safetensors(const std::vector<tensor_blob>& tensors,
                                          const std::map<std::string, std::string>& metadata = {});

/// Writes `encode_safetensors(...)` to `path`.
result<bool> write_safetensors(const std::string& path, const std::vector<tensor_blob>& tensors,
                               const std::map<std::string, std::string>& metadata = {});

}  // namespace adapterd::model
