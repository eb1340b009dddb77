#pragma once
// The values a Jinja template computes with, as Python sees them, and their Python
// renderings (str, repr, truthiness, equality).
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

  // clang-format off
  static value of(bool x) { value v; v.kind = boolean; v.b = x; return v; }
  static value of(int64_t x) { value v; v.kind = integer; v.i = x; return v; }
  static value of(double x) { value v; v.kind = number; v.d = x; return v; }
  static value of(std::string x) { value v; v.kind = string; v.s = std::move(x); return v; }
  static value null() { value v; v.kind = none; return v; }
  static value new_list() { value v; v.kind = list; v.l = std::make_shared<std::vector<value>>(); return v; }
  static value new_dict() { value v; v.kind = dict; v.m = std::make_shared<std::vector<std::pair<std::string, value>>>(); return v; }
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
  void put(const std::string& key, value v) {
    if (auto* slot = find(key))
      *slot = std::move(v);
    else
      m->emplace_back(key, std::move(v));
  }
};

const char* type_name(const value& v);
bool truthy(const value& v);
std::string python_float(double d);
std::string str(const value& v);
std::string repr(const value& v);
nlohmann::json to_json_value(const value& v);
bool equal(const value& a, const value& b);

}  // namespace adapterd::model::jinja
