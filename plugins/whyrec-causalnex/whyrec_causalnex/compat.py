"""Make CausalNex 0.12.2 work on Python 3.11+, numpy 2 and pandas 3, on the paths whyrec uses.

Why this module exists
----------------------
causalnex 0.12.x declares ``Requires-Python <3.11`` (and numpy<1.24, pandas<2, pgmpy<0.1.20), so
pip refuses it; whyrec installs it with ``--no-deps --ignore-requires-python`` next to pgmpy
0.1.25. NOTEARS, the discretisers and ``BayesianNetwork`` fitting then work, but:

1. ``InferenceEngine`` (``query`` and ``do_intervention``) is broken on Python >= 3.11.
   It builds one Python function per network node whose *argument names are the node names*
   (the junction-tree code of its vendored ``ebaybbn`` reads them back with
   ``inspect.signature`` and calls the functions positionally; ``do_intervention`` reads them
   with ``inspect.getargs(f.__code__)``). It does so by calling ``types.CodeType(...)`` with the
   Python 3.8-3.10 positional signature, which changed in 3.11 (new ``co_qualname`` and
   ``co_exceptiontable`` arguments), so every ``InferenceEngine(bn)`` raises
   ``TypeError: code() argument 13 must be str, not int``. Its template also finds the
   argument values through ``inspect.currentframe()``, which only worked because the rebuilt
   code object kept the old bytecode. We replace ``InferenceEngine._create_node_function``:
   the function is generated from source with placeholder parameters (so the bytecode is
   valid for the running interpreter) and its code object is then renamed with
   ``code.replace(co_varnames=<node names>)``; renaming locals never changes bytecode, so this
   works for any node name CausalNex accepts (``^[0-9a-zA-Z_]+$``, even ``class`` or ``1st``,
   which could not be written as parameters in source; ``inspect.signature`` rejects those, so
   the function also carries the ``argspec`` attribute ebaybbn reads first).

2. ``InferenceEngine.do_intervention(node, state)`` only turns ``state`` into a one-hot
   distribution when it is an ``int``; a string or float state (e.g. ``"high"``) fell through
   to code that calls ``state.values()`` and failed with an AttributeError. The wrapper turns
   any known state into the one-hot distribution and names the node's states when it is not
   one of them.

3. ``BayesianNetwork._state_to_index`` sets ``df.is_copy`` (a long-removed pandas attribute,
   now a meaningless plain attribute) and maps states with ``Series.map(dict)``: a value the
   network has never seen becomes NaN. pgmpy then drops those rows from its counts without a
   word (``fit_cpds``) and prediction fails later with a bare KeyError. The replacement maps the
   states and raises a ValueError naming the node and the unknown values, so the integer state
   column handed to pgmpy never holds NaN (pandas 3 refuses NaN in int64 columns, the failure
   CausalNex's own test suite shows around missing states). Fitting CPDs on data that *lacks*
   some declared states works with pgmpy 0.1.25 + pandas 3 on this path (unseen parent
   configurations get the prior / uniform column); test_compat.py pins that down.

4. ``BayesianNetwork.cpds`` builds its tables with ``set_index(..., inplace=True)``, deprecated
   in pandas 3.1 (a ``Pandas4Warning`` on every call) and gone in pandas 4: rebuilt without it.

5. ``np.NaN`` was removed in numpy 2; pgmpy (``SEM``) and CausalNex's own tests still spell it
   so. ``apply()`` restores the alias (``np.NaN is np.nan``) when it is missing.

6. pgmpy 0.1.25 calls ``logging.basicConfig(level=INFO)`` at import, so every INFO record of
   any library (CausalNex logs one per NOTEARS call) printed on the host's stderr; ``apply()``
   removes the handler that import added and restores the root level.

Not patched, because the plugin does not use them: DYNOTEARS, the sklearn ``DAGClassifier`` /
``DAGRegressor`` wrappers, latent-variable EM (``fit_latent_cpds``, ``utils.data_utils``) and
``InferenceEngine.query(parallel=True)``.

``apply()`` is idempotent and is called by every whyrec_causalnex module that touches CausalNex.
tests/plugins/causalnex/test_compat.py checks each fix against hand-computed probabilities.
"""
from __future__ import annotations

import contextlib
import logging
import sys
import warnings
from typing import Any, Callable, Hashable, Iterator

_APPLIED = False


def _quiet_imports() -> None:
    # causalnex.discretiser logs "MDLP was not imported successfully" at import (an optional
    # extra we do not use); keep that line out of every whyrec run.
    logging.getLogger().addFilter(_MdlpFilter())
    warnings.filterwarnings("ignore", message=".*pkg_resources is deprecated.*")


class _MdlpFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:  # noqa: A003
        return "MDLP was not imported" not in record.getMessage()


