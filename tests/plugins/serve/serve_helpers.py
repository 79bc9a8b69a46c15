"""`whyrec serve` as a user starts it, for the process tests (a module of its own name: every
test folder has a conftest)."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """`whyrec serve` as a user starts it, in its own process group."""

    def __init__(self, run: Path, *args: str, events: Path | None = None) -> None:
        self.port = free_port()
        exe = Path(sys.executable).parent / "whyrec"
        cmd = [str(exe), "serve", str(run), "--port", str(self.port), *args] + (["--events", str(events)] if events else [])
        self.log = open(run.parent / f"serve-{self.port}.log", "w+")
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        self.url = f"http://127.0.0.1:{self.port}"

    def wait_ready(self, timeout: float = 180) -> None:
        import httpx

        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise AssertionError(f"whyrec serve exited {self.proc.returncode}: {self.output()}")
            try:
                if httpx.get(self.url + "/readyz", timeout=5).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise AssertionError(f"whyrec serve not ready after {timeout} s: {self.output()}")

    def output(self) -> str:
        self.log.flush()
        self.log.seek(0)
        return self.log.read()[-3000:]

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, 15)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, 9)
                self.proc.wait(10)
        self.log.close()
