"""`make mutation`: mutation scores of the modules that compute what users trust.

Mutates a scratch copy of the repository, never the working tree (other processes keep running
their tests there): the copy is made under --scratch (default: $TMPDIR/whyrec-mutation) from the
working tree's tracked and untracked-but-not-ignored files, or from a git revision (--rev). The
copy's sources come first on PYTHONPATH, ahead of the editable installs in .venv.

For each target of targets.toml: a baseline run must pass and a planted fault (the module raising
on import) must fail, otherwise the score would mean nothing; then mutmut 2 (in-place mutation of
the copy) runs the target's test files against every mutant through a fork server that keeps the
heavy libraries imported. Survivors recorded as equivalent in equivalent.toml are reported as such.

    python tools/mutation/run.py [--only NAME ...] [--sample K] [--rev REV] [--mutmut PATH]
"""
from __future__ import annotations

import argparse
import ast
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
DEFAULT_PRELOAD = ["numpy", "pandas", "pyarrow", "pyarrow.parquet", "pyarrow.compute", "scipy.stats",
                   "matplotlib", "matplotlib.pyplot", "pytest", "pluggy", "click", "sklearn.metrics",
                   "networkx", "lightgbm", "shap", "sklearn.linear_model", "threadpoolctl", "statsmodels.api",
                   "statsmodels.stats.proportion", "statsmodels.stats.power", "statsmodels.stats.weightstats",
                   "torch", "causalnex"]


def sh(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, check=True, text=True, capture_output=True, **kw)


def make_scratch(scratch: Path, rev: str | None) -> None:
    if scratch.exists():
        shutil.rmtree(scratch)
    scratch.mkdir(parents=True)
    if rev:
        tar = subprocess.run(["git", "-C", str(ROOT), "archive", "--format=tar", rev], check=True, capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", str(scratch)], input=tar, check=True)
        return
    files = sh(["git", "-C", str(ROOT), "ls-files", "-co", "--exclude-standard", "-z"]).stdout.split("\0")
    for f in filter(None, files):
        src = ROOT / f
        if src.is_file():
            dst = scratch / f
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst)


def python_path(scratch: Path) -> str:
    paths = [scratch / "core", *sorted(p for p in (scratch / "plugins").iterdir() if (p / "pyproject.toml").exists()),
             scratch / "docs" / "examples" / "whyrec-example-plugin"]
    return os.pathsep.join(str(p) for p in paths if p.exists())


