// Not split yet (1269 lines): a Jinja lexer, parser and evaluator in one file. Issue 15
// gives them model/template/ with one file each and caches the parsed template; the
// hardening change only bounded its nesting.
#include "model/template/chat_template.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <stdexcept>

#include <nlohmann/json.hpp>

namespace adapterd::model {

namespace {

// --- values -------------------------------------------------------------------------

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

  static value of(bool x) { value v; v.kind = boolean; v.b = x; return v; }
  static value of(int64_t x) { value v; v.kind = integer; v.i = x; return v; }
  static value of(double x) { value v; v.kind = number; v.d = x; return v; }
  static value of(std::string x) { value v; v.kind = string; v.s = std::move(x); return v; }
  static value null() { value v; v.kind = none; return v; }
  static value new_list() { value v; v.kind = list; v.l = std::make_shared<std::vector<value>>(); return v; }
  static value new_dict() { value v; v.kind = dict; v.m = std::make_shared<std::vector<std::pair<std::string, value>>>(); return v; }

  bool numeric() const { return kind == integer || kind == number || kind == boolean; }
  double as_double() const { return kind == number ? d : static_cast<double>(kind == boolean ? b : i); }
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

std::string repr(const value& v);

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

nlohmann::json to_json_value(const value& v) {
  switch (v.kind) {
    case value::undefined:
    case value::none: return nullptr;
    case value::boolean: return v.b;
    case value::integer: return v.i;
    case value::number: return v.d;
    case value::string: return v.s;
    case value::list: {
      auto out = nlohmann::json::array();
      for (const auto& x : *v.l)
        out.push_back(to_json_value(x));
      return out;
    }
    case value::dict: {
      auto out = nlohmann::json::object();
      for (const auto& [k, x] : *v.m)
        out[k] = to_json_value(x);
      return out;
    }
  }
  return nullptr;
}

bool equal(const value& a, const value& b) {
  if (a.numeric() && b.numeric())
    return a.as_double() == b.as_double();
  if (a.kind != b.kind)
    return (a.kind == value::none || a.kind == value::undefined) && (b.kind == value::none || b.kind == value::undefined)
           && a.kind == b.kind;
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

// --- expressions --------------------------------------------------------------------

struct token {
  enum kind_t { name, number, string, op, end } kind = end;
  std::string text;
};

std::vector<token> lex(const std::string& src) {
  std::vector<token> out;
  size_t p = 0;
  static const char* ops[] = {"//", "==", "!=", "<=", ">=", "**", "(", ")", "[", "]", "{", "}", ",", ".",
                              ":", "|", "~", "+", "-", "*", "/", "%", "<", ">", "="};
  while (p < src.size()) {
    char c = src[p];
    if (std::isspace(static_cast<unsigned char>(c))) {
      ++p;
    } else if (std::isalpha(static_cast<unsigned char>(c)) || c == '_') {
      size_t q = p;
      while (q < src.size() && (std::isalnum(static_cast<unsigned char>(src[q])) || src[q] == '_'))
        ++q;
      out.push_back({token::name, src.substr(p, q - p)});
      p = q;
    } else if (std::isdigit(static_cast<unsigned char>(c))) {
      size_t q = p;
      while (q < src.size() && (std::isdigit(static_cast<unsigned char>(src[q])) || src[q] == '.'
                                || src[q] == '_'))
        ++q;
      out.push_back({token::number, src.substr(p, q - p)});
      p = q;
    } else if (c == '\'' || c == '"') {
      std::string s;
      size_t q = p + 1;
      for (; q < src.size() && src[q] != c; ++q) {
        if (src[q] == '\\' && q + 1 < src.size()) {
          char e = src[++q];
          s += e == 'n' ? '\n' : e == 't' ? '\t' : e == 'r' ? '\r' : e;
        } else {
          s += src[q];
        }
      }
      if (q >= src.size())
        throw template_error("unterminated string literal");
      out.push_back({token::string, s});
      p = q + 1;
    } else {
      bool matched = false;
      for (const char* o : ops) {
        size_t n = std::char_traits<char>::length(o);
        if (src.compare(p, n, o) == 0) {
          out.push_back({token::op, o});
          p += n;
          matched = true;
          break;
        }
      }
      if (!matched)
        throw template_error(std::string("unexpected character '") + c + "'");
    }
  }
  out.push_back({token::end, ""});
  return out;
}

struct scope_stack;
struct expr;
using expr_ptr = std::shared_ptr<const expr>;

struct expr {
  virtual ~expr() = default;
  virtual value eval(scope_stack& s) const = 0;
};

struct scope_stack {
  std::vector<std::map<std::string, value>> frames;
  value lookup(const std::string& name) const {
    for (auto it = frames.rbegin(); it != frames.rend(); ++it) {
      auto found = it->find(name);
      if (found != it->end())
        return found->second;
    }
    return value{};
  }
  void set(const std::string& name, value v) { frames.back()[name] = std::move(v); }
};

using eval_fn = std::function<value(scope_stack&)>;

struct lambda_expr final : expr {
  eval_fn fn;
  explicit lambda_expr(eval_fn f) : fn(std::move(f)) {}
  value eval(scope_stack& s) const override { return fn(s); }
};

expr_ptr make(eval_fn f) { return std::make_shared<lambda_expr>(std::move(f)); }

struct call_args {
  std::vector<expr_ptr> positional;
  std::vector<std::pair<std::string, expr_ptr>> named;
};

int64_t to_index(const value& v, const char* what) {
  if (v.kind != value::integer && v.kind != value::boolean)
    throw template_error(std::string(what) + " must be an integer, not " + type_name(v));
  return v.kind == value::boolean ? v.b : v.i;
}

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
    int64_t n = obj.kind == value::list ? static_cast<int64_t>(obj.l->size()) : static_cast<int64_t>(obj.s.size());
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
  int64_t n = obj.kind == value::list ? static_cast<int64_t>(obj.l->size()) : static_cast<int64_t>(obj.s.size());
  int64_t st = step.kind == value::undefined || step.kind == value::none ? 1 : to_index(step, "a step");
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
  for (int64_t k = a; st > 0 ? k < b : k > b; k += st) {
    if (obj.kind == value::list)
      out.l->push_back((*obj.l)[k]);
    else
      out.s += obj.s[k];
  }
  return out;
}

std::string strip(const std::string& s, const std::string& chars, bool left, bool right) {
  size_t a = 0, b = s.size();
  auto strippable = [&](char c) {
    return chars.empty() ? std::isspace(static_cast<unsigned char>(c)) != 0 : chars.find(c) != std::string::npos;
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
    if (name == "strip") return value::of(strip(s, chars, true, true));
    if (name == "lstrip") return value::of(strip(s, chars, true, false));
    if (name == "rstrip") return value::of(strip(s, chars, false, true));
    if (name == "upper" || name == "lower") {
      std::string out = s;
      for (auto& c : out)
        c = static_cast<char>(name == "upper" ? std::toupper(static_cast<unsigned char>(c)) : std::tolower(static_cast<unsigned char>(c)));
      return value::of(out);
    }
    if (name == "startswith") return value::of(s.rfind(arg(0).s, 0) == 0);
    if (name == "endswith")
      return value::of(s.size() >= arg(0).s.size() && s.compare(s.size() - arg(0).s.size(), arg(0).s.size(), arg(0).s) == 0);
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
          out.l->push_back(value::of(s.substr(p, q - p)));
          p = q + arg(0).s.size();
        }
        out.l->push_back(value::of(s.substr(p)));
      } else {
        std::istringstream in(s);
        std::string word;
        while (in >> word)
          out.l->push_back(value::of(word));
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
          out.l->push_back(value::of(k));
        } else if (name == "values") {
          out.l->push_back(v);
        } else {
          auto pair = value::new_list();
          pair.l->push_back(value::of(k));
          pair.l->push_back(v);
          out.l->push_back(pair);
        }
      }
      return out;
    }
  }
  throw template_error(std::string("no method '") + name + "' on a " + type_name(obj));
}

