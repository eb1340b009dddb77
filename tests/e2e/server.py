"""Starts the real adapterd binary on a free loopback port and talks HTTP to it."""
import http.client
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.environ.get("ADAPTERD_BIN", os.path.join(REPO, "build", "adapterd"))
MAKE_TINY = os.environ.get("ADAPTERD_MAKE_TINY", os.path.join(REPO, "build", "adapterd-make-tiny-model"))
# On a GPU machine scripts/device-check sets ADAPTERD_E2E_DEVICE=cuda: same tests, on CUDA.
DEVICE = os.environ.get("ADAPTERD_E2E_DEVICE", "cpu")
DEVICE_ARGS = [f"--device={DEVICE}"] if DEVICE != "cpu" else []
DTYPE_BYTES = 2 if DEVICE == "cuda" else 4  # auto: bfloat16 on CUDA, float32 on the CPU


def wait_for(predicate, timeout_s=20):
    """Polls predicate until it holds or timeout_s passes: the one way tests wait."""
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


def make_models(root, adapters=1):
    subprocess.run([MAKE_TINY, root, "1234", str(adapters)], check=True, stdout=subprocess.DEVNULL)
    return os.path.join(root, "tiny-llama"), os.path.join(root, "tiny-llama-lora")


def tensor_bytes(path):
    """Sum of the tensor bytes in a safetensors file (read from its header)."""
    with open(path, "rb") as f:
        n = int.from_bytes(f.read(8), "little")
        header = json.loads(f.read(n))
    return sum(v["data_offsets"][1] - v["data_offsets"][0] for k, v in header.items() if k != "__metadata__")


class TempModels:
    """A temporary directory with the tiny model and its adapters, and servers on it."""
    def __init__(self, adapters=1):
        self.root = tempfile.mkdtemp(prefix="adapterd-e2e-")
        self.model, self.adapter = make_models(self.root, adapters)
        self.servers = []

    def server(self, *extra, env=None, wrap=None):
        s = Server(self.model, self.root, *extra, env=env, wrap=wrap)
        self.servers.append(s)
        return s

    def close(self):
        codes = [s.stop() for s in self.servers]
        shutil.rmtree(self.root, ignore_errors=True)
        return codes


class Server:
    """adapterd on a free port. With model None it runs as the README's command does: from
    the repository, on config/adapterd.ini's defaults."""
    def __init__(self, model, roots, *extra, env=None, wrap=None):
        self.log = tempfile.NamedTemporaryFile(prefix="adapterd-e2e-", suffix=".log", delete=False)
        if model is None:
            args, cwd = [BIN, "--port=0", *extra], REPO
        else:
            args = [BIN, "--port=0", "--host=127.0.0.1", f"--model={model}",
                    f"--model-roots={roots}", f"--adapter-roots={roots}", "--threads=1",
                    *DEVICE_ARGS, *extra]
            cwd = None
        # wrap: a command prefix, e.g. ["ip", "netns", "exec", NAME] for a worker in a namespace
        self.proc = subprocess.Popen((wrap or []) + args, stdout=self.log, stderr=subprocess.STDOUT, cwd=cwd,
                                     env=None if env is None else {**os.environ, **env})
        self.port = self._wait_for_port()

    def _wait_for_port(self, timeout_s=60):
        deadline = time.time() + timeout_s
        while time.time() < deadline:
            with open(self.log.name, encoding="utf-8", errors="replace") as f:
                text = f.read()
            m = re.search(r"listening on http://127\.0\.0\.1:(\d+)", text)
            if m:
                node = re.search(r"listening on http://127\.0\.0\.1:\d+ \(node port (\d+)", text)
                self.node_port = int(node.group(1)) if node else None
                return int(m.group(1))
            if self.proc.poll() is not None:
                raise RuntimeError(f"adapterd exited with {self.proc.returncode}: {self.output()}")
            time.sleep(0.05)
        raise RuntimeError("adapterd did not start: " + self.output())

    def output(self):
        with open(self.log.name, encoding="utf-8", errors="replace") as f:
            return f.read()

    def request(self, method, path, body=None, raw=None, headers=None, timeout=120):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        data = raw if raw is not None else (json.dumps(body) if body is not None else None)
        conn.request(method, path, body=data, headers=headers or {"Content-Type": "application/json"})
        resp = conn.getresponse()
        text = resp.read().decode("utf-8")
        conn.close()
        try:
            payload = json.loads(text) if text else None
        except ValueError:
            payload = text
        return resp.status, payload, dict(resp.getheaders())

    def generate(self, **fields):
        return self.request("POST", "/generate-lite", fields)

    def health(self):
        status, body, _ = self.request("GET", "/health")
        assert status == 200, body
        return body

    def kill(self):
        """kill -9: no goodbye to anyone."""
        self.proc.kill()
        self.proc.wait()

    def stop(self):
        if self.log.closed:
            return self.proc.returncode
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        os.unlink(self.log.name)
        return self.proc.returncode
