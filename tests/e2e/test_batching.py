"""End to end: continuous batching, streaming, cancellation, timeouts and overload."""
import http.client
import json
import socket
import threading
import time
import unittest
from concurrent.futures import ThreadPoolExecutor

from server import TempModels, wait_for


def sse_events(resp):
    """Yields (event, data) pairs from a text/event-stream response as they arrive."""
    event, data = "message", []
    while True:
        line = resp.readline()
        if not line:
            return
        line = line.decode("utf-8").rstrip("\r\n")
        if line == "":
            if data:
                yield event, json.loads("\n".join(data))
            event, data = "message", []
        elif line.startswith("event: "):
            event = line[7:]
        elif line.startswith("data: "):
            data.append(line[6:])


def open_stream(server, **fields):
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    conn.request("POST", "/generate-lite", body=json.dumps({**fields, "stream": True}),
                 headers={"Content-Type": "application/json"})
    return conn, conn.getresponse()


class BatchingTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.models = TempModels(adapters=3)
        cls.server = cls.models.server("--max-new-tokens-limit=1000", "--max-batch-size=8")

    @classmethod
    def tearDownClass(cls):
        codes = cls.models.close()
        assert all(code == 0 for code in codes), f"adapterd exited with {codes}"

    def adapter(self, i):
        return None if i == 0 else (self.models.adapter if i == 1 else f"{self.models.adapter}-{i - 1}")

    def request_fields(self, i):
        fields = dict(prompt=f"prompt number {i} " * (1 + i % 4), max_new_tokens=12 + i % 5, temperature=0)
        if self.adapter(i % 4):
            fields["adapter_path"] = self.adapter(i % 4)
        return fields

    def test_greedy_tokens_do_not_depend_on_the_batch(self):
        alone = [self.server.generate(**self.request_fields(i)) for i in range(8)]
        for status, body, _ in alone:
            self.assertEqual(status, 200, body)
            self.assertEqual(body["batch_size_max"], 1)
        with ThreadPoolExecutor(max_workers=8) as pool:
            together = list(pool.map(lambda i: self.server.generate(**self.request_fields(i)), range(8)))
        batched = 0
        for (s1, b1, _), (s2, b2, _) in zip(alone, together):
            self.assertEqual(s2, 200, b2)
            self.assertEqual(b2["generated_text"], b1["generated_text"], "same text alone and in a batch")
            self.assertEqual(b2["tokens_generated"], b1["tokens_generated"])
            self.assertEqual(b2["adapter"], b1["adapter"])
            batched = max(batched, b2["batch_size_max"])
        self.assertGreater(batched, 1, "concurrent requests shared decode steps")
        self.assertGreater(self.server.health()["batch"]["steps"], 0)

    def test_streaming_sends_text_as_events_and_a_summary(self):
        fields = dict(prompt="stream me", max_new_tokens=24, temperature=0, adapter_path=self.adapter(1))
        _, whole, _ = self.server.generate(**fields)
        conn, resp = open_stream(self.server, **fields)
        self.assertEqual(resp.status, 200)
        self.assertEqual(resp.getheader("Content-Type"), "text/event-stream")
        self.assertTrue(resp.getheader("X-Request-Id"))
        chunks, summary = [], None
        for event, data in sse_events(resp):
            if event == "done":
                summary = data
                break
            self.assertEqual(event, "message")
            chunks.append(data)
        conn.close()
        self.assertGreater(len(chunks), 1, "more than one event")
        self.assertEqual("".join(c["text"] for c in chunks), whole["generated_text"])
        self.assertEqual(summary["generated_text"], whole["generated_text"])
        self.assertEqual(summary["tokens_generated"], whole["tokens_generated"])
        self.assertEqual([c["tokens"] for c in chunks], sorted(c["tokens"] for c in chunks))

    def test_streaming_with_stop_strings_never_sends_the_stop(self):
        fields = dict(prompt="stop here", max_new_tokens=40, temperature=0)
        _, whole, _ = self.server.generate(**fields)
        text = whole["generated_text"]
        self.assertGreater(len(text), 6)
        stop = text[3:6]
        _, cut, _ = self.server.generate(**fields, stop=[stop])
        self.assertEqual(cut["finish_reason"], "stop")
        conn, resp = open_stream(self.server, **fields, stop=[stop])
        events = list(sse_events(resp))
        conn.close()
        streamed = "".join(d["text"] for e, d in events if e == "message")
        self.assertEqual(streamed, cut["generated_text"])
        self.assertNotIn(stop, streamed)
        self.assertEqual(events[-1][0], "done")

    def test_streams_with_the_same_request_id_keep_their_own_text(self):
        fields = [dict(prompt=f"twin {i} " * (i + 1), max_new_tokens=30, temperature=0) for i in range(2)]
        expected = [self.server.generate(**f)[1]["generated_text"] for f in fields]
        self.assertNotEqual(expected[0], expected[1])
        streamed = [None, None]

        def stream(i):
            conn = http.client.HTTPConnection("127.0.0.1", self.server.port, timeout=60)
            conn.request("POST", "/generate-lite", body=json.dumps({**fields[i], "stream": True}),
                         headers={"Content-Type": "application/json", "X-Request-Id": "same-id"})
            events = list(sse_events(conn.getresponse()))
            conn.close()
            streamed[i] = "".join(d["text"] for e, d in events if e == "message")

        threads = [threading.Thread(target=stream, args=(i,)) for i in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        self.assertEqual(streamed, expected)

    def test_streaming_error_before_text_is_plain_json(self):
        conn, resp = open_stream(self.server, prompt="x", adapter_path="/etc")
        body = json.loads(resp.read())
        conn.close()
        self.assertEqual(resp.status, 403)
        self.assertEqual(body["error"]["code"], "adapter_forbidden")

    def test_client_that_disconnects_mid_stream_is_cancelled(self):
        before = self.server.health()["batch"]["cancelled"]
        conn, resp = open_stream(self.server, prompt="long story", max_new_tokens=1000, temperature=0)
        events = sse_events(resp)
        next(events)  # the first text arrived: it is running
        conn.sock.shutdown(socket.SHUT_RDWR)
        conn.close()
        self.assertTrue(wait_for(lambda: self.server.health()["batch"]["cancelled"] == before + 1))
        self.assertTrue(wait_for(lambda: self.server.health()["running"] == 0))
        h = self.server.health()
        self.assertEqual(h["status"], "healthy")
        self.assertEqual(h["batch"]["kv_pool_tokens"], 4096)  # --kv-reserve-tokens' default
        self.assertEqual(h["batch"]["kv_pool_used_tokens"], 0, "its KV range was given back")
        self.assertEqual(self.server.generate(prompt="still here", max_new_tokens=2)[0], 200)

    def test_per_request_timeout(self):
        # The timeout is a quarter of how long this prompt's greedy generation takes here,
        # so the test holds however fast the machine decodes.
        runs = [self.server.generate(prompt=f"slow {i}", max_new_tokens=1000, temperature=0) for i in range(8)]
        longest = max(runs, key=lambda r: r[1]["timings"]["generate_ms"])[1]
        self.assertGreater(longest["tokens_generated"], 40, longest)
        prompt = f"slow {[r[1]['request_id'] for r in runs].index(longest['request_id'])}"
        timeout_s = longest["timings"]["generate_ms"] / 4 / 1000
        status, body, _ = self.server.generate(prompt=prompt, max_new_tokens=1000, temperature=0,
                                               timeout_s=timeout_s)
        self.assertEqual(status, 504, body)
        self.assertEqual(body["error"]["code"], "timeout")
        self.assertIn("timeout_s", body["error"]["message"])
        self.assertTrue(wait_for(lambda: self.server.health()["running"] == 0))
        status, body, _ = self.server.generate(prompt="x", max_new_tokens=2, timeout_s=-1)
        self.assertEqual(status, 400, body)
        self.assertEqual(self.server.generate(prompt="fast", max_new_tokens=2, timeout_s=30)[0], 200)


class QueueTest(unittest.TestCase):
    """One sequence at a time and a short queue, so that waiting is easy to arrange."""
    def setUp(self):
        self.models = TempModels()
        self.server = self.models.server("--max-new-tokens-limit=1000", "--max-batch-size=1", "--max-queue=2")

    def tearDown(self):
        self.assertTrue(all(code == 0 for code in self.models.close()))

    def long_request(self, results, i, server=None):
        results[i] = (server or self.server).generate(prompt=f"long {i}", max_new_tokens=1000,
                                                      temperature=0)

    def test_client_that_disconnects_while_queued_is_never_run(self):
        # Six long requests ahead of it (one running, five queued) leave it queued for a
        # while: ~0.2 s each here, so its own server with a longer queue. It is queued while
        # the requests seen (queued, running or served) number 7 and an earlier one is still
        # unserved: arrival order puts it after all six, however fast they are decoded.
        server = self.models.server("--max-new-tokens-limit=1000", "--max-batch-size=1",
                                    "--max-queue=8")
        def seen():
            h = server.health()
            return h["queue_depth"] + h["running"] + h["counters"]["requests_served"], h
        results = {}
        ahead = [threading.Thread(target=self.long_request, args=(results, i, server)) for i in range(6)]
        for i, t in enumerate(ahead):
            t.start()
            self.assertTrue(wait_for(lambda: seen()[0] >= i + 1))
        raw = socket.create_connection(("127.0.0.1", server.port))
        body = json.dumps({"prompt": "never mind", "max_new_tokens": 5}).encode()
        raw.sendall(b"POST /generate-lite HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                    + f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
        def queued():
            count, h = seen()
            return count >= 7 and h["counters"]["requests_served"] < 6
        self.assertTrue(wait_for(queued))
        raw.close()
        self.assertTrue(wait_for(lambda: server.health()["batch"]["cancelled"] == 1))
        for t in ahead:
            t.join(timeout=120)
        self.assertEqual([results[i][0] for i in range(6)], [200] * 6)
        h = server.health()
        self.assertEqual(h["counters"]["requests_served"], 6, "the cancelled request never ran")
        self.assertEqual(h["queue_depth"], 0)

    def test_queued_request_times_out_with_its_own_timeout(self):
        results = {}
        first = threading.Thread(target=self.long_request, args=(results, 0))
        first.start()
        self.assertTrue(wait_for(lambda: self.server.health()["running"] == 1))
        status, body, _ = self.server.generate(prompt="impatient", max_new_tokens=2, timeout_s=0.03)
        self.assertEqual(status, 504, body)
        self.assertIn("queued", body["error"]["message"])
        first.join(timeout=120)
        self.assertEqual(results[0][0], 200)

    def test_full_queue_answers_429_with_retry_after(self):
        results = [None] * 8
        def call(i):
            results[i] = self.server.generate(prompt=f"crowd {i}", max_new_tokens=200, temperature=0)
        threads = [threading.Thread(target=call, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        statuses = sorted(r[0] for r in results)
        self.assertIn(429, statuses)
        self.assertIn(200, statuses)
        self.assertTrue(set(statuses) <= {200, 429}, statuses)
        for status, body, headers in results:
            if status == 429:
                self.assertEqual(body["error"]["code"], "overloaded")
                self.assertEqual(headers.get("Retry-After"), "1")
        h = self.server.health()
        self.assertEqual(h["batch"]["rejected"], statuses.count(429))
        self.assertEqual(h["batch"]["max_queue"], 2)
        self.assertEqual(self.server.generate(prompt="after", max_new_tokens=2)[0], 200)


class LoadTest(unittest.TestCase):
    def test_2000_requests_at_concurrency_64_are_all_answered(self):
        models = TempModels(adapters=2)
        try:
            server = models.server("--max-batch-size=16", "--max-queue=16")
            adapters = [None, models.adapter, models.adapter + "-1"]
            deadline = time.time() + 300  # bounded in time as well as in count

            def call(i):
                if time.time() > deadline:
                    return None
                fields = dict(prompt=f"load {i} " * (1 + i % 6), max_new_tokens=1 + i % 8, temperature=0)
                if adapters[i % 3]:
                    fields["adapter_path"] = adapters[i % 3]
                return server.generate(**fields)[0]

            with ThreadPoolExecutor(max_workers=64) as pool:
                statuses = list(pool.map(call, range(2000)))
            counts = {s: statuses.count(s) for s in set(statuses)}
            print(f"\n2000 requests at concurrency 64, --max-queue=16: {counts}")
            self.assertNotIn(None, counts, "finished within the time bound")
            self.assertTrue(set(counts) <= {200, 429}, counts)
            self.assertGreater(counts.get(200, 0), 0)
            h = server.health()
            self.assertEqual(h["status"], "healthy")
            self.assertTrue(wait_for(lambda: server.health()["running"] == 0 and server.health()["queue_depth"] == 0))
            self.assertEqual(server.generate(prompt="after the storm", max_new_tokens=4)[0], 200)
            self.assertEqual(server.health()["counters"]["model_loads"], 1)
        finally:
            self.assertTrue(all(code == 0 for code in models.close()))


if __name__ == "__main__":
    unittest.main()