value apply_filter(const std::string& name, const value& v, const std::vector<value>& args) {
  auto arg = [&](size_t k) { return k < args.size() ? args[k] : value{}; };
  if (name == "trim") return value::of(strip(str(v), "", true, true));
  if (name == "length" || name == "count") {
    if (v.kind == value::string) return value::of(static_cast<int64_t>(v.s.size()));
    if (v.kind == value::list) return value::of(static_cast<int64_t>(v.l->size()));
    if (v.kind == value::dict) return value::of(static_cast<int64_t>(v.m->size()));
    throw template_error(std::string("a ") + type_name(v) + " has no length");
  }
  if (name == "upper" || name == "lower") return call_method(value::of(str(v)), name, {});
  if (name == "string") return value::of(str(v));
  if (name == "safe") return v;
  if (name == "tojson") {
    int indent = arg(0).kind == value::integer ? static_cast<int>(arg(0).i) : -1;
    // Python's json.dumps separators, as transformers' tojson uses them.
    auto text = to_json_value(v).dump(indent, ' ', false);
    return value::of(text);
  }
  if (name == "int") {
    if (v.numeric()) return value::of(static_cast<int64_t>(v.as_double()));
    try {
      return value::of(static_cast<int64_t>(std::stoll(str(v))));
    } catch (const std::exception&) {
      return value::of(int64_t{0});
    }
  }
  if (name == "first" || name == "last") {
    if (v.kind == value::list && !v.l->empty()) return name == "first" ? v.l->front() : v.l->back();
    if (v.kind == value::string && !v.s.empty()) return value::of(std::string(1, name == "first" ? v.s.front() : v.s.back()));
    return value{};
  }
  if (name == "join") {
    if (v.kind != value::list) throw template_error("join needs a list");
    std::string out;
    for (size_t k = 0; k < v.l->size(); ++k)
      out += (k ? str(arg(0)) : "") + str((*v.l)[k]);
    return value::of(out);
  }
  if (name == "default" || name == "d")
    return v.kind == value::undefined || (truthy(arg(1)) && !truthy(v)) ? arg(0) : v;
  if (name == "capitalize" && v.kind == value::string) {
    std::string out = call_method(v, "lower", {}).s;
    if (!out.empty()) out[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(out[0])));
    return value::of(out);
  }
  if (name == "list") {
    if (v.kind == value::list) return v;
    auto out = value::new_list();
    if (v.kind == value::string)
      for (char c : v.s) out.l->push_back(value::of(std::string(1, c)));
    return out;
  }
  if (name == "reverse" && v.kind == value::list) {
    auto out = value::new_list();
    out.l->assign(v.l->rbegin(), v.l->rend());
    return out;
  }
  if (name == "replace") return call_method(value::of(str(v)), "replace", args);
  if (name == "items") return call_method(v, "items", {});
  throw template_error("unsupported filter '" + name + "'");
}

