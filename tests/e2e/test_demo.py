"""End to end: the README's run command serves the trained demo model, which answers with
recognisable text, and its two adapters visibly change the style of the same prompt."""
import unittest

from server import Server, TempModels


class DemoTest(unittest.TestCase):
    def test_the_default_model_writes_fortunes_and_the_adapters_change_their_style(self):
        server = Server(None, None)  # build/adapterd from the repository: config/adapterd.ini
        try:
            def complete(model):
                status, body, _ = server.request("POST", "/v1/completions", {
                    "model": model, "prompt": "The meaning of life is", "max_tokens": 40, "temperature": 0})
                self.assertEqual(status, 200, body)
                return body["choices"][0]["text"]
            base, zippy, tao = complete("fortune-llama"), complete("zippy"), complete("tao")
            print(f"\n  base:  {base!r}\n  zippy: {zippy!r}\n  tao:   {tao!r}")
            self.assertEqual(server.health()["model"]["path"], "models/demo/fortune-llama")
            # Recognisable text: English words, and a fortune's attribution.
            words = [w.strip(".,;!'") for w in base.split()]
            self.assertGreaterEqual(sum(w.lower() in ("a", "of", "the", "is", "and", "world", "life") for w in words), 2, base)
            self.assertIn("--", base)
            # The adapters' styles: Zippy shouts in capitals, the Tao speaks in short lines.
            self.assertEqual(len({base, zippy, tao}), 3)
            capitals = sum(c.isupper() for c in zippy) / max(1, sum(c.isalpha() for c in zippy))
            self.assertGreater(capitals, 0.5, zippy)
            self.assertGreaterEqual(tao.count("\n"), 2, tao)
        finally:
            self.assertEqual(server.stop(), 0)


class EndOfSequenceTest(unittest.TestCase):
    """vLLM's ignore_eos and min_tokens, which benchmarks send: a fortune ends with the
    end-of-sequence token, and both fields carry generation past it, on every route."""

    @classmethod
    def setUpClass(cls):
        cls.server = Server(None, None)

    @classmethod
    def tearDownClass(cls):
        assert cls.server.stop() == 0

    def generate(self, **more):
        status, body, _ = self.server.generate(prompt="The meaning of life is", max_new_tokens=120,
                                               temperature=0, **more)
        self.assertEqual(status, 200, body)
        return body

    def test_ignore_eos_and_min_tokens_carry_generation_past_the_end_of_a_fortune(self):
        plain = self.generate()
        self.assertEqual(plain["finish_reason"], "eos", plain)
        ended_at = plain["tokens_generated"]
        self.assertLess(ended_at, 100)
        ignored = self.generate(ignore_eos=True)
        self.assertEqual((ignored["finish_reason"], ignored["tokens_generated"]), ("length", 120), ignored)
        self.assertTrue(ignored["generated_text"].startswith(plain["generated_text"]))
        at_least = self.generate(min_tokens=ended_at + 10)
        self.assertGreaterEqual(at_least["tokens_generated"], ended_at + 10, at_least)
        self.assertEqual(self.generate(min_tokens=ended_at - 1)["generated_text"], plain["generated_text"])  # the EOS is token ended_at
        status, body, _ = self.server.request("POST", "/v1/completions", {
            "model": "fortune-llama", "prompt": "The meaning of life is", "max_tokens": 120,
            "temperature": 0, "ignore_eos": True})
        self.assertEqual(status, 200, body)
        self.assertEqual((body["choices"][0]["finish_reason"], body["usage"]["completion_tokens"]),
                         ("length", 120), body)

    def test_bad_values_are_refused_by_name(self):
        for fields, name in (({"ignore_eos": "yes"}, "ignore_eos"), ({"min_tokens": -1}, "min_tokens"),
                             ({"min_tokens": 121}, "min_tokens"), ({"min_tokens": 1.5}, "min_tokens")):
            with self.subTest(fields=fields):
                status, body, _ = self.server.generate(prompt="hi", max_new_tokens=120, **fields)
                self.assertEqual(status, 400, body)
                self.assertIn(name, body["error"]["message"])
        status, body, _ = self.server.request("POST", "/v1/chat/completions", {
            "model": "fortune-llama", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 5,
            "min_tokens": 6})
        self.assertEqual(status, 400, body)
        self.assertIn("min_tokens", body["error"]["message"])


if __name__ == "__main__":
    unittest.main()


class OwnModelTest(unittest.TestCase):
    def test_model_dir_from_the_checkout_starts_whatever_the_config_preloads(self):
        """README: "to serve your own model, pass --model=DIR". config/adapterd.ini preloads
        the demo's adapters, which do not fit another model: a warning, not a refusal."""
        models = TempModels()
        server = Server(None, None, f"--model={models.model}")
        try:
            status, body, _ = server.generate(prompt="hi", max_new_tokens=3, temperature=0)
            self.assertEqual(status, 200, body)
            self.assertEqual(body["model"], "tiny-llama")
            self.assertIn("adapter 'zippy'", server.output())
            self.assertIn("is not registered", server.output())
            status, body, _ = server.generate(prompt="hi", max_new_tokens=3, adapter_path="zippy")
            self.assertEqual((status, body["error"]["code"]), (400, "adapter_not_found"), body)
        finally:
            self.assertEqual(server.stop(), 0)
            models.close()
