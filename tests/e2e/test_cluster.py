"""End to end: a router and two workers as separate processes on loopback ports. Routing by
affinity and load, failover when a worker is killed with SIGKILL under load, its rejoin,
refusal of nodes with the wrong secret, /health and /cleanup-memory through the router."""
import json
import os
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import unittest
from concurrent.futures import ThreadPoolExecutor

from server import BIN, REPO, Server, TempModels, wait_for
from test_batching import open_stream, sse_events

SECRET = "e2e-cluster-secret-0123456789"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_certs(directory, *nodes):
    """A cluster CA and node certificates, made by scripts/make-node-certs."""
    subprocess.run(["bash", os.path.join(REPO, "scripts", "make-node-certs"), directory, *nodes], check=True,
                   stdout=subprocess.DEVNULL)
    return directory


def tls_args(directory, node):
    return [f"--node-cert={directory}/{node}.cert.pem", f"--node-key={directory}/{node}.key.pem",
            f"--node-ca={directory}/ca.pem"]


class Cluster:
    """Workers and a router over one set of tiny models, sharing a secret file and a CA."""
    def __init__(self, models):
        self.models = models
        self.secret_file = os.path.join(models.root, "secret")
        with open(self.secret_file, "w") as f:
            f.write(SECRET + "\n")
        self.certs = make_certs(os.path.join(models.root, "certs"), "router", "worker")

    def tls(self, node):
        return tls_args(self.certs, node)

    def worker(self, name, node_port=0, *extra, secret_file=None, wrap=None):
        return self.models.server("--role=worker", f"--node-name={name}", f"--node-port={node_port}",
                                  f"--node-secret-file={secret_file or self.secret_file}",
                                  f"--data-roots={self.models.root}", *self.tls("worker"), *extra, wrap=wrap)

    def router(self, workers, *extra, addresses=None):
        addresses = addresses or ",".join(f"127.0.0.1:{w.node_port}" for w in workers)
        return self.models.server("--role=router", f"--workers={addresses}", "--node-poll-ms=100",
                                  f"--node-secret-file={self.secret_file}", *self.tls("router"), *extra)


def nodes_by_name(router):
    return {n["name"]: n for n in router.health()["nodes"]}


def all_up(router, count):
    nodes = router.health()["nodes"]
    return sum(1 for n in nodes if n["state"] == "up" and n["last_seen_ms_ago"] is not None) == count