bool apply_test(const std::string& name, const value& v, const std::vector<value>& args) {
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
}

value binary(const std::string& op, const value& a, const value& b) {
  if (op == "==") return value::of(equal(a, b));
  if (op == "!=") return value::of(!equal(a, b));
  if (op == "~") return value::of(str(a) + str(b));
  if (op == "in" || op == "not in") {
    bool found = false;
    if (b.kind == value::string) found = a.kind == value::string && b.s.find(a.s) != std::string::npos;
    else if (b.kind == value::list) found = std::any_of(b.l->begin(), b.l->end(), [&](const value& x) { return equal(a, x); });
    else if (b.kind == value::dict) found = a.kind == value::string && b.find(a.s) != nullptr;
    else throw template_error(std::string("'in' needs a string, list or dict, not ") + type_name(b));
    return value::of(op == "in" ? found : !found);
  }
  if (op == "+" && a.kind == value::string && b.kind == value::string) return value::of(a.s + b.s);
  if (op == "+" && a.kind == value::list && b.kind == value::list) {
    auto out = value::new_list();
    out.l->insert(out.l->end(), a.l->begin(), a.l->end());
    out.l->insert(out.l->end(), b.l->begin(), b.l->end());
    return out;
  }
  if (op == "*" && a.kind == value::string && b.kind == value::integer) {
    std::string out;
    for (int64_t k = 0; k < b.i; ++k) out += a.s;
    return value::of(out);
  }
  if (!a.numeric() || !b.numeric())
    throw template_error(std::string("cannot apply '") + op + "' to " + type_name(a) + " and " + type_name(b));
  bool ints = a.kind != value::number && b.kind != value::number;
  auto ai = a.kind == value::boolean ? int64_t{a.b} : a.i, bi = b.kind == value::boolean ? int64_t{b.b} : b.i;
  double x = a.as_double(), y = b.as_double();
  if (op == "<") return value::of(x < y);
  if (op == ">") return value::of(x > y);
  if (op == "<=") return value::of(x <= y);
  if (op == ">=") return value::of(x >= y);
  if (op == "+") return ints ? value::of(ai + bi) : value::of(x + y);
  if (op == "-") return ints ? value::of(ai - bi) : value::of(x - y);
  if (op == "*") return ints ? value::of(ai * bi) : value::of(x * y);
  if ((op == "/" || op == "//" || op == "%") && y == 0) throw template_error("division by zero");
  if (op == "/") return value::of(x / y);
  if (op == "//") return ints ? value::of(static_cast<int64_t>(std::floor(x / y))) : value::of(std::floor(x / y));
  if (op == "%") {
    if (ints) return value::of(((ai % bi) + bi) % bi);  // Python's sign rule
    return value::of(x - y * std::floor(x / y));
  }
  if (op == "**") return ints && bi >= 0 ? value::of(static_cast<int64_t>(std::pow(x, y))) : value::of(std::pow(x, y));
  throw template_error("unknown operator " + op);
}

// Parsing and evaluation both recurse once per nesting level: a bound on the levels keeps
// a hostile template (the chat-template fuzzer found "[[[[..." and "not not not ...")
// from overflowing the stack.
constexpr int max_nesting = 128;

struct nesting_guard {
  explicit nesting_guard(int& depth) : depth_(depth) {
    if (++depth_ > max_nesting)
      throw template_error("the template nests deeper than " + std::to_string(max_nesting) + " levels");
  }
  ~nesting_guard() { --depth_; }
  nesting_guard(const nesting_guard&) = delete;
  nesting_guard& operator=(const nesting_guard&) = delete;

private:
  int& depth_;
};

