#pragma once
// The Jinja evaluator: scopes, expressions and statements as a tree that runs itself, and
// the operators, methods, filters and tests templates call. A parsed tree holds no state
// of its own: each render brings its scopes, so one tree serves every thread.
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "model/template/value.hpp"

namespace adapterd::model::jinja {

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

inline expr_ptr make(eval_fn f) {
  return std::make_shared<lambda_expr>(std::move(f));
}

struct call_args {
  std::vector<expr_ptr> positional;
  std::vector<std::pair<std::string, expr_ptr>> named;
};

int64_t to_index(const value& v, const char* what);
value subscript(const value& obj, const value& key);
value slice(const value& obj, const value& start, const value& stop, const value& step);
std::string strip(const std::string& s, const std::string& chars, bool left, bool right);
value call_method(const value& obj, const std::string& name, const std::vector<value>& args);
value apply_filter(const std::string& name, const value& v, const std::vector<value>& args);
bool apply_test(const std::string& name, const value& v, const std::vector<value>& args);
value binary(const std::string& op, const value& a, const value& b);

struct loop_signal {
  enum kind_t { none, brk, cont } kind = none;
};

struct node {
  virtual ~node() = default;
  virtual void run(scope_stack& s, std::string& out, loop_signal& sig) const = 0;
};
using node_ptr = std::shared_ptr<const node>;
using body = std::vector<node_ptr>;

inline void run_body(const body& b, scope_stack& s, std::string& out, loop_signal& sig) {
  for (const auto& n : b) {
    n->run(s, out, sig);
    if (sig.kind != loop_signal::none)
      return;
  }
}

struct text_node final : node {
  std::string text;
  void run(scope_stack&, std::string& out, loop_signal&) const override {
    charge_work(text.size());
    out += text;
  }
};
struct output_node final : node {
  expr_ptr e;
  void run(scope_stack& s, std::string& out, loop_signal&) const override {
    auto text = str(e->eval(s));
    charge_work(text.size());
    out += text;
  }
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
    charge_work(items.size() * sizeof(value));
    auto bind = [&](const value& item) {
      if (vars.size() == 1) {
        s.set(vars[0], item);
        return;
      }
      if (item.kind != value::list || item.l->size() != vars.size())
        throw template_error("cannot unpack a loop item into " + std::to_string(vars.size())
                             + " names");
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
      charge_work(sizeof(value));
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
    ns.put(attr, detached(v));  // the namespace object itself changes, and never holds itself
  }
};
struct signal_node final : node {
  loop_signal::kind_t kind;
  explicit signal_node(loop_signal::kind_t k) : kind(k) {}
  void run(scope_stack&, std::string&, loop_signal& sig) const override { sig.kind = kind; }
};

}  // namespace adapterd::model::jinja
