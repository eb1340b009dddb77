#include "model/io/safetensors.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <limits>

#include <nlohmann/json.hpp>

namespace adapterd::model {

namespace {

constexpr uint64_t max_header_bytes = 100u * 1024 * 1024;

struct dtype_name {
  dtype type;
  const char* name;
  size_t size;
};

constexpr dtype_name dtype_names[] = {
  {dtype::f32, "F32", 4},  {dtype::f16, "F16", 2}, {dtype::bf16, "BF16", 2},
  {dtype::f64, "F64", 8},  {dtype::i64, "I64", 8}, {dtype::i32, "I32", 4},
  {dtype::i16, "I16", 2},  {dtype::i8, "I8", 1},   {dtype::u8, "U8", 1},
  {dtype::boolean, "BOOL", 1},
};

bool parse_dtype(const std::string& s, dtype& out) {
  for (const auto& d : dtype_names)
    if (s == d.name) {
      out = d.type;
      return true;
    }
  return false;
}

struct mapping {
  void* addr = nullptr;
  size_t size = 0;
  ~mapping() {
    if (addr != nullptr && size > 0)
      munmap(addr, size);
  }
};

error bad(const std::string& origin, const std::string& what) {
  return make_error(errc::invalid_model, "safetensors " + origin + ": " + what);
}

}  // namespace

size_t element_size(dtype type) {
  for (const auto& d : dtype_names)
    if (d.type == type)
      return d.size;
  return 0;
}

const char* to_string(dtype type) {
  for (const auto& d : dtype_names)
    if (d.type == type)
      return d.name;
  return "?";
}

int64_t tensor_view::numel() const {
  int64_t n = 1;
  for (auto d : shape)
    n *= d;
  return n;
}

const tensor_view* safetensors_file::find(const std::string& name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : &tensors_[it->second];
}

result<std::shared_ptr<const safetensors_file>> safetensors_file::open(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return make_error(errc::not_found, "cannot open " + path + ": " + std::strerror(errno));
  struct stat st {};
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return bad(path, "not a regular file");
  }
  auto map = std::make_shared<mapping>();
  map->size = static_cast<size_t>(st.st_size);
  if (map->size > 0) {
    map->addr = mmap(nullptr, map->size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (map->addr == MAP_FAILED) {
      map->addr = nullptr;
      ::close(fd);
      return bad(path, std::string("mmap failed: ") + std::strerror(errno));
    }
  }
  ::close(fd);
  auto begin = static_cast<const std::byte*>(map->addr);
  return from_storage(map, begin, map->size, path);
}

result<std::shared_ptr<const safetensors_file>> safetensors_file::parse(std::vector<std::byte> bytes,
                                                                        std::string origin) {
  auto owned = std::make_shared<std::vector<std::byte>>(std::move(bytes));
  return from_storage(owned, owned->data(), owned->size(), std::move(origin));
}

result<std::shared_ptr<const safetensors_file>> safetensors_file::from_storage(
  std::shared_ptr<const void> storage, const std::byte* begin, size_t size, std::string origin) {
  if (size < 8)
    return bad(origin, "file shorter than the 8-byte header length");
  uint64_t header_len = 0;
  for (int i = 7; i >= 0; --i)
    header_len = (header_len << 8) | static_cast<uint8_t>(begin[i]);
  if (header_len > max_header_bytes || header_len > size - 8)
    return bad(origin, "header length " + std::to_string(header_len) + " exceeds the file");
  auto header_text = std::string(reinterpret_cast<const char*>(begin + 8), header_len);
  auto header = nlohmann::json::parse(header_text, nullptr, false);
  if (header.is_discarded() || !header.is_object())
    return bad(origin, "header is not a JSON object");
  const std::byte* data = begin + 8 + header_len;
  const size_t data_size = size - 8 - header_len;

  auto file = std::make_shared<safetensors_file>();
  file->origin_ = origin;
  file->storage_ = std::move(storage);
  for (const auto& [name, entry] : header.items()) {
    if (name == "__metadata__") {
      if (entry.is_object())
        for (const auto& [k, v] : entry.items())
          if (v.is_string())
            file->metadata_[k] = v.get<std::string>();
      continue;
    }
    if (!entry.is_object() || !entry.contains("dtype") || !entry["dtype"].is_string()
        || !entry.contains("shape") || !entry["shape"].is_array()
        || !entry.contains("data_offsets") || !entry["data_offsets"].is_array()
        || entry["data_offsets"].size() != 2)
      return bad(origin, "tensor '" + name + "' has a malformed entry");
    tensor_view view;
    view.name = name;
    if (!parse_dtype(entry["dtype"].get<std::string>(), view.type))
      return bad(origin, "tensor '" + name + "' has unknown dtype "
                           + entry["dtype"].get<std::string>());
    uint64_t count = 1;
    for (const auto& d : entry["shape"]) {
      if (!d.is_number_unsigned())
        return bad(origin, "tensor '" + name + "' has a non-integer dimension");
      auto dim = d.get<uint64_t>();
      if (dim != 0 && count > std::numeric_limits<uint32_t>::max() * 16ull / dim)
        return bad(origin, "tensor '" + name + "' is impossibly large");
      count *= dim;
      view.shape.push_back(static_cast<int64_t>(dim));
    }
    const auto& off = entry["data_offsets"];
    if (!off[0].is_number_unsigned() || !off[1].is_number_unsigned())
      return bad(origin, "tensor '" + name + "' has non-integer data_offsets");
    auto first = off[0].get<uint64_t>();
    auto last = off[1].get<uint64_t>();
    if (first > last || last > data_size)
      return bad(origin, "tensor '" + name + "' data_offsets [" + std::to_string(first) + ", "
                           + std::to_string(last) + ") lie outside the " + std::to_string(data_size)
                           + "-byte data section (truncated file?)");
    if (last - first != count * element_size(view.type))
      return bad(origin, "tensor '" + name + "' byte size does not match its shape");
    view.data = data + first;
    view.nbytes = last - first;
    file->index_[name] = file->tensors_.size();
    file->tensors_.push_back(std::move(view));
  }
  return std::shared_ptr<const safetensors_file>(std::move(file));
}

std::vector<std::byte> encode_safetensors(const std::vector<tensor_blob>& tensors,
                                          const std::map<std::string, std::string>& metadata) {
  std::vector<const tensor_blob*> sorted;
  for (const auto& t : tensors)
    sorted.push_back(&t);
  std::sort(sorted.begin(), sorted.end(),
            [](const tensor_blob* a, const tensor_blob* b) { return a->name < b->name; });
  nlohmann::json header = nlohmann::json::object();
  if (!metadata.empty())
    header["__metadata__"] = metadata;
  uint64_t offset = 0;
  for (const auto* t : sorted) {
    header[t->name] = {{"dtype", to_string(t->type)},
                       {"shape", t->shape},
                       {"data_offsets", {offset, offset + t->bytes.size()}}};
    offset += t->bytes.size();
  }
  auto text = header.dump();
  while ((text.size() + 8) % 8 != 0)  // keep the data section 8-byte aligned
    text.push_back(' ');
  std::vector<std::byte> out(8);
  uint64_t len = text.size();
  for (int i = 0; i < 8; ++i)
    out[i] = static_cast<std::byte>((len >> (8 * i)) & 0xff);
  for (char c : text)
    out.push_back(static_cast<std::byte>(c));
  for (const auto* t : sorted)
    out.insert(out.end(), t->bytes.begin(), t->bytes.end());
  return out;
}

result<bool> write_safetensors(const std::string& path, const std::vector<tensor_blob>& tensors,
                               const std::map<std::string, std::string>& metadata) {
  auto bytes = encode_safetensors(tensors, metadata);
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out)
    return make_error(errc::not_found, "cannot write " + path);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  if (!out)
    return make_error(errc::internal, "short write to " + path);
  return true;
}

}  // namespace adapterd::model