class expr_parser {
public:
  explicit expr_parser(std::vector<token> toks) : t_(std::move(toks)) {}

  expr_ptr parse_all() {
    auto e = parse();
    expect_end();
    return e;
  }
  expr_ptr parse() { return ternary(); }
  /// A for loop's iterable: no conditional expression, so that `if` starts its filter.
  expr_ptr parse_iterable() { return or_expr(); }
  void expect_end() {
    if (t_[p_].kind != token::end)
      throw template_error("unexpected '" + t_[p_].text + "'");
  }
  bool accept(const std::string& text) {
    if ((t_[p_].kind == token::op || t_[p_].kind == token::name) && t_[p_].text == text) {
      ++p_;
      return true;
    }
    return false;
  }
  void expect(const std::string& text) {
    if (!accept(text))
      throw template_error("expected '" + text + "' but found '" + t_[p_].text + "'");
  }
  std::string name() {
    if (t_[p_].kind != token::name)
      throw template_error("expected a name but found '" + t_[p_].text + "'");
    return t_[p_++].text;
  }
  bool at_end() const { return t_[p_].kind == token::end; }

private:
  expr_ptr ternary() {
    nesting_guard guard(depth_);
    auto then = or_expr();
    if (accept("if")) {
      auto cond = or_expr();
      expr_ptr otherwise = accept("else") ? ternary() : nullptr;
      return make([=](scope_stack& s) {
        if (truthy(cond->eval(s)))
          return then->eval(s);
        return otherwise ? otherwise->eval(s) : value{};
      });
    }
    return then;
  }
  expr_ptr or_expr() {
    auto left = and_expr();
    while (accept("or")) {
      auto right = and_expr();
      left = make([=](scope_stack& s) {
        auto a = left->eval(s);
        return truthy(a) ? a : right->eval(s);
      });
    }
    return left;
  }
  expr_ptr and_expr() {
    auto left = not_expr();
    while (accept("and")) {
      auto right = not_expr();
      left = make([=](scope_stack& s) {
        auto a = left->eval(s);
        return !truthy(a) ? a : right->eval(s);
      });
    }
    return left;
  }
  expr_ptr not_expr() {
    nesting_guard guard(depth_);
    if (accept("not")) {
      auto inner = not_expr();
      return make([=](scope_stack& s) { return value::of(!truthy(inner->eval(s))); });
    }
    return comparison();
  }
  expr_ptr comparison() {
    auto left = concat();
    for (;;) {
      std::string op;
      if (t_[p_].kind == token::op && (t_[p_].text == "==" || t_[p_].text == "!=" || t_[p_].text == "<"
                                       || t_[p_].text == ">" || t_[p_].text == "<=" || t_[p_].text == ">=")) {
        op = t_[p_++].text;
      } else if (accept("in")) {
        op = "in";
      } else if (t_[p_].kind == token::name && t_[p_].text == "not" && t_[p_ + 1].text == "in") {
        p_ += 2;
        op = "not in";
      } else if (accept("is")) {
        bool negate = accept("not");
        auto test = name();
        std::vector<expr_ptr> args;
        if (accept("("))
          args = call_arguments().positional;
        else if (t_[p_].kind == token::number || t_[p_].kind == token::string || (t_[p_].kind == token::name && t_[p_].text != "and" && t_[p_].text != "or" && t_[p_].text != "else"))
          args.push_back(postfix());
        left = make([=](scope_stack& s) {
          std::vector<value> vs;
          for (const auto& a : args)
            vs.push_back(a->eval(s));
          return value::of(apply_test(test, left->eval(s), vs) != negate);
        });
        continue;
      } else {
        return left;
      }
      auto right = concat();
      left = make([=](scope_stack& s) { return binary(op, left->eval(s), right->eval(s)); });
    }
  }
  expr_ptr concat() { return binary_level({"~"}, [this] { return additive(); }); }
  expr_ptr additive() { return binary_level({"+", "-"}, [this] { return multiplicative(); }); }
  expr_ptr multiplicative() { return binary_level({"*", "/", "//", "%"}, [this] { return unary(); }); }

