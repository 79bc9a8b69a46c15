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

7. Latent variables (``BayesianNetwork.add_node`` + ``fit_latent_cpds``, the EM estimator) failed
   with ``ValueError: Variable names cannot be same``. ``causalnex.utils.pgmpy_utils
   .cpd_multiplication`` multiplies CPDs with pgmpy's ``factor_product`` on ``TabularCPD`` objects
   and expects the product to keep the first CPD's variable first. pgmpy >= 0.1.20 orders a
   product's variables by a ``set`` union (so the order changes with the string hash seed) and
   then copies the product as a ``TabularCPD`` whose "first variable" is now wrong. The
   replacement multiplies plain ``DiscreteFactor`` objects and puts the axes in a fixed order
   itself: the first CPD's node, then every other variable in order of first appearance.

8. ``InferenceEngine`` took only string node names: ``__init__`` matched every name against
   ``^[0-9a-zA-Z_]+$`` with ``re.match`` (a TypeError for an int, e.g. the columns of a frame
   built without names), ``query`` passes the observations as ``**kwargs`` to ebaybbn, and ebaybbn
   sorts and upper-cases variable names. The engine now gives each node a string alias inside the
   junction tree (a string node is its own alias, so nothing changes for it; an int ``3`` becomes
   ``"3"``, or ``"_3"`` if a string node ``"3"`` exists too) and maps observations, results, the
   node functions and ``do_intervention`` between nodes and aliases. String names keep the regex
   check and its ValueError. Fitting such a network could fail one step earlier, in pgmpy: with
   pandas 3 a ``groupby`` over the labels of an int64 column index (a RangeIndex does not do it)
   names its index levels with numpy ints, and pgmpy's ``BaseEstimator.state_counts`` then calls
   ``.unstack(parents)``, which for two or more parents raises ``ValueError: The truth value of an
   array ... is ambiguous`` (pandas tests ``parents in index.names``). ``state_counts`` now counts
   under string aliases when a name is not a string and gives the table its names back. A network
   that mixes int and string names still cannot be fitted: pgmpy sorts a node's parent names.

Not patched, because the plugin does not use them: DYNOTEARS and the sklearn ``DAGClassifier`` /
``DAGRegressor`` wrappers. ``InferenceEngine.query(parallel=True)`` works as it is (pathos pickles
the engine, node functions included, with dill).

CausalNex's own test suite (its repository's tests/, run in place with
``make causalnex-suite CAUSALNEX_SRC=...``, see tools/causalnex_suite/) passes under these fixes
apart from the tests listed in tools/causalnex_suite/whyrec_causalnex_suite.py with their reasons.

