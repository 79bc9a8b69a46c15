"""Run CausalNex's own test suite against the installed causalnex under whyrec_causalnex.compat.

    python tools/causalnex_suite/run.py /path/to/causalnex-checkout [extra pytest args]

The checkout is CausalNex's public repository (mckinsey/causalnex) at the release installed here:
tag 0.12.1 (commit 0108c92e990e51d6fad80bce5ea9bfc35f9400b2; PyPI's 0.12.2 has no tag there and
differs from it only in ``__version__`` and one docstring line). Nothing is written into the
checkout: it is copied to a temporary folder, where test_port.patch ports a few lines of its TEST
code to pandas 3 / numpy 2 (printed before the run; see the patch's header for each reason), and
the tests run there. ``--no-port`` runs the copy unported. Exit status is pytest's.
"""
from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
# The four test modules issue 14 names: inference, the vendored ebaybbn, BayesianNetwork and its
# sklearn wrapper.
MODULES = ["tests/test_inference.py", "tests/ebaybbn", "tests/test_bayesiannetwork.py", "tests/test_network_model.py"]
PORT = HERE / "test_port.patch"


def port(copy: Path) -> list[str]:
    """Apply test_port.patch to the copy (test files only); the changed lines, for the log."""
    check = subprocess.run(["git", "apply", "--check", str(PORT)], cwd=copy, capture_output=True, text=True)
    if check.returncode:
        raise SystemExit(f"run.py: {PORT.name} does not apply to this checkout ({check.stderr.strip().splitlines()[0]}); "
                         "it is written for CausalNex's tag 0.12.1: check out that tag, or run with --no-port")
    subprocess.run(["git", "apply", str(PORT)], cwd=copy, check=True)
    lines, name = [], ""
    for line in PORT.read_text().splitlines():
        if line.startswith("+++ "):
            name = line[len("+++ b/"):]
        elif line.startswith(("-", "+")) and not line.startswith("--- "):
            lines.append(f"  {name}: {line[0]} {line[1:].strip()}")
    return lines


def main(argv: list[str]) -> int:
    if not argv or not (Path(argv[0]) / "tests").is_dir():
        print("usage: run.py CAUSALNEX_CHECKOUT [--no-port] [pytest args]  (a checkout of mckinsey/causalnex with tests/)",
              file=sys.stderr)
        return 2
    given = Path(argv[0]).resolve()
    rest = [a for a in argv[1:] if a != "--no-port"]
    ported = "--no-port" not in argv[1:]
    sys.dont_write_bytecode = True  # no __pycache__ (pytest's rewritten test modules)
    sys.path.insert(0, str(HERE))
    with tempfile.TemporaryDirectory(prefix="causalnex-suite-") as tmp:
        src = Path(tmp) / "causalnex"
        shutil.copytree(given, src, ignore=shutil.ignore_patterns(".git", "__pycache__", ".pytest_cache"))
        if ported:
            print(f"CausalNex's tests copied from {given} to {src}; test-side port ({PORT.name}) applied:")
            print("\n".join(port(src)), flush=True)
        else:
            print(f"CausalNex's tests copied from {given} to {src}; not ported (--no-port)", flush=True)
        import pytest

        import whyrec_causalnex_suite  # applies the compat module before pytest imports their conftest

        whyrec_causalnex_suite.PORTED = ported
        args = [
            "-c", str(HERE / "pytest.ini"),  # not their setup.cfg: its addopts need pytest-cov
            "--rootdir", str(src),
            "-p", "no:cacheprovider",
            *[str(src / m) for m in MODULES],
            *rest,
        ]
        return int(pytest.main(args, plugins=[whyrec_causalnex_suite]))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