  template <class Next>
  expr_ptr binary_level(std::initializer_list<const char*> ops, Next next) {
    auto left = next();
    for (;;) {
      std::string op;
      for (const char* o : ops)
        if (t_[p_].kind == token::op && t_[p_].text == o)
          op = o;
      if (op.empty())
        return left;
      ++p_;
      auto right = next();
      left = make([=](scope_stack& s) { return binary(op, left->eval(s), right->eval(s)); });
    }
  }
  expr_ptr unary() {
    nesting_guard guard(depth_);
    if (accept("-")) {
      auto inner = unary();
      return make([=](scope_stack& s) { return binary("-", value::of(int64_t{0}), inner->eval(s)); });
    }
    if (accept("+"))
      return unary();
    return filtered();
  }
  expr_ptr filtered() {
    auto left = power();
    while (accept("|")) {
      auto filter = name();
      std::vector<expr_ptr> args;
      if (accept("("))
        args = call_arguments().positional;
      left = make([=](scope_stack& s) {
        std::vector<value> vs;
        for (const auto& a : args)
          vs.push_back(a->eval(s));
        return apply_filter(filter, left->eval(s), vs);
      });
    }
    return left;
  }
  expr_ptr power() {
    auto left = postfix();
    if (accept("**")) {
      auto right = unary();
      return make([=](scope_stack& s) { return binary("**", left->eval(s), right->eval(s)); });
    }
    return left;
  }
  call_args call_arguments() {  // after '('
    call_args out;
    while (!accept(")")) {
      if (t_[p_].kind == token::name && t_[p_ + 1].kind == token::op && t_[p_ + 1].text == "=") {
        auto key = name();
        expect("=");
        out.named.emplace_back(key, parse());
      } else {
        out.positional.push_back(parse());
      }
      if (!accept(",")) {
        expect(")");
        break;
      }
    }
    return out;
  }
  expr_ptr postfix() {
    auto base = primary();
    auto base_name = callee_name_;  // a global's name, if a call follows it directly
    for (;;) {
      if (accept("(")) {
        auto args = call_arguments();
        base = call(base_name, args);
        base_name.clear();
        continue;
      }
      base_name.clear();
      if (accept(".")) {
        auto attr = name();
        if (accept("(")) {
          auto args = call_arguments();
          base = make([=](scope_stack& s) {
            std::vector<value> vs;
            for (const auto& a : args.positional)
              vs.push_back(a->eval(s));
            return call_method(base->eval(s), attr, vs);
          });
        } else {
          base = make([=](scope_stack& s) { return subscript(base->eval(s), value::of(attr)); });
        }
      } else if (accept("[")) {
        expr_ptr start, stop, step;
        bool sliced = false;
        if (!(t_[p_].kind == token::op && t_[p_].text == ":"))
          start = parse();
        if (accept(":")) {
          sliced = true;
          if (!(t_[p_].kind == token::op && (t_[p_].text == "]" || t_[p_].text == ":")))
            stop = parse();
          if (accept(":") && !(t_[p_].kind == token::op && t_[p_].text == "]"))
            step = parse();
        }
        expect("]");
        if (sliced) {
          base = make([=](scope_stack& s) {
            auto ev = [&](const expr_ptr& e) { return e ? e->eval(s) : value{}; };
            return slice(base->eval(s), ev(start), ev(stop), ev(step));
          });
        } else {
          base = make([=](scope_stack& s) { return subscript(base->eval(s), start->eval(s)); });
        }
      } else {
        return base;
      }
    }
  }
  static expr_ptr call(const std::string& fname, const call_args& args) {
    // Only the globals templates call: raise_exception, namespace, range.
    if (fname == "raise_exception") {
      return make([args](scope_stack& s) -> value {
        throw template_error("the template refused: " + (args.positional.empty() ? std::string() : str(args.positional[0]->eval(s))));
      });
    }
    if (fname == "namespace") {
      return make([args](scope_stack& s) {
        auto ns = value::new_dict();
        for (const auto& [k, e] : args.named)
          ns.put(k, e->eval(s));
        return ns;
      });
    }
    if (fname == "range") {
      return make([args](scope_stack& s) {
        std::vector<int64_t> a;
        for (const auto& e : args.positional)
          a.push_back(to_index(e->eval(s), "a range bound"));
        int64_t from = a.size() > 1 ? a[0] : 0, to = a.size() > 1 ? a[1] : (a.empty() ? 0 : a[0]);
        int64_t step = a.size() > 2 ? a[2] : 1;
        if (step == 0)
          throw template_error("range step cannot be zero");
        auto out = value::new_list();
        for (int64_t k = from; step > 0 ? k < to : k > to; k += step)
          out.l->push_back(value::of(k));
        return out;
      });
    }
    throw template_error("unsupported function" + (fname.empty() ? std::string() : " '" + fname + "'"));
  }
  expr_ptr primary() {
    const auto& t = t_[p_];
    callee_name_.clear();
    if (t.kind == token::number) {
      ++p_;
      std::string digits;
      for (char c : t.text)
        if (c != '_')
          digits += c;
      if (digits.find('.') != std::string::npos) {
        double d = std::stod(digits);
        return make([d](scope_stack&) { return value::of(d); });
      }
      int64_t n = std::stoll(digits);
      return make([n](scope_stack&) { return value::of(n); });
    }
    if (t.kind == token::string) {
      std::string s = t.text;
      ++p_;
      while (t_[p_].kind == token::string)  // adjacent literals join, as in Python
        s += t_[p_++].text;
      return make([s](scope_stack&) { return value::of(s); });
    }
    if (t.kind == token::name) {
      auto n = t.text;
      ++p_;
      if (n == "true" || n == "True") return make([](scope_stack&) { return value::of(true); });
      if (n == "false" || n == "False") return make([](scope_stack&) { return value::of(false); });
      if (n == "none" || n == "None") return make([](scope_stack&) { return value::null(); });
      callee_name_ = n;
      return make([n](scope_stack& s) { return s.lookup(n); });
    }
    if (accept("(")) {
      auto inner = parse();
      if (accept(",")) {  // a tuple: a list will do
        std::vector<expr_ptr> items{inner};
        while (!accept(")")) {
          items.push_back(parse());
          if (!accept(",")) {
            expect(")");
            break;
          }
        }
        return list_of(items);
      }
      expect(")");
      return inner;
    }
    if (accept("[")) {
      std::vector<expr_ptr> items;
      while (!accept("]")) {
        items.push_back(parse());
        if (!accept(",")) {
          expect("]");
          break;
        }
      }
      return list_of(items);
    }
    if (accept("{")) {
      std::vector<std::pair<expr_ptr, expr_ptr>> items;
      while (!accept("}")) {
        auto k = parse();
        expect(":");
        items.emplace_back(k, parse());
        if (!accept(",")) {
          expect("}");
          break;
        }
      }
      return make([items](scope_stack& s) {
        auto out = value::new_dict();
        for (const auto& [k, v] : items)
          out.put(str(k->eval(s)), v->eval(s));
        return out;
      });
    }
    throw template_error("unexpected '" + t.text + "'");
  }
  static expr_ptr list_of(std::vector<expr_ptr> items) {
    return make([items](scope_stack& s) {
      auto out = value::new_list();
      for (const auto& e : items)
        out.l->push_back(e->eval(s));
      return out;
    });
  }

