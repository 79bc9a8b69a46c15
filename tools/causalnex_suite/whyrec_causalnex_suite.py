"""pytest plugin: run CausalNex's own test suite (from a checkout of its repository, not copied
here) against the installed causalnex with ``whyrec_causalnex.compat`` applied.

Loaded by run.py (``pytest.main(plugins=[...])``) or with ``-p whyrec_causalnex_suite`` when this
folder is on ``sys.path``. It applies the compat module before any test module imports causalnex,
deselects the tests listed in DESELECT (each with its reason) and names in the report header which
causalnex is under test, so a run against the checkout's own sources would show.
"""
from __future__ import annotations

import os

from whyrec_causalnex import compat

compat.apply()  # at import: before their conftest.py imports causalnex

import causalnex  # noqa: E402

# Set by run.py: whether test_port.patch was applied to the copy under test (18 tests whose own
# code uses pandas/numpy behaviour that pandas 3 / numpy 2 removed; see the patch's header).
PORTED: bool | None = None

# Tests not run, each with its reason (node id relative to the checkout). The first asserts a
# Python 3.10 message, the second the wording of an older pgmpy; the third needs an optional extra
# of CausalNex that does not build on Python 3.11. None of them can be fixed by a compat module.
_PY310 = ("asserts Python 3.10's AttributeError wording \"can't set attribute\"; Python 3.11 says "
          "\"property 'structure' of 'BayesianNetwork' object has no setter\" (the AttributeError is raised)")
_PGMPY = ("asserts the wording of an older library, not of Python: pgmpy < 0.1.20's misspelt message "
          "'conditional probabilites'; pgmpy 0.1.25 spells it 'probabilities' (the ValueError is raised)")
_MDLP = ("blocked: needs CausalNex's optional extra mdlp-discretization 0.3.3, which does not build on "
         "Python 3.11 with numpy 2: PyPI has only its source (no wheel); its _mdlp.pyx declares np.int_t, which "
         "numpy 2's Cython declarations no longer have (_mdlp.pyx:86:37: Invalid type, with Cython 0.29.37 and "
         "with Cython 3), and a build against numpy 1.x headers cannot load under numpy 2")
DESELECT: dict[str, str] = {
    "tests/test_bayesiannetwork.py::TestStructure::test_set_structure": _PY310,
    "tests/test_bayesiannetwork.py::TestSetCPD::test_set_bad_cpd": _PGMPY,
    "tests/test_network_model.py::TestBayesianCPDs::test_mdlp_discretiser": _MDLP,
}


def pytest_report_header(config):  # noqa: ANN001
    return [
        f"causalnex under test: {causalnex.__version__} from {os.path.dirname(causalnex.__file__)}",
        f"whyrec_causalnex.compat applied: {compat.is_applied()}; test-side port applied: {PORTED}; "
        f"deselected: {len(DESELECT)}",
    ]


def _node_id(item, config) -> str:  # noqa: ANN001
    """'tests/<file>::<Class>::<test>[<param>]' relative to the checkout, wherever pytest runs."""
    path = os.path.relpath(str(item.path), str(config.rootpath)).replace(os.sep, "/")
    return path + "::" + item.nodeid.split("::", 1)[1]


def pytest_collection_modifyitems(session, config, items):  # noqa: ANN001
    drop = [item for item in items if _node_id(item, config) in DESELECT]
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = [item for item in items if item not in drop]
    # a stale entry would silently deselect nothing: named at the end of the run
    config._whyrec_unmatched = sorted(set(DESELECT) - {_node_id(i, config) for i in drop})


def pytest_terminal_summary(terminalreporter, exitstatus, config):  # noqa: ANN001
    unmatched = getattr(config, "_whyrec_unmatched", [])
    if unmatched and not (config.option.keyword or config.option.markexpr):
        terminalreporter.write_line(f"DESELECT entries that matched no collected test: {unmatched}", yellow=True)
