#include "model/grammar/json_matcher.hpp"

#include <algorithm>
#include <cstring>
#include <tuple>

namespace adapterd::model {

namespace {

// The matcher's own frame kinds, after node_kind's.
constexpr uint8_t key_kind = 16;       // a listed property's name: `candidates` of them
constexpr uint8_t free_key_kind = 17;  // any name (an object without listed properties)

constexpr uint8_t kind_of(node_kind k) {
  return static_cast<uint8_t>(k);
}
constexpr size_t max_readings = 64;
constexpr int max_any_of_hops = 16;  // anyOf of anyOf ...: a $ref cycle without a value between
constexpr uint32_t max_digits = 20, max_exponent_digits = 4;

bool blank(uint8_t c) {
  return c == ' ' || c == '\n' || c == '\t' || c == '\r';
}
bool digit(uint8_t c) {
  return c >= '0' && c <= '9';
}
bool hex(uint8_t c) {
  return digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}
uint64_t bit(size_t i) {
  return uint64_t(1) << i;
}

json_matcher::frame frame_for(const schema_graph& g, int32_t node) {
  json_matcher::frame f;
  f.node = node;
  const auto& n = g.nodes[static_cast<size_t>(node)];
  f.kind = kind_of(n.kind);
  if (n.kind == node_kind::literal)
    f.candidates = n.literals.size() >= 64 ? ~uint64_t(0) : bit(n.literals.size()) - 1;
  return f;
}

// Object phases: 0 before '{', 1 after it, 3 after a name, 4 after ':', 5 after a value,
// 6 after ','. Array phases: 0 before '[', 1 after it, 2 after an item, 3 after ','.
bool blanks_allowed(const json_matcher::frame& f) {
  if (f.kind == kind_of(node_kind::object))
    return f.phase == 1 || f.phase >= 3;
  return f.kind == kind_of(node_kind::array) && f.phase >= 1;
}

}  // namespace

bool json_matcher::frame::operator==(const frame& o) const {
  return std::tie(node, kind, phase, blanks, utf8_left, count, property, candidates)
         == std::tie(o.node, o.kind, o.phase, o.blanks, o.utf8_left, o.count, o.property,
                     o.candidates);
}

bool json_matcher::frame::operator<(const frame& o) const {
  return std::tie(node, kind, phase, blanks, utf8_left, count, property, candidates) < std::tie(
             o.node, o.kind, o.phase, o.blanks, o.utf8_left, o.count, o.property, o.candidates);
}

json_matcher::json_matcher(const schema_graph& graph) : graph_(&graph) {
  readings_.push_back({frame_for(graph, graph.root)});
}

void json_matcher::value_done(stack& s) const {
  if (s.empty())
    return;
  auto& parent = s.back();
  parent.blanks = 0;
  if (parent.kind == kind_of(node_kind::array)) {
    parent.phase = 2;
    ++parent.count;
  } else if (parent.kind == kind_of(node_kind::object)) {
    parent.phase = 5;
  }
}

void json_matcher::start_value(stack s, int32_t node, uint8_t c, std::vector<stack>& out) const {
  if (s.size() >= 2 * max_depth)
    return;
  s.push_back(frame_for(*graph_, node));
  advance(std::move(s), c, out);
}

void json_matcher::advance(stack s, uint8_t c, std::vector<stack>& out) const {
  if (s.empty())
    return;  // nothing may follow the whole value
  auto& f = s.back();
  const auto& n = graph_->nodes[static_cast<size_t>(f.node)];
  auto keep = [&] { out.push_back(std::move(s)); };
  // The frame is complete before c: pop it and let its parent read c.
  auto ended_before = [&] {
    s.pop_back();
    value_done(s);
    advance(std::move(s), c, out);
  };
  auto ended_with = [&] {
    s.pop_back();
    value_done(s);
    keep();
  };

  switch (f.kind) {
    case kind_of(node_kind::any): {
      int32_t to;
      if (c == '{')
        to = graph_->any_object;
      else if (c == '[')
        to = graph_->any_array;
      else if (c == '"')
        to = graph_->string;
      else if (c == 't' || c == 'f')
        to = graph_->boolean;
      else if (c == 'n')
        to = graph_->null;
      else if (c == '-' || digit(c))
        to = graph_->number;
      else
        return;
      s.pop_back();
      return start_value(std::move(s), to, c, out);
    }

    case kind_of(node_kind::any_of): {
      if (f.count >= max_any_of_hops)
        return;
      const auto hops = f.count + 1;
      s.pop_back();
      for (auto alt : n.alternatives) {
        auto branch = s;
        if (branch.size() >= 2 * max_depth)
          continue;
        branch.push_back(frame_for(*graph_, alt));
        if (branch.back().kind == kind_of(node_kind::any_of))
          branch.back().count = hops;
        advance(std::move(branch), c, out);
      }
      return;
    }

    case kind_of(node_kind::string):
    case free_key_kind: {
      // Characters are counted only under minLength/maxLength: elsewhere every position
      // inside a string is one state, and one cached mask.
      const bool counted =
          f.kind == kind_of(node_kind::string) && (n.min_length > 0 || n.max_length != UINT32_MAX);
      auto one_more = [&] {
        if (!counted)
          return true;
        if (f.count >= n.max_length)
          return false;
        ++f.count;
        return true;
      };
      if (f.phase == 0) {
        if (c != '"')
          return;
        f.phase = 1;
        return keep();
      }
      if (f.phase == 1) {
        if (f.utf8_left != 0 && (c & 0xC0) != 0x80)
          return;  // a character cut short
        if (c == '"') {
          if (counted && f.count < n.min_length)
            return;
          if (f.kind == free_key_kind) {
            s.pop_back();
            s.back().phase = 3;
            s.back().blanks = 0;
            return keep();
          }
          return ended_with();
        }
        if (c < 0x20)
          return;
        // Well-formed UTF-8 only: a continuation byte where a character expects one.
        // utf8_left: the bytes still to come (low bits), and for the first of them the
        // narrower range some lead bytes need (high bits): no overlong forms, surrogates,
        // or code points past U+10FFFF, which a decoder would turn into U+FFFD.
        if ((c & 0xC0) == 0x80) {
          const uint8_t left = f.utf8_left & 3, range = f.utf8_left >> 4;
          if (left == 0 || (range == 1 && c < 0xA0) || (range == 2 && c > 0x9F)
              || (range == 3 && c < 0x90) || (range == 4 && c > 0x8F))
            return;
          f.utf8_left = static_cast<uint8_t>(left - 1);
          return keep();
        }
        if (f.utf8_left != 0 || c == 0xC0 || c == 0xC1 || c >= 0xF5 || !one_more())
          return;
        const uint8_t range = c == 0xE0 ? 1 : c == 0xED ? 2 : c == 0xF0 ? 3 : c == 0xF4 ? 4 : 0;
        f.utf8_left = static_cast<uint8_t>((range << 4)
                                           | (c >= 0xF0   ? 3
                                              : c >= 0xE0 ? 2
                                              : c >= 0xC0 ? 1
                                                          : 0));
        if (c == '\\')
          f.phase = 2;
        return keep();
      }
      if (f.phase == 2) {
        if (c == 'u') {
          f.phase = 3;
          f.property = 0;  // hex digits read
        } else if (std::strchr("\"\\/bfnrt", c) != nullptr && c != 0) {
          f.phase = 1;
        } else {
          return;
        }
        return keep();
      }
      if (!hex(c))
        return;
      if (++f.property == 4)
        f.phase = 1, f.property = -1;
      return keep();
    }

    case kind_of(node_kind::number):
    case kind_of(node_kind::integer): {
      const bool integer = f.kind == kind_of(node_kind::integer);
      const bool exponent = !integer && (c == 'e' || c == 'E');
      switch (f.phase) {
        case 0:
        case 1:
          if (c == '-' && f.phase == 0)
            f.phase = 1;
          else if (c == '0')
            f.phase = 2;
          else if (digit(c))
            f.phase = 3, f.count = 1;
          else
            return;
          return keep();
        case 2:  // after a leading 0
        case 3:  // integer digits
          if (f.phase == 3 && digit(c) && f.count < max_digits)
            ++f.count;
          else if (!integer && c == '.')
            f.phase = 4;
          else if (exponent)
            f.phase = 6;
          else
            return ended_before();
          return keep();
        case 4:
          if (!digit(c))
            return;
          f.phase = 5, f.count = 1;
          return keep();
        case 5:  // fraction digits
          if (digit(c) && f.count < max_digits)
            ++f.count;
          else if (exponent)
            f.phase = 6;
          else
            return ended_before();
          return keep();
        case 6:
        case 7:
          if ((c == '+' || c == '-') && f.phase == 6)
            f.phase = 7;
          else if (digit(c))
            f.phase = 8, f.count = 1;
          else
            return;
          return keep();
        default:  // exponent digits
          if (digit(c) && f.count < max_exponent_digits) {
            ++f.count;
            return keep();
          }
          return ended_before();
      }
    }

    case kind_of(node_kind::literal): {
      uint64_t next = 0;
      bool complete = false, all_complete = true;
      for (size_t i = 0; i < n.literals.size() && i < 64; ++i) {
        if (!(f.candidates & bit(i)))
          continue;
        const auto& text = n.literals[i];
        complete |= text.size() == f.count;
        if (text.size() > f.count && static_cast<uint8_t>(text[f.count]) == c) {
          next |= bit(i);
          all_complete &= text.size() == f.count + 1;
        }
      }
      if (next == 0)
        return complete && f.count > 0 ? ended_before() : void();
      f.candidates = next;
      ++f.count;
      return all_complete ? ended_with() : keep();
    }

    case key_kind: {
      const auto& props = n.properties;
      if (c == '"') {
        for (size_t k = 0; k < props.size(); ++k)
          if ((f.candidates & bit(k)) && props[k].key_text.size() == f.count) {
            s.pop_back();
            auto& object = s.back();
            object.property = static_cast<int32_t>(k);
            object.count = static_cast<uint32_t>(k + 1);
            object.phase = 3;
            object.blanks = 0;
            return keep();
          }
        return;
      }
      uint64_t next = 0;
      for (size_t k = 0; k < props.size(); ++k)
        if ((f.candidates & bit(k)) && props[k].key_text.size() > f.count
            && static_cast<uint8_t>(props[k].key_text[f.count]) == c)
          next |= bit(k);
      if (next == 0)
        return;
      f.candidates = next;
      ++f.count;
      return keep();
    }

    default: break;
  }

  if (blank(c)) {
    if (!blanks_allowed(f) || f.blanks >= max_whitespace)
      return;
    ++f.blanks;
    return keep();
  }
  f.blanks = 0;

  if (f.kind == kind_of(node_kind::array)) {
    switch (f.phase) {
      case 0:
        if (c != '[')
          return;
        f.phase = 1;
        return keep();
      case 1:
        if (c == ']')
          return n.min_items == 0 ? ended_with() : void();
        if (n.max_items == 0)
          return;
        return start_value(std::move(s), n.items, c, out);
      case 2:
        if (c == ',' && f.count < n.max_items) {
          f.phase = 3;
          return keep();
        }
        if (c == ']' && f.count >= n.min_items)
          return ended_with();
        return;
      default: return start_value(std::move(s), n.items, c, out);
    }
  }

  // An object: listed properties in their order (f.count: the next one), or free keys.
  const auto& props = n.properties;
  auto may_close = [&] {
    if (n.free_keys)
      return true;
    for (size_t k = f.count; k < props.size(); ++k)
      if (props[k].required)
        return false;
    return true;
  };
  auto open_key = [&] {
    frame key;
    key.node = f.node;
    key.phase = 1;
    if (n.free_keys) {
      key.kind = free_key_kind;
    } else {
      key.kind = key_kind;
      for (size_t k = f.count; k < props.size(); ++k) {
        key.candidates |= bit(k);
        if (props[k].required)
          break;
      }
      if (key.candidates == 0)
        return;
    }
    s.push_back(key);
    keep();
  };
  switch (f.phase) {
    case 0:
      if (c != '{')
        return;
      f.phase = 1;
      return keep();
    case 1:
      if (c == '}')
        return may_close() ? ended_with() : void();
      return c == '"' ? open_key() : void();
    case 3:
      if (c != ':')
        return;
      f.phase = 4;
      return keep();
    case 4:
      return start_value(std::move(s),
                         n.free_keys ? n.items : props[static_cast<size_t>(f.property)].node, c,
                         out);
    case 5:
      if (c == ',' && (n.free_keys || f.count < props.size())) {
        f.phase = 6;
        return keep();
      }
      if (c == '}' && may_close())
        return ended_with();
      return;
    default: return c == '"' ? open_key() : void();
  }
}

bool json_matcher::feed_byte(uint8_t c) {
  std::vector<stack> next;
  for (const auto& reading : readings_)
    advance(reading, c, next);
  std::sort(next.begin(), next.end());
  next.erase(std::unique(next.begin(), next.end()), next.end());
  if (next.size() > max_readings)
    next.resize(max_readings);
  readings_ = std::move(next);
  return !readings_.empty();
}

bool json_matcher::feed(const std::string& bytes) {
  auto before = readings_;
  for (unsigned char c : bytes)
    if (!feed_byte(c)) {
      readings_ = std::move(before);
      return false;
    }
  return true;
}

bool json_matcher::may_end(const stack& s) const {
  if (s.empty())
    return true;
  if (s.size() != 1)
    return false;
  const auto& f = s.back();
  if (f.kind == kind_of(node_kind::number) || f.kind == kind_of(node_kind::integer))
    return f.phase == 2 || f.phase == 3 || f.phase == 5 || f.phase == 8;
  if (f.kind == kind_of(node_kind::literal)) {
    const auto& literals = graph_->nodes[static_cast<size_t>(f.node)].literals;
    for (size_t i = 0; i < literals.size() && i < 64; ++i)
      if ((f.candidates & bit(i)) && literals[i].size() == f.count)
        return true;
  }
  return false;
}

bool json_matcher::can_end() const {
  return std::any_of(readings_.begin(), readings_.end(),
                     [&](const stack& s) { return may_end(s); });
}

bool json_matcher::finished() const {
  return std::any_of(readings_.begin(), readings_.end(), [](const stack& s) { return s.empty(); });
}

std::string json_matcher::key() const {
  std::string out;
  auto put = [&](const void* p, size_t n) { out.append(static_cast<const char*>(p), n); };
  for (const auto& s : readings_) {
    for (const auto& f : s) {
      put(&f.node, sizeof f.node);
      put(&f.kind, 1);
      put(&f.phase, 1);
      put(&f.blanks, 1);
      put(&f.utf8_left, 1);
      put(&f.count, sizeof f.count);
      put(&f.property, sizeof f.property);
      put(&f.candidates, sizeof f.candidates);
    }
    out.push_back('|');
  }
  return out;
}

}  // namespace adapterd::model
