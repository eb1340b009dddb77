#include "model/tokenizer/stream_decoder.hpp"

namespace adapterd::model {

namespace {

constexpr const char* replacement_char = "\xEF\xBF\xBD";

bool ends_with_replacement(const std::string& s) {
  return s.size() >= 3 && s.compare(s.size() - 3, 3, replacement_char) == 0;
}

}  // namespace

std::string stream_decoder::window_text(size_t from, size_t to) const {
  std::vector<int32_t> window(ids_.begin() + static_cast<std::ptrdiff_t>(from),
                              ids_.begin() + static_cast<std::ptrdiff_t>(to));
  return tok_.decode(window, skip_special_);
}

std::string stream_decoder::push(int32_t id) {
  ids_.push_back(id);
  auto released = window_text(prefix_offset_, read_offset_);
  auto current = window_text(prefix_offset_, ids_.size());
  if (current.size() <= released.size() || ends_with_replacement(current)
      || current.compare(0, released.size(), released) != 0)
    return {};  // nothing new, or the last character is still incomplete
  prefix_offset_ = read_offset_;
  read_offset_ = ids_.size();
  return current.substr(released.size());
}

std::string stream_decoder::finish() {
  auto released = window_text(prefix_offset_, read_offset_);
  auto current = window_text(prefix_offset_, ids_.size());
  prefix_offset_ = read_offset_ = ids_.size();
  if (current.size() <= released.size() || current.compare(0, released.size(), released) != 0)
    return {};
  return current.substr(released.size());
}

}  // namespace adapterd::model
