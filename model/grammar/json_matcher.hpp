#pragma once
// Where a text stands in a schema's JSON, byte by byte: a pushdown automaton over the
// schema_graph. anyOf makes it nondeterministic, so it keeps every reading of the text
// that is still possible (usually one). Compact output with bounded whitespace: at most
// max_whitespace blank characters between two tokens of JSON, none before or after the
// value, so that a constrained generation always comes to an end.
#include <cstdint>
#include <string>
#include <vector>

#include "model/grammar/json_schema.hpp"

namespace adapterd::model {

class json_matcher {
 public:
  static constexpr uint8_t max_whitespace = 8;
  static constexpr size_t max_depth = 32;  // objects and arrays nested in each other

  /// Expects the graph's root value; `graph` must outlive the matcher.
  explicit json_matcher(const schema_graph& graph);

  /// Reads `bytes`; false (and the matcher unchanged) when they cannot come next.
  bool feed(const std::string& bytes);
  /// Reads one byte; false when it cannot come next (the matcher is then dead).
  bool feed_byte(uint8_t c);
  /// The text so far is a whole value (a number may still go on).
  bool can_end() const;
  /// The text so far is a whole value and nothing may follow it.
  bool finished() const;
  /// The state, as bytes: equal keys accept exactly the same continuations.
  std::string key() const;

  struct frame {
    int32_t node = 0;
    uint8_t kind = 0;  // a node_kind, or one of the matcher's own (key, free key)
    uint8_t phase = 0;
    uint8_t blanks = 0;     // whitespace read at this position
    uint8_t utf8_left = 0;  // continuation bytes the current character still needs
    uint32_t count = 0;     // items read; next property; characters of a key or literal; digits
    int32_t property = -1;
    uint64_t candidates = 0;  // keys or literals still possible
    bool operator==(const frame& o) const;
    bool operator<(const frame& o) const;
  };
  using stack = std::vector<frame>;

 private:
  void advance(stack s, uint8_t c, std::vector<stack>& out) const;
  void start_value(stack s, int32_t node, uint8_t c, std::vector<stack>& out) const;
  void value_done(stack& s) const;
  bool may_end(const stack& s) const;

  const schema_graph* graph_;
  std::vector<stack> readings_;
};

}  // namespace adapterd::model