  std::vector<token> t_;
  size_t p_ = 0;
  int depth_ = 0;
  std::string callee_name_;  // the name just parsed, if a call follows it
};

// --- statements ---------------------------------------------------------------------

struct loop_signal {
  enum kind_t { none, brk, cont } kind = none;
};

struct node {
  virtual ~node() = default;
  virtual void run(scope_stack& s, std::string& out, loop_signal& sig) const = 0;
};
using node_ptr = std::shared_ptr<const node>;
using body = std::vector<node_ptr>;

void run_body(const body& b, scope_stack& s, std::string& out, loop_signal& sig) {
  for (const auto& n : b) {
    n->run(s, out, sig);
    if (sig.kind != loop_signal::none)
      return;
  }
}

struct text_node final : node {
  std::string text;
  void run(scope_stack&, std::string& out, loop_signal&) const override { out += text; }
};
struct output_node final : node {
  expr_ptr e;
  void run(scope_stack& s, std::string& out, loop_signal&) const override { out += str(e->eval(s)); }
};
struct if_node final : node {
  std::vector<std::pair<expr_ptr, body>> branches;  // a null condition: else
  void run(scope_stack& s, std::string& out, loop_signal& sig) const override {
    for (const auto& [cond, b] : branches)
      if (!cond || truthy(cond->eval(s)))
        return run_body(b, s, out, sig);
  }
};
struct for_node final : node {
  std::vector<std::string> vars;
  expr_ptr iterable, filter;
  body loop_body, else_body;
  void run(scope_stack& s, std::string& out, loop_signal& sig) const override {
    auto seq = iterable->eval(s);
    std::vector<value> items;
    if (seq.kind == value::list) {
      items = *seq.l;
    } else if (seq.kind == value::dict) {
      for (const auto& [k, v] : *seq.m)
        items.push_back(value::of(k));
    } else if (seq.kind == value::string) {
      for (char c : seq.s)
        items.push_back(value::of(std::string(1, c)));
    } else if (seq.kind != value::undefined && seq.kind != value::none) {
      throw template_error(std::string("cannot loop over a ") + type_name(seq));
    }
    auto bind = [&](const value& item) {
      if (vars.size() == 1) {
        s.set(vars[0], item);
        return;
      }
      if (item.kind != value::list || item.l->size() != vars.size())
        throw template_error("cannot unpack a loop item into " + std::to_string(vars.size()) + " names");
      for (size_t k = 0; k < vars.size(); ++k)
        s.set(vars[k], (*item.l)[k]);
    };
    if (filter) {
      std::vector<value> kept;
      for (const auto& item : items) {
        s.frames.emplace_back();
        bind(item);
        if (truthy(filter->eval(s)))
          kept.push_back(item);
        s.frames.pop_back();
      }
      items = std::move(kept);
    }
    auto n = static_cast<int64_t>(items.size());
    for (int64_t k = 0; k < n; ++k) {
      s.frames.emplace_back();
      auto loop = value::new_dict();
      loop.put("index", value::of(k + 1));
      loop.put("index0", value::of(k));
      loop.put("revindex", value::of(n - k));
      loop.put("revindex0", value::of(n - k - 1));
      loop.put("first", value::of(k == 0));
      loop.put("last", value::of(k == n - 1));
      loop.put("length", value::of(n));
      loop.put("previtem", k > 0 ? items[k - 1] : value{});
      loop.put("nextitem", k + 1 < n ? items[k + 1] : value{});
      s.set("loop", loop);
      bind(items[k]);
      loop_signal inner;
      run_body(loop_body, s, out, inner);
      s.frames.pop_back();
      if (inner.kind == loop_signal::brk)
        break;
    }
    if (n == 0)
      run_body(else_body, s, out, sig);
  }
};
struct set_node final : node {
  std::string target, attr;
  expr_ptr e;
  void run(scope_stack& s, std::string&, loop_signal&) const override {
    auto v = e->eval(s);
    if (attr.empty())
      return s.set(target, v);
    auto ns = s.lookup(target);
    if (ns.kind != value::dict)
      throw template_error("cannot set an attribute of " + target + ", which is not a namespace");
    ns.put(attr, v);  // shared: the namespace object itself changes
  }
};
struct signal_node final : node {
  loop_signal::kind_t kind;
  explicit signal_node(loop_signal::kind_t k) : kind(k) {}
  void run(scope_stack&, std::string&, loop_signal& sig) const override { sig.kind = kind; }
};

