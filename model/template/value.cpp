#include "model/template/value.hpp"

#include <cmath>
#include <sstream>

#include <nlohmann/json.hpp>

namespace adapterd::model::jinja {

const char* type_name(const value& v) {
  switch (v.kind) {
    case value::undefined: return "undefined";
    case value::none: return "none";
    case value::boolean: return "bool";
    case value::integer: return "int";
    case value::number: return "float";
    case value::string: return "string";
    case value::list: return "list";
    case value::dict: return "dict";
  }
  return "?";
}

bool truthy(const value& v) {
  switch (v.kind) {
    case value::undefined:
    case value::none: return false;
    case value::boolean: return v.b;
    case value::integer: return v.i != 0;
    case value::number: return v.d != 0;
    case value::string: return !v.s.empty();
    case value::list: return !v.l->empty();
    case value::dict: return !v.m->empty();
  }
  return false;
}

std::string python_float(double d) {
  if (std::isfinite(d) && d == std::floor(d) && std::fabs(d) < 1e16) {
    std::ostringstream out;
    out << static_cast<int64_t>(d) << ".0";
    return out.str();
  }
  std::ostringstream out;
  out.precision(17);
  out << d;
  return out.str();
}

std::string str(const value& v) {
  switch (v.kind) {
    case value::undefined: return "";
    case value::none: return "None";
    case value::boolean: return v.b ? "True" : "False";
    case value::integer: return std::to_string(v.i);
    case value::number: return python_float(v.d);
    case value::string: return v.s;
    case value::list:
    case value::dict: return repr(v);
  }
  return "";
}

std::string repr(const value& v) {
  if (v.kind == value::string) {
    std::string out = "'";
    for (char c : v.s) {
      if (c == '\'' || c == '\\')
        out += '\\';
      if (c == '\n') {
        out += "\\n";
        continue;
      }
      out += c;
    }
    return out + "'";
  }
  if (v.kind == value::list) {
    std::string out = "[";
    for (size_t k = 0; k < v.l->size(); ++k)
      out += (k ? ", " : "") + repr((*v.l)[k]);
    return out + "]";
  }
  if (v.kind == value::dict) {
    std::string out = "{";
    bool first = true;
    for (const auto& [k, x] : *v.m) {
      out += (first ? "'" : ", '") + k + "': " + repr(x);
      first = false;
    }
    return out + "}";
  }
  return str(v);
}

nlohmann::ordered_json to_json_value(const value& v) {
  switch (v.kind) {
    case value::undefined:
    case value::none: return nullptr;
    case value::boolean: return v.b;
    case value::integer: return v.i;
    case value::number: return v.d;
    case value::string: return v.s;
    case value::list: {
      auto out = nlohmann::ordered_json::array();
      for (const auto& x : *v.l)
        out.push_back(to_json_value(x));
      return out;
    }
    case value::dict: {
      auto out = nlohmann::ordered_json::object();
      for (const auto& [k, x] : *v.m)
        out[k] = to_json_value(x);
      return out;
    }
  }
  return nullptr;
}

namespace {

value from_json_at(const nlohmann::ordered_json& j, int depth) {
  if (depth > max_value_depth)
    throw template_error("values nest deeper than " + std::to_string(max_value_depth) + " levels");
  switch (j.type()) {
    case nlohmann::ordered_json::value_t::boolean: return value::of(j.get<bool>());
    case nlohmann::ordered_json::value_t::number_integer: return value::of(j.get<int64_t>());
    case nlohmann::ordered_json::value_t::number_unsigned:
      return j.get<uint64_t>() <= INT64_MAX ? value::of(static_cast<int64_t>(j.get<uint64_t>()))
                                            : value::of(j.get<double>());
    case nlohmann::ordered_json::value_t::number_float: return value::of(j.get<double>());
    case nlohmann::ordered_json::value_t::string: return value::of(j.get<std::string>());
    case nlohmann::ordered_json::value_t::array: {
      auto out = value::new_list();
      for (const auto& x : j)
        out.push(from_json_at(x, depth + 1));
      return out;
    }
    case nlohmann::ordered_json::value_t::object: {
      auto out = value::new_dict();
      for (const auto& [k, x] : j.items())
        out.put(k, from_json_at(x, depth + 1));
      return out;
    }
    default: return value::null();
  }
}

}  // namespace

value from_json_value(const nlohmann::ordered_json& j) {
  return from_json_at(j, 0);
}

namespace {
thread_local work_budget* open_budget = nullptr;
}

work_budget::work_budget(uint64_t units) : left_(units), outer_(open_budget) {
  open_budget = this;
}

work_budget::~work_budget() {
  open_budget = outer_;
}

void charge_work(uint64_t units) {
  auto* budget = open_budget;
  if (!budget)
    return;
  if (units > budget->left_)
    throw template_error(
        "the template does more work than a render may (a runaway loop or an "
        "ever-growing value)");
  budget->left_ -= units;
}

value detached(const value& v) {
  if (v.kind == value::list) {
    auto out = value::new_list();
    out.l->reserve(v.l->size());
    for (const auto& x : *v.l)
      out.push(detached(x));
    return out;
  }
  if (v.kind == value::dict) {
    auto out = value::new_dict();
    for (const auto& [k, x] : *v.m)
      out.put(k, detached(x));
    return out;
  }
  return v;
}

bool equal(const value& a, const value& b) {
  if (a.numeric() && b.numeric())
    return a.as_double() == b.as_double();
  if (a.kind != b.kind)
    return (a.kind == value::none || a.kind == value::undefined)
           && (b.kind == value::none || b.kind == value::undefined) && a.kind == b.kind;
  switch (a.kind) {
    case value::string: return a.s == b.s;
    case value::list:
      if (a.l->size() != b.l->size())
        return false;
      for (size_t k = 0; k < a.l->size(); ++k)
        if (!equal((*a.l)[k], (*b.l)[k]))
          return false;
      return true;
    case value::dict: return repr(a) == repr(b);
    default: return true;  // none == none, undefined == undefined
  }
}

}  // namespace adapterd::model::jinja
