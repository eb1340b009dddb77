"""The web console in a real browser: Debian's headless Chromium, driven through its
chromedriver (WebDriver), against the real binary with API and admin keys.

ADAPTERD_CONSOLE_SHOTS=DIR saves 1280x800 screenshots of the page there."""
import os
import shutil
import sys
import time
import unittest

from server import TempModels, wait_for
from test_training import write_dataset

# Debian's python3-selenium (scripts/setup), also when the tests run under another Python 3
# of the same machine (a pyenv one): appended, so that Python's own packages come first.
DEBIAN_PACKAGES = "/usr/lib/python3/dist-packages"
if DEBIAN_PACKAGES not in sys.path:
    sys.path.append(DEBIAN_PACKAGES)

from selenium import webdriver  # noqa: E402
from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.support.ui import Select  # noqa: E402

API_KEY = "console-api-key"
ADMIN_KEY = "console-admin-key"
SHOTS = os.environ.get("ADAPTERD_CONSOLE_SHOTS")


def chromium():
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1280,800", "--no-first-run", "--disable-extensions"):
        options.add_argument(arg)
    # the page's console messages, to assert there are no errors
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    service = Service(shutil.which("chromedriver") or "/usr/bin/chromedriver")
    browser = webdriver.Chrome(service=service, options=options)
    desktop(browser)
    return browser


def desktop(browser):
    """A 1280x800 viewport (the window's own size leaves less to the page, headless too)."""
    browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                            {"width": 1280, "height": 800, "deviceScaleFactor": 1, "mobile": False})


class BrowserCase(unittest.TestCase):
    """Servers over temporary models, and one browser for the class's tests."""
    models = None
    browser = None

    @classmethod
    def start_browser(cls):
        cls.browser = chromium()
        cls.browser.set_page_load_timeout(30)

    @classmethod
    def tearDownClass(cls):
        try:
            if cls.browser is not None:
                cls.browser.quit()
        finally:
            cls.models.close()

    def in_view(self, cls, node=""):
        """An element of a node's live view ("" for the node serving the page)."""
        return self.browser.find_element(By.CSS_SELECTOR, f'#views [data-node="{node}"] .{cls}')

    def points(self, chart="chart-memory", node=""):
        try:
            return int(self.in_view(chart, node).get_attribute("data-points") or 0)
        except NoSuchElementException:
            return 0

    def view_text(self, cls, node=""):
        return self.in_view(cls, node).text

    def errors(self):
        return [e for e in self.browser.get_log("browser") if e["level"] == "SEVERE"]

    def shot(self, name):
        if SHOTS:
            os.makedirs(SHOTS, exist_ok=True)
            self.browser.save_screenshot(os.path.join(SHOTS, name + ".png"))


