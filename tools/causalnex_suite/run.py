"""Run CausalNex's own test suite against the installed causalnex under whyrec_causalnex.compat.

    python tools/causalnex_suite/run.py /path/to/causalnex-checkout [extra pytest args]

The checkout is CausalNex's public repository (mckinsey/causalnex) at the release installed here:
tag 0.12.1 (commit 0108c92e990e51d6fad80bce5ea9bfc35f9400b2; PyPI's 0.12.2 has no tag there and
differs from it only in ``__version__`` and one docstring line). Its tests stay there and run in
place; nothing is written into the checkout. Exit status is pytest's.
"""
from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
# The four test modules issue 14 names: inference, the vendored ebaybbn, BayesianNetwork and its
# sklearn wrapper.
MODULES = ["tests/test_inference.py", "tests/ebaybbn", "tests/test_bayesiannetwork.py", "tests/test_network_model.py"]


def main(argv: list[str]) -> int:
    if not argv or not (Path(argv[0]) / "tests").is_dir():
        print("usage: run.py CAUSALNEX_CHECKOUT [pytest args]  (a checkout of mckinsey/causalnex with tests/)",
              file=sys.stderr)
        return 2
    src = Path(argv[0]).resolve()
    sys.dont_write_bytecode = True  # no __pycache__ (pytest's rewritten test modules) in the checkout
    sys.path.insert(0, str(HERE))
    import pytest

    import whyrec_causalnex_suite  # applies the compat module before pytest imports their conftest

    args = [
        "-c", str(HERE / "pytest.ini"),  # not their setup.cfg: its addopts need pytest-cov
        "--rootdir", str(src),
        "-p", "no:cacheprovider",  # write nothing into the checkout
        *[str(src / m) for m in MODULES],
        *argv[1:],
    ]
    return int(pytest.main(args, plugins=[whyrec_causalnex_suite]))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
