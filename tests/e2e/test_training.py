"""End to end: LoRA training jobs in the service. A job runs while generation requests are
served and both finish; the adapter is servable at once; cancel and failure are states."""
import os
import shutil
import threading
import time
import unittest

from server import TempModels, wait_for

ADMIN = {"Content-Type": "application/json", "Authorization": "Bearer training-admin-key"}
USER = {"Content-Type": "application/json", "Authorization": "Bearer training-user-key"}


def write_dataset(path, lines):
    with open(path, "w") as f:
        for i in range(lines):
            f.write(f"Zippy says: YOW! Are we having FUN yet, number {i}?\n%\n")


class TrainingTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.models = TempModels(adapters=1)
        root = cls.models.root
        cls.data = os.path.join(root, "data")
        os.makedirs(cls.data)
        write_dataset(os.path.join(cls.data, "zippy.txt"), 200)
        with open(os.path.join(cls.data, "tiny.txt"), "w") as f:
            f.write("too short\n")
        env = {"ADAPTERD_API_KEYS": "training-user-key", "ADAPTERD_ADMIN_KEYS": "training-admin-key"}
        cls.server = cls.models.server(f"--data-roots={cls.data}", "--max-new-tokens-limit=200", env=env)

    @classmethod
    def tearDownClass(cls):
        codes = cls.models.close()
        assert all(code == 0 for code in codes), f"adapterd exited with {codes}"

    def call(self, method, path, body=None, headers=ADMIN):
        return self.server.request(method, path, body, headers=headers)

    def job(self, job_id):
        status, body, _ = self.call("GET", f"/jobs/{job_id}", headers=USER)
        self.assertEqual(status, 200, body)
        return body

    def test_a_job_runs_while_generation_is_served_and_both_finish(self):
        status, job, headers = self.call("POST", "/adapters/train", {
            "dataset": "zippy.txt", "id": "zippy", "steps": 60, "batch_size": 2, "seq_len": 32, "seed": 3,
            "target_modules": ["q_proj", "v_proj", "down_proj"], "learning_rate": 0.005})
        self.assertEqual(status, 202, job)
        self.assertEqual(headers["Location"], f"/jobs/{job['id']}")
        self.assertIn(job["state"], ("queued", "running"))
        results, seen_active = [], []

        def generate(i):
            results.append(self.call("POST", "/generate-lite", {"prompt": f"meanwhile {i}", "max_new_tokens": 40,
                                                                "temperature": 0}, headers=USER))
        threads = [threading.Thread(target=generate, args=(i,)) for i in range(6)]
        for t in threads:
            t.start()
        while any(t.is_alive() for t in threads):
            seen_active.append(self.server.health()["active_jobs"])
            time.sleep(0.05)
        for t in threads:
            t.join()
        self.assertTrue(all(s == 200 for s, _, _ in results), results)
        self.assertTrue(wait_for(lambda: self.job(job["id"])["state"] == "succeeded", 120), self.job(job["id"]))
        done = self.job(job["id"])
        self.assertEqual(done["step"], 60)
        self.assertTrue(done["adapter_path"].endswith("/zippy"))
        self.assertGreater(max(seen_active), 0, "the job counted in /health's active_jobs")
        self.assertEqual(self.server.health()["training_jobs"], 0)
        # Servable at once, under its id, and it changed the model.
        s1, tuned, _ = self.call("POST", "/v1/completions", {"model": "zippy", "prompt": "Zippy says:",
                                                             "max_tokens": 12, "temperature": 0}, headers=USER)
        s2, base, _ = self.call("POST", "/v1/completions", {"prompt": "Zippy says:", "max_tokens": 12,
                                                            "temperature": 0}, headers=USER)
        self.assertEqual((s1, s2), (200, 200), (tuned, base))
        self.assertNotEqual(tuned["choices"][0]["text"], base["choices"][0]["text"])
        self.assertIn("zippy", [a["id"] for a in self.call("GET", "/adapters", headers=USER)[1]["adapters"]])

    def test_retraining_an_id_serves_the_new_weights_from_the_first_token(self):
        prompt = "Zippy says: YOW! " * 12  # several whole KV blocks, cached after one request

        def train(steps, learning_rate):
            status, job, _ = self.call("POST", "/adapters/train", {
                "dataset": "zippy.txt", "id": "again", "steps": steps, "batch_size": 2, "seq_len": 32,
                "seed": 5, "learning_rate": learning_rate})
            self.assertEqual(status, 202, job)
            self.assertTrue(wait_for(lambda: self.job(job["id"])["state"] == "succeeded", 120), self.job(job["id"]))
            return self.job(job["id"])["adapter_path"]

        def complete(model):
            status, body, _ = self.call("POST", "/v1/completions", {"model": model, "prompt": prompt, "max_tokens": 12,
                                                                   "temperature": 0}, headers=USER)
            self.assertEqual(status, 200, body)
            return body

        path = train(1, 1e-6)
        complete("again")
        before = complete("again")
        self.assertGreater(before["usage"]["prompt_tokens_details"]["cached_tokens"], 0)
        train(60, 0.005)  # the same id and directory, other weights
        after = complete("again")
        self.assertEqual(after["usage"]["prompt_tokens_details"]["cached_tokens"], 0,
                         "no KV block computed under the old weights")
        self.assertNotEqual(after["choices"][0]["text"], before["choices"][0]["text"])
        # the new weights under another id give the same tokens
        copy = path + "-copy"
        shutil.copytree(path, copy)
        status, body, _ = self.call("POST", "/adapters", {"id": "again-copy", "path": copy})
        self.assertEqual(status, 200, body)
        self.assertEqual(complete("again-copy")["choices"][0]["text"], after["choices"][0]["text"])

    def test_cancel_and_failure_are_states_with_reasons(self):
        status, long_job, _ = self.call("POST", "/adapters/train", {"dataset": "zippy.txt", "steps": 100000,
                                                                    "batch_size": 1, "seq_len": 16})
        self.assertEqual(status, 202, long_job)
        self.assertTrue(wait_for(lambda: self.job(long_job["id"])["step"] > 0, 30))
        self.assertEqual(self.call("DELETE", f"/jobs/{long_job['id']}", headers=USER)[0], 403)  # admin only
        status, cancelled, _ = self.call("DELETE", f"/jobs/{long_job['id']}")
        self.assertEqual((status, cancelled["state"]), (200, "cancelled"), cancelled)
        status, failing, _ = self.call("POST", "/adapters/train", {"dataset": "tiny.txt", "steps": 5})
        self.assertEqual(status, 202, failing)
        self.assertTrue(wait_for(lambda: self.job(failing["id"])["state"] == "failed", 30))
        self.assertIn("tokens", self.job(failing["id"])["error"])
        listed = [j["id"] for j in self.call("GET", "/jobs", headers=USER)[1]["jobs"]]
        self.assertIn(long_job["id"], listed)
        self.assertIn(failing["id"], listed)
        self.assertEqual(self.server.health()["status"], "healthy")

    def test_bad_training_requests_are_refused(self):
        for body, code in (({}, "missing_field"),
                           ({"dataset": "/etc/passwd"}, "bad_request"),
                           ({"dataset": "zippy.txt", "target_modules": ["qkv"]}, "bad_request"),
                           ({"dataset": "zippy.txt", "steps": 0}, "bad_request"),
                           ({"dataset": "zippy.txt", "id": "no spaces"}, "bad_request"),
                           ({"dataset": "zippy.txt", "r": "eight"}, "invalid_type"),
                           ({"dataset": "zippy.txt", "base_model": "nope"}, "unknown_model")):
            status, reply, _ = self.call("POST", "/adapters/train", body)
            self.assertEqual(status, 400, (body, reply))
            self.assertEqual(reply["error"]["code"], code, body)
        self.assertEqual(self.call("POST", "/adapters/train", {"dataset": "zippy.txt"}, headers=USER)[0], 403)
        status, reply, _ = self.call("GET", "/jobs/job-999", headers=USER)
        self.assertEqual((status, reply["error"]["code"]), (404, "job_not_found"))


if __name__ == "__main__":
    unittest.main()
