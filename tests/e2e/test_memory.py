"""End to end: memory budgets, eviction, cleanup levels, idle unload and OOM recovery."""
import os
from concurrent.futures import ThreadPoolExecutor
import time
import unittest

from server import DEVICE, DTYPE_BYTES, TempModels, tensor_bytes

KV_BYTES_PER_TOKEN = 2 * 4 * 2 * 32 * DTYPE_BYTES  # k and v, 4 layers, 2 KV heads, 32 dims
BUDGET = "--gpu-budget-mb" if DEVICE == "cuda" else "--cpu-budget-mb"


class MemoryTest(unittest.TestCase):
    def setUp(self):
        self.models = TempModels(adapters=3)
        # Files hold fp32; resident weights are in the compute dtype.
        self.weights = tensor_bytes(os.path.join(self.models.model, "model.safetensors")) * DTYPE_BYTES // 4
        self.adapter_bytes = tensor_bytes(os.path.join(self.models.adapter, "adapter_model.safetensors")) \
            * DTYPE_BYTES // 4

    def tearDown(self):
        self.assertTrue(all(code == 0 for code in self.models.close()))

    def adapter(self, i):
        return self.models.adapter if i == 0 else f"{self.models.adapter}-{i}"

    def kv_tokens_leaving(self, budget_mb, adapters):
        """--kv-reserve-tokens that leaves room for `adapters` adapters and a half."""
        free = budget_mb * 2**20 - self.weights - int((adapters + 0.5) * self.adapter_bytes)
        tokens = free // KV_BYTES_PER_TOKEN
        assert 16 < tokens < 1024, "the reserve must stay below the model's context to count"
        return tokens

    def test_budget_evicts_least_recently_used_adapters_and_keeps_the_model(self):
        budget_mb = 5 if DEVICE == "cpu" else 2  # CUDA keeps the weights in bf16: half the bytes
        tokens = self.kv_tokens_leaving(budget_mb, 1)
        s = self.models.server(f"{BUDGET}={budget_mb}", f"--kv-reserve-tokens={tokens}")
        first = {}
        for i in (0, 1, 0, 2, 1):
            status, body, _ = s.generate(prompt="tiers", max_new_tokens=6, temperature=0,
                                         adapter_path=self.adapter(i))
            self.assertEqual(status, 200, body)
            first.setdefault(i, body["generated_text"])
            self.assertEqual(body["generated_text"], first[i], "a reloaded adapter gives the same text")
        h = s.health()
        self.assertEqual(h["counters"]["model_loads"], 1)
        self.assertEqual(h["counters"]["evictions"], 4)
        if DEVICE == "cpu":  # only one fits and the host tier is the device: each switch reloads
            self.assertEqual(h["counters"]["adapter_loads"], 5)
        else:  # evicted adapters wait in host memory and come back without disk reads
            self.assertEqual(h["counters"]["adapter_loads"], 3)
            self.assertEqual(h["counters"]["host_reloads"], 2)
        adapters = [r for r in h["memory"]["resident"] if r["kind"] == "adapter"]
        self.assertEqual(len(adapters), 1)
        used = sum(r["mb"] for r in h["memory"]["resident"]) + h["memory"]["kv_reserve_mb"]
        self.assertLessEqual(used, budget_mb)

    def test_what_cannot_fit_is_refused_with_507(self):
        s = self.models.server(f"{BUDGET}=1", "--lazy-load")
        status, body, _ = s.generate(prompt="too big", max_new_tokens=2)
        self.assertEqual(status, 507, body)
        self.assertEqual(body["error"]["code"], "insufficient_memory")
        self.assertIn("budget", body["error"]["message"])
        self.assertFalse(s.health()["model"]["loaded"])

        budget_mb = 5 if DEVICE == "cpu" else 2  # CUDA keeps the weights in bf16: half the bytes
        tokens = self.kv_tokens_leaving(budget_mb, 0)  # the model fits, no adapter does
        s2 = self.models.server(f"{BUDGET}={budget_mb}", f"--kv-reserve-tokens={tokens}")
        status, body, _ = s2.generate(prompt="x", max_new_tokens=2, adapter_path=self.adapter(0))
        self.assertEqual(status, 507, body)
        self.assertEqual(body["error"]["code"], "insufficient_memory")
        self.assertEqual(s2.generate(prompt="x", max_new_tokens=2)[0], 200)

    def test_kv_reserve_caps_the_sequence(self):
        s = self.models.server("--kv-reserve-tokens=16")
        status, body, _ = s.generate(prompt="a prompt that is certainly longer than sixteen tokens " * 2,
                                     max_new_tokens=4)
        self.assertEqual(status, 400, body)
        self.assertEqual(body["error"]["code"], "context_overflow")
        status, body, _ = s.generate(prompt="short", max_new_tokens=50, temperature=0)
        self.assertEqual(status, 200, body)
        self.assertLessEqual(body["prompt_tokens"] + body["tokens_generated"], 16)

    def test_sequences_grow_into_a_small_kv_pool_and_the_youngest_steps_aside(self):
        """A pool of 4 blocks and requests of ~45 tokens each: they are admitted on their
        prompt's blocks, grow, and when the pool runs out the youngest is preempted and later
        resumes; every answer is the one it gets alone."""
        s = self.models.server("--kv-reserve-tokens=64", "--max-batch-size=4")
        prompts = [f"grow {i}" for i in range(4)]
        alone = [s.generate(prompt=p, max_new_tokens=40, temperature=0) for p in prompts]
        self.assertTrue(all(status == 200 for status, _, _ in alone), alone)
        with ThreadPoolExecutor(4) as pool:
            together = list(pool.map(lambda p: s.generate(prompt=p, max_new_tokens=40, temperature=0), prompts))
        for (status, body, _), (_, solo, _) in zip(together, alone):
            self.assertEqual(status, 200, body)
            self.assertEqual(body["generated_text"], solo["generated_text"])
        batch = s.health()["batch"]
        self.assertGreaterEqual(batch["preempted"], 1, batch)
        self.assertEqual(batch["kv_blocks"]["used"], 0, batch)
        self.assertRegex(s.request("GET", "/metrics")[1], r"adapterd_preemptions_total [1-9]")

    def test_cleanup_levels_free_what_they_say(self):
        s = self.models.server()
        for i in range(3):
            self.assertEqual(s.generate(prompt="x", max_new_tokens=2, adapter_path=self.adapter(i))[0], 200)
        status, body, _ = s.request("POST", "/cleanup-memory", {"level": "adapters"})
        self.assertEqual(status, 200, body)
        self.assertEqual(body["message"],
                         "Memory cleaned up" if DEVICE == "cuda" else "Memory cleaned up (CPU only)")
        self.assertEqual(body["freed"]["adapters"], 3)
        self.assertTrue(s.health()["model"]["loaded"])
        status, body, _ = s.request("POST", "/cleanup-memory", {"level": "all"})
        self.assertEqual(status, 200, body)
        self.assertEqual(body["freed"]["models"], 1)
        self.assertTrue(body["model_unloaded"])
        self.assertFalse(s.health()["model"]["loaded"])
        self.assertEqual(s.generate(prompt="back", max_new_tokens=2)[0], 200)
        self.assertEqual(s.health()["counters"]["model_loads"], 2)
        status, body, _ = s.request("POST", "/cleanup-memory", {"level": "everything"})
        self.assertEqual(status, 400, body)
        self.assertEqual(s.request("POST", "/cleanup-memory")[0], 200)  # no body: flush

    def test_idle_model_is_unloaded_and_comes_back(self):
        s = self.models.server("--idle-unload-after=1")
        self.assertEqual(s.generate(prompt="x", max_new_tokens=2)[0], 200)
        deadline = time.time() + 20
        while s.health()["model"]["loaded"] and time.time() < deadline:
            time.sleep(0.2)
        self.assertFalse(s.health()["model"]["loaded"], "unloaded after idling")
        self.assertEqual(s.generate(prompt="x", max_new_tokens=2)[0], 200)
        self.assertEqual(s.health()["counters"]["model_loads"], 2)

    def test_allocation_failure_is_retried_with_chunked_prefill(self):
        # Forward passes over ~48 tokens fail as if out of memory.
        s = self.models.server(f"--fault-activation-limit-kb={200 * DTYPE_BYTES // 4}")
        long_prompt = "many words make a long prompt " * 12
        status, body, _ = s.generate(prompt=long_prompt, max_new_tokens=4, temperature=0)
        self.assertEqual(status, 200, body)
        self.assertGreater(body["prompt_tokens"], 48)
        h = s.health()
        self.assertEqual(h["counters"]["oom_recoveries"], 1)
        self.assertEqual(h["counters"]["model_loads"], 1)

    def test_allocation_failure_that_persists_fails_that_request_alone(self):
        s = self.models.server("--fault-activation-limit-kb=1")  # even one token fails
        status, body, _ = s.generate(prompt="x", max_new_tokens=2)
        self.assertEqual(status, 507, body)
        self.assertEqual(body["error"]["code"], "out_of_memory")
        status, body, _ = s.generate(prompt="y", max_new_tokens=2)
        self.assertEqual(status, 507, body)  # the process lives on and answers
        h = s.health()
        self.assertEqual(h["counters"]["oom_failures"], 2)
        self.assertEqual(h["status"], "healthy")


if __name__ == "__main__":
    unittest.main()
