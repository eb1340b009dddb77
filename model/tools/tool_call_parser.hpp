#pragma once
// Tool calls taken out of a model's output as it streams. The text before, between and
// after the calls is released as content; a call is released whole once it has closed and
// parses as a call of one of the offered functions. Anything that looked like a call but is
// not one is released as content after all, so no output is ever lost.
#include <cstddef>
#include <string>
#include <vector>

#include "model/template/chat_template.hpp"
#include "model/tools/tool_syntax.hpp"

namespace adapterd::model {

// A call found in the output is a chat_tool_call, as a chat turn's: id "call_..." (9
// characters for Mistral, whose templates demand it), arguments as compact JSON text.

class tool_call_parser {
 public:
  /// `forced`: the output is the JSON of tool_choice "required" or a named function (a list
  /// of calls, or one call), not the family's own syntax.
  tool_call_parser(tool_syntax syntax, std::vector<std::string> names, bool forced);

  /// Feeds output text; returns the content that can be released now.
  std::string push(const std::string& text);
  /// The output has ended: returns the rest of the content.
  std::string finish();
  /// Calls completed since the last take.
  std::vector<chat_tool_call> take_calls();
  /// Every call so far.
  const std::vector<chat_tool_call>& calls() const { return calls_; }

 private:
  enum class mode { undecided, content, holding, in_tag };
  std::string push_hermes();
  std::string push_whole_answer();
  bool parse_answer(const std::string& text);
  bool add_call(const std::string& json_text);

  tool_syntax syntax_;
  std::vector<std::string> names_;
  bool forced_;
  mode mode_ = mode::undecided;
  std::string held_;
  std::string blanks_;  // hermes: the blanks before an open tag (content again if no call)
  std::vector<chat_tool_call> calls_;
  size_t taken_ = 0;
};

}  // namespace adapterd::model
