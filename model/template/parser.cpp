// Over 400 lines on purpose: Jinja's expression grammar, one function per precedence
// level, and its statements; a grammar reads best in one place.
#include "model/template/parser.hpp"

#include <memory>
#include <optional>

#include "model/template/lexer.hpp"

namespace adapterd::model::jinja {

namespace {

// Parsing and evaluation both recurse once per nesting level: a bound on the levels keeps
// a hostile template (the chat-template fuzzer found "[[[[..." and "not not not ...")
// from overflowing the stack.
constexpr int max_nesting = 128;

struct nesting_guard {
  explicit nesting_guard(int& depth) : depth_(depth) {
    if (++depth_ > max_nesting)
      throw template_error("the template nests deeper than " + std::to_string(max_nesting)
                           + " levels");
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
      if (t_[p_].kind == token::op
          && (t_[p_].text == "==" || t_[p_].text == "!=" || t_[p_].text == "<" || t_[p_].text == ">"
              || t_[p_].text == "<=" || t_[p_].text == ">=")) {
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
        else if (t_[p_].kind == token::number || t_[p_].kind == token::string
                 || (t_[p_].kind == token::name && t_[p_].text != "and" && t_[p_].text != "or"
                     && t_[p_].text != "else"))
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
  expr_ptr concat() {
    return binary_level({"~"}, [this] { return additive(); });
  }
  expr_ptr additive() {
    return binary_level({"+", "-"}, [this] { return multiplicative(); });
  }
  expr_ptr multiplicative() {
    return binary_level({"*", "/", "//", "%"}, [this] { return unary(); });
  }

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
      return make(
          [=](scope_stack& s) { return binary("-", value::of(int64_t{0}), inner->eval(s)); });
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
      if (accept("(")) {
        auto given = call_arguments();
        args = given.positional;
        // A keyword argument the filter would ignore is an error, never a silently other
        // prompt; tool templates call tojson(indent=4).
        for (const auto& [key, e] : given.named) {
          if (filter != "tojson" || key != "indent" || !args.empty())
            throw template_error("unsupported keyword argument '" + key + "' of filter '" + filter
                                 + "'");
          args.push_back(e);
        }
      }
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
        throw template_error(
            "the template refused: "
            + (args.positional.empty() ? std::string() : str(args.positional[0]->eval(s))));
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
        for (int64_t k = from; step > 0 ? k < to : k > to;) {
          out.push(value::of(k));  // charged per slot: a huge range is a budget error
          if (__builtin_add_overflow(k, step, &k))
            break;
        }
        return out;
      });
    }
    throw template_error("unsupported function"
                         + (fname.empty() ? std::string() : " '" + fname + "'"));
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
      if (n == "true" || n == "True")
        return make([](scope_stack&) { return value::of(true); });
      if (n == "false" || n == "False")
        return make([](scope_stack&) { return value::of(false); });
      if (n == "none" || n == "None")
        return make([](scope_stack&) { return value::null(); });
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
        out.push(e->eval(s));
      return out;
    });
  }

  std::vector<token> t_;
  size_t p_ = 0;
  int depth_ = 0;
  std::string callee_name_;  // the name just parsed, if a call follows it
};

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
        out.push_back(std::make_shared<signal_node>(keyword == "break" ? loop_signal::brk
                                                                       : loop_signal::cont));
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

body parse_template(const std::string& text) {
  return template_parser(split_source(text)).parse_top();
}

}  // namespace adapterd::model::jinja
