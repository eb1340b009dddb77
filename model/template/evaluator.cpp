#include "model/template/evaluator.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <limits>

#include <nlohmann/json.hpp>

namespace adapterd::model::jinja {

int64_t to_index(const value& v, const char* what) {
  if (v.kind != value::integer && v.kind != value::boolean)
    throw template_error(std::string(what) + " must be an integer, not " + type_name(v));
  return v.kind == value::boolean ? v.b : v.i;
}

namespace {

int64_t int_of(double d) {
  // 2^63 is exact as a double; anything at or beyond it (or NaN) has no int64.
  if (!(d >= -9223372036854775808.0 && d < 9223372036854775808.0))
    throw template_error("a number beyond 64-bit integers");
  return static_cast<int64_t>(d);
}

// json.dumps as transformers' tojson calls it: ", " and ": " on one line, or indented.
std::string python_json(const nlohmann::ordered_json& j, int indent) {
  if (indent >= 0 || !j.is_structured())
    return j.dump(indent, ' ', false);
  std::string out(1, j.is_array() ? '[' : '{');
  bool first = true;
  for (auto it = j.begin(); it != j.end(); ++it) {
    out += first ? "" : ", ";
    first = false;
    if (j.is_object())
      out += nlohmann::ordered_json(it.key()).dump(-1, ' ', false) + ": ";
    out += python_json(*it, indent);
  }
  return out + (j.is_array() ? ']' : '}');
}

}  // namespace

value subscript(const value& obj, const value& key) {
  if (obj.kind == value::dict) {
    if (key.kind != value::string)
      return value{};
    auto* found = obj.find(key.s);
    return found ? *found : value{};
  }
  if (obj.kind == value::list || obj.kind == value::string) {
    if (key.kind == value::string)
      return value{};
    int64_t n = obj.kind == value::list ? static_cast<int64_t>(obj.l->size())
                                        : static_cast<int64_t>(obj.s.size());
    int64_t k = to_index(key, "an index");
    if (k < 0)
      k += n;
    if (k < 0 || k >= n)
      return value{};
    return obj.kind == value::list ? (*obj.l)[k] : value::of(obj.s.substr(k, 1));
  }
  return value{};
}

value slice(const value& obj, const value& start, const value& stop, const value& step) {
  if (obj.kind != value::list && obj.kind != value::string)
    throw template_error(std::string("cannot slice a ") + type_name(obj));
  int64_t n = obj.kind == value::list ? static_cast<int64_t>(obj.l->size())
                                      : static_cast<int64_t>(obj.s.size());
  int64_t st =
      step.kind == value::undefined || step.kind == value::none ? 1 : to_index(step, "a step");
  if (st == 0)
    throw template_error("slice step cannot be zero");
  auto clamp = [&](const value& v, int64_t dflt) {
    if (v.kind == value::undefined || v.kind == value::none)
      return dflt;
    int64_t k = to_index(v, "a slice bound");
    if (k < 0)
      k += n;
    return st > 0 ? std::clamp<int64_t>(k, 0, n) : std::clamp<int64_t>(k, -1, n - 1);
  };
  int64_t a = clamp(start, st > 0 ? 0 : n - 1), b = clamp(stop, st > 0 ? n : -1);
  auto out = obj.kind == value::list ? value::new_list() : value::of(std::string());
  for (int64_t k = a; st > 0 ? k < b : k > b;) {
    if (obj.kind == value::list)
      out.push((*obj.l)[k]);
    else
      out.s += obj.s[k];
    if (__builtin_add_overflow(k, st, &k))  // a step past the end of the int64 range ends it
      break;
  }
  charge_work(out.s.size());
  return out;
}

std::string strip(const std::string& s, const std::string& chars, bool left, bool right) {
  size_t a = 0, b = s.size();
  auto strippable = [&](char c) {
    return chars.empty() ? std::isspace(static_cast<unsigned char>(c)) != 0
                         : chars.find(c) != std::string::npos;
  };
  while (left && a < b && strippable(s[a]))
    ++a;
  while (right && b > a && strippable(s[b - 1]))
    --b;
  return s.substr(a, b - a);
}

value call_method(const value& obj, const std::string& name, const std::vector<value>& args) {
  auto arg = [&](size_t k) { return k < args.size() ? args[k] : value{}; };
  if (obj.kind == value::string) {
    const auto& s = obj.s;
    std::string chars = arg(0).kind == value::string ? arg(0).s : "";
    if (name == "strip")
      return value::of(strip(s, chars, true, true));
    if (name == "lstrip")
      return value::of(strip(s, chars, true, false));
    if (name == "rstrip")
      return value::of(strip(s, chars, false, true));
    if (name == "upper" || name == "lower") {
      std::string out = s;
      for (auto& c : out)
        c = static_cast<char>(name == "upper" ? std::toupper(static_cast<unsigned char>(c))
                                              : std::tolower(static_cast<unsigned char>(c)));
      return value::of(out);
    }
    if (name == "startswith")
      return value::of(s.rfind(arg(0).s, 0) == 0);
    if (name == "endswith")
      return value::of(s.size() >= arg(0).s.size()
                       && s.compare(s.size() - arg(0).s.size(), arg(0).s.size(), arg(0).s) == 0);
    if (name == "replace") {
      std::string out, from = arg(0).s, to = arg(1).s;
      if (from.empty())
        return obj;
      size_t p = 0, q;
      while ((q = s.find(from, p)) != std::string::npos) {
        out += s.substr(p, q - p) + to;
        p = q + from.size();
      }
      return value::of(out + s.substr(p));
    }
    if (name == "split") {
      auto out = value::new_list();
      if (arg(0).kind == value::string && !arg(0).s.empty()) {
        size_t p = 0, q;
        while ((q = s.find(arg(0).s, p)) != std::string::npos) {
          out.push(value::of(s.substr(p, q - p)));
          p = q + arg(0).s.size();
        }
        out.push(value::of(s.substr(p)));
      } else {
        std::istringstream in(s);
        std::string word;
        while (in >> word)
          out.push(value::of(word));
      }
      return out;
    }
  }
  if (obj.kind == value::dict) {
    if (name == "get") {
      auto* found = obj.find(arg(0).s);
      return found ? *found : (args.size() > 1 ? args[1] : value::null());
    }
    if (name == "items" || name == "keys" || name == "values") {
      auto out = value::new_list();
      for (const auto& [k, v] : *obj.m) {
        if (name == "keys") {
          out.push(value::of(k));
        } else if (name == "values") {
          out.push(v);
        } else {
          auto pair = value::new_list();
          pair.push(value::of(k));
          pair.push(v);
          out.push(pair);
        }
      }
      return out;
    }
  }
  throw template_error(std::string("no method '") + name + "' on a " + type_name(obj));
}

value apply_filter(const std::string& name, const value& v, const std::vector<value>& args) {
  auto arg = [&](size_t k) { return k < args.size() ? args[k] : value{}; };
  if (name == "trim")
    return value::of(strip(str(v), "", true, true));
  if (name == "length" || name == "count") {
    if (v.kind == value::string)
      return value::of(static_cast<int64_t>(v.s.size()));
    if (v.kind == value::list)
      return value::of(static_cast<int64_t>(v.l->size()));
    if (v.kind == value::dict)
      return value::of(static_cast<int64_t>(v.m->size()));
    throw template_error(std::string("a ") + type_name(v) + " has no length");
  }
  if (name == "upper" || name == "lower")
    return call_method(value::of(str(v)), name, {});
  if (name == "string")
    return value::of(str(v));
  if (name == "safe")
    return v;
  if (name == "tojson") {
    int indent = arg(0).kind == value::integer
                     ? static_cast<int>(std::clamp<int64_t>(arg(0).i, -1, 64))
                     : -1;
    return value::of(python_json(to_json_value(v), indent));
  }
  if (name == "int") {
    if (v.kind == value::integer || v.kind == value::boolean)
      return value::of(to_index(v, "an int"));
    if (v.numeric())
      return value::of(int_of(std::trunc(v.as_double())));
    try {
      return value::of(static_cast<int64_t>(std::stoll(str(v))));
    } catch (const std::exception&) {
      return value::of(int64_t{0});
    }
  }
  if (name == "first" || name == "last") {
    if (v.kind == value::list && !v.l->empty())
      return name == "first" ? v.l->front() : v.l->back();
    if (v.kind == value::string && !v.s.empty())
      return value::of(std::string(1, name == "first" ? v.s.front() : v.s.back()));
    return value{};
  }
  if (name == "join") {
    if (v.kind != value::list)
      throw template_error("join needs a list");
    std::string out;
    for (size_t k = 0; k < v.l->size(); ++k)
      out += (k ? str(arg(0)) : "") + str((*v.l)[k]);
    return value::of(out);
  }
  if (name == "default" || name == "d")
    return v.kind == value::undefined || (truthy(arg(1)) && !truthy(v)) ? arg(0) : v;
  if (name == "capitalize" && v.kind == value::string) {
    std::string out = call_method(v, "lower", {}).s;
    if (!out.empty())
      out[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(out[0])));
    return value::of(out);
  }
  if (name == "list") {
    if (v.kind == value::list)
      return v;
    auto out = value::new_list();
    if (v.kind == value::string)
      for (char c : v.s)
        out.push(value::of(std::string(1, c)));
    return out;
  }
  if (name == "reverse" && v.kind == value::list) {
    auto out = value::new_list();
    out.l->assign(v.l->rbegin(), v.l->rend());
    return out;
  }
  if (name == "replace")
    return call_method(value::of(str(v)), "replace", args);
  if (name == "items")
    return call_method(v, "items", {});
  if (name == "selectattr" || name == "rejectattr") {
    // The items whose attribute passes the test (truthiness when none is named); Jinja
    // yields them lazily, templates iterate them or take `| list`.
    if (v.kind != value::list)
      throw template_error(name + " needs a list");
    if (arg(0).kind != value::string)
      throw template_error(name + " needs an attribute name");
    const std::vector<value> test_args(args.size() > 2 ? args.begin() + 2 : args.end(), args.end());
    auto out = value::new_list();
    for (const auto& item : *v.l) {
      const auto* found = item.find(arg(0).s);
      const value attr = found ? *found : value{};
      bool passes = args.size() > 1 ? apply_test(str(arg(1)), attr, test_args) : truthy(attr);
      if (passes == (name == "selectattr"))
        out.push(item);
    }
    return out;
  }
  throw template_error("unsupported filter '" + name + "'");
}

