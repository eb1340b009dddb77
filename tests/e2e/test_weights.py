"""End to end: the weight formats (--weights). A server holding its model as int8 or q4
reports the format and its smaller size, serves adapters unmerged, gives a request the
same tokens alone and in a mixed-adapter batch, and a format it cannot use is a clear
start-up error."""
import os
import shutil
import subprocess
import unittest
from concurrent.futures import ThreadPoolExecutor

from server import BIN, DEVICE, TempModels


@unittest.skipIf(DEVICE != "cpu", "the weight formats run on the CPU kernels")
class WeightsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.models = TempModels(adapters=2)

    @classmethod
    def tearDownClass(cls):
        codes = cls.models.close()
        assert all(code == 0 for code in codes), f"adapterd exited with {codes}"

    def fields(self, i):
        adapters = [None, self.models.adapter, self.models.adapter + "-1"]
        fields = dict(prompt=f"weights in {i} formats " * (1 + i % 3), max_new_tokens=10, temperature=0)
        if adapters[i % 3]:
            fields["adapter_path"] = adapters[i % 3]
        return fields

    def test_each_format_is_reported_smaller_and_serves_mixed_adapters_batch_invariantly(self):
        f32 = self.models.server("--weights=f32")
        f32_mb = f32.health()["model"]["weight_mb"]
        self.assertEqual(f32.health()["model"]["weights"], "f32")
        f32.stop()
        previous_mb = f32_mb
        for name in ("bf16", "int8", "q4"):
            with self.subTest(weights=name):
                server = self.models.server(f"--weights={name}", "--max-batch-size=8")
                health = server.health()
                self.assertEqual(health["model"]["weights"], name)
                # Smaller with every step down (the tiny model's down projection, 344 columns,
                # fills no whole 32-weight blocks and stays f32).
                self.assertLess(health["model"]["weight_mb"], previous_mb)
                previous_mb = health["model"]["weight_mb"]
                models = [r for r in health["memory"]["resident"] if r["kind"] == "model"]
                self.assertEqual([r["weights"] for r in models], [name])
                alone = [server.generate(**self.fields(i)) for i in range(6)]
                with ThreadPoolExecutor(max_workers=6) as pool:
                    together = list(pool.map(lambda i: server.generate(**self.fields(i)), range(6)))
                batched = 0
                for (s1, b1, _), (s2, b2, _) in zip(alone, together):
                    self.assertEqual(s1, 200, b1)
                    self.assertEqual(s2, 200, b2)
                    self.assertEqual(b2["generated_text"], b1["generated_text"])
                    batched = max(batched, b2["batch_size_max"])
                self.assertGreater(batched, 1, "concurrent requests shared decode steps")
                # The adapter changes the output, as on the f32 base.
                base = server.generate(prompt="an adapter on a quantised base", max_new_tokens=10, temperature=0)
                tuned = server.generate(prompt="an adapter on a quantised base", max_new_tokens=10, temperature=0,
                                        adapter_path=self.models.adapter)
                self.assertNotEqual(base[1]["generated_text"], tuned[1]["generated_text"])
                # Greedy: at the API's default temperature 1 the tiny model can sample its
                # end-of-sequence token and stop early (one suite run in many gave 1 of 4).
                status, body, _ = server.request("POST", "/v1/completions",
                                                 {"model": "tiny-llama", "prompt": "hello", "max_tokens": 4,
                                                  "temperature": 0})
                self.assertEqual(status, 200, body)
                self.assertEqual(body["usage"]["completion_tokens"], 4)
                server.stop()

    def test_a_bf16_kv_cache_halves_the_reserve_and_serves(self):
        fp32 = self.models.server("--weights=int8")
        fp32_kv = fp32.health()["memory"]["kv_reserve_mb"]
        self.assertEqual(fp32.health()["model"]["kv_dtype"], "float32")
        fp32.stop()
        server = self.models.server("--weights=int8", "--kv-dtype=bfloat16")
        health = server.health()
        self.assertEqual(health["model"]["kv_dtype"], "bfloat16")
        self.assertAlmostEqual(health["memory"]["kv_reserve_mb"] * 2, fp32_kv, delta=0.02)
        status, body, _ = server.generate(prompt="a bf16 cache", max_new_tokens=8, temperature=0,
                                          adapter_path=self.models.adapter)
        self.assertEqual(status, 200, body)
        self.assertEqual(body["tokens_generated"], 8)
        server.stop()

    def test_a_model_named_in_model_weights_gets_its_own_format(self):
        second = os.path.join(self.models.root, "second-llama")
        if not os.path.isdir(second):
            shutil.copytree(self.models.model, second)
        server = self.models.server("--weights=int8", "--model-weights=second-llama=q4", "--max-models=2")
        self.assertEqual(server.health()["model"]["weights"], "int8")
        status, body, _ = server.generate(prompt="another model", max_new_tokens=4, temperature=0,
                                          base_model="second-llama")
        self.assertEqual(status, 200, body)
        resident = {os.path.basename(r["path"]): r["weights"]
                    for r in server.health()["memory"]["resident"] if r["kind"] == "model"}
        self.assertEqual(resident, {"tiny-llama": "int8", "second-llama": "q4"})
        status, body, _ = server.request("GET", "/v1/models")
        self.assertEqual(status, 200, body)
        listed = {m["id"]: m.get("weights") for m in body["data"] if m.get("weights")}
        self.assertEqual(listed.get("second-llama"), "q4", body)
        server.stop()

    def test_a_format_it_cannot_use_is_a_start_up_error(self):
        for flags, message in ((["--weights=q3_k"], "--weights must be auto, f32, bf16, int8 or q4"),
                               (["--kv-dtype=int4"], "--kv-dtype must be auto, float32 or bfloat16"),
                               (["--weights=int8", "--device=cuda"], "cannot go with --device=cuda"),
                               (["--model-weights=tiny-llama"], "'tiny-llama' is not MODEL=FORMAT"),
                               (["--model-weights=tiny-llama=q5"], "--model-weights tiny-llama must be auto"),
                               (["--model-weights=nowhere=q4"], "'nowhere' is not a model directory")):
            with self.subTest(flags=flags):
                proc = subprocess.run([BIN, "--port=0", f"--model={self.models.model}", *flags],
                                      capture_output=True, text=True, timeout=60)
                self.assertNotEqual(proc.returncode, 0)
                self.assertIn(message, proc.stdout + proc.stderr)


if __name__ == "__main__":
    unittest.main()
