"""``causalnex-bn``: what really drives the outcome, learned with CausalNex.

Pipeline: causal variables from the training pairs -> NOTEARS under domain constraints (+
bootstrap edge stability) -> discretisation with readable states -> Bayesian network (Bayesian
estimator) -> predictive quality on the test split -> do-interventions with bootstrap intervals
-> causal effect next to the run's attributions -> (simulators) checks against the true DAG and
true interventional effects.
"""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd
from whyrec.atomic import to_json, write_json
from whyrec.causal import CausalGraph, Edge
from whyrec.errors import DataError, RunDirError, UnsupportedError
from whyrec.results import CausalReport

from . import compat
from .attribution import attributed_features, causal_vs_attribution
from .constraints import build_constraints, check_roles
from .discretise import Selection, VariableStates, discretise, fit_states, states_table
from .effects import DoModel, do_effects, intervention_result
from .network import FittedNetwork, IsolateError
from .structure import Constraints, StructureResult, learn_structure, unstable_to_drop
from .truth import truth_scores
from .variables import VariableTable, build_table, sample_rows, select_variables

if TYPE_CHECKING:
    from whyrec.context import PipelineContext
    from whyrec.data import RecData

NAME = "causalnex-bn"
# fewest do-effect bootstrap resamples for an interval (0 = no intervals)
MIN_EFFECT_BOOTSTRAP = 20
# fewest training rows: per causal variable (outcome included), and in all
MIN_ROWS_PER_VARIABLE = 10
MIN_ROWS = 100
# most state combinations a do() with ranges may average over
MAX_DO_COMBINATIONS = 256
# values of a range lo..hi the g-formula averages over (quantiles of the training values inside)
GFORMULA_RANGE_POINTS = 5


