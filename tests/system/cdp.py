"""A minimal Chrome DevTools Protocol client for the dashboard tests: headless Chromium (Debian's
`chromium`) driven over --remote-debugging-pipe (file descriptors 3 and 4, NUL-terminated JSON),
so no websocket library, npm package or network access is needed. Every wait is bounded."""
import base64
import fcntl
import json
import os
import select
import shutil
import signal
import subprocess
import tempfile
import time

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run",
                  "--disable-default-apps", "--disable-extensions", "--mute-audio"]


def chromium_path():
    for name in ("chromium", "chromium-browser"):
        p = shutil.which(name)
        if p:
            return p
    return None


def _high(fds):
    """The pipe's ends moved above 9, so that dup2() onto 3 and 4 cannot clobber them."""
    out = []
    for fd in fds:
        out.append(fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10))
        os.close(fd)
    return out


class CDPError(Exception):
    pass


class Browser:
    """One headless Chromium with one page target; use as a context manager."""

    def __init__(self, width=1280, height=900, log_path=None):
        self.profile = tempfile.mkdtemp(prefix="keel-chromium-")
        to_r, to_w = _high(os.pipe())      # we write commands, chromium reads them on fd 3
        from_r, from_w = _high(os.pipe())  # chromium writes answers on fd 4
        args = [chromium_path()] + CHROMIUM_FLAGS + [
            "--remote-debugging-pipe", "--user-data-dir=" + self.profile,
            "--window-size=%d,%d" % (width, height), "about:blank"]
        self.log = open(log_path or os.devnull, "w")

        def fds():
            # Python's own descriptors are close-on-exec: only 0-2 and these two reach chromium.
            os.dup2(to_r, 3)
            os.dup2(from_w, 4)

        self.p = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=self.log,
                                  stderr=self.log, start_new_session=True, close_fds=False,
                                  preexec_fn=fds)
        os.close(to_r)
        os.close(from_w)
        self.wfd, self.rfd = to_w, from_r
        self.buf = b""
        self.next_id = 0
        self.events = []
        self.session = None
        try:
            tid = self.call("Target.createTarget", {"url": "about:blank"})["targetId"]
            self.session = self.call("Target.attachToTarget",
                                     {"targetId": tid, "flatten": True})["sessionId"]
            self.call("Page.enable")
            self.call("Runtime.enable")
        except Exception:
            self.close()
            raise

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _read_msg(self, deadline):
        while b"\0" not in self.buf:
            left = deadline - time.time()
            if left <= 0:
                raise CDPError("timeout waiting for chromium")
            r, _, _ = select.select([self.rfd], [], [], left)
            if not r:
                continue
            d = os.read(self.rfd, 1 << 20)
            if not d:
                raise CDPError("chromium closed the pipe (exit %s)" % self.p.poll())
            self.buf += d
        msg, self.buf = self.buf.split(b"\0", 1)
        return json.loads(msg)

    def call(self, method, params=None, timeout=15.0, session=True):
        self.next_id += 1
        mid = self.next_id
        m = {"id": mid, "method": method, "params": params or {}}
        if session and self.session:
            m["sessionId"] = self.session
        data = json.dumps(m).encode() + b"\0"
        while data:
            n = os.write(self.wfd, data)
            data = data[n:]
        deadline = time.time() + timeout
        while True:
            msg = self._read_msg(deadline)
            if msg.get("id") == mid:
                if "error" in msg:
                    raise CDPError("%s: %s" % (method, msg["error"]))
                return msg.get("result", {})
            if "method" in msg:
                self.events.append(msg)

    def wait_event(self, method, timeout=15.0):
        """The first event named method received since the last clear_events(), waiting for it."""
        deadline = time.time() + timeout
        while True:
            for i, e in enumerate(self.events):
                if e["method"] == method:
                    return self.events.pop(i)
            msg = self._read_msg(deadline)
            if "method" in msg:
                self.events.append(msg)

    def clear_events(self):
        self.events = []

    def set_headers(self, headers):
        self.call("Network.enable")
        self.call("Network.setExtraHTTPHeaders", {"headers": headers})

    def navigate(self, url, timeout=15.0):
        self.clear_events()
        r = self.call("Page.navigate", {"url": url})
        if r.get("errorText"):
            raise CDPError("navigate %s: %s" % (url, r["errorText"]))
        self.wait_event("Page.loadEventFired", timeout)

    def eval(self, expr, timeout=15.0):
        r = self.call("Runtime.evaluate", {"expression": expr, "returnByValue": True,
                                           "awaitPromise": True}, timeout=timeout)
        if "exceptionDetails" in r:
            raise CDPError("evaluate %r: %s" % (expr, r["exceptionDetails"]))
        return r["result"].get("value")

    def wait_js(self, expr, timeout=10.0, step=0.1):
        """Polls a JavaScript expression until it is truthy; returns its last value."""
        deadline = time.time() + timeout
        while True:
            v = self.eval(expr)
            if v or time.time() >= deadline:
                return v
            time.sleep(step)

    def viewport(self, width, height, mobile=False):
        self.call("Emulation.setDeviceMetricsOverride",
                  {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": mobile})

    def screenshot(self, path, full_page=False):
        params = {"format": "png"}
        if full_page:
            params["captureBeyondViewport"] = True
        r = self.call("Page.captureScreenshot", params, timeout=30)
        with open(path, "wb") as f:
            f.write(base64.b64decode(r["data"]))

    def close(self):
        try:
            if self.p.poll() is None:
                try:
                    self.call("Browser.close", session=False, timeout=3)
                except Exception:
                    pass
                try:
                    self.p.wait(5)
                except subprocess.TimeoutExpired:
                    pass
        finally:
            try:
                os.killpg(self.p.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            try:
                self.p.wait(5)
            except subprocess.TimeoutExpired:
                pass
            for fd in (self.wfd, self.rfd):
                try:
                    os.close(fd)
                except OSError:
                    pass
            self.log.close()
            shutil.rmtree(self.profile, ignore_errors=True)


def _run(args, timeout):
    """Runs chromium in its own process group; the whole group is killed at the end."""
    profile = tempfile.mkdtemp(prefix="keel-chromium-")
    p = subprocess.Popen([chromium_path()] + CHROMIUM_FLAGS + ["--user-data-dir=" + profile] + args,
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                         stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        out, _ = p.communicate(timeout=timeout)
        return p.returncode, out.decode("utf-8", "replace")
    finally:
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        if p.poll() is None:
            p.kill()
        p.wait()
        shutil.rmtree(profile, ignore_errors=True)


def cli_shot(url, path, width=1280, height=900, timeout=60):
    """chromium --screenshot, the command an operator would run; returns (exit status, output)."""
    return _run(["--screenshot=" + path, "--window-size=%d,%d" % (width, height), url], timeout)


def cli_dump_dom(url, timeout=60):
    """chromium --dump-dom: the DOM after the page's scripts ran."""
    return _run(["--dump-dom", url], timeout)[1]