class ConsoleTest(BrowserCase):
    @classmethod
    def setUpClass(cls):
        cls.models = TempModels(adapters=2)
        cls.data = os.path.join(cls.models.root, "data")
        os.makedirs(cls.data)
        write_dataset(os.path.join(cls.data, "zippy.txt"), 200)
        env = {"ADAPTERD_API_KEYS": API_KEY, "ADAPTERD_ADMIN_KEYS": ADMIN_KEY}
        cls.server = cls.models.server("--cleanup-policy=flush", f"--adapters=zippy={cls.models.adapter}",
                                       f"--data-roots={cls.data}", env=env)
        cls.base = f"http://127.0.0.1:{cls.server.port}"
        cls.start_browser()

    def open_with_key(self, key=ADMIN_KEY):
        """Puts the key in this origin's session storage (as the page's form does), then
        loads the page, so that no request goes out without it."""
        b = self.browser
        b.get(self.base + "/console/assets/console.css")
        b.execute_script("sessionStorage.setItem('adapterd-key', arguments[0])", key)
        b.get(self.base + "/")
        self.assertTrue(wait_for(lambda: self.points() >= 2, 30), "the memory chart never got two points")

    def text(self, element_id):
        return self.browser.find_element(By.ID, element_id).text

    def test_page_is_served_from_the_binary_with_a_strict_policy(self):
        status, body, headers = self.server.request("GET", "/")
        self.assertEqual(status, 200)
        self.assertIn("adapterd", body)
        self.assertIn("connect-src 'self'", headers["Content-Security-Policy"])
        self.assertNotIn("http://", body.replace(self.base, ""))  # nothing from elsewhere
        status, _, headers = self.server.request("GET", "/console/assets/uPlot.iife.min.js")
        self.assertEqual((status, headers["Content-Type"]), (200, "text/javascript; charset=utf-8"))
        status, body, _ = self.server.request("GET", "/console/assets/missing.js")
        self.assertEqual(status, 404)
        # the feed needs an API key, as the API does
        status, body, _ = self.server.request("GET", "/console/feed")
        self.assertEqual(status, 401, body)

    def test_the_page_loads_without_console_errors_and_its_charts_grow(self):
        self.open_with_key()
        before = self.points()
        self.assertTrue(wait_for(lambda: self.points() >= before + 2, 10),
                        f"memory chart stayed at {self.points()} points")
        self.assertIn("standalone node", self.text("status"))
        self.assertIn("tiny-llama", self.view_text("resident"))
        self.shot("console-live-light")
        self.assertEqual(self.errors(), [])

    def test_without_a_key_the_page_says_so_and_works_once_one_is_entered(self):
        b = self.browser
        b.get(self.base + "/console/assets/console.css")
        b.execute_script("sessionStorage.clear()")
        b.get(self.base + "/")
        self.assertTrue(wait_for(lambda: "API key" in self.text("feed-error"), 10), self.text("feed-error"))
        b.find_element(By.ID, "key").send_keys(API_KEY)
        b.find_element(By.CSS_SELECTOR, "#key-form button[type=submit]").click()
        self.assertTrue(wait_for(lambda: self.points() >= 1, 10))
        self.assertEqual(b.execute_script("return sessionStorage.getItem('adapterd-key')"), API_KEY)
        self.assertNotIn(API_KEY, b.current_url)
        b.get_log("browser")  # the 401s before the key: expected, and dropped here

    def test_a_streamed_playground_completion_appears_piece_by_piece(self):
        self.open_with_key(API_KEY)
        b = self.browser
        self.assertTrue(wait_for(lambda: len(Select(b.find_element(By.ID, "pg-model")).options) >= 2, 10))  # model, adapter
        Select(b.find_element(By.ID, "pg-model")).select_by_value("tiny-llama")
        for field, value in (("pg-max-tokens", "300"), ("pg-temperature", "0")):
            box = b.find_element(By.ID, field)
            box.clear()
            box.send_keys(value)
        # Every change to the output's text, with the time it came: the page's own record.
        b.execute_script("""
            window.seen = [];
            const out = document.querySelector('#pg-out-0 .output-text');
            new MutationObserver(() => window.seen.push([performance.now(), out.textContent.length]))
              .observe(out, {childList: true, characterData: true, subtree: true});""")
        b.find_element(By.ID, "pg-run").click()
        self.assertTrue(wait_for(lambda: "tokens/s" in self.text("pg-out-0"), 30), self.text("pg-out-0"))
        seen = b.execute_script("return window.seen")
        lengths = [n for _, n in seen if n > 0]
        self.assertGreaterEqual(len(set(lengths)), 5, f"the text came in {len(set(lengths))} pieces")
        self.assertEqual(lengths, sorted(lengths), "the text only grows")
        self.assertRegex(self.text("pg-out-0"), r"TTFT \d+ ms · 300 tokens · [\d.]+ tokens/s")
        # the same text as the API gives for the same request
        status, body, _ = self.server.request(
            "POST", "/v1/chat/completions",
            {"model": "tiny-llama", "messages": [{"role": "user", "content": "Tell me a fortune."}],
             "max_tokens": 300, "temperature": 0},
            headers={"Content-Type": "application/json", "Authorization": "Bearer " + API_KEY})
        self.assertEqual(status, 200, body)
        shown = b.find_element(By.CSS_SELECTOR, "#pg-out-0 .output-text").get_attribute("textContent")
        self.assertEqual(shown, body["choices"][0]["message"]["content"])
        self.shot("console-playground")

    def test_two_adapters_side_by_side(self):
        self.open_with_key(API_KEY)
        b = self.browser
        self.assertTrue(wait_for(lambda: len(Select(b.find_element(By.ID, "pg-compare")).options) >= 3, 10))
        models = [o.get_attribute("value") for o in Select(b.find_element(By.ID, "pg-model")).options]
        self.assertIn("zippy", models)
        Select(b.find_element(By.ID, "pg-model")).select_by_value("tiny-llama")
        Select(b.find_element(By.ID, "pg-compare")).select_by_value("zippy")
        b.find_element(By.ID, "pg-run").click()
        for pane in ("pg-out-0", "pg-out-1"):
            self.assertTrue(wait_for(lambda: "tokens/s" in self.text(pane), 30), self.text(pane))
        self.assertIn("zippy", self.text("pg-out-1"))
        self.shot("console-compare")

    def test_a_cleanup_from_the_page_shows_as_a_marker(self):
        self.open_with_key(ADMIN_KEY)
        b = self.browser
        before = int(self.in_view("chart-memory").get_attribute("data-cleanup-markers") or 0)
        b.find_element(By.CSS_SELECTOR, "[data-cleanup=all]").click()
        self.assertTrue(wait_for(lambda: "done" in self.text("ops-result"), 30), self.text("ops-result"))
        self.assertTrue(wait_for(
            lambda: int(self.in_view("chart-memory").get_attribute("data-cleanup-markers") or 0) > before, 10))
        self.assertTrue(wait_for(lambda: "manual" in self.view_text("events") and "all" in self.view_text("events"), 10),
                        self.view_text("events"))
        # a request's own flush (this server flushes after each): a dashed line for its second
        status, body, _ = self.server.request(
            "POST", "/generate-lite", {"prompt": "Hello", "max_new_tokens": 4},
            headers={"Content-Type": "application/json", "Authorization": "Bearer " + API_KEY})
        self.assertEqual(status, 200, body)
        self.assertTrue(wait_for(
            lambda: int(self.in_view("chart-memory").get_attribute("data-flush-markers") or 0) > 0, 10))
        self.shot("console-cleanup")

    def test_a_training_job_from_the_page_shows_its_progress_and_loss_and_one_is_cancelled(self):
        self.open_with_key(ADMIN_KEY)
        b = self.browser

        def start(job_id, steps):
            for field, value in (("train-dataset", "zippy.txt"), ("train-id", job_id), ("train-steps", str(steps))):
                box = b.find_element(By.ID, field)
                box.clear()
                box.send_keys(value)
            b.find_element(By.CSS_SELECTOR, "#train button[type=submit]").click()

        start("console-trained", 30)
        self.assertTrue(wait_for(lambda: "console-trained" in self.view_text("jobs"), 10), self.text("ops-result"))
        self.assertTrue(wait_for(lambda: "succeeded" in self.view_text("jobs"), 120), self.view_text("jobs"))
        self.assertIn("30/30", self.view_text("jobs"))
        loss = self.in_view("chart-loss")
        self.assertTrue(wait_for(lambda: loss.is_displayed() and int(loss.get_attribute("data-points")) >= 2, 10))
        self.assertIn("console-trained", self.view_text("loss-job"))
        self.shot("console-training")
        start("console-cancelled", 100000)

        # The table is drawn again every second: a row found may be gone by the next step.
        def state(job_id, click_cancel=False):
            """The job's state as its row shows it ("" while it has none); clicks its Cancel."""
            try:
                for r in self.in_view("jobs").find_elements(By.TAG_NAME, "tr"):
                    cells = r.find_elements(By.TAG_NAME, "td")
                    if cells and cells[0].text == job_id:
                        if click_cancel:
                            cells[5].find_element(By.TAG_NAME, "button").click()
                        return cells[1].text
            except (StaleElementReferenceException, NoSuchElementException):
                pass
            return ""

        self.assertTrue(wait_for(lambda: state("console-cancelled") in ("queued", "running"), 10),
                        self.view_text("jobs"))
        self.assertTrue(wait_for(lambda: state("console-cancelled", click_cancel=True) != "", 10))
        self.assertTrue(wait_for(lambda: state("console-cancelled") == "cancelled", 30), self.view_text("jobs"))

    def test_an_api_key_cannot_clean_up_from_the_page(self):
        self.open_with_key(API_KEY)
        self.browser.find_element(By.CSS_SELECTOR, "[data-cleanup=flush]").click()
        self.assertTrue(wait_for(lambda: "admin key" in self.text("ops-result"), 10), self.text("ops-result"))
        self.browser.get_log("browser")  # the 403: expected

    def test_an_adapter_registered_through_the_api_appears_in_the_table(self):
        self.open_with_key(API_KEY)
        path = os.path.join(self.models.root, "tiny-llama-lora-1")
        self.assertNotIn("tiny-llama-lora-1", self.view_text("resident"))
        status, body, _ = self.server.request(
            "POST", "/adapters", {"id": "console-registered", "path": path},
            headers={"Content-Type": "application/json", "Authorization": "Bearer " + ADMIN_KEY})
        self.assertEqual(status, 200, body)
        self.assertTrue(wait_for(lambda: "tiny-llama-lora-1" in self.view_text("resident"), 10), self.view_text("resident"))
        status, body, _ = self.server.request(
            "DELETE", "/adapters/console-registered",
            headers={"Authorization": "Bearer " + ADMIN_KEY})
        self.assertEqual(status, 200, body)
        self.assertTrue(wait_for(lambda: "tiny-llama-lora-1" not in self.view_text("resident"), 10))

    def test_at_200_percent_zoom_nothing_needs_scrolling_sideways(self):
        self.open_with_key(API_KEY)
        b = self.browser
        # 200 % of 1280x800: a 640x400 CSS viewport drawn at twice the pixels
        b.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                          {"width": 640, "height": 400, "deviceScaleFactor": 2, "mobile": False})
        try:
            self.assertTrue(wait_for(lambda: b.execute_script("return window.innerWidth") == 640, 10))
            time.sleep(0.5)  # the charts follow the new width
            widths = b.execute_script("return [document.documentElement.scrollWidth, window.innerWidth]")
            self.assertLessEqual(widths[0], widths[1], "wider than the window")
            self.shot("console-zoom-200")
        finally:
            desktop(b)

    def test_keyboard_reaches_the_playground_and_the_dark_theme_applies(self):
        self.open_with_key(API_KEY)
        b = self.browser
        body = b.find_element(By.TAG_NAME, "body")
        body.click()
        reached = False
        for _ in range(60):  # bounded: the Run button is some twenty stops in
            b.switch_to.active_element.send_keys(Keys.TAB)
            if b.switch_to.active_element.get_attribute("id") == "pg-run":
                reached = True
                break
        self.assertTrue(reached, "Tab never reached the Run button")
        Select(b.find_element(By.ID, "theme")).select_by_value("dark")
        background = b.execute_script("return getComputedStyle(document.body).backgroundColor")
        self.assertEqual(background, "rgb(13, 17, 23)")
        self.assertTrue(wait_for(lambda: self.points() >= 2, 10))  # charts remade in the new colours
        self.shot("console-live-dark")
        Select(b.find_element(By.ID, "theme")).select_by_value("auto")
        self.assertEqual(self.errors(), [])


