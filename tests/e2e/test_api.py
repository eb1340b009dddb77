"""End to end: the API people already use. The official openai npm client (tests/openai),
the tokenizer endpoints against Hugging Face's ids for every fixture vocabulary, adapter
management, API and admin keys, and /metrics."""
import json
import os
import shutil
import subprocess
import unittest

from server import REPO, TempModels

FIXTURES = os.path.join(REPO, "..", "shared", "fixtures", "tokenizers")
API_KEY = "e2e-api-key-0001"
ADMIN_KEY = "e2e-admin-key-0001"
# What add_special_tokens=True puts in front (fixtures/tokenizers/README.md).
BOS = {"llama-bpe": 128000, "llama-spm": 1, "phi-3": 1, "deepseek-llm": 100000}


def auth(key):
    return {"Content-Type": "application/json", "Authorization": f"Bearer {key}"}


def tool_model(model, root, template):
    """A copy of the tiny model whose chat template is a tool-calling family's, as published
    (tests/data/templates)."""
    path = os.path.join(root, f"tools-{template}")
    shutil.copytree(model, path)
    config_path = os.path.join(path, "tokenizer_config.json")
    with open(config_path, encoding="utf-8") as f:
        config = json.load(f)
    with open(os.path.join(REPO, "tests", "data", "templates", f"{template}.jinja"), encoding="utf-8") as f:
        config["chat_template"] = f.read()
    with open(config_path, "w", encoding="utf-8") as f:
        json.dump(config, f)
    # Room for the tool instructions, which this byte-level vocabulary spells out long.
    model_config_path = os.path.join(path, "config.json")
    with open(model_config_path, encoding="utf-8") as f:
        model_config = json.load(f)
    model_config["max_position_embeddings"] = 4096
    with open(model_config_path, "w", encoding="utf-8") as f:
        json.dump(model_config, f)
    return path


class ApiTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.models = TempModels(adapters=2)
        root = cls.models.root
        for name, key in (("api-keys", API_KEY), ("admin-keys", ADMIN_KEY)):
            with open(os.path.join(root, name), "w") as f:
                f.write(f"# one key per line\n{key}\n")
        cls.tool_models = [tool_model(cls.models.model, root, name) for name in ("llama-3.1", "qwen2.5", "mistral-v0.3")]
        cls.server = cls.models.server(
            f"--model-roots={root}:{FIXTURES}", f"--api-keys-file={root}/api-keys",
            f"--admin-keys-file={root}/admin-keys", f"--adapters=pirate={cls.models.adapter}")

    @classmethod
    def tearDownClass(cls):
        codes = cls.models.close()
        assert all(code == 0 for code in codes), f"adapterd exited with {codes}"

    def call(self, method, path, body=None, key=API_KEY):
        return self.server.request(method, path, body, headers=auth(key) if key else None)

    def test_openai_npm_client(self):
        proc = subprocess.run(["node", os.path.join(REPO, "tests", "openai", "client_test.mjs"),
                               str(self.server.port), "pirate", API_KEY, *self.tool_models],
                              capture_output=True, text=True, timeout=300)
        print("\n" + proc.stdout.strip())
        self.assertEqual(proc.returncode, 0, proc.stdout + proc.stderr)

    def test_tokenize_gives_hugging_face_ids_for_every_fixture_vocabulary(self):
        names = sorted(d for d in os.listdir(FIXTURES) if os.path.isfile(os.path.join(FIXTURES, d, "cases.json")))
        self.assertGreaterEqual(len(names), 8)
        checked = 0
        for name in names:
            with open(os.path.join(FIXTURES, name, "cases.json"), encoding="utf-8") as f:
                cases = json.load(f)
            for case in cases:
                status, body, _ = self.call("POST", "/tokenize", {"model": name, "text": case["text"],
                                                                   "add_special_tokens": False})
                self.assertEqual(status, 200, body)
                self.assertEqual(body["ids"], case["ids"], f"{name}: {case['text']!r}")
                self.assertEqual(len(body["pieces"]), len(body["ids"]))
                checked += 1
            status, body, _ = self.call("POST", "/tokenize", {"model": name, "text": "Hello"})
            self.assertEqual(status, 200, body)
            if name in BOS:
                self.assertEqual(body["ids"][0], BOS[name], name)
            status, back, _ = self.call("POST", "/detokenize", {"model": name, "ids": body["ids"]})
            self.assertEqual(status, 200, back)
            self.assertIn("Hello", back["text"], name)
        print(f"\n  /tokenize: {checked} fixture cases over {len(names)} vocabularies gave Hugging Face's ids")

    def test_tokenizer_endpoints_refuse_bad_input(self):
        for path, body, code in (("/tokenize", {"model": "gpt-2"}, "missing_field"),
                                 ("/tokenize", {"text": 3}, "invalid_type"),
                                 ("/tokenize", {"text": "x", "txt": "y"}, "unknown_field"),
                                 ("/tokenize", {"text": "x", "model": "../../etc"}, "unknown_model"),
                                 ("/tokenize", {"text": "x", "messages": [{"role": "user", "content": "x"}]},
                                  "invalid_value"),
                                 ("/tokenize", {"messages": []}, "missing_field"),
                                 ("/tokenize", {"messages": [{"role": "wizard", "content": "x"}]}, "out_of_range"),
                                 ("/detokenize", {"ids": [-1]}, "invalid_type"),
                                 ("/detokenize", {"ids": [10 ** 9]}, "bad_request"),
                                 ("/detokenize", {"ids": "1,2"}, "invalid_type")):
            status, reply, _ = self.call("POST", path, body)
            self.assertIn(status, (400, 404), reply)
            self.assertEqual(reply["error"]["code"], code, (path, body))

    def test_adapters_are_listed_loaded_and_unloaded(self):
        status, body, _ = self.call("GET", "/adapters")
        self.assertEqual(status, 200, body)
        pirate = [a for a in body["adapters"] if a["id"] == "pirate"]
        self.assertEqual(len(pirate), 1, body)
        self.assertEqual(pirate[0]["tier"], "device")
        self.assertGreater(pirate[0]["bytes"], 0)
        second = self.models.adapter + "-1"
        self.assertEqual(self.call("POST", "/adapters", {"path": second, "id": "second"})[0], 403)  # not admin
        status, body, _ = self.call("POST", "/adapters", {"path": second, "id": "second"}, key=ADMIN_KEY)
        self.assertEqual(status, 200, body)
        self.assertIn("second", [a["id"] for a in body["adapters"]])
        # The id names the adapter everywhere: /generate-lite, and OpenAI's model field.
        s1, by_id, _ = self.call("POST", "/generate-lite", {"prompt": "hi", "adapter_path": "second",
                                                            "max_new_tokens": 6, "temperature": 0})
        s2, by_path, _ = self.call("POST", "/generate-lite", {"prompt": "hi", "adapter_path": second,
                                                              "max_new_tokens": 6, "temperature": 0})
        self.assertEqual((s1, s2), (200, 200), (by_id, by_path))
        self.assertEqual(by_id["generated_text"], by_path["generated_text"])
        status, body, _ = self.call("DELETE", "/adapters/second", key=ADMIN_KEY)
        self.assertEqual(status, 200, body)
        self.assertNotIn("second", [a["id"] for a in body["adapters"]])
        status, body, _ = self.call("DELETE", "/adapters/second", key=ADMIN_KEY)
        self.assertEqual((status, body["error"]["code"]), (404, "adapter_not_found"))
        for payload, expected in (({"path": "/etc"}, 403), ({"id": "x"}, 400),
                                  ({"path": second, "id": "bad id!"}, 400),
                                  ({"path": second, "id": "pirate"}, 400)):
            status, body, _ = self.call("POST", "/adapters", payload, key=ADMIN_KEY)
            self.assertEqual(status, expected, (payload, body))
        self.assertEqual(self.call("PUT", "/adapters", {}, key=ADMIN_KEY)[0], 405)

    def test_one_model_by_id_as_openai_answers_it(self):
        status, listed, _ = self.call("GET", "/v1/models")
        self.assertEqual(status, 200, listed)
        for model in listed["data"]:
            status, one, _ = self.call("GET", "/v1/models/" + model["id"])
            self.assertEqual((status, one), (200, model))
        status, body, _ = self.call("GET", "/v1/models/no-such-model")
        self.assertEqual(status, 404, body)
        self.assertEqual(body["error"]["code"], "model_not_found")
        self.assertEqual(body["error"]["type"], "invalid_request_error")
        self.assertEqual(self.call("GET", "/v1/models/" + listed["data"][0]["id"], key=None)[0], 401)
        self.assertEqual(self.call("DELETE", "/v1/models/x")[0], 405)

    def test_keys_guard_the_api_and_admin_routes(self):
        for key, expected in ((None, 401), ("not-a-key-at-all", 401), (API_KEY, 200), (ADMIN_KEY, 200)):
            status, body, _ = self.call("POST", "/generate-lite", {"prompt": "x", "max_new_tokens": 1}, key=key)
            self.assertEqual(status, expected, body)
            if expected == 401:
                self.assertEqual(body["error"]["code"], "unauthorized")
        status, body, _ = self.call("GET", "/v1/models", key=None)
        self.assertEqual(status, 401)
        self.assertEqual(body["error"]["type"], "invalid_request_error")  # OpenAI's error shape on /v1
        self.assertEqual(self.call("POST", "/cleanup-memory", {}, key=API_KEY)[0], 403)
        self.assertEqual(self.call("POST", "/cleanup-memory", {}, key=ADMIN_KEY)[0], 200)
        self.assertEqual(self.server.request("GET", "/health")[0], 200)   # probes need no key
        self.assertEqual(self.server.request("GET", "/metrics")[0], 200)

    def test_metrics_are_prometheus_text(self):
        self.call("POST", "/v1/completions", {"prompt": "count me", "max_tokens": 3})
        status, text, headers = self.server.request("GET", "/metrics")
        self.assertEqual(status, 200)
        self.assertTrue(headers["Content-Type"].startswith("text/plain; version=0.0.4"))
        lines = text.splitlines()
        self.assertTrue(any(l.startswith('adapterd_http_requests_total{route="/v1/completions",method="POST",status="200"}')
                            for l in lines), text[:2000])
        count = [l for l in lines if l.startswith("adapterd_time_to_first_token_seconds_count")]
        self.assertTrue(count and float(count[0].split()[1]) >= 1, count)
        for line in lines:  # every sample is "name{labels} value"
            if line and not line.startswith("#"):
                float(line.rsplit(" ", 1)[1])

    def test_gateway_metrics_name_the_adapter_that_runs(self):
        # The Gateway API Inference Extension's picker reads these (vLLM's names): the
        # adapter in use appears in running_lora_adapters while its request runs.
        import threading
        done = []
        body = {"model": "pirate", "prompt": "a long one", "max_tokens": 400, "ignore_eos": True,
                "priority": 3}
        worker = threading.Thread(target=lambda: done.append(self.call("POST", "/v1/completions", body)))
        worker.start()
        seen = None
        for _ in range(500):
            status, text, _ = self.server.request("GET", "/metrics")
            self.assertEqual(status, 200)
            info = [l for l in text.splitlines() if l.startswith("vllm:lora_requests_info{")]
            self.assertEqual(len(info), 1, text[-3000:])
            if 'running_lora_adapters="pirate"' in info[0]:
                seen = info[0]
                break
            if done:
                break
        worker.join(60)
        self.assertEqual(done[0][0], 200, done[0][1])
        self.assertIsNotNone(seen, "the request finished before /metrics showed it running")
        self.assertIn('max_lora="', seen)
        self.assertGreater(float(seen.rsplit(" ", 1)[1]), 1.7e9)  # when it was made
        for name in ("vllm:num_requests_waiting", "vllm:num_requests_running", "vllm:gpu_cache_usage_perc"):
            self.assertTrue(any(l.startswith(name + " ") for l in text.splitlines()), name)

    def test_logit_bias_forces_and_bans_tokens_and_penalties_are_accepted(self):
        status, expected, _ = self.call("POST", "/detokenize", {"ids": [42] * 4})
        self.assertEqual(status, 200, expected)
        base = {"prompt": "bias me", "max_tokens": 4, "temperature": 0, "ignore_eos": True}
        status, forced, _ = self.call("POST", "/v1/completions", dict(base, logit_bias={"42": 100}))
        self.assertEqual(status, 200, forced)
        self.assertEqual(forced["choices"][0]["text"], expected["text"])
        # -100 bans: with 42 banned, the next-most-pushed token 43 comes out instead
        status, second, _ = self.call("POST", "/detokenize", {"ids": [43] * 4})
        status, banned, _ = self.call("POST", "/v1/completions",
                                      dict(base, logit_bias={"42": -100, "43": 99}))
        self.assertEqual(status, 200, banned)
        self.assertEqual(banned["choices"][0]["text"], second["text"])
        for extra in ({"presence_penalty": 1.5, "frequency_penalty": 0.5}, {"logit_bias": {}}):
            status, body, _ = self.call("POST", "/v1/chat/completions",
                                        dict(extra, messages=[{"role": "user", "content": "hi"}], max_tokens=3))
            self.assertEqual(status, 200, body)
        status, body, _ = self.call("POST", "/v1/completions", dict(base, logit_bias={"999999": 5}))
        self.assertEqual(status, 400, body)
        self.assertIn("vocabulary", body["error"]["message"])
        status, body, _ = self.call("POST", "/generate-lite", {"prompt": "bias me", "max_new_tokens": 4,
                                                               "temperature": 0, "ignore_eos": True,
                                                               "logit_bias": {"42": 100}})
        self.assertEqual(status, 200, body)
        self.assertEqual(body["generated_text"], expected["text"])

    def test_stop_token_ids_end_generation_and_wait_for_min_tokens(self):
        base = {"prompt": "stop me", "max_tokens": 8, "temperature": 0, "ignore_eos": True,
                "logit_bias": {"42": 100}, "stop_token_ids": [42]}
        status, body, _ = self.call("POST", "/v1/completions", base)
        self.assertEqual(status, 200, body)
        self.assertEqual(body["choices"][0]["finish_reason"], "stop")
        self.assertEqual(body["usage"]["completion_tokens"], 1)
        status, body, _ = self.call("POST", "/v1/completions", dict(base, min_tokens=3))
        self.assertEqual(status, 200, body)
        self.assertEqual(body["choices"][0]["finish_reason"], "stop")
        self.assertEqual(body["usage"]["completion_tokens"], 4)  # 42 is held back for three
        status, body, _ = self.call("POST", "/generate-lite", {"prompt": "x", "stop_token_ids": [10 ** 6]})
        self.assertEqual(status, 400, body)
        status, body, _ = self.call("POST", "/generate-lite", {"prompt": "x", "stop_token_ids": ["a"]})
        self.assertEqual(status, 400, body)

    def test_priority_out_of_range_is_a_400(self):
        status, body, _ = self.call("POST", "/v1/completions", {"prompt": "x", "priority": 5000})
        self.assertEqual(status, 400, body)
        self.assertIn("priority", json.dumps(body))


if __name__ == "__main__":
    unittest.main()