class _Quiet(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:  # noqa: A003
        return "Learning structure using" not in record.getMessage()


@contextlib.contextmanager
def quiet_causalnex_logs() -> Iterator[None]:
    """Drop CausalNex's per-call INFO line ("Learning structure using 'NOTEARS' optimisation.",
    logged on the root logger) while NOTEARS runs; other records pass."""
    root = logging.getLogger()
    f = _Quiet()
    root.addFilter(f)
    try:
        yield
    finally:
        root.removeFilter(f)


def make_node_function(lookup: Callable[[tuple], float], name: str, args: tuple[str, ...]) -> Callable[..., float]:
    """A function ``name(*args)`` whose parameters are named ``args`` and that returns
    ``lookup(values)`` for the positional values it is called with.

    The body is compiled with placeholder parameter names ``_v0.._vN`` (always valid Python),
    then the code object's ``co_varnames`` are renamed to ``args``: bytecode addresses locals by
    index, so renaming is safe, and ``inspect.signature`` / ``inspect.getargs`` now report the
    node names, which is all CausalNex and ebaybbn read.
    """
    if not args:
        raise ValueError(f"node function {name!r} needs at least the node itself as argument")
    params = ", ".join(f"_v{i}" for i in range(len(args)))
    src = (
        "def _factory(_lookup):\n"
        f"    def _node_fn({params}):\n"
        f"        return _lookup(({params},))\n"
        "    return _node_fn\n"
    )
    namespace: dict[str, Any] = {}
    exec(compile(src, f"<whyrec_causalnex node function {name}>", "exec"), namespace)  # noqa: S102
    fn = namespace["_factory"](lookup)
    code = fn.__code__
    replace: dict[str, Any] = {"co_varnames": tuple(args), "co_name": name}
    if sys.version_info >= (3, 11):
        replace["co_qualname"] = name
    fn.__code__ = code.replace(**replace)
    fn.__name__ = name
    fn.__qualname__ = name
    # ebaybbn reads ``argspec`` before falling back to inspect.signature, which rejects names
    # that are keywords or start with a digit ("class", "1st": valid CausalNex node names)
    fn.argspec = list(args)
    return fn


def _create_node_function(self: Any, name: str, args: tuple[str, ...]) -> Callable[..., float]:
    """Replacement of ``InferenceEngine._create_node_function`` (see the module docstring).

    ``args[0]`` is the node, ``args[1:]`` its parents, in the order CausalNex stores the CPD
    conditions. The CPD is looked up at call time, as the original did, because
    ``do_intervention`` swaps ``self._cpds[node]`` before rebuilding the functions.
    """
    node, parents = args[0], tuple(args[1:])

    def lookup(values: tuple) -> float:
        return self._cpds[node][values[0]][tuple(zip(parents, values[1:]))]

    return make_node_function(lookup, name, tuple(args))


def _wrap_do_intervention(original: Callable) -> Callable:
    def do_intervention(self: Any, node: str, state: Hashable | dict | None = None) -> None:
        if node not in self._cpds:
            known = sorted(self._cpds)
            raise ValueError(f"unknown node {node!r}; the network's nodes are {known}")
        if state is not None and not isinstance(state, dict):
            states = list(self._cpds_original[node])
            if state not in states:
                raise ValueError(f"node {node!r} has no state {state!r}; its states are {states}")
            state = {s: float(s == state) for s in states}
        return original(self, node, state)

    do_intervention.__doc__ = original.__doc__
    do_intervention.__wrapped__ = original  # type: ignore[attr-defined]
    return do_intervention


def _state_to_index(self: Any, df: Any, nodes: list[str] | None = None) -> Any:
    """Replacement of ``BayesianNetwork._state_to_index``: no ``df.is_copy``; unknown states raise."""
    cols = nodes if nodes else list(df.columns)
    for col in cols:
        mapping = self._node_states[col]
        mapped = df[col].map(mapping)
        bad = mapped.isna()
        if bad.any():
            unknown = sorted({str(v) for v in df.loc[bad, col].unique()})[:10]
            raise ValueError(
                f"node {col!r}: values {unknown} are not among the states fitted by fit_node_states "
                f"({sorted(map(str, mapping))}); fit the node states on data that contains them"
            )
        df[col] = mapped.astype("int64")
    return df


def _cpds(self: Any) -> dict:
    """Replacement of the ``BayesianNetwork.cpds`` property: the same tables, built without
    ``set_index(..., inplace=True)`` (deprecated in pandas 3.1, removed in pandas 4)."""
    import pandas as pd

    out = {}
    for cpd in self._model.cpds:
        names = cpd.variables[1:]
        cols: Any = [""]
        if names:
            cols = pd.MultiIndex.from_product([sorted(self._node_states[var].keys()) for var in names], names=names)
        states = sorted(self._node_states[cpd.variable].keys())
        values = cpd.values.reshape(len(states), max(1, len(cols)))
        out[cpd.variable] = pd.DataFrame(values, index=pd.Index(states, name=cpd.variable), columns=cols)
    return out


@contextlib.contextmanager
def restore_root_logging() -> Iterator[None]:
    """Undo what code run inside does to the root logger (handlers added, level changed).

    pgmpy 0.1.25 runs ``logging.basicConfig(level=INFO)`` when imported: every library's INFO
    records would then print on the host's stderr."""
    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    try:
        yield
    finally:
        for h in root.handlers[:]:
            if h not in handlers:
                root.removeHandler(h)
        root.setLevel(level)


def apply() -> None:
    """Install every fix (idempotent)."""
    global _APPLIED
    if _APPLIED:
        return
    import numpy as np

    _quiet_imports()
    if "NaN" not in np.__dict__:
        np.NaN = np.nan  # type: ignore[attr-defined]

    with restore_root_logging():
        from causalnex.inference import InferenceEngine
        from causalnex.network import BayesianNetwork

    InferenceEngine._create_node_function = _create_node_function
    if not hasattr(InferenceEngine.do_intervention, "__wrapped__"):
        InferenceEngine.do_intervention = _wrap_do_intervention(InferenceEngine.do_intervention)
    BayesianNetwork._state_to_index = _state_to_index
    BayesianNetwork.cpds = property(_cpds, doc=BayesianNetwork.cpds.__doc__)
    _APPLIED = True


def is_applied() -> bool:
    return _APPLIED