def function_lines(path: Path, names: list[str]) -> list[list[int]]:
    """Line ranges (1-based, inclusive) of the named top-level functions or Class.method."""
    tree = ast.parse(path.read_text())
    found: dict[str, list[int]] = {}
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            found[node.name] = [node.lineno, node.end_lineno]
        elif isinstance(node, ast.ClassDef):
            found[node.name] = [node.lineno, node.end_lineno]
            for sub in node.body:
                if isinstance(sub, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    found[f"{node.name}.{sub.name}"] = [sub.lineno, sub.end_lineno]
    missing = [n for n in names if n not in found]
    if missing:
        raise SystemExit(f"{path}: functions {missing} not found (update tools/mutation/targets.toml)")
    return [found[n] for n in names]


class ForkServer:
    def __init__(self, python: str, scratch: Path, env: dict, preload: list[str]) -> None:
        self.sock = str(Path(tempfile.mkdtemp(prefix="whyrec-mut-")) / "fork.sock")
        self.python = python
        self.env = env
        self.proc = subprocess.Popen([python, str(HERE / "forkserver.py"), "serve", self.sock, *preload],
                                     cwd=scratch, env=env, stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        if "ready" not in line:
            raise SystemExit(f"fork server did not start: {line!r}")

    def command(self, tests: list[str]) -> str:
        args = ["-x", "-q", "-p", "no:cacheprovider", "--no-header", "-o", "addopts=", *tests]
        return " ".join([self.python, str(HERE / "forkserver.py"), "client", self.sock, "--", *args])

    def run(self, tests: list[str], cwd: Path) -> int:
        return subprocess.run(self.command(tests), shell=True, cwd=cwd, env=self.env).returncode

    def close(self) -> None:
        subprocess.run([self.python, str(HERE / "forkserver.py"), "stop", self.sock], env=self.env)
        self.proc.wait(timeout=30)


def load_equivalents() -> dict[str, list[dict]]:
    p = HERE / "equivalent.toml"
    out: dict[str, list[dict]] = {}
    if p.exists():
        for e in tomllib.loads(p.read_text()).get("equivalent", []):
            out.setdefault(e["module"], []).append(e)
    return out


def norm(s: str) -> str:
    return " ".join(s.split())


ANNOTATION_BAR = re.compile(r"(?::|->)\s*[\w\[\]., '\"]*\|")


STRING_ANNOTATION = re.compile(r'^(\s*\w+\s*:\s*)"([^"]*)"(.*)$')


def string_annotation_only(before: str, after: str) -> bool:
    """mutmut's "XX...XX" around a quoted annotation (``x: "pd.DataFrame | None" = None``)."""
    a, b = STRING_ANNOTATION.match(before), STRING_ANNOTATION.match(after)
    return bool(a and b and a.group(1) == b.group(1) and a.group(3) == b.group(3) and b.group(2) == f"XX{a.group(2)}XX")


def annotation_only(before: str, after: str, postponed: bool) -> bool:
    """A `|` of a type annotation turned into `&`: never evaluated when the module postpones
    annotations (``from __future__ import annotations``), so no test can see it."""
    if not postponed or len(before) != len(after):
        return False
    diff = [i for i, (a, b) in enumerate(zip(before, after)) if a != b]
    if not re.match(r"\s*(?:async\s+def\s|def\s|\w+\s*:)", before):  # a def or a `name: annotation` line
        return False
    return (len(diff) == 1 and before[diff[0]] == "|" and after[diff[0]] == "&"
            and ANNOTATION_BAR.match(before, before.rfind(":", 0, diff[0]) if "->" not in before[:diff[0]] else before.rfind("->", 0, diff[0])) is not None)


def classify(m: dict, equiv: list[dict], postponed: bool) -> None:
    """Mark a surviving mutant equivalent when a rule or an entry of equivalent.toml says so."""
    m.pop("equivalent", None)
    if annotation_only(m["before"], m["after"], postponed) or string_annotation_only(m["before"], m["after"]):
        m["equivalent"] = "type annotation: never evaluated (from __future__ import annotations)"
        return
    for e in equiv:
        if norm(e["before"]) == norm(m["before"]) and norm(e["after"]) == norm(m["after"]):
            m["equivalent"] = e["why"]
            return


def run_target(t: dict, args, scratch: Path, server: ForkServer, mutmut: str, env: dict, equivalents: dict) -> dict:
    name, rel = t["name"], t["path"]
    src = scratch / rel
    wanted = t.get("before_tests", t["tests"]) if args.rev else t["tests"]
    tests = [x for x in wanted if (scratch / x.split("::")[0]).exists()]
    dropped = [x for x in wanted if x not in tests]
    res: dict = {"name": name, "path": rel, "tests": tests, "tests_missing": dropped}
    if not src.exists() or not tests:
        res["error"] = "source or every test file missing"
        return res
    log = scratch / "results" / (name.replace(" ", "_").replace("(", "").replace(")", "") + ".log")
    env = {**env, "WHYREC_MUTATION_LOG": str(log)}
    server.env = env
    # 1. the tests pass on the unmutated copy; 2. a planted fault in the copy's module is seen
    if server.run(tests, scratch) != 0:
        res["error"] = f"baseline fails (see {log})"
        return res
    original = src.read_text()
    src.write_text(original + "\nraise RuntimeError('whyrec mutation sanity check: planted fault')\n")
    try:
        planted = server.run(tests, scratch)
    finally:
        src.write_text(original)
    if planted == 0:
        res["error"] = "a planted fault in the scratch copy went unseen: the tests do not import the copy's module"
        return res
    scope = {"lines": function_lines(src, t["functions"]) if t.get("functions") else None, "sample": args.sample}
    env = {**env, "WHYREC_MUTATION_SCOPE": json.dumps(scope)}
    cache = scratch / ".mutmut-cache"
    cache.unlink(missing_ok=True)
    t0 = time.time()
    subprocess.run([mutmut, "run", "--paths-to-mutate", rel, "--tests-dir", "tests", "--runner", server.command(tests),
                    "--no-progress", "--simple-output", "-m", "4", "-b", "20"],
                   cwd=scratch, env=env, stdout=subprocess.DEVNULL if not args.verbose else None)
    res["seconds"] = round(time.time() - t0)
    dump = subprocess.run([str(Path(mutmut).parent / "python"), str(HERE / "dump_results.py")], cwd=scratch,
                          env=env, check=True, capture_output=True, text=True).stdout
    mutants = [json.loads(line) for line in dump.splitlines() if line.strip()]
    postponed = "from __future__ import annotations" in original
    for m in mutants:
        if m["status"] == "survived":
            classify(m, equivalents.get(name, []), postponed)
    tested = [m for m in mutants if m["status"] != "untested"]
    killed = [m for m in tested if m["status"] in ("killed", "timeout", "suspicious")]
    survived = [m for m in tested if m["status"] == "survived"]
    n_equiv = sum(1 for m in survived if "equivalent" in m)
    res.update(mutants=len(tested), killed=len(killed), timeout=sum(m["status"] == "timeout" for m in tested),
               survived=len(survived), equivalent=n_equiv, untested=len(mutants) - len(tested),
               score=round(100 * len(killed) / len(tested), 1) if tested else None,
               score_without_equivalent=round(100 * len(killed) / (len(tested) - n_equiv), 1) if len(tested) > n_equiv else None,
               survivors=[{k: m[k] for k in ("line", "before", "after", "equivalent") if k in m} for m in survived])
    cache.rename(scratch / "results" / (log.stem + ".mutmut-cache"))
    return res


def recheck_target(prev: dict, t: dict, scratch: Path, server: ForkServer, env: dict, equivalents: dict) -> dict:
    """Rerun only the survivors of an earlier run (its JSON) against today's tests: valid while
    the source lines are unchanged and tests were only added (a killed mutant stays killed)."""
    src = scratch / prev["path"]
    original = src.read_text()
    lines = original.split("\n")
    tests = [x for x in t["tests"] if (scratch / x.split("::")[0]).exists()]
    server.env = {**env, "WHYREC_MUTATION_LOG": str(scratch / "results" / "recheck.log")}
    if server.run(tests, scratch) != 0:
        return {"name": prev["name"], "path": prev["path"], "error": "baseline fails: cannot recheck"}
    still, stale = [], 0
    for sv in prev["survivors"]:
        i = sv["line"] - 1
        if i >= len(lines) or norm(lines[i]) != norm(sv["before"]):
            stale += 1
            continue
        classify(sv, equivalents.get(prev["name"], []), "from __future__ import annotations" in original)
        if "equivalent" in sv:
            still.append(sv)
            continue
        indent = lines[i][: len(lines[i]) - len(lines[i].lstrip())]
        src.write_text("\n".join([*lines[:i], indent + sv["after"], *lines[i + 1:]]))
        try:
            if server.run(tests, scratch) == 0:
                still.append(sv)
        finally:
            src.write_text(original)
    res = {k: prev[k] for k in ("name", "path", "mutants")}
    killed = prev["mutants"] - len(still) - stale
    n_equiv = sum(1 for sv in still if "equivalent" in sv)
    res.update(tests=tests, killed=killed, survived=len(still), equivalent=n_equiv, timeout=prev.get("timeout", 0),
               stale_survivors=stale, recheck_of=prev.get("seconds"), seconds=0,
               score=round(100 * killed / prev["mutants"], 1),
               score_without_equivalent=round(100 * killed / (prev["mutants"] - n_equiv), 1), survivors=still)
    return res


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", nargs="*", default=None, help="targets whose name contains one of these")
    ap.add_argument("--sample", type=int, default=1, help="test one mutant in K (a quick estimate)")
    ap.add_argument("--rev", default=None, help="mutate this git revision instead of the working tree, with its "
                    "tests (a target's before_tests when given, else the test files of its list that exist there)")
    ap.add_argument("--scratch", default=os.path.join(tempfile.gettempdir(), "whyrec-mutation"))
    ap.add_argument("--mutmut", default=str(ROOT / ".cache" / "mutmut-venv" / "bin" / "mutmut"))
    ap.add_argument("--python", default=sys.executable, help="the project's Python (runs the tests)")
    ap.add_argument("--out", default=None, help="write the JSON results here")
    ap.add_argument("--verbose", action="store_true")
    ap.add_argument("--recheck", default=None, help="a results JSON: retest only its survivors with today's tests")
    args = ap.parse_args()

    args.mutmut = str(Path(args.mutmut).absolute())  # mutmut runs in the scratch copy
    if not Path(args.mutmut).exists():
        raise SystemExit(f"{args.mutmut}: no mutmut there; `make mutation` installs mutmut==2.5.1 into .cache/mutmut-venv")
    cfg = tomllib.loads((HERE / "targets.toml").read_text())
    targets = [t for t in cfg["target"] if args.only is None or any(o in t["name"] for o in args.only)]
    scratch = Path(args.scratch).resolve()
    if scratch == ROOT or ROOT in scratch.parents:
        raise SystemExit("--scratch must be outside the repository")
    make_scratch(scratch, args.rev)
    (scratch / "results").mkdir()
    shutil.copy2(HERE / "mutmut_config.py", scratch / "mutmut_config.py")
    env = {**os.environ, "PYTHONPATH": python_path(scratch), "PYTHONDONTWRITEBYTECODE": "1", "MPLBACKEND": "Agg",
           "WHYREC_PROGRESS": "0", "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    server = ForkServer(args.python, scratch, env, cfg.get("settings", {}).get("preload", DEFAULT_PRELOAD))
    equivalents = load_equivalents()
    results = []
    try:
        for t in targets:
            if args.recheck:
                prev = {p["name"]: p for p in json.loads(Path(args.recheck).read_text())["targets"]}.get(t["name"])
                if prev is None or "error" in prev:
                    continue
                print(f"-- {t['name']} ({t['path']}): rechecking the survivors of {args.recheck}", flush=True)
                r = recheck_target(prev, t, scratch, server, env, equivalents)
            else:
                print(f"-- {t['name']} ({t['path']})", flush=True)
                r = run_target(t, args, scratch, server, args.mutmut, env, equivalents)
            results.append(r)
            if "error" in r:
                print(f"   ERROR: {r['error']}", flush=True)
                continue
            print(f"   {r['killed']}/{r['mutants']} killed ({r['timeout']} by timeout): score {r['score']}%; "
                  f"{r['survived']} survived, {r['equivalent']} of them explained as equivalent "
                  f"(score without them {r['score_without_equivalent']}%); {r['seconds']} s", flush=True)
            for s in r["survivors"]:
                tag = "equivalent" if "equivalent" in s else "SURVIVED"
                print(f"     {tag} line {s['line']}: {s['before']}  ->  {s['after']}", flush=True)
    finally:
        server.close()
    out = Path(args.out) if args.out else scratch / "results" / "mutation.json"
    out.write_text(json.dumps({"rev": args.rev, "sample": args.sample, "targets": results}, indent=1))
    print(f"\nresults: {out}")
    print(f"{'module':32} {'mutants':>7} {'killed':>6} {'survived':>8} {'equiv':>5} {'score':>6}")
    for r in results:
        if "error" in r:
            print(f"{r['name']:32} error: {r['error']}")
        else:
            print(f"{r['name']:32} {r['mutants']:>7} {r['killed']:>6} {r['survived']:>8} {r['equivalent']:>5} {r['score']:>5}%")
    unexplained = sum(1 for r in results for s in r.get("survivors", []) if "equivalent" not in s)
    return 1 if any("error" in r for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