class CausalNexLearner:
    """NOTEARS structure learning with domain constraints, Bayesian network, do-interventions.

    Parameters (registry.toml keys of a ``causal = { use = "causalnex-bn", ... }`` entry):
      target: the outcome column of the training pairs ("label").
      outcome: the outcome role; the same as ``target`` (give one of the two).
      actionable: the variables the business can set (price, discount): intervened on by
        default, and ``whyrec causal --do`` labels any other as "not actionable". Default: the
        schema's actionable features.
      exogenous: variables nothing causes (added to the constraints, like ``tabu_children``).
      variables / exclude: features to use (default: every non-sequence, non-id feature).
      max_variables: refuse more variables than this (outcome included).
      max_levels: refuse categoricals with more levels than this.
      drop_constant: drop constant columns instead of refusing them.
      max_rows: training pairs sampled for everything (structure, CPDs).
      method: "bic" (default: a BIC-scored greedy + tabu search over DAGs, logistic for binary
        variables, one-hot for categoricals, bagged over the bootstraps; chosen on random SCMs,
        docs/benchmarks.md), "linear" NOTEARS or "nonlinear" (CausalNex's NOTEARS-MLP).
      hidden_units, max_iter: NOTEARS settings (hidden_units: nonlinear only).
      w_threshold: |edge weight| at or below which an edge is dropped.
      lasso: L1 penalty of NOTEARS (CausalNex from_numpy_lasso); 0 = plain NOTEARS.
      standardise: scale columns to unit variance before NOTEARS (they are always centred).
      exogenous_fields: schema fields whose features nothing causes (default ["user"]).
      outcome_is_sink: the outcome causes nothing (default true).
      field_rules: item features are caused only by item features, history by user/history,
        cross by anything but the outcome (constraints.FIELD_RULES; default true).
      tabu_parents / tabu_children: more variables that cause nothing / that nothing causes.
      forbidden_edges / required_edges: [["cause", "effect"], ...] by name.
      bootstrap: NOTEARS reruns on resampled data for edge stability (0 = off).
      bootstrap_unit: "users-items" (resample users and items: the pigeonhole bootstrap for
        crossed data; used for the do-effect intervals too) or "pairs" (resample rows).
      stability_threshold: edges found in fewer resamples than this are marked unstable.
      drop_unstable: leave unstable edges out of the Bayesian network (default true: an edge
        the resamples disagree on never decides an answer).
      unstable_rule: which edges ``drop_unstable`` removes. "presence" (default): a pair the
        resamples join, either way, in fewer than ``stability_threshold`` of them; an edge
        always there but oriented both ways stays in its majority direction (its effect
        interval refits on the bootstrap graphs, so it carries both orientations).
        "direction": an edge found in this orientation in fewer than the threshold.
      discretiser: "quantile" or "supervised" (decision-tree splits predicting the outcome).
      bins: states per discretised numeric variable.
      max_value_states: numerics with at most this many distinct values (at least ``bins``) keep
        each value as its own state instead of being cut into bins.
      prior, equivalent_sample_size: Bayesian estimator prior ("K2" or "BDeu").
      do_estimator: what answers do() on the learned graph. "gformula" (default): the parametric
        g-formula at the value itself (gformula.py: per-variable linear / logistic models on
        the graph; a state of a binned variable stands for its training median), with intervals
        over bootstrap resamples that each take one of the structure search's bootstrap graphs,
        so they carry the uncertainty of the graph. "bn": the Bayesian network's answer for the
        state holding the value (CausalNex do_intervention), intervals over CPD refits on the
        learned graph only. The network answers every query about states either way
        (observational P(outcome | state), predictive quality, the saved bn.json); chosen on
        random SCMs, docs/benchmarks.md. A non-binary outcome always uses "bn".
      interventions: features to intervene on (default: the schema's actionable features).
      effect_bootstrap, ci: bootstrap resamples and level of the do-effect intervals.
      min_effect, attribution_share: thresholds of the causal-vs-attribution flags.
      seed: overrides the pipeline seed.
    """

    name = NAME

    def __init__(
        self,
        target: str = "label",
        outcome: str | None = None,
        actionable: list[str] | None = None,
        exogenous: list[str] | None = None,
        variables: list[str] | None = None,
        exclude: list[str] | None = None,
        max_variables: int = 20,
        max_levels: int = 10,
        drop_constant: bool = False,
        max_rows: int = 10000,
        method: Literal["linear", "nonlinear", "bic"] = "bic",
        hidden_units: int = 8,
        max_iter: int = 100,
        w_threshold: float = 0.1,
        lasso: float = 0.01,
        standardise: bool = True,
        exogenous_fields: list[str] | None = None,
        outcome_is_sink: bool = True,
        field_rules: bool = True,
        tabu_parents: list[str] | None = None,
        tabu_children: list[str] | None = None,
        forbidden_edges: list[list[str]] | None = None,
        required_edges: list[list[str]] | None = None,
        bootstrap: int = 20,
        bootstrap_unit: Literal["users-items", "pairs"] = "users-items",
        stability_threshold: float = 0.6,
        drop_unstable: bool = True,
        unstable_rule: Literal["presence", "direction"] = "presence",
        discretiser: Literal["quantile", "supervised"] = "quantile",
        bins: int = 3,
        max_value_states: int = 5,
        prior: Literal["K2", "BDeu"] = "K2",
        equivalent_sample_size: float = 10.0,
        do_estimator: Literal["gformula", "bn"] = "gformula",
        interventions: list[str] | None = None,
        effect_bootstrap: int = 30,
        ci: float = 0.95,
        min_effect: float = 0.01,
        attribution_share: float = 0.05,
        seed: int | None = None,
    ) -> None:
        def bad(msg: str) -> UnsupportedError:
            return UnsupportedError(f"{NAME}: {msg}")

        if method not in ("linear", "nonlinear", "bic"):
            raise bad(f"method must be 'linear', 'nonlinear' or 'bic', got {method!r}")
        if bootstrap_unit not in ("users-items", "pairs"):
            raise bad(f"bootstrap_unit must be 'users-items' or 'pairs', got {bootstrap_unit!r}")
        if discretiser not in ("quantile", "supervised"):
            raise bad(f"discretiser must be 'quantile' or 'supervised', got {discretiser!r}")
        if unstable_rule not in ("presence", "direction"):
            raise bad(f"unstable_rule must be 'presence' or 'direction', got {unstable_rule!r}")
        if do_estimator not in ("gformula", "bn"):
            raise bad(f"do_estimator must be 'gformula' or 'bn', got {do_estimator!r}")
        if prior not in ("K2", "BDeu"):
            raise bad(f"prior must be 'K2' or 'BDeu', got {prior!r}")
        if max_variables < 2:
            raise bad(f"max_variables must be at least 2 (a feature and the outcome), got {max_variables}")
        if bins < 2:
            raise bad(f"bins must be at least 2, got {bins}")
        if max_value_states < 2:
            raise bad(f"max_value_states must be at least 2, got {max_value_states}")
        if outcome is not None:
            if not isinstance(outcome, str):
                raise bad(f"outcome must be a column name, got {outcome!r}")
            if target != "label" and target != outcome:
                raise bad(f"`outcome` = {outcome!r} and `target` = {target!r} name two different outcomes; they are the "
                          f"same role: keep one")
            target = outcome
        check_roles(outcome=target, actionable=actionable, exogenous=exogenous, forbidden_edges=forbidden_edges,
                    required_edges=required_edges, tabu_parents=tabu_parents, tabu_children=tabu_children,
                    outcome_is_sink=outcome_is_sink, variables=variables, exclude=exclude, interventions=interventions)
        if max_levels < 2:
            raise bad(f"max_levels must be at least 2, got {max_levels}")
        if not 0 < ci < 1:
            raise bad(f"ci must be between 0 and 1 (e.g. 0.95), got {ci}")
        if not 0 <= stability_threshold <= 1:
            raise bad(f"stability_threshold must be between 0 and 1, got {stability_threshold}")
        for key, val in (("w_threshold", w_threshold), ("bootstrap", bootstrap), ("effect_bootstrap", effect_bootstrap),
                         ("min_effect", min_effect), ("attribution_share", attribution_share), ("lasso", lasso),
                         ("max_rows", max_rows), ("equivalent_sample_size", equivalent_sample_size)):
            if val < 0:
                raise bad(f"{key} must not be negative, got {val}")
        if 0 < effect_bootstrap < MIN_EFFECT_BOOTSTRAP:
            raise bad(f"effect_bootstrap must be 0 (no intervals) or at least {MIN_EFFECT_BOOTSTRAP}, got "
                      f"{effect_bootstrap}: a {ci:.0%} percentile interval from so few resamples is just their "
                      f"min and max (it can even miss the point estimate); set effect_bootstrap = 0 or >= "
                      f"{MIN_EFFECT_BOOTSTRAP} (default 30)")
        self.params = dict(
            target=target, actionable=actionable, exogenous=exogenous, variables=variables, exclude=exclude, max_variables=max_variables, max_levels=max_levels,
            drop_constant=drop_constant, max_rows=max_rows, method=method, hidden_units=hidden_units, max_iter=max_iter,
            w_threshold=w_threshold, lasso=lasso, standardise=standardise, exogenous_fields=exogenous_fields,
            outcome_is_sink=outcome_is_sink, field_rules=field_rules, tabu_parents=tabu_parents, tabu_children=tabu_children,
            forbidden_edges=forbidden_edges, required_edges=required_edges, bootstrap=bootstrap,
            bootstrap_unit=bootstrap_unit,
            stability_threshold=stability_threshold, drop_unstable=drop_unstable, unstable_rule=unstable_rule,
            discretiser=discretiser, bins=bins,
            max_value_states=max_value_states, prior=prior, equivalent_sample_size=equivalent_sample_size, do_estimator=do_estimator,
            interventions=interventions,
            effect_bootstrap=effect_bootstrap, ci=ci, min_effect=min_effect, attribution_share=attribution_share,
            seed=seed,
        )
        self.target = target
        self.seed = seed
        self.table: VariableTable | None = None
        self.constraints: Constraints | None = None
        self.structure: StructureResult | None = None
        self.graph: CausalGraph | None = None
        self.states: dict[str, VariableStates] = {}
        self.codes: pd.DataFrame | None = None
        self.net: FittedNetwork | None = None
        self.do_model: DoModel | None = None
        self.baseline: float | None = None
        self._data_name: str | None = None
        self._schema_actionable: list[str] = []
        self._progress: Any = None
        self.timings: dict[str, float] = {}

    # -- helpers ----------------------------------------------------------------------------
    @property
    def _seed(self) -> int:
        return int(self.seed) if self.seed is not None else 0

    def _train_table(self, data: "RecData", variables: list[str] | None = None) -> VariableTable:
        from whyrec.data import LABEL

        p = self.params
        if data.train is None or not len(data.train):
            raise DataError(f"dataset {data.name!r} has no training pairs (data.train); {NAME} learns from them")
        feats = variables if variables is not None else select_variables(
            data, self.target, p["variables"], p["exclude"], p["max_variables"])
        if self.target not in data.train.columns:
            raise DataError(f"the outcome {self.target!r} is not a column of dataset {data.name!r}'s training pairs "
                            f"(columns: {list(data.train.columns)}); set `target` (default {LABEL!r})")
        pairs = sample_rows(data.train, p["max_rows"], self._seed)
        need = max(MIN_ROWS, MIN_ROWS_PER_VARIABLE * (len(feats) + 1))
        if len(pairs) < need:
            what = (f"max_rows = {p['max_rows']} keeps {len(pairs)} of dataset {data.name!r}'s {len(data.train)} training rows"
                    if len(data.train) > len(pairs) else f"dataset {data.name!r} has {len(pairs)} training rows")
            fix = (f"raise max_rows to at least {need}" if len(data.train) >= need else
                   "use more data, or fewer variables with `variables = [...]` / `exclude = [...]`")
            raise DataError(
                f"{NAME}: {what} for {len(feats) + 1} causal variables (outcome included); structure learning and the "
                f"network's probability tables need at least {need} ({MIN_ROWS_PER_VARIABLE} per variable, {MIN_ROWS} "
                f"at least): {fix}")
        return build_table(data, pairs, feats, self.target, p["max_levels"], drop_constant=p["drop_constant"])

    # -- the CausalLearner contract ---------------------------------------------------------
    def learn(self, data: "RecData") -> CausalGraph:
        """Learn the causal graph (NOTEARS + constraints + bootstrap stability) from data.train."""
        compat.apply()
        p = self.params
        t0 = time.perf_counter()
        table = self._train_table(data)
        self.table, self._data_name = table, data.name
        names = table.names
        self.constraints = build_constraints(
            names, self.target, table.fields, exogenous_fields=["user"] if p["exogenous_fields"] is None else p["exogenous_fields"],
            outcome_is_sink=p["outcome_is_sink"], tabu_parents=p["tabu_parents"], tabu_children=p["tabu_children"],
            forbidden_edges=p["forbidden_edges"], required_edges=p["required_edges"], field_rules=p["field_rules"],
            exogenous=p["exogenous"])
        for n in p["actionable"] or []:
            if n not in table.features:
                import difflib

                close = difflib.get_close_matches(n, table.features, n=1, cutoff=0.6)
                raise DataError(f"`actionable` names {n!r}, which is not a causal variable"
                                f"{f' (did you mean {close[0]!r}?)' if close else ''}; the variables are "
                                f"{', '.join(table.features)}")
        X = table.numeric_matrix()
        dist_types = {n: ("bin" if table.frame[n].nunique() == 2 else "cont") for n in names}
        self.structure = learn_structure(
            X, names, self.constraints, w_threshold=p["w_threshold"], standardise=p["standardise"], method=p["method"],
            max_iter=p["max_iter"], hidden_units=p["hidden_units"], bootstrap=p["bootstrap"], seed=self._seed,
            dist_types=dist_types, progress=self._progress, lasso=p["lasso"],
            groups=table.groups if p["bootstrap_unit"] == "users-items" else None,
            categorical=[n for n in names if table.kinds[n] == "categorical"])
        s = self.structure
        required = set(self.constraints.required)
        edges = dict(s.edges)
        dropped = []
        if p["drop_unstable"] and p["bootstrap"]:
            for e in unstable_to_drop(list(edges), s.stability, p["stability_threshold"], required, p["unstable_rule"]):
                dropped.append(list(e))
                edges.pop(e)
        graph_edges = [Edge(a, b, float(w), s.stability.get((a, b), 0.0) if p["bootstrap"] else None)
                       for (a, b), w in sorted(edges.items(), key=lambda kv: -abs(kv[1]))]
        self.graph = CausalGraph(
            nodes=names, edges=graph_edges, constraints=self.constraints.to_dict(),
            method={
                "algorithm": ("BIC search over DAGs (whyrec structure_select), bagged over bootstraps" if p["method"] == "bic"
                              else f"NOTEARS {p['method']} (CausalNex 0.12.2)"),
                "standardise": bool(p["standardise"]),
                "preprocessing": ("columns centred and scaled to unit variance" if p["standardise"] else
                                  "columns centred, original scale (not standardised)"),
                "categoricals": "integer codes of their sorted levels",
                "w_threshold": p["w_threshold"], "lasso": p["lasso"], "bootstrap": p["bootstrap"],
                "bootstrap_unit": p["bootstrap_unit"],
                "stability_threshold": p["stability_threshold"], "drop_unstable": p["drop_unstable"],
                "unstable_rule": p["unstable_rule"],
                "unstable_dropped": dropped, "rows": int(len(table.frame)), "seed": self._seed,
                "max_iter": p["max_iter"], "data": data.name,
            },
        )
        self.timings["learn"] = time.perf_counter() - t0
        return self.graph

    def fit(self, data: "RecData", graph: CausalGraph) -> None:
        """Discretise the variables and fit the Bayesian network's CPDs on ``graph``."""
        compat.apply()
        p = self.params
        t0 = time.perf_counter()
        if self.table is None or self._data_name != data.name or set(self.table.names) != set(graph.nodes):
            if self.target not in graph.nodes:
                raise DataError(f"graph has no node for the outcome {self.target!r} (nodes: {graph.nodes})")
            self.table = self._train_table(data, [n for n in graph.nodes if n != self.target])
            self._data_name = data.name
        if not graph.is_acyclic():
            raise DataError("the graph has a cycle; a Bayesian network needs a DAG")
        self.graph = graph
        self._schema_actionable = [f for f in data.schema.actionable() if f in self.table.features]
        self.states = fit_states(self.table, method=p["discretiser"], bins=p["bins"], seed=self._seed,
                                 max_values=max(p["bins"], p.get("max_value_states", 5)))
        self.codes = discretise(self.table.frame, self.states)
        edges = [(e.source, e.target) for e in graph.edges]
        self.net = FittedNetwork.fit(self.table.names, edges, self.target, self.codes, self.states,
                                     prior=p["prior"], equivalent_sample_size=p["equivalent_sample_size"])
        y = self.codes[self.target].to_numpy()
        pos = self._positive_state()
        self.baseline = float(self.net.marginal_outcome()[pos]) if self.net is not None else float(np.mean(y == pos))
        self.do_model = None
        if self.uses_gformula() and self.net is not None:
            s = self.structure
            boot = s.boot_edges if s is not None and s.bootstrap and set(s.names) == set(self.table.names) else None
            self.do_model = DoModel(self.table.frame, self.table.kinds, edges, self.target,
                                    self.states[self.target].values[pos], self.states, seed=self._seed,
                                    boot_graphs=boot, required=[tuple(e) for e in graph.constraints.get("required_edges", [])])
        self.timings["fit"] = time.perf_counter() - t0

    def uses_gformula(self) -> bool:
        """Whether the g-formula answers do() (``do_estimator``; it needs a binary outcome)."""
        st = self.states.get(self.target)
        return self.params.get("do_estimator", "gformula") == "gformula" and st is not None and st.n_states == 2

    def point_do(self, var: str, value: Any) -> float:
        """P(outcome = positive | do(var = value)) in the data's units, by the configured estimator
        (the BN answers for the state holding the value)."""
        pos = self._positive_state()
        if self.do_model is not None:
            return self.do_model.gf.mean_outcome({var: value}) if self.do_model.has_path(var) else self.baseline
        if self.net is None or var not in self.net.variables or not self.net.has_path(var):
            return self.baseline
        code = int(self.states[var].transform(pd.Series([value]))[0])
        return float(self.net.do_outcome({var: code})[pos])

    def _positive_state(self) -> int:
        st = self.states[self.target]
        return int(np.argmax(np.asarray(st.values, dtype=float))) if st.kind == "values" else st.n_states - 1

    def _require_fitted(self) -> None:
        if not self.states:
            raise UnsupportedError(f"{NAME} is not fitted: call learn(data) and fit(data, graph), run(ctx), or "
                                   f"CausalNexLearner.load(<run>/causal/<name>) first")

    def actionable_variables(self) -> list[str] | None:
        """The variables the business can set: the ``actionable`` role, else the schema's
        actionable features among the causal variables; None when neither declares any."""
        if self.params.get("actionable") is not None:
            return list(self.params["actionable"])
        return list(self._schema_actionable) if self._schema_actionable else None

    def select_do(self, do: dict[str, Any]) -> dict[str, Selection]:
        """Validate ``{variable: level}`` into the states each variable is set to.

        A level is a value in the data's units ("4.5": the state holding it), a range
        ("3..5": the states it overlaps, weighted by training counts), a state label ("high"),
        an interval as printed, or a categorical level. Numbers are never state codes."""
        self._require_fitted()
        import difflib

        if not do:
            raise DataError("empty intervention: give at least one variable=level")
        out: dict[str, Selection] = {}
        names = [n for n in self.states if n != self.target]
        for var, level in do.items():
            if var == self.target:
                raise UnsupportedError(f"cannot intervene on the outcome {var!r} itself; intervene on a cause of it "
                                       f"({', '.join(names)})")
            if var not in self.states:
                close = difflib.get_close_matches(str(var), names, n=1, cutoff=0.6)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                raise DataError(f"unknown node {var!r} in the intervention{hint}; the causal variables are {', '.join(names)}")
            try:
                out[var] = self.states[var].select(level)
            except ValueError as exc:
                raise DataError(f"unknown state in the intervention: {exc}" if "has no state" in str(exc) else
                                f"intervention: {exc}") from None
        return out

    def parse_do(self, do: dict[str, Any]) -> dict[str, int]:
        """``select_do`` for interventions that name one state per variable: variable -> state code."""
        out = {}
        for var, sel in self.select_do(do).items():
            if len(sel.codes) != 1:
                raise DataError(f"intervention: {sel.text()} covers several states; name one value or state")
            out[var] = sel.codes[0]
        return out

    def not_actionable(self, variables: list[str]) -> list[str]:
        """Those of ``variables`` that are not actionable (empty when actionability is not declared)."""
        act = self.actionable_variables()
        return [] if act is None else [v for v in variables if v not in act]

    def intervene(self, do: dict[str, Any]) -> pd.DataFrame:
        """P(outcome | do(var = level, ...)) next to the observational P(outcome).

        ``do`` maps variables to levels in the data's units (see ``select_do``); a range is a
        mix of the states it covers (a stochastic intervention: the average of P(outcome |
        do(states)) weighted by training counts). Returns one row per outcome state: outcome,
        state, p_do, p_observed, change, intervention (what was set, naming the states used),
        actionable (False for a variable that is not actionable: a what-if, not a lever)."""
        import itertools

        sel = self.select_do(do)
        text = ", ".join(s.text() for s in sel.values())
        codes = {v: s.codes[0] for v, s in sel.items()}
        if self.net is None:
            raise UnsupportedError(f"no variable is connected to {self.target!r} in the learned graph, so there is no "
                                   f"Bayesian network to intervene on: do({text}) leaves P({self.target}) at "
                                   f"{self.baseline:.4g}")
        outside = [v for v in codes if v not in self.net.variables]
        if outside:
            raise UnsupportedError(
                f"{', '.join(map(repr, outside))} {'is' if len(outside) == 1 else 'are'} not connected to {self.target!r} in "
                f"the learned graph (no edge path at all), so the Bayesian network leaves {'it' if len(outside) == 1 else 'them'} "
                f"out: setting {'it' if len(outside) == 1 else 'them'} cannot change {self.target!r} (effect 0); leave "
                f"{'it' if len(outside) == 1 else 'them'} out of the intervention, or if you know "
                f"{'it causes' if len(outside) == 1 else 'they cause'} {self.target!r} rerun with `required_edges`")
        blocked = self.net.without_path(codes)
        if blocked:
            raise UnsupportedError(self._no_path_message(blocked, codes))
        combos = list(itertools.product(*[list(zip(s.codes, s.weights)) for s in sel.values()]))
        if len(combos) > MAX_DO_COMBINATIONS:
            raise DataError(f"intervention: the ranges cover {len(combos)} combinations of states (at most "
                            f"{MAX_DO_COMBINATIONS}); narrow a range or set fewer variables at once")
        marginal = self.net.marginal_outcome()
        try:
            res = None
            for combo in combos:
                w = float(np.prod([x for _, x in combo]))
                part = intervention_result(self.net, {v: c for v, (c, _) in zip(sel, combo)}, marginal)
                if res is None:
                    res = part.copy()
                    res["p_do"] = w * part["p_do"]
                else:
                    res["p_do"] += w * part["p_do"]
            if self.do_model is not None:
                # the answer in the data's units: the g-formula at the values asked (a range: an
                # even mix of the training values inside it); the BN above checked the paths
                p = self._gformula_do(sel)
                pos = self._positive_state()
                res["p_do"] = [p if k == pos else 1.0 - p for k in range(len(res))]
            res["change"] = res["p_do"] - res["p_observed"]
        except IsolateError as exc:
            var = str(exc)
            raise UnsupportedError(
                f"CausalNex refuses do({var} = ...): {var!r} has no children in the learned graph, so cutting its parents "
                f"(what an intervention does) would leave it an isolated node. An intervention on it cannot change "
                f"any other variable, {self.target!r} included (its causal effect here is 0)") from None
        res["intervention"] = f"do({text})"
        res.attrs["estimator"] = ("g-formula at the value (do_estimator = gformula)" if self.do_model is not None
                                  else "Bayesian network, for the state (do_estimator = bn)")
        not_act = self.not_actionable(list(sel))
        res["actionable"] = not not_act
        res.attrs["selections"] = {v: s.to_dict(self.states[v].labels,
                                                [self.states[v].interval(i) for i in range(self.states[v].n_states)])
                                   for v, s in sel.items()}
        res.attrs["not_actionable"] = not_act
        return res

    def _gformula_values(self, var: str, sel: Selection) -> list[tuple[Any, float]]:
        """(value, weight) pairs the g-formula sets ``var`` to for a selection: the value asked, a
        state's own value (a bin: its training median), for a range lo..hi over a binned variable
        GFORMULA_RANGE_POINTS quantiles of the training values inside it, equally weighted, and for
        a range over a few-valued one its values, weighted by training counts (as the BN mixes)."""
        from .discretise import RANGE

        st = self.states[var]
        vals = self.do_model.values(var)
        if sel.how == "value":
            return [(float(sel.asked), 1.0)]
        if sel.how == "range" and st.kind == "bins":
            m = RANGE.match(sel.asked)
            lo, hi = float(m.group(1)), float(m.group(2))
            x = self.do_model.training_values(var)
            inside = x[(x >= lo) & (x <= hi)] if x is not None else np.array([])
            if not len(inside):  # no training value inside: the states it covers, by their weights
                return [(vals[c], w) for c, w in zip(sel.codes, sel.weights)]
            k = min(GFORMULA_RANGE_POINTS, len(inside))
            qs = np.quantile(inside, (np.arange(k) + 0.5) / k)
            return [(float(q), 1.0 / k) for q in qs]
        return [(vals[c], w) for c, w in zip(sel.codes, sel.weights)] if st.kind != "levels" else \
            [(st.values[c], w) for c, w in zip(sel.codes, sel.weights)]

    def _gformula_do(self, sel: dict[str, Selection]) -> float:
        import itertools

        parts = [self._gformula_values(v, s) for v, s in sel.items()]
        combos = list(itertools.product(*parts))
        if len(combos) > MAX_DO_COMBINATIONS:
            raise DataError(f"intervention: the ranges cover {len(combos)} combinations of values (at most "
                            f"{MAX_DO_COMBINATIONS}); narrow a range or set fewer variables at once")
        total = 0.0
        for combo in combos:
            w = float(np.prod([x for _, x in combo]))
            total += w * self.do_model.gf.mean_outcome({v: val for v, (val, _) in zip(sel, combo)})
        return total

    def uncertain_path_edges(self, var: str) -> list[tuple[str, str, float]]:
        """Edges of the graph on a directed path from ``var`` to the outcome that the bootstrap
        resamples disagree on (found in this orientation in fewer than ``stability_threshold`` of
        them; not required): (source, target, stability). An answer about ``var`` rests on them;
        with the "presence" rule they are pairs always joined but oriented both ways, which only
        domain knowledge (``required_edges``) settles."""
        import networkx as nx

        thr = self.params["stability_threshold"]
        required = set(map(tuple, self.graph.constraints.get("required_edges", [])))
        g = self.graph.to_networkx()
        down = nx.descendants(g, var) | {var} if var in g else {var}
        up = nx.ancestors(g, self.target) | {self.target} if self.target in g else {self.target}
        return [(e.source, e.target, float(e.stability)) for e in self.graph.edges
                if e.stability is not None and e.stability < thr and (e.source, e.target) not in required
                and e.source in down and e.target in up]

    def uncertain_path_text(self, var: str) -> str:
        """One line naming the edges ``uncertain_path_edges`` finds, or ""."""
        edges = self.uncertain_path_edges(var)
        if not edges:
            return ""
        named = ", ".join(f"{a} -> {b} ({st:.0%} of the resamples this way)" for a, b, st in edges)
        carried = ("; its interval, refitted on the bootstrap graphs, carries the other graphs too"
                   if self.params.get("effect_bootstrap") else "")
        return (f"the answer for {var!r} rests on {named}, found in fewer bootstrap resamples than the stability "
                f"threshold ({self.params['stability_threshold']:.0%}){carried}. Where the resamples join the pair "
                "but disagree on its direction, observational data cannot settle it: set it with required_edges "
                "if you know it")

    def not_actionable_text(self, variables: list[str]) -> str:
        """The label of a do() on variables nobody can set (empty when all are actionable)."""
        if not variables:
            return ""
        act = self.actionable_variables() or []
        return (f"not actionable: {', '.join(variables)} {'is' if len(variables) == 1 else 'are'} observed, not set by the "
                f"business (actionable: {', '.join(act) or 'none'}); this is a what-if on the learned graph, unsupported "
                f"as a decision")

    def _no_path_message(self, blocked: list[str], codes: dict[str, int]) -> str:
        """One line: why do() on ``blocked`` cannot change the outcome, and what to do."""
        t = self.target
        parts = []
        for var in blocked:
            edges = [f"{s} -> {d}" for s, d in self.net.edges if var in (s, d)]
            if not self.net.has_path(var):
                parts.append(
                    f"{var!r} has no directed path to {t!r} in the learned network (its edges: {', '.join(edges) or 'none'}), "
                    f"so do({var} = ...) cannot change {t!r} (causal effect 0, not estimated); leave it out of the "
                    f"intervention, or if you know it causes {t!r} rerun with required_edges = [[\"{var}\", ...]]")
            else:
                others = [v for v in codes if v != var]
                parts.append(
                    f"every directed path from {var!r} to {t!r} runs through {', '.join(map(repr, others))}, which this "
                    f"intervention also sets, so do({var} = ...) cannot change {t!r} on top of it; leave {var!r} out "
                    f"(the joint answer is the intervention without it)")
        return "; ".join(parts)

    # -- the pipeline stage -----------------------------------------------------------------
    def run(self, ctx: "PipelineContext") -> CausalReport:
        """Learn, fit, intervene and compare; the runner saves the report to causal/<name>/."""
        if self.seed is None:
            self.seed = int(getattr(ctx, "seed", 0) or 0)
        self._progress = getattr(ctx, "progress", None)
        data = ctx.data
        if data is None:
            raise DataError(f"{NAME}: the pipeline has no dataset")
        t0 = time.perf_counter()
        graph = self.learn(data)
        self.fit(data, graph)
        inputs = {str(n): list(getattr(m, "feature_names", None) or []) for n, m in (getattr(ctx, "models", None) or {}).items()}
        return self.report(data, getattr(ctx, "explanations", []) or [], total_start=t0, model_inputs=inputs)

    def report(self, data: "RecData", explanations: list[Any], total_start: float | None = None,
               model_inputs: dict[str, list[str]] | None = None) -> CausalReport:
        """Build the CausalReport of a learned and fitted learner (``run`` calls it)."""
        self._require_fitted()
        p = self.params
        t0 = time.perf_counter()
        notes = list(self.table.notes)
        feats = self.table.features
        # which features to intervene on
        if p["interventions"] is not None:
            targets = []
            for f in p["interventions"]:
                if f not in feats:
                    raise DataError(f"`interventions` names {f!r}, which is not a causal variable of this run "
                                    f"(variables: {', '.join(feats)})")
                targets.append(f)
            why = "the configured `interventions`"
        elif p["actionable"] is not None:
            targets = [f for f in p["actionable"] if f in feats]
            why = "the `actionable` variables"
        else:
            actionable = list(data.schema.actionable())
            targets = [f for f in actionable if f in feats]
            missing = [f for f in actionable if f not in feats]
            if missing:
                notes.append(f"actionable features not among the causal variables (no intervention): {missing}")
            why = "the schema's actionable features"
            if not targets:
                targets = [f for f in feats if self.net is not None and f in self.net.variables and self.net.has_path(f)]
                why = "no actionable features: every variable with a directed path to the outcome"
        groups = self.table.groups if p["bootstrap_unit"] == "users-items" else None
        # intervals for the interventions and for every feature a model leans on (the flags of
        # causal vs attribution stand on them)
        used = attributed_features(explanations)
        boot_set = targets + [f for f in feats if f in used and f not in targets]
        levels, fx = do_effects(self.net, boot_set, self.states, self.codes, baseline=self.baseline,
                                n_boot=p["effect_bootstrap"], ci=p["ci"], seed=self._seed, progress=self._progress,
                                groups=groups, model=self.do_model)
        outside_ci = levels[levels["estimate_in_interval"] == False]  # noqa: E712 (NaN-free bool column)
        if len(outside_ci):
            notes.append(
                f"{len(outside_ci)} do-probabilit{'y lies' if len(outside_ci) == 1 else 'ies lie'} outside "
                f"{'its' if len(outside_ci) == 1 else 'their'} own bootstrap interval ("
                + ", ".join(f"{r.feature}: {r.state}" for r in outside_ci.itertuples())
                + "): the resampled CPDs are biased against the full-data fit; read those intervals as unreliable "
                  "(more data or fewer bins help)")
        others = [f for f in feats if f not in boot_set]
        levels_other, fx_other = do_effects(self.net, others, self.states, self.codes, baseline=self.baseline, n_boot=0,
                                            model=self.do_model)
        parts = [f for f in (fx, fx_other) if len(f)]
        all_fx = pd.concat(parts, ignore_index=True) if parts else fx
        all_fx["intervention_target"] = all_fx["feature"].isin(targets)
        # the unstable edges an answer rests on (empty: none), named in the report and by `whyrec causal --do`
        all_fx["unstable_on_path"] = ["; ".join(f"{a} -> {b} ({st:.0%})" for a, b, st in self.uncertain_path_edges(f))
                                      for f in all_fx["feature"]]
        all_fx = all_fx.sort_values("effect", ascending=False, kind="stable").reset_index(drop=True)
        parts = [f for f in (levels, levels_other) if len(f)]
        all_levels = pd.concat(parts, ignore_index=True) if parts else levels
        all_levels["intervention_target"] = all_levels["feature"].isin(targets)
        act = self.actionable_variables()
        all_levels["actionable"] = [None if act is None else f in act for f in all_levels["feature"]]
        levels = all_levels
        cva = causal_vs_attribution(all_fx, explanations, levels=all_levels, states=self.states,
                                    min_effect=p["min_effect"], attribution_share=p["attribution_share"], ci=p["ci"],
                                    model_inputs=model_inputs)
        self.timings["effects"] = time.perf_counter() - t0
        quality = self.predictive_quality(data)
        truth, truth_errors = truth_scores(data.truth, self.graph, self.net, self.states, self.baseline,
                                           answer=self.point_do if self.do_model is not None else None)
        stability = self.stability_table()
        summary = self._summary(targets, why, quality, truth, all_fx, cva, notes, total_start)
        tables = {"effects": levels, "feature_effects": all_fx, "edge_stability": stability,
                  "causal_vs_attribution": cva, "states": states_table(self.states)}
        if len(truth_errors):
            tables["truth_interventions"] = truth_errors
        from . import drawing

        fig = drawing.figure(self.graph, self.table.fields, self.target, p["stability_threshold"])
        svg = drawing.svg_text(fig)
        info = {v: "<br>".join([v] + [f"{st.labels[i]}: {st.interval(i)}" for i in range(st.n_states)])
                for v, st in self.states.items()}
        page = drawing.interactive_html(self.graph, self.table.fields, self.target, info, p["stability_threshold"])
        files = {
            "graph.json": to_json(self.graph.to_dict()) + "\n",
            "graph.svg": svg,
            "graph.html": page,
            "bn.json": to_json(self.bn_dict()) + "\n",
            **({"gformula.json": to_json(self.do_model.to_dict()) + "\n"} if self.do_model is not None else {}),
            "effects.json": to_json({"outcome": self.target, "baseline": self.baseline, "ci": p["ci"],
                                     "bootstrap": p["effect_bootstrap"], "levels": levels.to_dict(orient="records"),
                                     "features": all_fx.to_dict(orient="records")}) + "\n",
        }
        return CausalReport(summary=summary, tables=tables, figures={"graph": fig}, files=files,
                            csv_tables=("effects", "feature_effects", "edge_stability", "causal_vs_attribution"))

    # -- pieces of the report ---------------------------------------------------------------
    def stability_table(self) -> pd.DataFrame:
        s, p = self.structure, self.params
        in_graph = {(e.source, e.target): e for e in self.graph.edges}
        required = set(map(tuple, self.graph.constraints.get("required_edges", [])))
        rows = []
        keys = list(in_graph)
        if s is not None:
            keys += [e for e in s.stability if e not in in_graph]
        for e in keys:
            w = in_graph[e].weight if e in in_graph else (float(s.weights[s.names.index(e[0]), s.names.index(e[1])]) if s else np.nan)
            stab = s.stability.get(e, 0.0) if s is not None and s.bootstrap else np.nan
            rows.append({"source": e[0], "target": e[1], "weight": w, "stability": stab, "in_graph": e in in_graph,
                         "required": e in required,
                         "stable": bool(stab >= p["stability_threshold"]) if not np.isnan(stab) else None})
        df = pd.DataFrame(rows, columns=["source", "target", "weight", "stability", "in_graph", "required", "stable"])
        return df.sort_values(["in_graph", "stability"], ascending=[False, False], kind="stable").reset_index(drop=True)

    def predictive_quality(self, data: "RecData") -> dict:
        """How well the network predicts the outcome on the test split (from the outcome's
        Markov blanket), next to predicting the training base rate."""
        from sklearn.metrics import roc_auc_score

        if data.test is None or not len(data.test) or self.target not in data.test.columns:
            return {"note": "no test split with the outcome: predictive quality not measured"}
        test = sample_rows(data.test, self.params["max_rows"], self._seed + 1)
        feats = [n for n in self.table.features]
        tt = build_table(data, test, feats, self.target, self.params["max_levels"], check=False,
                         medians=self.table.medians)
        unseen = {n: self.states[n].unseen(tt.frame[n]) for n in feats if self.states[n].kind == "levels"}
        codes = discretise(tt.frame, self.states)
        pos = self._positive_state()
        y = (codes[self.target].to_numpy() == pos).astype(float)
        rate = float(np.mean(self.codes[self.target].to_numpy() == pos))
        if self.net is not None:
            prob = self.net.predict_proba(codes)[:, pos]
        else:
            prob = np.full(len(y), rate)
        eps = 1e-12
        pc = np.clip(prob, eps, 1 - eps)
        rc = np.clip(rate, eps, 1 - eps)
        out = {
            "test_rows": int(len(y)),
            "positive_rate_test": float(y.mean()),
            "auc": float(roc_auc_score(y, prob)) if 0 < y.sum() < len(y) else None,
            "log_loss": float(-np.mean(y * np.log(pc) + (1 - y) * np.log(1 - pc))),
            "log_loss_base_rate": float(-np.mean(y * np.log(rc) + (1 - y) * np.log(1 - rc))),
            "brier": float(np.mean((prob - y) ** 2)),
            "brier_base_rate": float(np.mean((rate - y) ** 2)),
            "accuracy": float(np.mean((prob >= 0.5) == (y == 1))),
            "predictors": sorted(self._blanket()),
        }
        if any(unseen.values()):
            out["unseen_test_levels"] = {k: v for k, v in unseen.items() if v}
        return out

    def _blanket(self) -> set[str]:
        if self.net is None:
            return set()
        t = self.target
        parents = {s for s, d in self.net.edges if d == t}
        children = {d for s, d in self.net.edges if s == t}
        co = {s for s, d in self.net.edges if d in children and s != t}
        return parents | children | co

    def _summary(self, targets, why, quality, truth, fx, cva, notes, total_start) -> dict:
        p = self.params
        g = self.graph
        unstable = [[e.source, e.target] for e in g.edges if e.stability is not None and e.stability < p["stability_threshold"]]
        top = fx[fx["path_to_outcome"]].head(10)
        flags = cva["flag"].value_counts().to_dict() if len(cva) else {}
        in_net = self.net.variables if self.net is not None else []
        if total_start is not None:
            self.timings["total"] = time.perf_counter() - total_start
        return {
            "learner": NAME,
            "outcome": self.target,
            "variables": self.table.names,
            "n_variables": len(self.table.names),
            "train_rows": int(len(self.table.frame)),
            "method": g.method.get("algorithm"),
            "standardise": bool(p["standardise"]),
            "standardisation": g.method.get("preprocessing"),
            "w_threshold": p["w_threshold"],
            "constraints": g.constraints,
            "edges": len(g.edges),
            "bootstrap": p["bootstrap"],
            "stability_threshold": p["stability_threshold"],
            "unstable_edges": unstable,
            "caution": ("Edges come from one NOTEARS fit; the stability column says in what share of "
                        f"{p['bootstrap']} bootstrap refits each edge reappears. Treat unstable edges as hypotheses.")
            if p["bootstrap"] else "No bootstrap (bootstrap = 0): edge stability unknown; one NOTEARS fit is not proof.",
            "network_variables": in_net,
            "not_connected_to_outcome": [v for v in self.table.names if v not in in_net],
            "discretiser": p["discretiser"], "bins": p["bins"], "prior": p["prior"],
            # what answered do(): "gformula" (at the value) or "bn" (for the state; also when the
            # outcome is not binary, whatever was asked)
            "do_estimator": "gformula" if self.do_model is not None else "bn",
            "baseline_outcome_probability": self.baseline,
            "interventions": targets, "interventions_from": why,
            "effect_bootstrap": p["effect_bootstrap"], "ci": p["ci"],
            "top_effects": [{"feature": r.feature, "effect": r.effect, "low": r.effect_low, "high": r.effect_high}
                            for r in top.itertuples()],
            "flags": flags,
            "predictive_quality": quality,
            "truth": truth,
            "notes": notes,
            "seconds": {k: round(v, 3) for k, v in self.timings.items()},
        }

    # -- persistence ------------------------------------------------------------------------
    def bn_dict(self) -> dict:
        """Everything ``load`` needs to answer interventions without refitting (JSON, no pickle)."""
        self._require_fitted()
        return {
            "learner": NAME,
            "params": self.params,
            "target": self.target,
            "variables": self.table.names if self.table is not None else list(self.states),
            "fields": self.table.fields if self.table is not None else {},
            "schema_actionable": list(self._schema_actionable),
            "actionable": self.actionable_variables(),
            "baseline": self.baseline,
            "states": {v: st.to_dict() for v, st in self.states.items()},
            "network": self.net.to_dict() if self.net is not None else None,
            "graph": self.graph.to_dict() if self.graph is not None else None,
        }

    def save(self, directory: str | Path) -> Path:
        if self.do_model is not None:
            write_json(Path(directory) / "gformula.json", self.do_model.to_dict())
        return write_json(Path(directory) / "bn.json", self.bn_dict())

    @classmethod
    def load(cls, directory: str | Path) -> "CausalNexLearner":
        """A learner that answers ``intervene`` from a saved ``bn.json`` (a run's causal/<name>/)."""
        path = Path(directory)
        path = path / "bn.json" if path.is_dir() else path
        if not path.exists():
            raise RunDirError(f"{path}: missing; it is written by the {NAME} causal stage (rerun the pipeline)")
        try:
            d = json.loads(path.read_text())
            params = {k: v for k, v in d.get("params", {}).items()}
            saved_boot = params.get("effect_bootstrap")
            if isinstance(saved_boot, int) and 0 < saved_boot < MIN_EFFECT_BOOTSTRAP:
                # a run from before the minimum: loading only answers interventions, no bootstrap
                params["effect_bootstrap"] = 0
            learner = cls(**params)
            learner.params["effect_bootstrap"] = saved_boot if saved_boot is not None else learner.params["effect_bootstrap"]
            learner.states = {v: VariableStates.from_dict(s) for v, s in d["states"].items()}
            learner.baseline = d.get("baseline")
            learner._schema_actionable = list(d.get("schema_actionable") or [])
            learner.net = FittedNetwork.from_dict(d["network"]) if d.get("network") else None
            learner.graph = CausalGraph.from_dict(d["graph"]) if d.get("graph") else None
            gpath = path.parent / "gformula.json"
            if learner.uses_gformula() and learner.net is not None:
                if not gpath.exists():
                    raise RunDirError(f"{gpath}: missing; do_estimator = 'gformula' answers do() from it (written by the "
                                      f"{NAME} causal stage): rerun the pipeline, or set do_estimator = 'bn'")
                learner.do_model = DoModel.from_dict(json.loads(gpath.read_text()), learner.states)
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise RunDirError(f"{path}: corrupted or not a {NAME} network ({type(exc).__name__}: {exc}); rerun the "
                              f"pipeline's causal stage") from exc
        return learner

    def effects_text(self, res: pd.DataFrame) -> str:
        pos = self._positive_state()
        row = res.iloc[pos]
        return (f"P({row['outcome']} = {row['state']} | {row['intervention']}) = {row['p_do']:.4f} "
                f"(observed P({row['outcome']} = {row['state']}) = {row['p_observed']:.4f}, change {row['change']:+.4f})")
