"""End to end: the seed's contract on the real binary (run by ctest as `e2e`)."""
import os
import threading
import time
import unittest

from server import DEVICE, TempModels, wait_for


class ServiceTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.models = TempModels()
        cls.root, cls.model, cls.adapter = cls.models.root, cls.models.model, cls.models.adapter
        cls.server = cls.models.server("--max-new-tokens-limit=256", "--max-body-bytes=65536")

    @classmethod
    def tearDownClass(cls):
        codes = cls.models.close()
        assert all(code == 0 for code in codes), f"adapterd exited with {codes} on SIGTERM"

    def assert_error(self, status, body, expected_status, code=None):
        self.assertEqual(status, expected_status, body)
        self.assertIn("error", body)
        self.assertIn("code", body["error"])
        self.assertIn("message", body["error"])
        if code:
            self.assertEqual(body["error"]["code"], code)
        self.assertEqual(self.server.health()["status"], "healthy")  # still serving

    def test_health_has_the_seed_shape_and_operator_figures(self):
        h = self.server.health()
        for key in ("status", "timestamp", "active_jobs", "gpu_available", "gpu_memory"):
            self.assertIn(key, h)
        self.assertEqual(h["status"], "healthy")
        self.assertIn("allocated_mb", h["gpu_memory"])
        self.assertIn("reserved_mb", h["gpu_memory"])
        self.assertTrue(h["model"]["loaded"])
        self.assertGreater(h["process_rss_mb"], 0)
        self.assertGreaterEqual(h["uptime_s"], 0)
        self.assertIn("queue_depth", h)

    def test_generate_lite_answers_the_seed_fields(self):
        status, body, headers = self.server.generate(prompt="Hello, world!", max_new_tokens=8, temperature=0)
        self.assertEqual(status, 200, body)
        for key in ("generated_text", "tokens_generated", "model", "adapter", "timings"):
            self.assertIn(key, body)
        self.assertEqual(body["tokens_generated"], 8)
        self.assertEqual(body["model"], "tiny-llama")
        self.assertIsNone(body["adapter"])
        self.assertIn("queue_ms", body["timings"])
        self.assertIn("generate_ms", body["timings"])
        self.assertIn("X-Request-Id", headers)

    def test_greedy_is_deterministic_and_the_adapter_changes_it(self):
        base1 = self.server.generate(prompt="Once upon a time", max_new_tokens=12, temperature=0)[1]
        base2 = self.server.generate(prompt="Once upon a time", max_new_tokens=12, temperature=0)[1]
        self.assertEqual(base1["generated_text"], base2["generated_text"])
        status, tuned, _ = self.server.generate(prompt="Once upon a time", max_new_tokens=12,
                                                temperature=0, adapter_path=self.adapter)
        self.assertEqual(status, 200, tuned)
        self.assertEqual(tuned["adapter"], self.adapter)
        self.assertNotEqual(tuned["generated_text"], base1["generated_text"])
        # A relative adapter path is taken from the adapter root.
        status, rel, _ = self.server.generate(prompt="Once upon a time", max_new_tokens=12,
                                              temperature=0, adapter_path="tiny-llama-lora")
        self.assertEqual(status, 200, rel)
        self.assertEqual(rel["generated_text"], tuned["generated_text"])

    def test_prefer_cpu_runs_on_the_cpu(self):
        loads = self.server.health()["counters"]["model_loads"]
        status, body, _ = self.server.generate(prompt="cpu", max_new_tokens=2, prefer_cpu=True)
        self.assertEqual(status, 200, body)
        self.assertEqual(body["device"], "cpu")
        # On a GPU, prefer_cpu brings a CPU copy of the model; on the CPU nothing changes.
        self.assertEqual(self.server.health()["counters"]["model_loads"], loads + (DEVICE != "cpu"))

    def test_stop_strings_end_the_text_before_them(self):
        free = self.server.generate(prompt="Hello, world!", max_new_tokens=24, temperature=0)[1]
        text = free["generated_text"]
        windows = [text[i:i + 2] for i in range(len(text) // 3, len(text) - 1)]
        clean = [w for w in windows if "\ufffd" not in w and w.isprintable()]
        self.assertTrue(clean, f"the seeded model's greedy text has no clean two-character stop: {text!r}")
        stop = clean[0]
        status, body, _ = self.server.generate(prompt="Hello, world!", max_new_tokens=24,
                                               temperature=0, stop=[stop])
        self.assertEqual(status, 200, body)
        self.assertEqual(body["finish_reason"], "stop")
        self.assertEqual(body["generated_text"], text[:text.find(stop)])

    def test_seeded_sampling_repeats(self):
        a = self.server.generate(prompt="seed", max_new_tokens=10, temperature=1.0, top_p=0.9, seed=7)[1]
        b = self.server.generate(prompt="seed", max_new_tokens=10, temperature=1.0, top_p=0.9, seed=7)[1]
        self.assertEqual(a["generated_text"], b["generated_text"])

    def test_warm_requests_do_not_reload_and_cleanup_keeps_the_model(self):
        loads = self.server.health()["counters"]["model_loads"]
        for _ in range(3):
            self.assertEqual(self.server.generate(prompt="warm", max_new_tokens=4)[0], 200)
        status, body, _ = self.server.request("POST", "/cleanup-memory")
        self.assertEqual(status, 200, body)
        self.assertEqual(body["status"], "success")
        self.assertEqual(body["message"],
                         "Memory cleaned up" if DEVICE == "cuda" else "Memory cleaned up (CPU only)")
        h = self.server.health()
        self.assertTrue(h["model"]["loaded"])
        self.assertEqual(h["counters"]["model_loads"], loads)
        self.assertEqual(self.server.generate(prompt="after cleanup", max_new_tokens=4)[0], 200)
        self.assertEqual(self.server.health()["counters"]["model_loads"], loads)

    def test_concurrent_requests_run_one_at_a_time_in_arrival_order(self):
        server = self.models.server("--max-batch-size=1")  # the seed's one-at-a-time mode
        results = [None] * 3
        def call(i):
            results[i] = server.generate(prompt=f"request {i} " * 20, max_new_tokens=96, temperature=0)
        threads = [threading.Thread(target=call, args=(i,)) for i in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        replies = []
        for status, body, _ in results:
            self.assertEqual(status, 200, body)
            replies.append(body)
        replies.sort(key=lambda r: r["order"]["arrived"])
        served = [r["order"]["served"] for r in replies]
        self.assertEqual(served, sorted(served), "served in arrival order")
        self.assertEqual(served, list(range(served[0], served[0] + 3)), "none served in between")
        for earlier, later in zip(replies, replies[1:]):
            # The server's own clock: a request starts only after the previous one finished.
            self.assertGreaterEqual(later["timings"]["started_at_ms"], earlier["timings"]["finished_at_ms"])
        self.assertGreater(replies[-1]["timings"]["queue_ms"], 0)

    def test_bad_inputs_get_clear_errors(self):
        s = self.server
        self.assert_error(*s.request("POST", "/generate-lite", raw="{not json")[:2], 400, "invalid_json")
        self.assert_error(*s.request("POST", "/generate-lite", raw="[1]")[:2], 400, "invalid_json")
        self.assert_error(*s.generate()[:2], 400, "missing_field")
        self.assert_error(*s.generate(prompt=42)[:2], 400, "invalid_type")
        self.assert_error(*s.generate(prompt="x", max_new_tokens="3")[:2], 400, "invalid_type")
        self.assert_error(*s.generate(prompt="x", max_new_tokens=0)[:2], 400, "out_of_range")
        self.assert_error(*s.generate(prompt="x", max_new_tokens=-1)[:2], 400, "out_of_range")
        self.assert_error(*s.generate(prompt="x", max_new_tokens=257)[:2], 400, "out_of_range")
        self.assert_error(*s.generate(prompt="x", temperature=-0.5)[:2], 400, "out_of_range")
        long_prompt = " ".join(f"w{i}q" for i in range(3000))
        self.assert_error(*s.generate(prompt=long_prompt, max_new_tokens=4)[:2], 400, "context_overflow")
        self.assert_error(*s.generate(prompt="x", base_model="no-such-model")[:2], 400, "unknown_model")
        self.assert_error(*s.generate(prompt="x", adapter_path=os.path.join(self.root, "missing"))[:2],
                          400, "adapter_not_found")
        self.assert_error(*s.generate(prompt="x", adapter_path=self.model)[:2], 400, "adapter_not_found")
        self.assert_error(*s.generate(prompt="x", adapter_path="/etc")[:2], 403, "adapter_forbidden")
        self.assert_error(*s.generate(prompt="x", adapter_path="../../../../etc")[:2], 403, "adapter_forbidden")
        self.assert_error(*s.generate(prompt="x", adapter_path=self.root + "/../../etc/passwd")[:2],
                          403, "adapter_forbidden")
        broken = os.path.join(self.root, "broken-adapter")
        os.makedirs(broken, exist_ok=True)
        with open(os.path.join(broken, "adapter_config.json"), "w") as f:
            f.write('{"peft_type": "LORA", "r": 4, "use_dora": true}')
        self.assert_error(*s.generate(prompt="x", adapter_path=broken)[:2], 400, "invalid_adapter")
        self.assert_error(*s.request("POST", "/generate-lite", raw='{"prompt": "' + "a" * 70000 + '"}')[:2],
                          413, "payload_too_large")
        self.assert_error(*s.request("GET", "/nope")[:2], 404, "not_found")
        status, body, headers = s.request("GET", "/generate-lite")
        self.assert_error(status, body, 405, "method_not_allowed")
        self.assertEqual(headers.get("Allow"), "POST")
        self.assert_error(*s.request("DELETE", "/health")[:2], 405, "method_not_allowed")
        self.assertEqual(s.generate(prompt="still fine", max_new_tokens=3)[0], 200)


    def test_memory_stays_flat_over_many_requests(self):
        # Regression: per-request actor timeouts pinned heap pages (~5 KB per request).
        if os.environ.get("ADAPTERD_SANITIZED"):
            self.skipTest("under AddressSanitizer RSS includes its quarantine of freed memory; "
                          "memory flatness is measured in the plain build")
        def run(n):
            for _ in range(n):
                status, body, _ = self.server.generate(prompt="flat", max_new_tokens=8, temperature=0)
                self.assertEqual(status, 200, body)
            self.assertEqual(self.server.request("POST", "/cleanup-memory")[0], 200)
            return self.server.health()["process_rss_mb"]
        run(200)
        before = run(100)
        after = run(800)
        self.assertLess(after - before, 2.0, f"RSS grew from {before} to {after} MiB over 800 requests")


class PolicyTest(unittest.TestCase):
    def setUp(self):
        self.models = TempModels()

    def tearDown(self):
        self.assertTrue(all(code == 0 for code in self.models.close()))

    def test_unload_policy_reloads_every_request(self):
        server = self.models.server("--cleanup-policy=unload", "--lazy-load")
        self.assertFalse(server.health()["model"]["loaded"])
        for _ in range(2):
            status, body, _ = server.generate(prompt="reload", max_new_tokens=3)
            self.assertEqual(status, 200, body)
            self.assertGreater(body["timings"]["load_ms"], 0)
        h = server.health()
        self.assertEqual(h["counters"]["model_loads"], 2)
        self.assertFalse(h["model"]["loaded"])

    def test_slow_request_gets_a_timeout_and_the_server_goes_on(self):
        # One at a time, 16 requests of 1000 tokens (~0.2 s each here): the later ones wait
        # past --request-timeout in the queue, however fast the machine decodes one.
        server = self.models.server("--request-timeout=1", "--max-new-tokens-limit=1000", "--max-batch-size=1")
        results = [None] * 16
        def call(i):
            results[i] = server.generate(prompt="long 0", max_new_tokens=1000, temperature=0)
        threads = [threading.Thread(target=call, args=(i,)) for i in range(16)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        statuses = [r[0] for r in results]
        self.assertIn(504, statuses)
        self.assertTrue(set(statuses) <= {200, 504}, statuses)
        for status, body, _ in results:
            if status == 504:
                self.assertEqual(body["error"]["code"], "timeout")
        deadline = time.time() + 60
        while (server.health()["running"] or server.health()["queue_depth"]) and time.time() < deadline:
            time.sleep(0.1)
        self.assertEqual(server.health()["queue_depth"], 0, "timed-out requests left the queue")
        self.assertEqual(server.generate(prompt="short", max_new_tokens=2)[0], 200)

    def test_sigterm_finishes_in_flight_requests_and_refuses_new_ones(self):
        import http.client
        import signal
        server = self.models.server("--max-new-tokens-limit=1000", "--max-batch-size=1", "--shutdown-grace=60")
        results = []
        worker = threading.Thread(target=lambda: results.append(
            self._quiet(server.generate, prompt="long 0", max_new_tokens=1000, temperature=0)))
        keep_alive = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
        keep_alive.request("GET", "/health")
        keep_alive.getresponse().read()
        worker.start()
        deadline = time.time() + 10
        while not server.health()["running"] and time.time() < deadline:
            time.sleep(0.01)
        server.proc.send_signal(signal.SIGTERM)
        self.assertTrue(wait_for(lambda: "stopping on signal" in server.output(), 10), "the signal was taken")
        # A new request on an open connection is refused; the one in flight finishes.
        keep_alive.request("POST", "/generate-lite", body='{"prompt": "late"}', headers={"Content-Type": "application/json"})
        late = keep_alive.getresponse()
        self.assertEqual(late.status, 503)
        self.assertIn("shutting_down", late.read().decode())
        worker.join(timeout=60)
        self.assertFalse(worker.is_alive())
        status, body, _ = results[0]
        self.assertEqual(status, 200, body)
        self.assertEqual(body["tokens_generated"], 1000)
        self.assertEqual(server.proc.wait(timeout=30), 0)
        self.assertIn("in-flight ones have 60 s", server.output())

    def test_config_precedence_defaults_file_environment_command_line(self):
        ini = os.path.join(self.models.root, "precedence.ini")
        with open(ini, "w") as f:
            f.write("[global]\nmax-batch-size=4\nmax-queue=40\n")
        batch = lambda s: s.health()["batch"]
        self.assertEqual(batch(self.models.server())["max_batch_size"], 16)  # the default
        from_file = batch(self.models.server(f"--config-file={ini}"))
        self.assertEqual((from_file["max_batch_size"], from_file["max_queue"]), (4, 40))
        env = {"ADAPTERD_MAX_BATCH_SIZE": "3"}
        from_env = batch(self.models.server(f"--config-file={ini}", env=env))
        self.assertEqual((from_env["max_batch_size"], from_env["max_queue"]), (3, 40))
        from_cli = batch(self.models.server(f"--config-file={ini}", "--max-batch-size=2", env=env))
        self.assertEqual(from_cli["max_batch_size"], 2)

    def test_help_lists_every_option(self):
        import subprocess
        from server import BIN
        proc = subprocess.run([BIN, "--help"], capture_output=True, text=True, timeout=30)
        self.assertEqual(proc.returncode, 0)
        for option in ("host", "port", "model", "model-roots", "adapter-roots", "device", "dtype", "threads",
                       "cleanup-policy", "lazy-load", "max-new-tokens-limit", "max-body-bytes", "max-connections", "tokenizer-threads", "gpu-budget-mb",
                       "cpu-budget-mb", "kv-reserve-tokens", "max-models", "flush-slack-mb", "idle-unload-after",
                       "request-timeout", "max-batch-size", "max-queue", "max-prefill-tokens", "log-level", "role",
                       "node-host", "node-port", "node-name", "node-secret-file", "workers", "join", "advertise",
                       "node-poll-ms", "api-keys-file", "admin-keys-file", "adapters", "shutdown-grace", "data-roots",
                       "trained-adapters-dir", "train-share", "fault-activation-limit-kb"):
            self.assertIn(f"--{option}", proc.stdout, option)

    @staticmethod
    def _quiet(call, **kwargs):
        try:
            return call(**kwargs)
        except OSError as e:  # the connection may close without an answer
            return e

    def test_bad_command_line_is_refused(self):
        import subprocess
        from server import BIN
        for args in (["--cleanup-policy=sometimes"], ["--device=tpu"], ["--port=notaport"], ["--dtype=int4"]):
            proc = subprocess.run([BIN, *args], capture_output=True, text=True, timeout=30)
            self.assertNotEqual(proc.returncode, 0, args)
            self.assertIn("adapterd:", proc.stderr)

    @unittest.skipIf(DEVICE != "cpu", "the decode kernels' pool exists only where the model runs on the CPU")
    def test_threads_option_sizes_the_decode_kernels_pool(self):
        # --threads=1 (every e2e server's) must leave the kernels no helper threads; with
        # --threads=2 they get one. Two workers on one machine with --threads=1 each had
        # spun two threads each before this was fixed.
        def kernel_helpers(server):
            status, body, _ = server.generate(prompt="count", max_new_tokens=2)
            self.assertEqual(status, 200, body)
            tasks = f"/proc/{server.proc.pid}/task"
            names = []
            for t in os.listdir(tasks):
                try:
                    with open(f"{tasks}/{t}/comm") as f:
                        names.append(f.read().strip())
                except OSError:
                    pass
            return names.count("adapterd-kernel")
        self.assertEqual(kernel_helpers(self.models.server()), 0)
        two = self.models.server("--threads=2")
        self.assertEqual(kernel_helpers(two), 1)

    def test_missing_default_model_fails_at_start(self):
        import subprocess
        from server import BIN
        proc = subprocess.run([BIN, "--port=0", "--model=/nonexistent/model"], capture_output=True,
                              text=True, timeout=30)
        self.assertEqual(proc.returncode, 1)
        self.assertIn("cannot load the default model", proc.stdout + proc.stderr)


if __name__ == "__main__":
    unittest.main()