struct piece {
  enum kind_t { text, output, statement } kind;
  std::string content;
};

// Splits the source into text, {{ }} and {% %} pieces, applying whitespace control and
// the trim_blocks / lstrip_blocks settings transformers renders with.
std::vector<piece> split_source(const std::string& src) {
  std::vector<piece> out;
  size_t p = 0;
  bool trim_next_newline = false, strip_next = false;
  while (p <= src.size()) {
    size_t open = src.find('{', p);
    while (open != std::string::npos && open + 1 < src.size() && src[open + 1] != '{' && src[open + 1] != '%'
           && src[open + 1] != '#')
      open = src.find('{', open + 1);
    if (open + 1 >= src.size())
      open = std::string::npos;
    std::string text = src.substr(p, open == std::string::npos ? std::string::npos : open - p);
    if (strip_next) {
      text = strip(text, "", true, false);
    } else if (trim_next_newline && !text.empty() && text[0] == '\n') {
      text.erase(0, 1);
    } else if (trim_next_newline && text.rfind("\r\n", 0) == 0) {
      text.erase(0, 2);
    }
    strip_next = trim_next_newline = false;
    if (open == std::string::npos) {
      out.push_back({piece::text, text});
      break;
    }
    char kind = src[open + 1];
    bool strip_before = open + 2 < src.size() && src[open + 2] == '-';
    bool keep_before = open + 2 < src.size() && src[open + 2] == '+';
    if (strip_before) {
      text = strip(text, "", false, true);
    } else if (kind != '{' && !keep_before) {
      // lstrip_blocks: spaces and tabs from the start of the line to a block tag.
      size_t line = text.find_last_of('\n');
      size_t from = line == std::string::npos ? 0 : line + 1;
      if (text.find_first_not_of(" \t", from) == std::string::npos && (line != std::string::npos || out.empty()))
        text.erase(from);
    }
    out.push_back({piece::text, text});
    std::string close = kind == '{' ? "}}" : kind == '%' ? "%}" : "#}";
    size_t start = open + 2 + (strip_before || keep_before ? 1 : 0);
    size_t end = src.find(close, start);
    if (end == std::string::npos)
      throw template_error(std::string("unclosed '{") + kind + "'");
    bool strip_after = end > start && src[end - 1] == '-';
    bool keep_after = end > start && src[end - 1] == '+';
    std::string inner = src.substr(start, end - start - (strip_after || keep_after ? 1 : 0));
    if (kind == '{')
      out.push_back({piece::output, inner});
    else if (kind == '%')
      out.push_back({piece::statement, inner});
    strip_next = strip_after;
    trim_next_newline = kind != '{' && !strip_after && !keep_after;
    p = end + 2;
  }
  return out;
}

class template_parser {
public:
  explicit template_parser(std::vector<piece> pieces) : pieces_(std::move(pieces)) {}