class ClusterTest(unittest.TestCase):
    # The tests share one cluster, and killing a worker comes last: the order is stated
    # here (load_tests below), never left to the alphabet.
    ORDER = ["test_router_health_lists_nodes_and_workers_serve_only_health", "test_affinity_then_load",
             "test_cleanup_fans_out", "test_the_new_api_works_through_the_router",
             "test_training_jobs_through_the_router", "test_a_client_that_goes_away_is_cancelled_on_its_worker",
             "test_strangers_on_a_node_port_do_not_cut_its_links",
             "test_kill_a_worker_under_load"]

    @classmethod
    def setUpClass(cls):
        cls.models = TempModels(adapters=2)
        cls.cluster = Cluster(cls.models)
        common = ("--max-batch-size=2", "--max-new-tokens-limit=1000")
        cls.w1 = cls.cluster.worker("w1", 0, *common)  # node port 0: each logs the one it got
        cls.w2 = cls.cluster.worker("w2", 0, *common)
        cls.router = cls.cluster.router([cls.w1, cls.w2], "--max-new-tokens-limit=1000")
        assert wait_for(lambda: all_up(cls.router, 2)), cls.router.output()

    @classmethod
    def tearDownClass(cls):
        codes = cls.models.close()
        # The killed worker's -9 is expected; every other process exits cleanly.
        assert all(code in (0, -9) for code in codes), f"adapterd exited with {codes}"

    def ensure_up(self):
        self.assertTrue(wait_for(lambda: all_up(self.router, 2), 30), self.router.output()[-3000:])

    def test_router_health_lists_nodes_and_workers_serve_only_health(self):
        self.ensure_up()
        h = self.router.health()
        self.assertEqual(h["role"], "router")
        self.assertEqual(h["status"], "healthy")
        for key in ("timestamp", "active_jobs", "gpu_available", "gpu_memory"):  # the seed's shape
            self.assertIn(key, h)
        nodes = nodes_by_name(self.router)
        self.assertEqual(set(nodes), {"w1", "w2"})
        for n in nodes.values():
            self.assertEqual(n["state"], "up")
            self.assertGreater(n["process_rss_mb"], 0)
            self.assertEqual(n["max_batch_size"], 2)
            self.assertTrue(n["model"].endswith("tiny-llama"))
            for key in ("queue_depth", "running", "in_flight", "adapters", "address"):
                self.assertIn(key, n)
        self.assertEqual(self.w1.health()["role"], "worker")
        status, text, _ = self.w1.request("GET", "/metrics")  # Prometheus scrapes each worker
        self.assertEqual(status, 200)
        self.assertIn("adapterd_generated_tokens_total", text)
        status, body, _ = self.w1.generate(prompt="hi")
        self.assertEqual(status, 404)
        self.assertIn("router", body["error"]["message"])

    def test_affinity_then_load(self):
        self.ensure_up()
        a, b = self.models.adapter, self.models.adapter + "-1"
        served = {}
        for adapter in (a, b):
            for _ in range(4):  # one at a time: no load, so only affinity decides
                status, body, _ = self.router.request("POST", "/generate-lite", dict(
                    prompt="affinity", max_new_tokens=2, temperature=0, adapter_path=adapter))
                self.assertEqual(status, 200, body)
                served.setdefault(adapter, []).append(body["node"])
        for adapter, nodes in served.items():
            self.assertEqual(len(set(nodes)), 1, f"{adapter} stayed where it was loaded: {nodes}")
        # The router's view of who holds what comes from the workers' own reports.
        holders = lambda: {name for name, n in nodes_by_name(self.router).items()
                           for path in n["adapters"] if path.endswith(os.path.basename(a))}
        self.assertTrue(wait_for(lambda: holders() == {served[a][0]}, 5), nodes_by_name(self.router))

        # Eight at once with batches of two: affinity gives way to load and both serve.
        def one(i):
            return self.router.request("POST", "/generate-lite", dict(
                prompt=f"load {i}", max_new_tokens=40, temperature=0, adapter_path=a))
        with ThreadPoolExecutor(8) as pool:
            results = list(pool.map(one, range(8)))
        self.assertTrue(all(s == 200 for s, _, _ in results), results)
        self.assertEqual({body["node"] for _, body, _ in results}, {"w1", "w2"})
        # The same greedy text wherever it ran.
        texts = {body["node"]: body["generated_text"] for _, body, _ in results if body["generated_text"]}
        self.assertTrue(texts)

    def test_cleanup_fans_out(self):
        self.ensure_up()
        status, body, _ = self.router.request("POST", "/cleanup-memory", {"level": "flush"})
        self.assertEqual(status, 200, body)
        self.assertEqual(body["status"], "success")
        self.assertEqual(sorted(n["node"] for n in body["nodes"]), ["w1", "w2"])
        self.assertAlmostEqual(body["rss_after_mb"], sum(n["rss_after_mb"] for n in body["nodes"]), delta=0.05)
        status, body, _ = self.router.request("POST", "/cleanup-memory", {"node": "w2"})
        self.assertEqual(status, 200, body)
        self.assertEqual([n["node"] for n in body["nodes"]], ["w2"])
        status, body, _ = self.router.request("POST", "/cleanup-memory", {"node": "nobody"})
        self.assertEqual(status, 400, body)
        self.assertEqual(body["error"]["code"], "bad_request")

    def test_the_new_api_works_through_the_router(self):
        self.ensure_up()
        status, body, _ = self.router.request("POST", "/adapters", {"path": self.models.adapter, "id": "pirate"})
        self.assertEqual(status, 200, body)
        self.assertEqual(sorted(a["node"] for a in body["adapters"] if a["id"] == "pirate"), ["w1", "w2"])
        status, models, _ = self.router.request("GET", "/v1/models")
        self.assertIn("pirate", [m["id"] for m in models["data"]])
        status, chat, _ = self.router.request("POST", "/v1/chat/completions", {
            "model": "pirate", "messages": [{"role": "user", "content": "ahoy"}], "max_tokens": 4, "temperature": 0})
        self.assertEqual(status, 200, chat)
        self.assertEqual(chat["usage"]["completion_tokens"], 4)
        status, tok, _ = self.router.request("POST", "/tokenize", {"text": "hello world"})
        self.assertEqual(status, 200, tok)
        status, text, _ = self.router.request("POST", "/detokenize", {"ids": tok["ids"], "skip_special_tokens": True})
        self.assertEqual((status, text["text"]), (200, "hello world"))
        status, body, _ = self.router.request("DELETE", "/adapters/pirate")
        self.assertEqual(status, 200, body)
        self.assertNotIn("pirate", [a["id"] for a in body["adapters"]])

    def test_training_jobs_through_the_router(self):
        self.ensure_up()
        data = os.path.join(self.models.root, "style.txt")
        with open(data, "w") as f:
            for i in range(100):
                f.write(f"Ahoy matey, number {i}! Arr!\n%\n")
        status, job, _ = self.router.request("POST", "/adapters/train", {
            "dataset": data, "id": "ahoy", "steps": 10, "batch_size": 2, "seq_len": 32})
        self.assertEqual(status, 202, job)
        done = lambda: self.router.request("GET", f"/jobs/{job['id']}")[1].get("state") == "succeeded"
        self.assertTrue(wait_for(done, 60), self.router.request("GET", "/jobs")[1])
        listed = self.router.request("GET", "/jobs")[1]["jobs"]
        self.assertIn(job["id"], [j["id"] for j in listed])
        # Only the worker that trained it knows the id; requests reach it wherever they land first.
        trained_on = {a["node"] for a in self.router.request("GET", "/adapters")[1]["adapters"] if a["id"] == "ahoy"}
        self.assertEqual(len(trained_on), 1)
        for i in range(4):
            status, body, _ = self.router.request("POST", "/v1/completions", {"model": "ahoy", "prompt": f"Ahoy {i}",
                                                                              "max_tokens": 3})
            self.assertEqual(status, 200, body)
            self.assertEqual(body["model"], "ahoy")

    def test_a_client_that_goes_away_is_cancelled_on_its_worker(self):
        self.ensure_up()
        cancelled = lambda: sum(w.health()["batch"]["cancelled"] for w in (self.w1, self.w2))
        before = cancelled()
        conn, resp = open_stream(self.router, prompt="walk away", max_new_tokens=1000, temperature=0)
        event, data = next(sse_events(resp))
        self.assertEqual(event, "message")
        conn.sock.shutdown(socket.SHUT_RDWR)
        conn.close()
        self.assertTrue(wait_for(lambda: cancelled() == before + 1, 15))
        self.assertTrue(wait_for(lambda: all(n["in_flight"] == 0 for n in self.router.health()["nodes"]), 15))

    def test_strangers_on_a_node_port_do_not_cut_its_links(self):
        """Bytes that are not TLS, and a TLS client that drops its connection without a close,
        end only their own connection: streams over the router's links go on."""
        self.ensure_up()
        reconnects = lambda: {n: v["reconnects"] for n, v in nodes_by_name(self.router).items()}
        before = reconnects()
        trust_ended = lambda: [w.output().count("its trust ends") for w in (self.w1, self.w2)]
        ended_before = trust_ended()
        conn, resp = open_stream(self.router, prompt="keep going", max_new_tokens=300, temperature=0)
        events = sse_events(resp)
        self.assertEqual(next(events)[0], "message")
        for worker in (self.w1, self.w2):
            for payload in (os.urandom(4096), b"GET / HTTP/1.1\r\n\r\n", b"\x16\x03\x01\x00\x05hello"):
                with socket.create_connection(("127.0.0.1", worker.node_port)) as s:
                    s.sendall(payload)
                    time.sleep(0.05)
            # A client of the cluster CA that completes the handshake, then vanishes mid-stream.
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            ctx.check_hostname = False
            ctx.load_verify_locations(os.path.join(self.cluster.certs, "ca.pem"))
            ctx.load_cert_chain(os.path.join(self.cluster.certs, "router.cert.pem"),
                                os.path.join(self.cluster.certs, "router.key.pem"))
            raw = socket.create_connection(("127.0.0.1", worker.node_port))
            tls = ctx.wrap_socket(raw)
            tls.sendall(b"\x00" * 7)
            tls.shutdown(socket.SHUT_RDWR)  # a TCP shutdown, no close_notify: the worker reads an unexpected EOF
            tls.close()
        last = None
        for event in events:
            last = event
        conn.close()
        self.assertEqual(last[0], "done", last)
        self.assertEqual(reconnects(), before, self.router.output()[-3000:])
        self.assertTrue(all(n["state"] == "up" for n in nodes_by_name(self.router).values()))
        self.assertEqual(trust_ended(), ended_before, self.w1.output()[-1500:] + self.w2.output()[-1500:])

    def test_kill_a_worker_under_load(self):
        self.ensure_up()
        results = []
        lock = threading.Lock()
        streaming = []  # one entry per stream that has had its first event

        def plain(i):
            r = self.router.request("POST", "/generate-lite", dict(prompt=f"failover {i}", max_new_tokens=400,
                                                                  temperature=0), timeout=120)
            with lock:
                results.append(("plain", r[0], r[1]))

        def streamed(i):
            conn, resp = open_stream(self.router, prompt=f"stream {i}", max_new_tokens=400, temperature=0)
            status, last = resp.status, None
            if status == 200:
                for event, data in sse_events(resp):
                    if last is None:
                        with lock:
                            streaming.append(i)
                    last = (event, data)
            else:
                last = ("json", json.loads(resp.read()))
            conn.close()
            with lock:
                results.append(("stream", status, last))

        threads = [threading.Thread(target=plain if i % 2 else streamed, args=(i,)) for i in range(16)]
        for t in threads:
            t.start()
        self.assertTrue(wait_for(lambda: len(streaming) >= 4, 20), "streams have begun")
        # The worker with the most in flight now: requests end at different lengths (a greedy
        # answer may stop early), so either worker may already have run dry.
        nodes = nodes_by_name(self.router)
        victim_name = max(nodes, key=lambda name: nodes[name]["in_flight"])
        survivor_name = ({"w1", "w2"} - {victim_name}).pop()
        victim = getattr(self, victim_name)
        in_flight_at_kill = nodes[victim_name]["in_flight"]
        self.assertGreater(in_flight_at_kill, 0, nodes)
        victim.kill()
        for t in threads:
            t.join(timeout=120)
        self.assertFalse(any(t.is_alive() for t in threads), "every request was answered")
        self.assertEqual(len(results), 16)
        for kind, status, last in results:
            if kind == "plain":
                # Nothing was sent yet, so a request on the dead worker is run again elsewhere.
                self.assertEqual(status, 200, (last, self.router.output()[-3000:]))
            else:
                self.assertEqual(status, 200, last)
                event, data = last
                # A stream that had begun ends with an error event saying so; the rest finish.
                self.assertIn(event, ("done", "error"), last)
                if event == "error":
                    self.assertEqual(data["error"]["code"], "worker_lost")
        dead = nodes_by_name(self.router)[victim_name]
        self.assertNotEqual(dead["state"], "up")
        lost_streams = sum(1 for kind, _, last in results if kind == "stream" and last[0] == "error")
        self.assertGreater(dead["failed_over"] + lost_streams, 0, f"the kill hit {in_flight_at_kill} in flight")
        # The survivor's link was never given up: its streams went on to the end.
        survivor = nodes_by_name(self.router)[survivor_name]
        self.assertEqual((survivor["state"], survivor["reconnects"]), ("up", 0), self.router.output()[-3000:])
        print(f"\n  failover: 16 requests, kill -9 of {victim_name} with {in_flight_at_kill} in flight there: "
              f"{sum(1 for k, s, _ in results if k == 'plain' and s == 200)}/8 plain answered 200, "
              f"{sum(1 for k, _, l in results if k == 'stream' and l[0] == 'done')}/8 streams done, "
              f"{lost_streams} streams ended with worker_lost, {dead['failed_over']} moved to {survivor_name}", file=sys.stderr)

        # Later requests go to the survivor.
        for i in range(4):
            status, body, _ = self.router.generate(prompt=f"after {i}", max_new_tokens=3)
            self.assertEqual(status, 200, body)
            self.assertEqual(body["node"], survivor_name)

        # The worker comes back on its node port; the router dials it again and uses it.
        self.models.servers.remove(victim)
        setattr(ClusterTest, victim_name, self.cluster.worker(victim_name, victim.node_port, "--max-batch-size=2",
                                                              "--max-new-tokens-limit=1000"))
        started = time.time()
        self.assertTrue(wait_for(lambda: nodes_by_name(self.router)[victim_name]["state"] == "up", 30))
        print(f"  rejoin: {victim_name} up again {time.time() - started:.2f} s after its restart was listening", file=sys.stderr)
        self.assertGreaterEqual(nodes_by_name(self.router)[victim_name]["reconnects"], 1)
        with ThreadPoolExecutor(6) as pool:
            bodies = list(pool.map(lambda i: self.router.generate(prompt=f"back {i}", max_new_tokens=100), range(6)))
        self.assertTrue(all(s == 200 for s, _, _ in bodies))
        self.assertIn(victim_name, {b["node"] for _, b, _ in bodies})