bool apply_test(const std::string& name, const value& v, const std::vector<value>& args) {
  // clang-format off
  if (name == "defined") return v.kind != value::undefined;
  if (name == "undefined") return v.kind == value::undefined;
  if (name == "none") return v.kind == value::none;
  if (name == "string") return v.kind == value::string;
  if (name == "number") return v.kind == value::integer || v.kind == value::number;
  if (name == "integer") return v.kind == value::integer;
  if (name == "float") return v.kind == value::number;
  if (name == "boolean") return v.kind == value::boolean;
  if (name == "true") return v.kind == value::boolean && v.b;
  if (name == "false") return v.kind == value::boolean && !v.b;
  if (name == "mapping") return v.kind == value::dict;
  if (name == "sequence" || name == "iterable") return v.kind == value::list || v.kind == value::string || v.kind == value::dict;
  if (name == "even" || name == "odd") return v.kind == value::integer && (v.i % 2 == 0) == (name == "even");
  if (name == "equalto" || name == "eq" || name == "sameas") return !args.empty() && equal(v, args[0]);
  throw template_error("unsupported test '" + name + "'");
  // clang-format on
}

value binary(const std::string& op, const value& a, const value& b) {
  if (op == "==")
    return value::of(equal(a, b));
  if (op == "!=")
    return value::of(!equal(a, b));
  if (op == "~")
    return value::of(str(a) + str(b));
  if (op == "in" || op == "not in") {
    bool found = false;
    if (b.kind == value::string)
      found = a.kind == value::string && b.s.find(a.s) != std::string::npos;
    else if (b.kind == value::list)
      found = std::any_of(b.l->begin(), b.l->end(), [&](const value& x) { return equal(a, x); });
    else if (b.kind == value::dict)
      found = a.kind == value::string && b.find(a.s) != nullptr;
    else
      throw template_error(std::string("'in' needs a string, list or dict, not ") + type_name(b));
    return value::of(op == "in" ? found : !found);
  }
  if (op == "+" && a.kind == value::string && b.kind == value::string)
    return value::of(a.s + b.s);
  if (op == "+" && a.kind == value::list && b.kind == value::list) {
    auto out = value::new_list();
    charge_work((a.l->size() + b.l->size()) * sizeof(value));
    out.l->insert(out.l->end(), a.l->begin(), a.l->end());
    out.l->insert(out.l->end(), b.l->begin(), b.l->end());
    out.depth = std::max(a.depth, b.depth);
    return out;
  }
  if (op == "*" && a.kind == value::string && b.kind == value::integer) {
    if (b.i > 0)
      charge_work(static_cast<uint64_t>(b.i) > UINT64_MAX / (a.s.size() + 1)
                      ? UINT64_MAX
                      : static_cast<uint64_t>(b.i) * a.s.size());
    std::string out;
    for (int64_t k = 0; k < b.i; ++k)
      out += a.s;
    return value::of(out);
  }
  if (!a.numeric() || !b.numeric())
    throw template_error(std::string("cannot apply '") + op + "' to " + type_name(a) + " and "
                         + type_name(b));
  bool ints = a.kind != value::number && b.kind != value::number;
  auto ai = a.kind == value::boolean ? int64_t{a.b} : a.i,
       bi = b.kind == value::boolean ? int64_t{b.b} : b.i;
  double x = a.as_double(), y = b.as_double();
  if (op == "<")
    return value::of(x < y);
  if (op == ">")
    return value::of(x > y);
  if (op == "<=")
    return value::of(x <= y);
  if (op == ">=")
    return value::of(x >= y);
  int64_t exact = 0;  // Python's integers do not overflow; beyond 64 bits is an error here
  auto checked = [&](bool overflowed) {
    if (overflowed)
      throw template_error(std::string("integer overflow in '") + op + "'");
    return value::of(exact);
  };
  if (op == "+")
    return ints ? checked(__builtin_add_overflow(ai, bi, &exact)) : value::of(x + y);
  if (op == "-")
    return ints ? checked(__builtin_sub_overflow(ai, bi, &exact)) : value::of(x - y);
  if (op == "*")
    return ints ? checked(__builtin_mul_overflow(ai, bi, &exact)) : value::of(x * y);
  if ((op == "/" || op == "//" || op == "%") && y == 0)
    throw template_error("division by zero");
  if (op == "/")
    return value::of(x / y);
  // Integers stay integers, exact as Python's: through doubles, // and ** rounded past 2^53
  // and turned anything past 2^63 into undefined behaviour.
  if (op == "//") {
    if (!ints)
      return value::of(std::floor(x / y));
    if (ai == std::numeric_limits<int64_t>::min() && bi == -1)
      return checked(true);
    const int64_t q = ai / bi;
    return value::of(ai % bi != 0 && (ai < 0) != (bi < 0) ? q - 1 : q);  // toward -infinity
  }
  if (op == "%") {
    if (!ints)
      return value::of(x - y * std::floor(x / y));
    if (bi == -1)
      return value::of(int64_t{0});
    const int64_t r = ai % bi;
    return value::of(r != 0 && (r < 0) != (bi < 0) ? r + bi : r);  // the divisor's sign
  }
  if (op == "**") {
    if (!ints || bi < 0)
      return value::of(std::pow(x, y));
    exact = 1;
    for (int64_t base = ai, left = bi; left > 0; left >>= 1) {  // by squaring
      if ((left & 1) && __builtin_mul_overflow(exact, base, &exact))
        return checked(true);
      if (left > 1 && __builtin_mul_overflow(base, base, &base))
        return checked(true);
    }
    return value::of(exact);
  }
  throw template_error("unknown operator " + op);
}

}  // namespace adapterd::model::jinja