``apply()`` is idempotent and is called by every whyrec_causalnex module that touches CausalNex.
tests/plugins/causalnex/test_compat.py checks each fix against hand-computed probabilities.
"""
from __future__ import annotations

import contextlib
import logging
import numbers
import re
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


_NODE_NAME = "^[0-9a-zA-Z_]+$"  # what CausalNex's InferenceEngine requires of a string node name


def node_aliases(nodes: list[Hashable]) -> dict[Hashable, str]:
    """node -> the string that stands for it inside ebaybbn's junction tree (fix 8).

    A string node is its own alias, so nothing changes for networks CausalNex already supported.
    Any other node (an int) gets ``str(node)``, prefixed with ``_`` until it clashes with no string
    node and no earlier alias."""
    taken = {n for n in nodes if isinstance(n, str)}
    out: dict[Hashable, str] = {}
    for n in nodes:
        if isinstance(n, str):
            out[n] = n
            continue
        alias = str(n)
        while alias in taken:
            alias = "_" + alias
        taken.add(alias)
        out[n] = alias
    return out


def _aliases(engine: Any) -> dict[Hashable, str]:
    aliases = engine.__dict__.get("_whyrec_aliases")
    if aliases is None:  # an engine built before apply(): only string nodes are possible there
        aliases = node_aliases([*engine._cpds, *engine._detached_cpds])
        engine._whyrec_aliases = aliases
    return aliases


def _engine_init(self: Any, bn: Any) -> None:
    """Replacement of ``InferenceEngine.__init__`` (fix 8): the same checks and set-up, but an int
    node is accepted (the original's ``re.match`` raised a TypeError on it) and every node gets
    its junction-tree alias before the junction tree is built."""
    bad = [n for n in bn.nodes
           if not (isinstance(n, str) and re.match(_NODE_NAME, n)) and not isinstance(n, numbers.Integral)]
    if bad:
        raise ValueError(
            f"Variable names must match {_NODE_NAME} - please fix the following nodes: {bad}"
            " (int node names are accepted too)"
        )
    if not bn.cpds:
        raise ValueError(
            "Bayesian Network does not contain any CPDs. You should fit CPDs "
            "before doing inference (see `BayesianNetwork.fit_cpds`)."
        )
    self._cpds = None
    self._detached_cpds = {}
    self._baseline_marginals = None
    self._whyrec_aliases = node_aliases(list(bn.nodes))
    self._create_cpds_dict_bn(bn)
    self._generate_domains_bn(bn)
    self._generate_bbn()


def _generate_bbn(self: Any) -> None:
    """Replacement of ``InferenceEngine._generate_bbn`` (fix 8): the junction tree's domains are
    keyed by the nodes' aliases, as the node functions' argument names are."""
    from causalnex.inference import inference

    aliases = _aliases(self)
    self._node_functions = self._create_node_functions()
    self._bbn = inference.build_bbn(
        list(self._node_functions.values()),
        domains={aliases[n]: d for n, d in self._domains.items()},
    )


def _single_query(self: Any, observations: dict | None = None) -> dict:
    """Replacement of ``InferenceEngine._single_query`` (fix 8): observations are passed to the
    junction tree under the nodes' aliases and its results mapped back to the nodes. An unknown
    node is passed on unchanged, so ebaybbn answers it as it did before."""
    aliases = _aliases(self)
    node_of = {a: n for n, a in aliases.items()}
    if observations:
        bbn_results = self._bbn.query(**{aliases.get(k, k): v for k, v in observations.items()})
    else:
        bbn_results = self._bbn.query()
    results: dict = {node: {} for node in self._cpds}
    for (alias, state), prob in bbn_results.items():
        results[node_of.get(alias, alias)][state] = prob
    # the detached nodes are set to the baseline marginals based on original CPDs (as the original)
    for node in self._detached_cpds:
        results[node] = self._baseline_marginals[node]
    return results


def _create_node_function(self: Any, name: str, args: tuple[Hashable, ...]) -> Callable[..., float]:
    """Replacement of ``InferenceEngine._create_node_function`` (fixes 1 and 8).

    ``args[0]`` is the node, ``args[1:]`` its parents, in the order CausalNex stores the CPD
    conditions. The function's parameters are the nodes' aliases and it is named ``f_<alias>``
    (ebaybbn keys factors by function name: ``f_{node}`` could clash for an int 0 and a string
    "0"), ``name`` is therefore not used. The CPD is looked up at call time, as the original did,
    because ``do_intervention`` swaps ``self._cpds[node]`` before rebuilding the functions.
    """
    aliases = _aliases(self)
    node, parents = args[0], tuple(args[1:])

    def lookup(values: tuple) -> float:
        return self._cpds[node][values[0]][tuple(zip(parents, values[1:]))]

    return make_node_function(lookup, f"f_{aliases[node]}", tuple(aliases[a] for a in args))


def _make_do_intervention(original: Callable) -> Callable:
    def do_intervention(self: Any, node: Hashable, state: Hashable | dict | None = None) -> None:
        """Replacement of ``InferenceEngine.do_intervention`` (fixes 2 and 8): any known state
        (not only an int) becomes the one-hot distribution, an unknown node or state is named, and
        the isolate check reads the node functions' parents as nodes, not as aliases."""
        if node not in self._cpds:
            known = sorted(self._cpds, key=str)
            raise ValueError(f"unknown node {node!r}; the network's nodes are {known}")
        if state is None:
            raise ValueError(f"do_intervention({node!r}) needs a state or a distribution over the states")
        if not isinstance(state, dict):
            states = list(self._cpds_original[node])
            if state not in states:
                raise ValueError(f"node {node!r} has no state {state!r}; its states are {states}")
            state = {s: float(s == state) for s in states}
        from causalnex.ebaybbn.utils import get_args

        node_of = {a: n for n, a in _aliases(self).items()}
        if not any(node in [node_of[a] for a in get_args(f)[1:]] for f in self._node_functions.values()):
            raise ValueError("Do calculus cannot be applied because it would result in an isolate")
        if self._baseline_marginals is None:
            self._baseline_marginals = self._single_query(None)
        self._do(node, state)
        self._remove_disconnected_nodes(node)  # a do can split the graph (as the original)
        self._generate_bbn()

    do_intervention.__doc__ = original.__doc__
    do_intervention.__wrapped__ = original  # type: ignore[attr-defined]
    return do_intervention


def _wrap_state_counts(original: Callable) -> Callable:
    def state_counts(self: Any, variable: Hashable, parents: Any = (), weighted: bool = False,
                     reindex: bool = True) -> Any:
        """Replacement of ``pgmpy.estimators.BaseEstimator.state_counts`` (fix 8): when a node
        name is not a string, count on a copy whose columns carry string aliases (pgmpy's
        ``unstack(parents)`` fails on numpy-int level names under pandas 3), then name the
        table's axes with the nodes again."""
        parents = list(parents)
        if all(isinstance(n, str) for n in (variable, *parents)):
            return original(self, variable, parents, weighted, reindex)
        import copy

        alias = node_aliases(list(self.data.columns))
        shadow = copy.copy(self)
        shadow.data = self.data.rename(columns=alias)
        shadow.state_names = {alias.get(k, k): v for k, v in self.state_names.items()}
        out = original(shadow, alias[variable], [alias[p] for p in parents], weighted, reindex)
        if parents:
            out.index.name = variable
            out.columns = out.columns.set_names(parents)
        return out

    state_counts.__doc__ = original.__doc__
    state_counts.__wrapped__ = original  # type: ignore[attr-defined]
    return state_counts


def _cpd_multiplication(cpds: list, normalize: bool = True) -> Any:
    """Replacement of ``causalnex.utils.pgmpy_utils.cpd_multiplication`` (fix 7).

    The product of CPD tables (index: the node's states, named; columns: ``[""]`` or a MultiIndex
    of the parents' states), returned as a CPD table of the first table's node given every other
    variable, in order of first appearance, columns normalised to sum 1 when ``normalize``.
    Rows and columns are in sorted state order, as the original's ``tabular_cpd_to_pd`` made them.
    """
    import numpy as np
    import pandas as pd
    from causalnex.utils.pgmpy_utils import pd_to_tabular_cpd
    from pgmpy.factors import factor_product

    factors = [pd_to_tabular_cpd(df).to_factor() for df in cpds]
    product = factor_product(*factors)
    order: list = []
    for f in factors:
        order += [v for v in f.variables if v not in order]
    values = np.transpose(product.values, [product.variables.index(v) for v in order])
    table = values.reshape(values.shape[0], -1)
    if normalize:
        table = table / table.sum(axis=0)
    node, others = order[0], order[1:]
    cols: Any = pd.Index([""])
    if others:
        cols = pd.MultiIndex.from_product([list(product.state_names[v]) for v in others], names=others)
    out = pd.DataFrame(table, index=pd.Index(list(product.state_names[node]), name=node), columns=cols)
    return out.sort_index(axis=0).sort_index(axis=1)


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
    if "NaN" not in np.__dict__:  # fix 5: numpy 2 removed the alias pgmpy's SEM still uses
        np.NaN = np.nan  # type: ignore[attr-defined]

    with restore_root_logging():  # fix 6: pgmpy's import configures the root logger
        from causalnex.inference import InferenceEngine
        from causalnex.network import BayesianNetwork

    import causalnex.estimator.em as em
    import causalnex.utils.pgmpy_utils as pgmpy_utils

    # fix 8: int node names (the original's name check raises TypeError on them, ebaybbn needs strings)
    InferenceEngine.__init__ = _engine_init
    InferenceEngine._generate_bbn = _generate_bbn
    InferenceEngine._single_query = _single_query
    from pgmpy.estimators import BaseEstimator

    if not hasattr(BaseEstimator.state_counts, "__wrapped__"):
        BaseEstimator.state_counts = _wrap_state_counts(BaseEstimator.state_counts)
    # fix 1: the original builds node functions with the Python 3.10 CodeType signature
    InferenceEngine._create_node_function = _create_node_function
    if not hasattr(InferenceEngine.do_intervention, "__wrapped__"):
        # fix 2 (non-int states fell through to state.values()) and fix 8 (isolate check on aliases)
        InferenceEngine.do_intervention = _make_do_intervention(InferenceEngine.do_intervention)
    # fix 7: pgmpy >= 0.1.20 reorders a CPD product's variables (latent EM); em imported the
    # function by name, so both references are replaced
    pgmpy_utils.cpd_multiplication = _cpd_multiplication
    em.cpd_multiplication = _cpd_multiplication
    # fix 3: unknown states became NaN in an int64 column, dropped by pgmpy without a word
    BayesianNetwork._state_to_index = _state_to_index
    # fix 4: set_index(inplace=True) is deprecated in pandas 3.1
    BayesianNetwork.cpds = property(_cpds, doc=BayesianNetwork.cpds.__doc__)
    _APPLIED = True


def is_applied() -> bool:
    return _APPLIED
