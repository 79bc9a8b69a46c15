"""The Bayesian network: CausalNex ``BayesianNetwork`` fitting, CPDs as JSON, inference.

CausalNex requires a connected DAG without isolated nodes and node names matching
``^[0-9a-zA-Z_]+$``. The network is therefore built on the part of the learned graph that is
connected to the outcome (a variable outside it has no causal path to the outcome: its effect is
zero), with node names made safe (``genre_Sci-Fi`` -> ``genre_Sci_Fi``); the public API speaks
the original names.
"""
from __future__ import annotations

import contextlib
import logging
import re
from dataclasses import dataclass, field
from typing import Any, Iterator

import numpy as np
import pandas as pd

from . import compat
from .discretise import VariableStates


@contextlib.contextmanager
def _quiet_pgmpy() -> Iterator[None]:
    # pgmpy logs "Replacing existing CPD" at WARNING on every refit: noise in a bootstrap loop
    log = logging.getLogger("pgmpy")
    old = log.level
    log.setLevel(logging.ERROR)
    try:
        yield
    finally:
        log.setLevel(old)


def safe_names(names: list[str]) -> dict[str, str]:
    """name -> CausalNex-safe node name (only [0-9a-zA-Z_], unique)."""
    out: dict[str, str] = {}
    used: set[str] = set()
    for n in names:
        base = re.sub(r"[^0-9a-zA-Z_]", "_", n) or "v"
        cand, i = base, 1
        while cand in used:
            i += 1
            cand = f"{base}_{i}"
        used.add(cand)
        out[n] = cand
    return out


class IsolateError(ValueError):
    """CausalNex refused an intervention because it would leave an isolated node."""


class NoPathError(ValueError):
    """Intervened variables (``.variables``) with no directed path to the outcome in the
    graph mutilated by the whole intervention: do() on them cannot change the outcome."""

    def __init__(self, variables: list[str]) -> None:
        super().__init__(", ".join(variables))
        self.variables = list(variables)


