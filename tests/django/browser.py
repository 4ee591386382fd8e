"""A real browser for the tests: Debian's headless Chromium, driven over the
DevTools protocol through a pipe (``--remote-debugging-pipe``: fd 3 for
commands, fd 4 for answers, each a JSON message ended by a NUL byte). No
package beyond the standard library, and no browser download.

    with Chromium(workdir) as browser:
        browser.set_cookie("sessionid", key, url)
        browser.goto(url)
        browser.evaluate("document.title")
        browser.screenshot(workdir / "page.png")

And a test server: Django's WSGI handler (with the static files) in a
thread, on 127.0.0.1 and a free port, against the same databases as the
tests.
"""
import base64
import fcntl
import json
import os
import select
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path

CHROMIUM = os.environ.get("MF_CHROMIUM", "/usr/bin/chromium")
# As the project's probe runs it: no sandbox (root), no GPU, no network of its own.
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--hide-scrollbars", "--force-color-profile=srgb",
         "--remote-debugging-pipe"]


def chromium_missing():
    """Why the browser cannot run here, or None."""
    if not (shutil.which(CHROMIUM) or os.path.exists(CHROMIUM)):
        return (f"no Chromium at {CHROMIUM}: install Debian's package (apt-get install -y chromium), "
                "or set MF_CHROMIUM")
    return None


class BrowserError(AssertionError):
    pass


class Chromium:
    def __init__(self, workdir, width=1280, height=900, timeout=30):
        self.workdir = Path(workdir)
        self.width, self.height, self.timeout = width, height, timeout
        self._next_id = 0
        self._buffer = b""
        self.events = []

    def __enter__(self):
        self.workdir.mkdir(parents=True, exist_ok=True)
        profile = tempfile.mkdtemp(prefix="profile-", dir=self.workdir)   # a new, empty profile
        to_child_r, self._to_child = os.pipe()
        self._from_child, from_child_w = os.pipe()
        to_child_r, from_child_w = (self._high_fd(fd) for fd in (to_child_r, from_child_w))

        # The pipes become the child's fd 3 and 4 through bash's redirections (dash takes
        # one-digit fds only; no preexec_fn: the test server's threads are running).
        move = f'exec "$0" "$@" 3<&{to_child_r} 4>&{from_child_w} {to_child_r}<&- {from_child_w}>&-'
        self.log_path = self.workdir / "chromium.log"
        self.process = subprocess.Popen(
            ["/bin/bash", "-c", move, CHROMIUM, *FLAGS, f"--user-data-dir={profile}",
             f"--window-size={self.width},{self.height}", "about:blank"],
            pass_fds=(to_child_r, from_child_w), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=open(self.log_path, "wb"))
        os.close(to_child_r)
        os.close(from_child_w)
        target = self.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        self.session = self.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Page", "Runtime", "Network"):
            self.call(f"{domain}.enable", session=True)
        self.call("Emulation.setDeviceMetricsOverride",
                  {"width": self.width, "height": self.height, "deviceScaleFactor": 1, "mobile": False}, session=True)
        self.color_scheme("light")
        return self

    @staticmethod
    def _high_fd(fd):
        """The same pipe end on a number above 9, so the child's redirections to 3
        and 4 never overwrite it."""
        high = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10)
        os.close(fd)
        return high

    def __exit__(self, *exc):
        try:
            self.call("Browser.close", timeout=5)
        except Exception:  # already gone: make sure below
            pass
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)
        for fd in (self._to_child, self._from_child):
            try:
                os.close(fd)
            except OSError:
                pass

    # --- the protocol ---------------------------------------------------------

    def call(self, method, params=None, session=False, timeout=None):
        self._next_id += 1
        message = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = self.session
        os.write(self._to_child, json.dumps(message).encode() + b"\0")
        answer = self._wait(lambda m: m.get("id") == message["id"], timeout or self.timeout)
        if "error" in answer:
            raise BrowserError(f"{method}: {answer['error']}")
        return answer.get("result", {})

    def _wait(self, matches, timeout):
        deadline = time.monotonic() + timeout
        while True:
            while b"\0" in self._buffer:
                raw, self._buffer = self._buffer.split(b"\0", 1)
                message = json.loads(raw)
                if matches(message):
                    return message
                if "method" in message:
                    self.events.append(message)
            left = deadline - time.monotonic()
            if left <= 0:
                raise BrowserError(f"no answer from Chromium within {timeout} s (log: {self.log_path})")
            ready, _, _ = select.select([self._from_child], [], [], left)
            if ready:
                chunk = os.read(self._from_child, 1 << 16)
                if not chunk:
                    raise BrowserError(f"Chromium closed the pipe (log: {self.log_path})")
                self._buffer += chunk

    def wait_event(self, method, timeout=None):
        for i, event in enumerate(self.events):
            if event["method"] == method:
                return self.events.pop(i)
        return self._wait(lambda m: m.get("method") == method, timeout or self.timeout)

    # --- what the tests use ---------------------------------------------------

    def color_scheme(self, scheme):
        """prefers-color-scheme: "light" or "dark" (the admin follows it)."""
        self.call("Emulation.setEmulatedMedia", {"features": [{"name": "prefers-color-scheme", "value": scheme}]},
                  session=True)

    def set_cookie(self, name, value, url):
        self.call("Network.setCookie", {"name": name, "value": value, "url": url}, session=True)

    def goto(self, url):
        """Load a page and wait for its load event; the main document's HTTP status."""
        self.events.clear()
        result = self.call("Page.navigate", {"url": url}, session=True)
        if result.get("errorText"):
            raise BrowserError(f"{url}: {result['errorText']}")
        self.wait_event("Page.loadEventFired")
        status = None
        for event in self.events:
            if event["method"] == "Network.responseReceived" and event["params"].get("type") == "Document":
                status = event["params"]["response"]["status"]
        return status

    def evaluate(self, expression):
        result = self.call("Runtime.evaluate", {"expression": expression, "returnByValue": True,
                                                "awaitPromise": True}, session=True)
        if "exceptionDetails" in result:
            raise BrowserError(f"{expression[:80]}...: {result['exceptionDetails']}")
        return result["result"].get("value")

    def screenshot(self, path, full_page=True):
        params = {"format": "png"}
        if full_page:
            size = self.evaluate("[document.documentElement.scrollWidth, document.documentElement.scrollHeight]")
            params.update(captureBeyondViewport=True,
                          clip={"x": 0, "y": 0, "width": max(size[0], self.width), "height": size[1], "scale": 1})
        data = self.call("Page.captureScreenshot", params, session=True)["data"]
        Path(path).write_bytes(base64.b64decode(data))
        return Path(path)


class LiveServer:
    """Django in a thread, on 127.0.0.1:<free port>, with the static files served."""

    def __init__(self):
        from django.contrib.staticfiles.handlers import StaticFilesHandler
        from django.core.handlers.wsgi import WSGIHandler
        from django.core.servers.basehttp import ThreadedWSGIServer, WSGIRequestHandler

        class QuietHandler(WSGIRequestHandler):
            def log_message(self, *args):
                pass

        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.httpd = ThreadedWSGIServer(("127.0.0.1", self.port), QuietHandler, allow_reuse_address=True)
        self.httpd.set_app(StaticFilesHandler(WSGIHandler()))
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.url = f"http://127.0.0.1:{self.port}"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        from django.db import connections

        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(10)
        connections.close_all()