  body parse_top() {
    std::string end;
    auto b = parse_body({}, end);
    if (!end.empty())
      throw template_error("unexpected {% " + end + " %}");
    return b;
  }

private:
  // Parses pieces until a statement whose keyword is in `stops`; leaves that statement's
  // parser in `stop_parser` and its keyword in `stopped`.
  body parse_body(const std::vector<std::string>& stops, std::string& stopped) {
    nesting_guard guard(depth_);
    body out;
    while (i_ < pieces_.size()) {
      const auto& pc = pieces_[i_++];
      if (pc.kind == piece::text) {
        if (!pc.content.empty()) {
          auto n = std::make_shared<text_node>();
          n->text = pc.content;
          out.push_back(n);
        }
        continue;
      }
      if (pc.kind == piece::output) {
        auto n = std::make_shared<output_node>();
        n->e = expr_parser(lex(pc.content)).parse_all();
        out.push_back(n);
        continue;
      }
      auto toks = lex(pc.content);
      if (toks.empty() || toks[0].kind != token::name)
        throw template_error("a statement without a keyword");
      auto keyword = toks[0].text;
      if (std::find(stops.begin(), stops.end(), keyword) != stops.end()) {
        stopped = keyword;
        stop_parser_ = std::make_unique<expr_parser>(toks);
        stop_parser_->accept(keyword);
        return out;
      }
      expr_parser ep(toks);
      ep.accept(keyword);
      if (keyword == "if") {
        out.push_back(parse_if(ep));
      } else if (keyword == "for") {
        out.push_back(parse_for(ep));
      } else if (keyword == "set") {
        auto n = std::make_shared<set_node>();
        n->target = ep.name();
        if (ep.accept("."))
          n->attr = ep.name();
        if (!ep.accept("="))
          throw template_error("block {% set %} is not supported");
        n->e = ep.parse();
        ep.expect_end();
        out.push_back(n);
      } else if (keyword == "break" || keyword == "continue") {
        out.push_back(std::make_shared<signal_node>(keyword == "break" ? loop_signal::brk : loop_signal::cont));
      } else {
        throw template_error("unsupported statement {% " + keyword + " %}");
      }
    }
    if (!stops.empty())
      throw template_error("missing {% " + stops.back() + " %}");
    return out;
  }

  node_ptr parse_if(expr_parser& ep) {
    auto n = std::make_shared<if_node>();
    auto cond = ep.parse();
    ep.expect_end();
    for (;;) {
      std::string stopped;
      auto b = parse_body({"elif", "else", "endif"}, stopped);
      n->branches.emplace_back(cond, std::move(b));
      if (stopped == "endif")
        return n;
      if (stopped == "else") {
        std::string end;
        auto rest = parse_body({"endif"}, end);
        n->branches.emplace_back(nullptr, std::move(rest));
        return n;
      }
      cond = stop_parser_->parse();
      stop_parser_->expect_end();
    }
  }

  node_ptr parse_for(expr_parser& ep) {
    auto n = std::make_shared<for_node>();
    n->vars.push_back(ep.name());
    while (ep.accept(","))
      n->vars.push_back(ep.name());
    ep.expect("in");
    n->iterable = ep.parse_iterable();
    if (ep.accept("if"))
      n->filter = ep.parse();
    ep.expect_end();
    std::string stopped;
    n->loop_body = parse_body({"else", "endfor"}, stopped);
    if (stopped == "else") {
      std::string end;
      n->else_body = parse_body({"endfor"}, end);
    }
    return n;
  }

  std::vector<piece> pieces_;
  size_t i_ = 0;
  int depth_ = 0;
  std::unique_ptr<expr_parser> stop_parser_;
};

}  // namespace

struct chat_template::program {
  body top;
};

result<std::shared_ptr<const chat_template>> chat_template::compile(const std::string& source) {
  try {
    // Jinja drops one newline at the very end of a template (keep_trailing_newline=False).
    auto text = source;
    if (!text.empty() && text.back() == '\n')
      text.pop_back();
    auto parsed = std::make_shared<program>();
    parsed->top = template_parser(split_source(text)).parse_top();
    return std::make_shared<const chat_template>(std::move(parsed));
  } catch (const std::exception& e) {  // template_error, or a library error while parsing
    return make_error(errc::invalid_argument, std::string("chat template: ") + e.what());
  }
}

result<std::string> chat_template::render(const chat_template_input& input) const {
  try {
    scope_stack s;
    s.frames.emplace_back();
    auto messages = value::new_list();
    for (const auto& m : input.messages) {
      auto msg = value::new_dict();
      msg.put("role", value::of(m.role));
      msg.put("content", value::of(m.content));
      messages.l->push_back(msg);
    }
    s.set("messages", messages);
    s.set("add_generation_prompt", value::of(input.add_generation_prompt));
    s.set("bos_token", value::of(input.bos_token));
    s.set("eos_token", value::of(input.eos_token));
    std::string out;
    loop_signal sig;
    run_body(program_->top, s, out, sig);
    return out;
  } catch (const std::exception& e) {  // template_error, or a library error while rendering
    return make_error(errc::invalid_argument, std::string("chat template: ") + e.what());
  }
}

result<std::string> render_chat_template(const std::string& source,
                                         const chat_template_input& input) {
  auto compiled = chat_template::compile(source);
  if (!compiled)
    return compiled.err();
  return (*compiled)->render(input);
}

}  // namespace adapterd::model