@dataclass
class FittedNetwork:
    """A fitted CausalNex BayesianNetwork over ``variables`` (original names) with integer states."""

    variables: list[str]
    edges: list[tuple[str, str]]
    target: str
    states: dict[str, VariableStates]
    prior: str = "K2"
    equivalent_sample_size: float = 10.0
    bn: Any = None
    node_of: dict[str, str] = field(default_factory=dict)
    _engine: Any = None

    # -- building ---------------------------------------------------------------------------
    @staticmethod
    def component(variables: list[str], edges: list[tuple[str, str]], target: str) -> list[str]:
        """Variables weakly connected to ``target`` (in ``variables`` order)."""
        import networkx as nx

        g = nx.Graph()
        g.add_nodes_from(variables)
        g.add_edges_from(edges)
        comp = nx.node_connected_component(g, target)
        return [v for v in variables if v in comp]

    @classmethod
    def fit(cls, variables: list[str], edges: list[tuple[str, str]], target: str, data: pd.DataFrame,
            states: dict[str, VariableStates], prior: str = "K2", equivalent_sample_size: float = 10.0) -> "FittedNetwork | None":
        """Fit CPDs (Bayesian estimator) on the component of the graph that holds ``target``.

        ``data`` holds integer state codes. Returns None when ``target`` has no edge at all."""
        comp = cls.component(variables, edges, target)
        if len(comp) < 2:
            return None
        sub = [(s, t) for s, t in edges if s in comp and t in comp]
        net = cls(variables=comp, edges=sub, target=target, states={v: states[v] for v in comp}, prior=prior,
                  equivalent_sample_size=float(equivalent_sample_size), node_of=safe_names(comp))
        net._build()
        net.refit(data)
        return net

    def _build(self) -> None:
        compat.apply()
        from causalnex.network import BayesianNetwork
        from causalnex.structure import StructureModel

        sm = StructureModel()
        sm.add_nodes_from(self.node_of[v] for v in self.variables)
        sm.add_edges_from((self.node_of[s], self.node_of[t]) for s, t in self.edges)
        self.bn = BayesianNetwork(sm)
        self.bn.node_states = {self.node_of[v]: set(range(self.states[v].n_states)) for v in self.variables}
        self._engine = None

    def refit(self, data: pd.DataFrame) -> "FittedNetwork":
        """(Re)estimate every CPD from ``data`` (state codes), keeping structure and states."""
        df = data[self.variables].rename(columns=self.node_of).astype("int64")
        kw: dict[str, Any] = {"method": "BayesianEstimator", "bayes_prior": self.prior}
        if self.prior == "BDeu":
            kw["equivalent_sample_size"] = self.equivalent_sample_size
        with _quiet_pgmpy():
            self.bn.fit_cpds(df, **kw)
        self._engine = None
        self._arrays = None
        return self

    def ancestral(self) -> "FittedNetwork":
        """The sub-network of the outcome and its ancestors, with the same CPDs (no refit).

        P(outcome | do(x)) for any x in it is the same as in the whole network (the other
        variables marginalise out of the factorisation), and CausalNex's junction tree over
        fewer nodes is much faster: the do-effects and their bootstrap use it."""
        import networkx as nx

        g = nx.DiGraph(self.edges)
        g.add_nodes_from(self.variables)
        keep = nx.ancestors(g, self.target) | {self.target}
        if len(keep) == len(self.variables):
            return self
        d = self.to_dict()
        d["variables"] = [v for v in self.variables if v in keep]
        d["edges"] = [e for e in d["edges"] if e[0] in keep and e[1] in keep]
        d["node_names"] = {v: n for v, n in d["node_names"].items() if v in keep}
        d["states"] = {v: st for v, st in d["states"].items() if v in keep}
        d["cpds"] = {v: c for v, c in d["cpds"].items() if v in keep}
        return FittedNetwork.from_dict(d)

    def copy_structure(self) -> "FittedNetwork":
        other = FittedNetwork(self.variables, self.edges, self.target, self.states, self.prior,
                              self.equivalent_sample_size, node_of=dict(self.node_of))
        other._build()
        return other

    # -- CPDs -------------------------------------------------------------------------------
    def cpd_arrays(self) -> dict[str, tuple[list[str], np.ndarray]]:
        """variable -> (parents, array of shape (k_var, k_parent1, ...)) of P(var | parents)."""
        if getattr(self, "_arrays", None) is None:
            name_of = {v: k for k, v in self.node_of.items()}
            out = {}
            for node, df in self.bn.cpds.items():
                var = name_of[node]
                parents = [name_of[p] for p in df.columns.names] if isinstance(df.columns, pd.MultiIndex) else []
                shape = [self.states[var].n_states] + [self.states[p].n_states for p in parents]
                out[var] = (parents, df.to_numpy(dtype=float).reshape(shape))
            self._arrays = out
        return self._arrays

    def to_dict(self) -> dict:
        cpds = {}
        for var, (parents, arr) in self.cpd_arrays().items():
            cpds[var] = {"parents": parents, "values": arr.reshape(arr.shape[0], -1).tolist()}
        return {
            "format": "whyrec-causalnex-bn/1",
            "target": self.target,
            "variables": self.variables,
            "edges": [list(e) for e in self.edges],
            "node_names": self.node_of,
            "prior": self.prior,
            "equivalent_sample_size": self.equivalent_sample_size,
            "states": {v: self.states[v].to_dict() for v in self.variables},
            "cpds": cpds,
        }

    @classmethod
    def from_dict(cls, d: dict) -> "FittedNetwork":
        """Rebuild the fitted network from ``to_dict`` output without refitting (no pickle)."""
        from pgmpy.factors.discrete import TabularCPD

        if d.get("format") != "whyrec-causalnex-bn/1":
            raise ValueError(f"not a whyrec-causalnex network (format {d.get('format')!r})")
        states = {v: VariableStates.from_dict(s) for v, s in d["states"].items()}
        net = cls(variables=list(d["variables"]), edges=[tuple(e) for e in d["edges"]], target=d["target"],
                  states=states, prior=d.get("prior", "K2"), equivalent_sample_size=d.get("equivalent_sample_size", 10.0),
                  node_of=dict(d["node_names"]))
        net._build()
        cpds = []
        for var, c in d["cpds"].items():
            node = net.node_of[var]
            parents = [net.node_of[p] for p in c["parents"]]
            cards = [states[p].n_states for p in c["parents"]]
            k = states[var].n_states
            values = np.asarray(c["values"], dtype=float).reshape(k, int(np.prod(cards)) if cards else 1)
            names = {node: list(range(k)), **{p: list(range(n)) for p, n in zip(parents, cards)}}
            cpds.append(TabularCPD(node, k, values, evidence=parents or None, evidence_card=cards or None,
                                   state_names=names))
        # BayesianNetwork has no public "set all CPDs" (set_cpd checks the whole model after each
        # node, which fails while the others are missing): add them to the pgmpy model together.
        with _quiet_pgmpy():
            net.bn._model.add_cpds(*cpds)
        net.bn._model.check_model()
        return net

    # -- inference --------------------------------------------------------------------------
    @property
    def positive_state(self) -> int:
        """The outcome state whose probability is reported: the largest value (label 1)."""
        st = self.states[self.target]
        if st.kind == "values":
            return int(np.argmax(np.asarray(st.values, dtype=float)))
        return st.n_states - 1

    def engine(self) -> Any:
        if self._engine is None:
            compat.apply()
            from causalnex.inference import InferenceEngine

            self._engine = InferenceEngine(self.bn)
        return self._engine

    def _outcome(self, marginals: dict) -> np.ndarray:
        dist = marginals[self.node_of[self.target]]
        return np.array([float(dist.get(i, 0.0)) for i in range(self.states[self.target].n_states)])

    def marginal_outcome(self) -> np.ndarray:
        return self._outcome(self.engine().query())

    def query_outcome(self, observations: dict[str, int]) -> np.ndarray:
        """P(outcome | observations) (conditioning, not intervening)."""
        obs = {self.node_of[k]: int(v) for k, v in observations.items()}
        return self._outcome(self.engine().query(obs))

    def without_path(self, do: dict[str, int] | list[str]) -> list[str]:
        """The intervened variables with no directed path to the outcome once *every* intervened
        variable's parents are cut (the mutilated graph of the joint intervention).

        Setting such a variable cannot change the outcome: either it has no path at all, or all
        its paths run through another intervened variable (do(discount, price) with discount ->
        price -> label: price is fixed, discount's effect is blocked). CausalNex would detach it
        from the network after the other do() and then fail on it, or return the baseline."""
        import networkx as nx

        cut = set(do)
        g = nx.DiGraph([(s, t) for s, t in self.edges if t not in cut])
        g.add_nodes_from(self.variables)
        return [v for v in do if v not in g or self.target not in nx.descendants(g, v)]

    def do_outcome(self, do: dict[str, int]) -> np.ndarray:
        """P(outcome | do(var = state, ...)) through CausalNex ``do_intervention``.

        Raises IsolateError (in words) when CausalNex refuses because the intervention would
        isolate a node: the variable has no children in the network, so cutting its parents
        leaves it alone and it cannot change anything else."""
        unknown = [v for v in do if v not in self.node_of]
        if unknown:
            raise KeyError(f"{unknown} are not variables of the network ({self.variables})")
        blocked = self.without_path(do)
        if blocked:
            # never let CausalNex answer these: it would return the baseline (no effect) or fail
            raise NoPathError(blocked)
        eng = self.engine()
        done: list[str] = []
        try:
            for var, code in do.items():
                node = self.node_of[var]
                try:
                    eng.do_intervention(node, int(code))
                except ValueError as exc:
                    if "isolate" in str(exc):
                        raise IsolateError(var) from exc
                    raise
                done.append(node)
            return self._outcome(eng.query())
        finally:
            for node in reversed(done):
                eng.reset_do(node)

    def predict_proba(self, data: pd.DataFrame) -> np.ndarray:
        """P(outcome | all other network variables) for each row of ``data`` (state codes), from
        the outcome's Markov blanket: P(y | pa(y)) * prod over children c of P(c | pa(c))."""
        arrays = self.cpd_arrays()
        t = self.target
        k = self.states[t].n_states
        n = len(data)
        codes = {v: data[v].to_numpy(dtype=np.int64) for v in self.variables if v in data.columns}
        logp = np.zeros((n, k))
        children = [v for v, (ps, _) in arrays.items() if t in ps]
        for s in range(k):
            cur = dict(codes)
            cur[t] = np.full(n, s, dtype=np.int64)
            for var in [t, *children]:
                parents, arr = arrays[var]
                idx = tuple([cur[var]] + [cur[p] for p in parents])
                logp[:, s] += np.log(np.clip(arr[idx], 1e-300, None))
        logp -= logp.max(axis=1, keepdims=True)
        p = np.exp(logp)
        return p / p.sum(axis=1, keepdims=True)

    def descendants_of(self, var: str) -> set[str]:
        import networkx as nx

        g = nx.DiGraph(self.edges)
        g.add_nodes_from(self.variables)
        return nx.descendants(g, var) if var in g else set()

    def has_path(self, var: str) -> bool:
        """Is there a directed path var -> ... -> outcome?"""
        return var != self.target and self.target in self.descendants_of(var)

    def children(self, var: str) -> list[str]:
        return [t for s, t in self.edges if s == var]
