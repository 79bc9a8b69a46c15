"""A fork server for mutation runs: import the heavy third-party libraries once, fork per mutant.

Each mutant is one pytest run. Importing numpy, pandas, pyarrow, shap, lightgbm and scikit-learn
takes longer than most of the tests themselves, so the server imports them once and forks a fresh
child per request; the child imports whyrec (never imported by the server) from the scratch copy,
so every mutant is seen. The child's pytest exit status goes back to the client, which mutmut runs
as its test command.

    python forkserver.py serve SOCKET MODULE...      (the run script starts and stops it)
    python forkserver.py client SOCKET -- PYTEST-ARGS (mutmut's runner)

The client exits 0 when pytest passed and 1 otherwise (collection or import errors included:
mutmut counts any status but 1 as "survived").
"""
from __future__ import annotations

import importlib
import json
import os
import select
import signal
import socket
import sys


def _recv_line(conn: socket.socket) -> bytes:
    buf = b""
    while not buf.endswith(b"\n"):
        chunk = conn.recv(65536)
        if not chunk:
            break
        buf += chunk
    return buf


def _child(req: dict) -> None:
    os.setsid()
    os.chdir(req["cwd"])
    log = os.open(req.get("log") or os.devnull, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.dup2(log, 1)
    os.dup2(log, 2)
    sys.stdout = os.fdopen(1, "w", buffering=1)
    sys.stderr = sys.stdout
    sys.argv = ["pytest", *req["args"]]
    import pytest

    try:
        code = int(pytest.main(req["args"]))
    except BaseException:  # noqa: BLE001 - anything escaping pytest fails the run
        code = 3
    sys.stdout.flush()
    os._exit(code)


def serve(path: str, modules: list[str]) -> None:
    for m in modules:
        try:
            importlib.import_module(m)
        except Exception as exc:  # noqa: BLE001 - an optional library: the child imports it itself
            print(f"forkserver: could not preload {m}: {exc}", file=sys.stderr)
    assert not any(k == "whyrec" or k.startswith("whyrec") for k in sys.modules), "whyrec must not be preloaded"
    if os.path.exists(path):
        os.unlink(path)
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(path)
    srv.listen(4)
    print("forkserver: ready", flush=True)
    while True:
        conn, _ = srv.accept()
        with conn:
            req = json.loads(_recv_line(conn) or b"{}")
            if req.get("stop"):
                conn.sendall(b"0\n")
                break
            pid = os.fork()
            if pid == 0:
                srv.close()
                conn.close()
                _child(req)
            status = None
            while status is None:
                done, st = os.waitpid(pid, os.WNOHANG)
                if done:
                    status = os.waitstatus_to_exitcode(st)
                    break
                r, _, _ = select.select([conn], [], [], 0.05)
                if r and not conn.recv(1, socket.MSG_PEEK):  # the client went away (mutmut's timeout)
                    try:
                        os.killpg(pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                    os.waitpid(pid, 0)
                    status = -9
            try:
                conn.sendall(f"{status}\n".encode())
            except OSError:
                pass
    srv.close()
    os.unlink(path)


def client(path: str, args: list[str]) -> int:
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    conn.connect(path)
    req = {"cwd": os.getcwd(), "args": args, "log": os.environ.get("WHYREC_MUTATION_LOG")}
    conn.sendall(json.dumps(req).encode() + b"\n")
    reply = _recv_line(conn).strip()
    code = int(reply) if reply else 3
    return 0 if code == 0 else 1


def stop(path: str) -> None:
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    conn.connect(path)
    conn.sendall(b'{"stop": true}\n')
    _recv_line(conn)


if __name__ == "__main__":
    cmd, sock, *rest = sys.argv[1:]
    if cmd == "serve":
        serve(sock, rest)
    elif cmd == "client":
        sys.exit(client(sock, rest[1:] if rest[:1] == ["--"] else rest))
    elif cmd == "stop":
        stop(sock)
    else:
        sys.exit(f"unknown command {cmd!r}")
