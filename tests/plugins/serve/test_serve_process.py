"""`whyrec serve` as a process: hot swap with no failed request, SIGTERM finishes what is in
flight, and a killed worker is survived (uvicorn's supervisor starts another)."""
from __future__ import annotations

import os
import signal
import threading
import time

import httpx

from serve_helpers import Server


def _flow(url: str, stop: threading.Event, results: list) -> None:
    """Requests, one after another, until told to stop: (status, error) of each."""
    with httpx.Client(base_url=url, timeout=60) as c:
        u = 0
        while not stop.is_set():
            u = (u + 1) % 40
            try:
                r = c.get("/recommend", params={"user": u, "k": 3, "explain": "tree-shap"})
                results.append((r.status_code, None if r.status_code == 200 else r.text))
            except httpx.HTTPError as exc:
                results.append((None, repr(exc)))


def test_hot_swap_sighup_and_sigterm_lose_no_request(run_copy):
    srv = Server(run_copy)
    try:
        srv.wait_ready()
        stop, results = threading.Event(), []
        flow = threading.Thread(target=_flow, args=(srv.url, stop, results))
        flow.start()
        time.sleep(1.0)
        r = httpx.post(srv.url + "/admin/reload", json={}, timeout=120)  # re-read the run while requests flow
        assert r.status_code == 200 and r.json()["status"] == "reloaded", r.text
        os.kill(srv.proc.pid, signal.SIGHUP)  # the same, by signal
        end = time.monotonic() + 120
        while 'whyrec_reloads_total{outcome="ok"} 2.0' not in httpx.get(srv.url + "/metrics").text:
            assert time.monotonic() < end, "SIGHUP did not swap the run in"
            time.sleep(0.2)
        time.sleep(0.5)
        stop.set()
        flow.join(60)
        assert len(results) >= 3
        assert [r for r in results if r[0] != 200] == []
        # SIGTERM while a slow request (a reload: the run loads again) is in flight: it is answered
        answer: dict = {}
        t = threading.Thread(target=lambda: answer.update(r=httpx.post(srv.url + "/admin/reload", json={}, timeout=120)))
        t.start()
        time.sleep(0.5)
        os.kill(srv.proc.pid, signal.SIGTERM)
        t.join(150)
        assert answer["r"].status_code == 200, answer
        assert "reloaded" in answer["r"].text
        # uvicorn re-raises the signal once shut down: the process ends by SIGTERM, after answering
        assert srv.proc.wait(60) in (0, -signal.SIGTERM)
    finally:
        srv.stop()


def test_a_killed_worker_is_survived(run_copy):
    srv = Server(run_copy, "--workers", "2")
    try:
        srv.wait_ready()
        pids = set()
        end = time.monotonic() + 120
        while len(pids) < 2 and time.monotonic() < end:  # both workers up
            pids.add(httpx.get(srv.url + "/healthz", timeout=30).json()["pid"])
        assert len(pids) == 2
        victim = pids.pop()
        os.kill(victim, signal.SIGKILL)
        for u in range(12):  # the service keeps answering, all of it
            r = httpx.get(srv.url + "/recommend", params={"user": u, "k": 2}, timeout=120)
            assert r.status_code == 200, r.text
        seen = set()
        end = time.monotonic() + 150
        while not (seen - pids - {victim}) and time.monotonic() < end:  # the supervisor started a new worker
            seen.add(httpx.get(srv.url + "/healthz", timeout=30).json()["pid"])
        assert seen - pids - {victim}, f"no new worker after the kill: {srv.output()}"
        assert victim not in seen
    finally:
        srv.stop()
