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
