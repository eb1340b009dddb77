"""End to end: the paged KV pool's prefix cache. A prompt shared by requests is prefilled
once per adapter, each adapter gets the tokens it gets with the cache off, what was reused
shows in the answers, /health and /metrics, cleanup forgets it, and cancelled or timed-out
requests give their blocks back."""
import socket
import unittest
from concurrent.futures import ThreadPoolExecutor

from server import TempModels, wait_for
from test_batching import open_stream, sse_events

SYSTEM = "You are a careful assistant who answers in short sentences. " * 12


class PrefixCacheTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.models = TempModels(adapters=2)
        cls.on = cls.models.server("--max-new-tokens-limit=1000", "--max-batch-size=8")
        cls.off = cls.models.server("--prefix-cache=off")
        cls.adapters = [None, cls.models.adapter, cls.models.adapter + "-1"]

    @classmethod
    def tearDownClass(cls):
        codes = cls.models.close()
        assert all(code == 0 for code in codes), f"adapterd exited with {codes}"

    def fields(self, adapter, question, **more):
        f = {"prompt": SYSTEM + question, "max_new_tokens": 12, "temperature": 0, **more}
        if adapter:
            f["adapter_path"] = adapter
        return f

    def test_a_shared_prompt_is_computed_once_per_adapter_with_the_tokens_of_the_cache_off(self):
        texts = []
        for adapter in self.adapters:
            with self.subTest(adapter=adapter):
                status, expected, _ = self.off.generate(**self.fields(adapter, "What is one plus one?"))
                self.assertEqual(status, 200, expected)
                self.assertEqual(expected["timings"]["prompt_tokens_cached"], 0)
                answers = [self.on.generate(**self.fields(adapter, q))
                           for q in ("What is one plus one?", "What is one plus one?", "Name a colour.")]
                for status, body, _ in answers:
                    self.assertEqual(status, 200, body)
                first, second, other = (b for _, b, _ in answers)
                self.assertEqual(first["generated_text"], expected["generated_text"])
                self.assertEqual(second["generated_text"], expected["generated_text"])
                # the system prompt (and the first request's own whole blocks) came from the cache
                self.assertGreater(second["timings"]["prompt_tokens_cached"], second["prompt_tokens"] // 2)
                self.assertEqual(second["timings"]["prompt_tokens_cached"] % 16, 0)
                self.assertGreater(other["timings"]["prompt_tokens_cached"], 0)
                status, plain, _ = self.off.generate(**self.fields(adapter, "Name a colour."))
                self.assertEqual(other["generated_text"], plain["generated_text"])
                texts.append(first["generated_text"])
        self.assertEqual(len(set(texts)), 3, "each adapter has its own output for the same prompt")

    def test_mixed_adapter_batches_with_the_cache_give_the_tokens_of_requests_alone(self):
        jobs = [self.fields(self.adapters[i % 3], f"Question {i // 3}?") for i in range(9)]
        alone = [self.off.generate(**f)[1]["generated_text"] for f in jobs]
        with ThreadPoolExecutor(max_workers=9) as pool:
            together = list(pool.map(lambda f: self.on.generate(**f), jobs))
        for (status, body, _), expected in zip(together, alone):
            self.assertEqual(status, 200, body)
            self.assertEqual(body["generated_text"], expected)

    def test_openai_usage_health_and_metrics_show_what_was_reused(self):
        chat = {"model": "tiny-llama", "max_tokens": 4, "temperature": 0,
                "messages": [{"role": "system", "content": SYSTEM}, {"role": "user", "content": "Hello?"}]}
        self.on.request("POST", "/v1/chat/completions", chat)
        status, body, _ = self.on.request("POST", "/v1/chat/completions", chat)
        self.assertEqual(status, 200, body)
        cached = body["usage"]["prompt_tokens_details"]["cached_tokens"]
        self.assertGreater(cached, 0)
        self.assertLess(cached, body["usage"]["prompt_tokens"])
        batch = self.on.health()["batch"]
        blocks, prefix = batch["kv_blocks"], batch["prefix_cache"]
        self.assertEqual(blocks["total"], 4096 // 16)
        self.assertEqual(blocks["used"] + blocks["cached"] + blocks["free"], blocks["total"])
        self.assertGreater(blocks["cached"], 0)
        self.assertGreater(prefix["hits"], 0)
        self.assertGreaterEqual(prefix["cached_tokens"], cached)
        self.assertLessEqual(prefix["hit_rate"], 1)
        conn_text = self.metrics_text()
        for name in ("adapterd_kv_blocks_total", "adapterd_kv_blocks_cached", "adapterd_prefix_cache_hits_total",
                     "adapterd_prefix_cache_tokens_total"):
            self.assertIn(name + " ", conn_text)

    def metrics_text(self):
        import http.client
        conn = http.client.HTTPConnection("127.0.0.1", self.on.port, timeout=30)
        conn.request("GET", "/metrics")
        text = conn.getresponse().read().decode()
        conn.close()
        return text

    def test_cleanup_forgets_the_cache_at_every_level(self):
        for level in ("flush", "adapters", "all"):
            with self.subTest(level=level):
                self.on.generate(**self.fields(None, "Cleanup?"))
                self.on.generate(**self.fields(None, "Cleanup?"))
                self.assertGreater(self.on.health()["batch"]["kv_blocks"]["cached"], 0)
                status, body, _ = self.on.request("POST", "/cleanup-memory", {"level": level})
                self.assertEqual(status, 200, body)
                self.assertGreater(body["freed"]["kv_blocks"], 0, body)
                status, body, _ = self.on.generate(**self.fields(None, "Cleanup?"))
                self.assertEqual(status, 200, body)
                self.assertEqual(body["timings"]["prompt_tokens_cached"], 0)

    def test_cancelled_and_timed_out_requests_give_their_blocks_back(self):
        conn, resp = open_stream(self.on, **self.fields(None, "A long story, please.", max_new_tokens=900))
        next(sse_events(resp))  # running
        self.assertTrue(wait_for(lambda: self.on.health()["batch"]["kv_blocks"]["used"] > 0))
        conn.sock.shutdown(socket.SHUT_RDWR)
        conn.close()
        self.assertTrue(wait_for(lambda: self.on.health()["running"] == 0))
        self.assertEqual(self.on.health()["batch"]["kv_blocks"]["used"], 0)
        status, body, _ = self.on.generate(**self.fields(None, "Another long story.", max_new_tokens=900,
                                                         timeout_s=0.05))
        self.assertEqual(status, 504, body)
        self.assertTrue(wait_for(lambda: self.on.health()["running"] == 0))
        blocks = self.on.health()["batch"]["kv_blocks"]
        self.assertEqual(blocks["used"], 0)
        self.assertEqual(blocks["cached"] + blocks["free"], blocks["total"])

    def test_a_bad_prefix_cache_value_is_a_start_up_error(self):
        import subprocess
        from server import BIN
        proc = subprocess.run([BIN, "--port=0", f"--model={self.models.model}", "--prefix-cache=maybe"],
                              capture_output=True, text=True, timeout=60)
        self.assertNotEqual(proc.returncode, 0)
        self.assertIn("--prefix-cache must be on or off", proc.stdout + proc.stderr)


if __name__ == "__main__":
    unittest.main()
