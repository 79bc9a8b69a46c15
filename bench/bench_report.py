"""Report size and build time.

    .venv/bin/python bench/bench_report.py                 # the small end-to-end run of the tests
    .venv/bin/python bench/bench_report.py runs/<run-dir>  # any finished run (e.g. the default MovieLens run)

Builds report.html ``--repeat`` times from the run directory's artifacts (no retraining) and
prints its size, its images and sections, and the build time; writes bench/results/report.json
(or report-<run>.json for a given run). There is no peer to run side by side: the report is
whyrec's own; the figures are absolute.
"""
from __future__ import annotations

import argparse
import json
import platform
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def small_run(tmp: Path):
    sys.path.insert(0, str(ROOT / "tests" / "core"))
    import test_report_plugin as kit

    return kit.run_pipeline(tmp), kit.make_host()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", nargs="?", help="a finished run directory (default: build the tests' small run)")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()

    from whyrec.report import build_report

    with tempfile.TemporaryDirectory() as tmp:
        if args.run:
            run, host, label = Path(args.run), None, Path(args.run).name
        else:
            run, host = small_run(Path(tmp))
            label = "small-e2e"
        times, cpu = [], []
        for _ in range(args.repeat):
            t0, c0 = time.perf_counter(), time.process_time()
            path = build_report(run, host=host)
            times.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
        page = path.read_text(encoding="utf-8")
    imgs = re.findall(r'src="data:image/[a-z+]+;base64,([^"]+)"', page)
    sections = re.findall(r'data-section="([^"]+)" data-status="([^"]+)"', page)
    out = {
        "run": label,
        "bytes": len(page.encode("utf-8")),
        "images": len(imgs),
        "image_bytes": sum(len(i) for i in imgs) * 3 // 4,
        "sections": len(sections),
        "missing_sections": [n for n, s in sections if s != "ok"],
        "build_seconds_min": min(times),
        "build_seconds_median": statistics.median(times),
        "build_cpu_seconds_min": min(cpu),  # less sensitive than wall time to a busy machine
        "load_average_1min": __import__("os").getloadavg()[0],
        "repeat": args.repeat,
        "python": platform.python_version(),
        "command": "python bench/bench_report.py" + (f" {args.run}" if args.run else ""),
    }
    print(f"{'run':<22}{'size (MB)':>10}{'images':>8}{'image MB':>10}{'sections':>10}{'build s (min)':>15}"
          f"{'median':>8}{'CPU s':>8}{'load':>6}")
    print(f"{label:<22}{out['bytes'] / 1e6:>10.2f}{out['images']:>8}{out['image_bytes'] / 1e6:>10.2f}"
          f"{out['sections']:>10}{out['build_seconds_min']:>15.2f}{out['build_seconds_median']:>8.2f}"
          f"{out['build_cpu_seconds_min']:>8.2f}{out['load_average_1min']:>6.1f}")
    if out["missing_sections"]:
        print("incomplete sections:", ", ".join(out["missing_sections"]))
    res = ROOT / "bench" / "results" / ("report.json" if not args.run else f"report-{label}.json")
    res.parent.mkdir(parents=True, exist_ok=True)
    res.write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {res.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
