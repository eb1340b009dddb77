// What config.json and adapter_config.json may say, and the clear errors for the rest.
#include <cmath>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "model/io/lora_config.hpp"
#include "model/llama/model_config.hpp"
#include "tests/fixtures.hpp"

using namespace adapterd::model;
using nlohmann::json;

namespace {

json llama_config() {
  return json{{"architectures", {"LlamaForCausalLM"}}, {"hidden_size", 64}, {"intermediate_size", 128},
              {"num_hidden_layers", 2}, {"num_attention_heads", 4}, {"num_key_value_heads", 2},
              {"vocab_size", 100}, {"eos_token_id", 2}};
}

std::string load_error(const json& config) {
  auto r = parse_model_config(config.dump(), "");
  REQUIRE_FALSE(r);
  CHECK(r.err().code == errc::invalid_model);
  return r.err().message;
}

}  // namespace

TEST_CASE("Llama, Mistral and Qwen2 configs are read", "[config]") {
  auto c = parse_model_config(llama_config().dump(), R"({"eos_token_id": [2, 7]})");
  REQUIRE(c);
  CHECK(c->head_dim == 16);
  CHECK(c->eos_ids == std::vector<int32_t>{2, 7});
  CHECK_FALSE(c->attention_bias);

  auto q = llama_config();
  q["architectures"] = {"Qwen2ForCausalLM"};
  q["sliding_window"] = 32;
  q["use_sliding_window"] = false;
  auto qc = parse_model_config(q.dump(), "");
  REQUIRE(qc);
  CHECK(qc->attention_bias);  // Qwen2 always has q/k/v biases
  CHECK(qc->sliding_window == 0);

  auto m = llama_config();
  m["architectures"] = {"MistralForCausalLM"};
  m["sliding_window"] = 4096;
  m["head_dim"] = 32;
  auto mc = parse_model_config(m.dump(), "");
  REQUIRE(mc);
  CHECK(mc->sliding_window == 4096);
  CHECK(mc->head_dim == 32);

  auto l3 = llama_config();
  l3["rope_scaling"] = {{"rope_type", "llama3"}, {"factor", 8.0}, {"low_freq_factor", 1.0},
                        {"high_freq_factor", 4.0}, {"original_max_position_embeddings", 8192}};
  auto l3c = parse_model_config(l3.dump(), "");
  REQUIRE(l3c);
  CHECK(l3c->rope.scaling == rope_scaling_type::llama3);
  auto lin = llama_config();
  lin["rope_scaling"] = {{"type", "linear"}, {"factor", 2.0}};  // the legacy key
  auto linc = parse_model_config(lin.dump(), "");
  REQUIRE(linc);
  CHECK(linc->rope.scaling == rope_scaling_type::linear);
}

TEST_CASE("unsupported configs are refused by name", "[config]") {
  auto c = llama_config();
  c["architectures"] = {"GPT2LMHeadModel"};
  CHECK(load_error(c).find("GPT2LMHeadModel") != std::string::npos);
  c = llama_config();
  c["hidden_act"] = "gelu";
  CHECK(load_error(c).find("gelu") != std::string::npos);
  c = llama_config();
  c["rope_scaling"] = {{"rope_type", "yarn"}, {"factor", 4.0}};
  CHECK(load_error(c).find("yarn") != std::string::npos);
  c = llama_config();
  c["architectures"] = {"Qwen2ForCausalLM"};
  c["use_sliding_window"] = true;
  CHECK(load_error(c).find("use_sliding_window") != std::string::npos);
  c = llama_config();
  c["num_key_value_heads"] = 3;
  CHECK(load_error(c).find("multiple") != std::string::npos);
  c = llama_config();
  c.erase("hidden_size");
  load_error(c);
  CHECK_FALSE(parse_model_config("not json", ""));
}

TEST_CASE("LoRA scales follow PEFT, patterns included", "[config][lora]") {
  ADAPTERD_SKIP_WITHOUT_FIXTURES();
  for (const char* preset : {"llama", "qwen2"}) {
    auto root = adapterd::test::fixtures_dir() + "/" + preset;
    auto golden = adapterd::test::read_json(root + "/golden.json");
    for (const auto& [name, adapter] : golden["adapters"].items()) {
      auto config = parse_lora_config(adapterd::test::read_text(root + "/" + adapter["dir"].get<std::string>()
                                                                + "/adapter_config.json"));
      REQUIRE(config);
      for (const auto& [module, scale] : adapter["scaling"].items()) {
        INFO(preset << "/" << name << " " << module);
        auto ours = config->scale_for(module);
        REQUIRE(ours);
        CHECK(std::fabs(*ours - scale.get<double>()) < 1e-9);
      }
    }
  }
}

TEST_CASE("unsupported PEFT features are refused", "[config][lora]") {
  auto base = json{{"peft_type", "LORA"}, {"r", 4}, {"lora_alpha", 8}, {"target_modules", {"q_proj"}}};
  CHECK(parse_lora_config(base.dump()));
  auto refused = [&](const char* key, json value, const char* word) {
    auto c = base;
    c[key] = value;
    auto r = parse_lora_config(c.dump());
    REQUIRE_FALSE(r);
    CHECK(r.err().code == errc::invalid_adapter);
    CHECK(r.err().message.find(word) != std::string::npos);
  };
  refused("use_dora", true, "DoRA");
  refused("modules_to_save", json::array({"lm_head"}), "modules_to_save");
  refused("peft_type", "IA3", "IA3");
  refused("bias", "all", "bias");
  refused("r", 0, "r must");
}

TEST_CASE("rank 0, absurd ranks and hostile rank_pattern regexes are refused, never a stall", "[config][lora]") {
  auto base = json{{"peft_type", "LORA"}, {"r", 4}, {"lora_alpha", 8}, {"target_modules", {"q_proj"}}};
  auto with = [&](const char* key, json value) {
    auto c = base;
    c[key] = value;
    return parse_lora_config(c.dump());
  };
  CHECK_FALSE(with("r", 0));
  CHECK_FALSE(with("r", -3));
  CHECK_FALSE(with("r", 1 << 30));
  CHECK_FALSE(with("rank_pattern", json{{"q_proj", 0}}));
  CHECK_FALSE(with("rank_pattern", json{{"q_proj", "eight"}}));
  CHECK_FALSE(with("rank_pattern", json{{std::string(2000, 'a'), 4}}));
  CHECK_FALSE(with("alpha_pattern", json::array()));
  // Found by the adapter_config fuzzer: a float too large for int was converted (UB).
  CHECK_FALSE(with("rank_pattern", json{{"q_proj", 1e30}}));
  CHECK_FALSE(with("r", 3.5e12));
  // Catastrophic backtracking on a module name: a bounded error, not minutes of one core.
  auto hostile = with("rank_pattern", json{{"(\\w|\\w\\w|[._])*[0-9]", 4}});
  REQUIRE(hostile);
  auto rank = hostile->rank_for("model.layers.0.self_attn.q_proj_with_a_long_name_and_more_text");
  CHECK_FALSE(rank);
  // Ordinary patterns match as PEFT's re.match does.
  auto ok = with("rank_pattern", json{{"layers\\.0\\.self_attn\\.q_proj", 8}, {"v_proj", 2}});
  REQUIRE(ok);
  CHECK(*ok->rank_for("model.layers.0.self_attn.q_proj") == 8);
  CHECK(*ok->rank_for("model.layers.10.self_attn.q_proj") == 4);
  CHECK(*ok->rank_for("model.layers.3.self_attn.v_proj") == 2);
  CHECK(*ok->rank_for("model.layers.3.self_attn.xv_proj") == 4);
}