if __name__ == "__main__":
    unittest.main()


class ConsoleThroughRouterTest(BrowserCase):
    """Through a router the page shows each worker: its state and its own charts."""

    @classmethod
    def setUpClass(cls):
        from test_cluster import Cluster, all_up  # the cluster tests' workers and router
        cls.models = TempModels(adapters=1)
        cluster = Cluster(cls.models)
        cls.workers = [cluster.worker(name) for name in ("w1", "w2")]
        cls.router = cluster.router(cls.workers)
        if not wait_for(lambda: all_up(cls.router, 2), 30):
            raise RuntimeError("the workers did not come up: " + cls.router.output())
        cls.start_browser()

    def test_every_worker_has_its_own_view_and_a_lost_one_says_so(self):
        status, body, _ = self.router.request("GET", "/console/feed")
        self.assertEqual(status, 200, body)
        self.assertEqual(body["role"], "router")
        self.assertEqual(sorted(n["name"] for n in body["nodes"]), ["w1", "w2"])
        status, body, _ = self.router.request("GET", "/console/feed?node=w2&since=0")
        self.assertEqual((status, body["role"]), (200, "worker"), body)
        self.assertGreater(len(body["samples"]), 0)
        status, body, _ = self.router.request("GET", "/console/feed?node=nobody")
        self.assertEqual(status, 400, body)
        self.assertEqual(self.workers[0].request("GET", "/console")[0], 404)  # its router serves it

        b = self.browser
        b.get(f"http://127.0.0.1:{self.router.port}/")
        for node in ("w1", "w2"):
            self.assertTrue(wait_for(lambda: self.points(node=node) >= 2, 20), f"{node}: {self.points(node=node)} points")
            self.assertIn("up", self.in_view("view-title", node).text)
            self.assertIn("tiny-llama", self.in_view("resident", node).text)
        self.assertIn("2 of 2 workers up", b.find_element(By.ID, "status").text)
        self.shot("console-router")
        self.assertEqual(self.errors(), [])

        self.workers[1].kill()
        self.assertTrue(wait_for(lambda: "up" not in self.in_view("view-title", "w2").text, 20),
                        self.in_view("view-title", "w2").text)
        before = self.points(node="w1")
        self.assertTrue(wait_for(lambda: self.points(node="w1") > before, 10))  # the other goes on