class ClusterAdmissionTest(unittest.TestCase):
    """Who may join, and what a router says with no worker."""
    @classmethod
    def setUpClass(cls):
        cls.models = TempModels(adapters=1)
        cls.cluster = Cluster(cls.models)
        cls.wrong = os.path.join(cls.models.root, "wrong-secret")
        with open(cls.wrong, "w") as f:
            f.write("not-the-cluster-secret-at-all\n")

    @classmethod
    def tearDownClass(cls):
        codes = cls.models.close()
        assert all(code == 0 for code in codes), f"adapterd exited with {codes}"

    def test_wrong_secret_is_refused_both_ways(self):
        router_node_port = free_port()  # a router takes joins only on a port it is given
        router = self.models.server("--role=router", f"--node-port={router_node_port}", "--node-poll-ms=100",
                                    f"--node-secret-file={self.cluster.secret_file}", *self.cluster.tls("router"))
        self.assertEqual(router.health()["status"], "degraded")
        status, body, _ = router.generate(prompt="anyone?")
        self.assertEqual(status, 503, body)
        self.assertEqual(body["error"]["code"], "unavailable")

        # A worker with the wrong secret asks to join: refused, never listed, never used.
        intruder = self.cluster.worker("intruder", free_port(), f"--join=127.0.0.1:{router_node_port}",
                                       secret_file=self.wrong)
        self.assertTrue(wait_for(lambda: "refused this worker" in intruder.output(), 15), intruder.output())
        self.assertEqual(router.health()["nodes"], [])

        # A router dialling a worker with the wrong secret marks it refused.
        stranger = self.cluster.worker("stranger", 0, secret_file=self.wrong)
        router2 = self.cluster.router([stranger])
        self.assertTrue(wait_for(lambda: router2.health()["nodes"][0]["state"] == "refused", 15))
        status, body, _ = router2.generate(prompt="anyone?")
        self.assertEqual(status, 503, body)

        # The right secret joins at runtime and serves.
        member = self.cluster.worker("member", free_port(), f"--join=127.0.0.1:{router_node_port}")
        self.assertTrue(wait_for(lambda: all_up(router, 1), 15), router.output())
        status, body, _ = router.generate(prompt="welcome", max_new_tokens=3)
        self.assertEqual(status, 200, body)
        self.assertEqual(body["node"], "member")

    def test_nodes_without_the_cluster_certificate_cannot_connect(self):
        """Trust at the transport: a plain BASP client and a node with a certificate from
        another CA are both refused before any actor can be reached."""
        worker = self.cluster.worker("guarded", 0)
        probe = os.path.join(os.path.dirname(BIN), "adapterd-basp-probe")
        plain = subprocess.run([probe, "127.0.0.1", str(worker.node_port)], capture_output=True, text=True, timeout=30)
        self.assertEqual(plain.returncode, 1, plain.stdout + plain.stderr)
        self.assertIn("refused", plain.stdout)
        rogue = make_certs(os.path.join(self.models.root, "rogue-ca"), "rogue")
        router = self.models.server("--role=router", f"--workers=127.0.0.1:{worker.node_port}", "--node-poll-ms=100",
                                    f"--node-secret-file={self.cluster.secret_file}", *tls_args(rogue, "rogue"))
        # Wait for the router to have tried and failed, as its log says, then look.
        self.assertTrue(wait_for(lambda: f"router: worker 127.0.0.1:{worker.node_port} is " in router.output(), 20),
                        router.output()[-2000:])
        self.assertNotEqual(router.health()["nodes"][0]["state"], "up")
        self.assertEqual(router.generate(prompt="anyone?")[0], 503)
        self.assertNotIn("trusts router", worker.output())
        # The same worker serves a router of its own cluster.
        member = self.cluster.router([worker])
        self.assertTrue(wait_for(lambda: all_up(member, 1), 15), member.output()[-2000:])
        self.assertEqual(member.generate(prompt="hello", max_new_tokens=2)[0], 200)

    def test_bad_cluster_options_exit_with_a_message(self):
        certs = self.cluster.certs
        cases = [
            (["--role=router"], "needs --workers"),
            (["--role=router", "--workers=127.0.0.1:1"], "shared secret"),
            (["--role=worker", "--node-secret-file=/nonexistent/secret"], "cannot read"),
            (["--role=router", "--workers=nohost", f"--node-secret-file={self.cluster.secret_file}"], "host:port"),
            (["--role=boss"], "--role must be"),
            (["--role=router", "--workers=127.0.0.1:1", f"--node-secret-file={self.cluster.secret_file}"],
             "--node-cert, --node-key and --node-ca"),
            (["--role=worker", f"--node-secret-file={self.cluster.secret_file}", f"--node-cert={certs}/nope.pem",
              f"--node-key={certs}/worker.key.pem", f"--node-ca={certs}/ca.pem"], "cannot read"),
            (["--role=worker", f"--node-secret-file={self.cluster.secret_file}", f"--node-cert={certs}/worker.cert.pem",
              f"--node-key={certs}/router.key.pem", f"--node-ca={certs}/ca.pem"], "is not the key of"),
        ]
        env = {k: v for k, v in os.environ.items() if k != "ADAPTERD_NODE_SECRET"}
        for args, message in cases:
            proc = subprocess.run([BIN, "--port=0", *args], capture_output=True, text=True, timeout=30, env=env)
            self.assertEqual(proc.returncode, 2, (args, proc.stderr))
            self.assertIn(message, proc.stderr, args)


def load_tests(loader, tests, pattern):
    """ClusterTest in its stated ORDER, then the other classes; a test missing from ORDER
    is an error, not a test that silently never runs."""
    names = set(loader.getTestCaseNames(ClusterTest))
    if names != set(ClusterTest.ORDER):
        raise RuntimeError(f"ClusterTest.ORDER does not match its tests: {sorted(names ^ set(ClusterTest.ORDER))}")
    suite = unittest.TestSuite(ClusterTest(name) for name in ClusterTest.ORDER)
    others = [c for c in globals().values()
              if isinstance(c, type) and issubclass(c, unittest.TestCase) and c is not ClusterTest]
    for case in others:
        suite.addTests(loader.loadTestsFromTestCase(case))
    return suite


if __name__ == "__main__":
    unittest.main()
