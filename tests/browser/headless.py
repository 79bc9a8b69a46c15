"""Drive Debian's headless Chromium over the DevTools protocol (websocket-client from PyPI).

``ensure_chromium()`` installs the Debian package when it is missing (as root, with apt-get);
``Page`` opens a file, records console errors, exceptions, failed loads and every network
request (of frames too), evaluates JavaScript and takes full-page screenshots.
"""
from __future__ import annotations

import base64
import itertools
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--no-default-browser-check",
         "--disable-dev-shm-usage", "--hide-scrollbars", "--mute-audio",
         "--remote-allow-origins=*"]  # newer Chromium refuses DevTools websockets from other origins (HTTP 403)


def find_chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


def ensure_chromium() -> str:
    """Path of a Chromium executable, installing Debian's `chromium` first when missing.

    Raises RuntimeError with the reason when it cannot be installed (not root, no apt-get,
    the package registry unreachable)."""
    path = find_chromium()
    if path:
        return path
    if not shutil.which("apt-get"):
        raise RuntimeError("Chromium is not installed and apt-get is not available: install Chromium "
                           "(Debian: apt-get install -y chromium chromium-driver) to run the browser tests")
    if os.geteuid() != 0:
        raise RuntimeError("Chromium is not installed and installing it needs root: run "
                           "`sudo apt-get install -y chromium chromium-driver`, then rerun the tests")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    steps = [["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "chromium", "chromium-driver"]]
    for cmd in steps:
        r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=1200)
        if r.returncode != 0:
            raise RuntimeError(f"`{' '.join(cmd)}` failed (exit {r.returncode}): {(r.stderr or r.stdout)[-800:]}")
    path = find_chromium()
    if not path:
        raise RuntimeError("apt-get installed chromium but no chromium executable is on PATH")
    return path


class Browser:
    """One headless Chromium process with a flattened DevTools session."""

    def __init__(self, executable: str, width: int = 1280, height: int = 900) -> None:
        import websocket  # websocket-client

        self.profile = tempfile.mkdtemp(prefix="whyrec-chromium-")
        self.proc = subprocess.Popen(
            [executable, *FLAGS, f"--user-data-dir={self.profile}", "--remote-debugging-port=0",
             f"--window-size={width},{height}", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )
        url = self._devtools_url(timeout=60)
        self.ws = websocket.create_connection(url, timeout=60, max_size=None) if _accepts_max_size() else \
            websocket.create_connection(url, timeout=60)
        self.ids = itertools.count(1)
        self.events: list[dict] = []

    def _devtools_url(self, timeout: float) -> str:
        deadline = time.time() + timeout
        lines = []
        while time.time() < deadline:
            line = self.proc.stderr.readline()
            if not line:
                if self.proc.poll() is not None:
                    break
                continue
            lines.append(line)
            m = re.search(r"DevTools listening on (ws://\S+)", line)
            if m:
                return m.group(1)
        self.close()
        raise RuntimeError("Chromium did not start its DevTools endpoint: " + "".join(lines)[-1500:])

    def send(self, method: str, params: dict | None = None, session: str | None = None, timeout: float = 60) -> dict:
        msg_id = next(self.ids)
        msg: dict[str, Any] = {"id": msg_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        self.ws.send(json.dumps(msg))
        deadline = time.time() + timeout
        while time.time() < deadline:
            reply = json.loads(self.ws.recv())
            if reply.get("id") == msg_id:
                if "error" in reply:
                    raise RuntimeError(f"{method} failed: {reply['error']}")
                return reply.get("result", {})
            self._event(reply)
        raise TimeoutError(f"no reply to {method} in {timeout} s")

    def _event(self, msg: dict) -> None:
        if "method" not in msg:
            return
        self.events.append(msg)
        if msg["method"] == "Target.attachedToTarget":  # a frame in its own process: watch it too
            sid = msg["params"]["sessionId"]
            for method in ("Runtime.enable", "Log.enable", "Network.enable"):
                self._send_nowait(method, sid)
            self._send_nowait("Runtime.runIfWaitingForDebugger", sid)

    def _send_nowait(self, method: str, session: str) -> None:
        self.ws.send(json.dumps({"id": next(self.ids), "method": method, "params": {}, "sessionId": session}))

    def wait_for(self, method: str, timeout: float = 60) -> dict:
        deadline = time.time() + timeout
        for ev in self.events:
            if ev["method"] == method:
                return ev
        while time.time() < deadline:
            msg = json.loads(self.ws.recv())
            self._event(msg)
            if msg.get("method") == method:
                return msg
        raise TimeoutError(f"no {method} event in {timeout} s")

    def drain(self, seconds: float) -> None:
        """Read events for a while (late console messages, frames loading)."""
        end = time.time() + seconds
        self.ws.settimeout(0.2)
        try:
            while time.time() < end:
                try:
                    self._event(json.loads(self.ws.recv()))
                except Exception as exc:  # noqa: BLE001  (a read timeout ends one poll)
                    if type(exc).__name__ != "WebSocketTimeoutException":
                        raise
        finally:
            self.ws.settimeout(60)

    def open(self, url: str) -> "Page":
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        sid = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for method in ("Page.enable", "Runtime.enable", "Log.enable", "Network.enable"):
            self.send(method, session=sid)
        self.send("Target.setAutoAttach", {"autoAttach": True, "waitForDebuggerOnStart": True, "flatten": True}, session=sid)
        self.events.clear()
        self.send("Page.navigate", {"url": url}, session=sid)
        self.wait_for("Page.loadEventFired", timeout=120)
        self.drain(1.0)
        return Page(self, sid)

    def close(self) -> None:
        try:
            if getattr(self, "ws", None) is not None:
                self.ws.close()
        finally:
            if self.proc.poll() is None:
                self.proc.terminate()
                try:
                    self.proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
            shutil.rmtree(self.profile, ignore_errors=True)

    def __enter__(self) -> "Browser":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def _accepts_max_size() -> bool:
    import inspect

    import websocket

    try:
        return "max_size" in inspect.signature(websocket.create_connection).parameters
    except (TypeError, ValueError):
        return False


class Page:
    def __init__(self, browser: Browser, session: str) -> None:
        self.b, self.session = browser, session

    def decoded_images(self) -> list[dict]:
        """Every image loaded (lazy ones too: off screen they never load headless) and decoded:
        [{alt, w, h, complete}] in document order."""
        self.eval("Array.from(document.images).forEach((im) => { im.loading = 'eager'; })")
        return self.eval("""Promise.all(Array.from(document.images).map(
                (im) => im.decode().then(() => null, () => null).then(() =>
                    ({alt: im.alt, w: im.naturalWidth, h: im.naturalHeight, complete: im.complete}))))""",
                         await_promise=True)

    def eval(self, expression: str, await_promise: bool = False) -> Any:
        res = self.b.send("Runtime.evaluate", {"expression": expression, "returnByValue": True,
                                               "awaitPromise": await_promise}, session=self.session)
        if "exceptionDetails" in res:
            raise RuntimeError(f"JavaScript failed: {res['exceptionDetails']}")
        return res["result"].get("value")

    def errors(self) -> list[str]:
        """Console errors, uncaught exceptions and error log entries (all frames)."""
        out = []
        for ev in self.b.events:
            m, p = ev["method"], ev.get("params", {})
            if m == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
                out.append("console: " + " ".join(str(a.get("value", a.get("description", ""))) for a in p.get("args", [])))
            elif m == "Runtime.exceptionThrown":
                d = p.get("exceptionDetails", {})
                out.append("exception: " + str(d.get("exception", {}).get("description") or d.get("text")))
            elif m == "Log.entryAdded" and p.get("entry", {}).get("level") == "error":
                e = p["entry"]
                out.append(f"log ({e.get('source')}): {e.get('text')} {e.get('url', '')}")
        return out

    def requests(self) -> list[str]:
        return [ev["params"]["request"]["url"] for ev in self.b.events if ev["method"] == "Network.requestWillBeSent"]

    def frame_eval(self, expression: str) -> list[Any]:
        """Evaluate in every child frame that runs in its own process (sandboxed iframes)."""
        out = []
        for ev in self.b.events:
            if ev["method"] == "Target.attachedToTarget" and ev["params"]["targetInfo"].get("type") == "iframe":
                res = self.b.send("Runtime.evaluate", {"expression": expression, "returnByValue": True},
                                  session=ev["params"]["sessionId"])
                out.append(res.get("result", {}).get("value"))
        return out

    def screenshot(self, path: Path, max_height: int = 16000) -> Path:
        """Full-page PNG: the viewport is stretched to the page (so out-of-process frames paint too)."""
        metrics = self.b.send("Page.getLayoutMetrics", session=self.session)
        size = metrics.get("cssContentSize") or metrics["contentSize"]
        width, height = int(size["width"]), min(int(size["height"]) + 1, max_height)
        self.b.send("Emulation.setDeviceMetricsOverride", {"width": width, "height": height, "deviceScaleFactor": 1,
                                                           "mobile": False}, session=self.session)
        self.b.drain(1.0)  # let frames repaint at the new size
        data = self.b.send("Page.captureScreenshot", {"format": "png"}, session=self.session, timeout=120)["data"]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(data))
        return path
