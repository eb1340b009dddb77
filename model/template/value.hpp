#pragma once
// The values a Jinja template computes with, as Python sees them, and their Python
// renderings (str, repr, truthiness, equality).
#include <algorithm>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace adapterd::model::jinja {

struct template_error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// A template is a program from the model's files: what one render may cost is bounded, so a
// runaway loop or a doubling string is an error, not a hang or an exhausted memory. Units are
// bytes made (a string's length, a list slot's size); render() opens one budget per thread.
class work_budget {
 public:
  explicit work_budget(uint64_t units);
  ~work_budget();
  work_budget(const work_budget&) = delete;
  work_budget& operator=(const work_budget&) = delete;

 private:
  uint64_t left_;
  work_budget* outer_;
  friend void charge_work(uint64_t units);
};
void charge_work(uint64_t units);  // throws template_error once the open budget is spent

// Containers nest at most this deep, so every walk over a value (repr, tojson, equality, a
// copy, the destructor) has a bounded depth of recursion.
constexpr int max_value_depth = 64;

struct value;
using list_ptr = std::shared_ptr<std::vector<value>>;
using dict_ptr = std::shared_ptr<std::vector<std::pair<std::string, value>>>;  // in insertion order

struct value {
  enum kind_t { undefined, none, boolean, integer, number, string, list, dict } kind = undefined;
  bool b = false;
  int64_t i = 0;
  double d = 0;
  std::string s;
  list_ptr l;
  dict_ptr m;
  int depth = 0;  // 0 for a scalar; a container: 1 + its deepest element's, as last put or pushed

  // clang-format off
  static value of(bool x) { value v; v.kind = boolean; v.b = x; return v; }
  static value of(int64_t x) { value v; v.kind = integer; v.i = x; return v; }
  static value of(double x) { value v; v.kind = number; v.d = x; return v; }
  static value of(std::string x) { charge_work(x.size()); value v; v.kind = string; v.s = std::move(x); return v; }
  static value null() { value v; v.kind = none; return v; }
  static value new_list() { value v; v.kind = list; v.depth = 1; v.l = std::make_shared<std::vector<value>>(); return v; }
  static value new_dict() { value v; v.kind = dict; v.depth = 1; v.m = std::make_shared<std::vector<std::pair<std::string, value>>>(); return v; }
  // clang-format on

  bool numeric() const { return kind == integer || kind == number || kind == boolean; }
  double as_double() const {
    return kind == number ? d : static_cast<double>(kind == boolean ? b : i);
  }
  value* find(const std::string& key) const {
    if (kind != dict)
      return nullptr;
    for (auto& [k, v] : *m)
      if (k == key)
        return &v;
    return nullptr;
  }
  // The only ways an element enters a container: each keeps depth and charges the budget.
  void put(const std::string& key, value v) {
    take(v);
    if (auto* slot = find(key))
      *slot = std::move(v);
    else
      m->emplace_back(key, std::move(v));
  }
  void push(value v) {
    take(v);
    l->push_back(std::move(v));
  }

 private:
  void take(const value& element) {
    charge_work(sizeof(value));
    if (element.depth + 1 > max_value_depth)
      throw template_error("values nest deeper than " + std::to_string(max_value_depth)
                           + " levels");
    depth = std::max(depth, element.depth + 1);
  }
};

const char* type_name(const value& v);
bool truthy(const value& v);
std::string python_float(double d);
std::string str(const value& v);
std::string repr(const value& v);
// In the value's own key order, as Python's json.dumps writes a dict.
nlohmann::ordered_json to_json_value(const value& v);
// A JSON document (tools, a call's arguments) as the template sees it after json.loads.
value from_json_value(const nlohmann::ordered_json& j);
bool equal(const value& a, const value& b);
// A copy that shares no container with v: a namespace keeps what it is given this way, so no
// container can ever hold itself.
value detached(const value& v);

}  // namespace adapterd::model::jinja
