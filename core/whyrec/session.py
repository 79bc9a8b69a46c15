"""A run opened for many explanation requests: ``ExplainSession``, and ``LiveHistory``.

``whyrec explain`` asks a session one question and exits; ``whyrec serve`` keeps one warm and
asks it every request. Either way the answer is built by the same code (the JSON contract of
docs/contracts.md). The session loads the run's data and models once and builds each explainer
once per (model, method), so what an explainer caches itself (tree-shap's shap.TreeExplainer,
the exact-field-shapley background) is built once too. Explainers whose declared needs the
model lacks are never built (their plugin's heavy libraries are never imported).

``LiveHistory`` folds interactions that arrive after training (``whyrec serve``'s POST /events)
into the warm data without retraining: the user's sequence features, the features the dataset
derives from them, the seen items and the latest context (docs/serve.md says what is and is not
updated). Nothing heavy is imported at module level.
"""
from __future__ import annotations

import time
from collections import OrderedDict
from typing import Any

from .atomic import plain
from .data import ITEM, LABEL, TIMESTAMP, USER
from .errors import DataError, RunDirError, UnsupportedError

COUNTERFACTUAL = "top-k-counterfactual"


class ExplainSession:
    """The run's data, models and explainers, each built on first use and then kept.

    Not thread-safe: a server calls it under one lock (explainers keep caches)."""

    def __init__(self, run: Any) -> None:
        self.run = run
        self._instances: dict[tuple[str, str], Any] = {}  # (model, method) -> an explainer that supports it
        self._unsupported: set[tuple[str, str]] = set()
        self._cautions: dict[tuple[str, str], str | None] = {}
        self._counterfactual: dict[tuple[str, str], Any] = {}
        self._supporting: dict[str, list[str]] = {}
        self.live: LiveHistory | None = None
        # observe(model, method, seconds) after each explainer call: a server's metrics
        self.observe: Any = None
        # each user's ranked candidates per model, kept while the user's live history is
        # unchanged (``ranking_cache`` users, least recently used out; 0: never kept)
        self.ranking_cache = 0
        self._rankings: OrderedDict[tuple[str, Any], Ranking] = OrderedDict()
        # what a request checks, read once: the run's models and each one's methods (a run
        # directory does not change under a session), and each user's candidate count per
        # live-history version
        self._model_names: list[str] | None = None
        self._method_names: dict[str, list[str]] = {}
        self._candidate_counts: dict[Any, tuple[int, int]] = {}

    # -- what the run holds -----------------------------------------------------------------
    @property
    def data(self) -> Any:
        return self.run.load_data()

    def model_names(self) -> list[str]:
        return list(self._names())

    def _names(self) -> list[str]:
        if self._model_names is None:
            self._model_names = self.run.model_names()
        return self._model_names

    def model_name(self, model: str | None = None) -> str:
        """The run's name for ``model`` (None: its first model); RunDirError naming the others."""
        names = self._names()
        if not names:
            raise RunDirError(f"{self.run.path}: the run has no fitted model; rerun a pipeline with a model stage")
        if model is None:
            return names[0]
        if model not in names:
            raise RunDirError(f"{self.run.path}: no model {model!r} in this run (models: {', '.join(names)})")
        return model

    def model(self, model: str | None = None) -> Any:
        return self.run.load_model(self.model_name(model))

    def method_names(self, model: str | None = None) -> list[str]:
        """Methods a request may name for ``model``: the run's explainers that support it, then
        any other installed explainer that does."""
        mname = self.model_name(model)
        if mname not in self._method_names:
            try:
                own = [n for n, _ in self.explainers(mname)]
            except (UnsupportedError, RunDirError):
                own = []
            self._method_names[mname] = own + [n for n in self.supporting(mname) if n not in own]
        return list(self._method_names[mname])

    def candidate_count(self, user: Any) -> int:
        """``len(data.candidates(user))``, counted once per version of the user's live history."""
        version = self._version(user)
        hit = self._candidate_counts.get(user)
        if hit is None or hit[0] != version:
            hit = self._candidate_counts[user] = (version, len(self.data.candidates(user)))
        return hit[1]

    def warm(self) -> dict[str, list[str]]:
        """Load the data, every model and the explainers of the run that support each: what a
        server does once at start-up. Returns {model: [methods]}."""
        self.data
        out = {}
        for name in self.model_names():
            self.model(name)
            try:
                out[name] = [n for n, _ in self.explainers(name)]
            except (UnsupportedError, RunDirError):
                out[name] = []
        return out

    # -- explainers ---------------------------------------------------------------------------
    def explainers(self, model: str | None = None, methods: tuple[str, ...] | list[str] = ()) -> list[tuple[str, Any]]:
        """The explainers to run on ``model``: ``methods`` (run instance names or installed
        explainer names), else every explainer of the run that supports it."""
        run, host = self.run, self.run.host
        mname = self.model_name(model)
        m = self.model(mname)
        entries = {e["name"]: e for e in run.spec("explainers")}
        if not methods:
            if not entries:
                raise RunDirError(f"{run.path}: pipeline {run.pipeline!r} ran no 'explainers' stage, which `whyrec explain` needs; add explainers or pass --method NAME")
            wanted = [(n, e["use"], e["params"]) for n, e in entries.items()]
        else:
            wanted = []
            for name in methods:
                e = entries.get(name)
                wanted.append((name, e["use"], e["params"]) if e else (name, name, {}))
        out = []
        caps = getattr(m, "capabilities", ())
        for name, use, params in wanted:
            key = (mname, name)
            x = self._instances.get(key)
            if x is None and key not in self._unsupported:
                if not methods and not host.may_support(use, caps):
                    continue  # declared: it needs capabilities this model lacks (never built, nothing imported)
                x = host.create("explainers", use, params)
                if x.supports(m):
                    self._instances[key] = x
                else:
                    self._unsupported.add(key)
                    x = None
            if x is not None:
                out.append((name, x))
            elif methods:
                raise UnsupportedError(f"explainer {name!r} does not support model {mname!r}; explainers that do: "
                                       f"{', '.join(self.supporting(mname)) or 'none'}")
        if not out:
            raise UnsupportedError(f"none of the run's explainers support model {mname!r}; pass --method with one that does "
                                   f"({', '.join(self.supporting(mname)) or 'none installed'})")
        return out

    def supporting(self, model: str | None = None) -> list[str]:
        """Installed explainers that support the model (for messages); one that cannot even be
        built (its plugin is broken, or it needs parameters) is left out rather than replace the message."""
        from .errors import WhyrecError

        mname = self.model_name(model)
        if mname not in self._supporting:
            host, m = self.run.host, self.model(mname)
            caps = getattr(m, "capabilities", ())
            out = []
            for n in host.names("explainers"):
                try:
                    if host.may_support(n, caps) and host.create("explainers", n).supports(m):
                        out.append(n)
                except (WhyrecError, TypeError):
                    continue
            self._supporting[mname] = out
        return self._supporting[mname]

    def caution(self, model: str, method: str) -> str | None:
        key = (model, method)
        if key not in self._cautions:
            self._cautions[key] = method_caution(self.run.path, method, model)
        return self._cautions[key]

    # -- answers --------------------------------------------------------------------------------
    def explain(self, user: Any, k: int, model: str | None = None, methods: tuple[str, ...] = (),
                context: dict | None = None, lang: str | None = None, **options: Any) -> dict:
        """The JSON contract of `whyrec explain --format json` (docs/contracts.md); with ``lang``
        ("en" | "zh") each recommendation also carries its sentences (``text``, docs/sentences.md).
        ``options`` are for fields later versions add; an unknown one is refused."""
        if options:
            raise TypeError(f"unknown explain option(s): {', '.join(sorted(options))}")
        data = self.data
        mname = self.model_name(model)
        m = self.model(mname)
        user = data.check_user(user)
        recs = self.recommend(mname, user, k, context)
        expls = []
        for name, x in self.explainers(mname, methods):
            t = time.perf_counter()
            expls.append((name, x.explain(m, data, recs)))
            if self.observe is not None:
                self.observe(mname, name, time.perf_counter() - t)
        cautions = {name: self.caution(mname, name) for name, _ in expls}
        rows = {name: explanation_rows(e) for name, e in expls}
        out = []
        for i, r in enumerate(recs.itertuples(index=False)):
            entries = []
            for name, e in expls:
                row = rows[name][i]
                row["method"] = name
                row["additive"] = bool(e.additive)
                row["caution"] = cautions[name]  # None, or why this method's reasons need care on this model
                entries.append(row)
            out.append({"item": plain(r.item), "title": data.item_title(r.item), "rank": int(r.rank), "score": float(r.score),
                        "explanations": entries})
        res = {"user": plain(user), "model": mname, "recommendations": out}
        ctx = context_block(data, recs)
        if ctx is not None:
            res["context"] = ctx
        if lang:
            from .sentences import MIN_PEERS, add_text

            priv = (self.run.manifest.get("settings") or {}).get("privacy") or {}
            add_text(res, data, lang, min_peers=int(priv.get("min_peers", MIN_PEERS)))
        return res

    # -- rankings -------------------------------------------------------------------------------
    def recommend(self, model: str, user: Any, k: int, context: dict | None = None) -> Any:
        """``model.recommend(user, k, context)``, from the user's kept ranking when there is one
        (equal to it row for row: the same scores in the same stable order). A ranking is kept
        only for the user's own latest context (no explicit ``context``), for models that rank
        with ``BaseModel.recommend``, and while the user's live history is unchanged."""
        from .contracts import BaseModel, check_k

        m = self.model(model)
        if self.ranking_cache <= 0 or context or type(m).recommend is not BaseModel.recommend:
            return m.recommend(user, k, context=context or None)
        ranked = self._ranking(model, m, user)
        check_k(user, k, len(ranked.items))
        return ranked.top(k)

    def rank_all(self, model: str | None = None, users: Any = None, chunk_rows: int = 200_000, progress: Any = None) -> int:
        """Rank every candidate of ``users`` (default: all) for ``model`` in batches of about
        ``chunk_rows`` pairs and keep the rankings (what a server may do at start-up so that no
        request scores candidates). Returns how many users were ranked."""
        import numpy as np
        import pandas as pd

        from .contracts import BaseModel

        mname = self.model_name(model)
        m = self.model(mname)
        if self.ranking_cache <= 0 or type(m).recommend is not BaseModel.recommend:
            return 0
        data = self.data
        todo = [u for u in (data.user_ids if users is None else users) if self._kept(mname, u) is None]
        todo = todo[: self.ranking_cache]
        done = 0
        while done < len(todo):
            batch, rows = [], 0
            while done + len(batch) < len(todo) and (not batch or rows < chunk_rows):
                u = todo[done + len(batch)]
                pairs = data.user_pairs(u, data.candidates(u))
                batch.append((u, pairs))
                rows += len(pairs)
            allp = pd.concat([p for _, p in batch], ignore_index=True) if len(batch) > 1 else batch[0][1]
            scores = np.asarray(m.score(allp), dtype=float)
            at = 0
            for u, pairs in batch:
                self._keep(mname, u, Ranking.of(u, pairs, scores[at: at + len(pairs)], data.context_names))
                at += len(pairs)
            done += len(batch)
            if progress is not None:
                progress(len(batch))
        return done

    def _version(self, user: Any) -> int:
        return self.live.versions.get(user, 0) if self.live is not None else 0

    def _kept(self, model: str, user: Any) -> "Ranking | None":
        hit = self._rankings.get((model, user))
        if hit is None or hit.version != self._version(user):
            return None
        self._rankings.move_to_end((model, user))
        return hit

    def _keep(self, model: str, user: Any, ranked: "Ranking") -> None:
        ranked.version = self._version(user)
        self._rankings[(model, user)] = ranked
        self._rankings.move_to_end((model, user))
        while len(self._rankings) > self.ranking_cache:
            self._rankings.popitem(last=False)

    def _ranking(self, model: str, m: Any, user: Any) -> "Ranking":
        hit = self._kept(model, user)
        if hit is None:
            data = self.data
            pairs = data.user_pairs(user, data.candidates(user))
            hit = Ranking.of(user, pairs, m.score(pairs), data.context_names)
            self._keep(model, user, hit)
        return hit

    def why_above(self, user: Any, item_a: Any, item_b: Any, model: str | None = None, methods: tuple[str, ...] = (),
                  k: int = 10, context: dict | None = None) -> dict:
        """Why does item A score above item B for this user: the difference of two additive
        explanations (it sums to the score gap for additive methods), plus, where the explainer
        plugin offers it, the smallest feature change that moves A into the top-k."""
        data = self.data
        mname = self.model_name(model)
        m = self.model(mname)
        user = data.check_user(user)
        a, b = data.check_item(item_a, "A"), data.check_item(item_b, "B")
        name, x = self.explainers(mname, methods)[0]
        pairs = data.user_pairs(user, [a, b], context or None)  # A and B in the same context
        e = x.explain(m, data, pairs)
        cands = data.candidates(user)
        scores = m.score(data.user_pairs(user, cands, context or None))
        order = {it: r + 1 for r, it in enumerate(cands[(-scores).argsort(kind="stable")])}
        diff = e.difference(0, 1)
        sa, sb = (float(v) for v in e.pairs["output_value"])
        out = {
            "user": plain(user), "model": mname, "method": name,
            "item_a": plain(a), "item_b": plain(b), "title_a": data.item_title(a), "title_b": data.item_title(b),
            "score_a": sa, "score_b": sb, "rank_a": order.get(a), "rank_b": order.get(b),
            "seen_a": a not in order, "seen_b": b not in order,  # already interacted with: never recommended, no rank
            "additive": bool(e.additive),
            "score_gap": sa - sb, "base_gap": float(e.pairs["base_value"].iloc[0] - e.pairs["base_value"].iloc[1]),
            "difference": {f: float(v) for f, v in diff.items()},
            "counterfactual": None,
        }
        ctx = context_block(data, pairs)
        if ctx is not None:
            out["context"] = ctx
        if out["seen_a"]:  # no change of features can rank an item the user already has
            out["counterfactual"] = {"found": False, "reason": f"{out['title_a']} is one the user already interacted with, "
                                                               "so it is never among their recommendations"}
            return out
        cf = self.counterfactual_explainer(mname, name, x)
        if cf is not None:
            try:
                out["counterfactual"] = cf.into_top_k(m, data, user, a, k=k, context=context or None)
            except (NotImplementedError, UnsupportedError) as exc:  # models that do not score feature rows
                out["counterfactual"] = {"found": False, "reason": f"not available for model {m.name!r}: {exc}"}
        return out

    def counterfactual_explainer(self, model: str, name: str, x: Any) -> Any:
        """An explainer that answers "what moves this item into the top-k" for ``model``: the one
        already chosen when its component declares the capability, else any installed one that
        declares it and supports the model (None: no plugin offers it). The core knows the
        capability, never the plugin: ``into_top_k(model, data, user, item, k, context)``."""
        key = (model, name)
        if key not in self._counterfactual:
            self._counterfactual[key] = self._find_counterfactual(model, name, x)
        return self._counterfactual[key]

    def _find_counterfactual(self, model: str, name: str, x: Any) -> Any:
        host, m = self.run.host, self.model(model)
        entries = {e["name"]: e["use"] for e in self.run.spec("explainers")}
        use = entries.get(name, name)
        if use in host.names("explainers") and COUNTERFACTUAL in host.get("explainers", use).provides and hasattr(x, "into_top_k"):
            return x
        caps = getattr(m, "capabilities", ())
        for n in host.providers("explainers", COUNTERFACTUAL):
            if not host.may_support(n, caps):
                continue
            try:
                other = host.create("explainers", n)
            except Exception:  # noqa: BLE001  (an explainer needing parameters or a broken plugin is skipped)
                continue
            if hasattr(other, "into_top_k") and other.supports(m):
                return other
        return None


class Ranking:
    """One user's candidates in ``BaseModel.recommend``'s order (score descending, stable),
    with the context columns they were scored in."""

    __slots__ = ("user", "items", "scores", "context", "attrs", "version")

    def __init__(self, user: Any, items: Any, scores: Any, context: dict, attrs: dict) -> None:
        self.user, self.items, self.scores, self.context, self.attrs = user, items, scores, context, attrs
        self.version = 0

    @classmethod
    def of(cls, user: Any, pairs: Any, scores: Any, context_names: list[str]) -> "Ranking":
        import numpy as np

        scores = np.asarray(scores)
        order = np.argsort(-scores, kind="stable")
        return cls(user, pairs[ITEM].to_numpy()[order], scores[order],
                   {c: pairs[c].to_numpy()[order] for c in context_names}, dict(pairs.attrs.get("context", {})))

    def top(self, k: int) -> Any:
        import numpy as np
        import pandas as pd

        out = pd.DataFrame({USER: self.user, ITEM: self.items[:k], "score": self.scores[:k], "rank": np.arange(1, k + 1)})
        for c, v in self.context.items():
            out[c] = v[:k]
        out.attrs["context"] = dict(self.attrs)
        return out


def explanation_rows(e: Any) -> list[dict]:
    """``[e.row(i) for i in range(len(e.pairs))]``, equal to it key for key and value for
    value, with each table read once rather than one pandas row lookup per pair and table
    (which cost a served request more than its TreeSHAP did)."""
    import math

    n = len(e.pairs)
    cols = e.pairs.columns

    def column(name: str) -> list:
        return [float(v) for v in e.pairs[name].to_numpy(dtype=float)] if name in cols else [None] * n

    def table(df: Any) -> list[dict]:
        if df is None:
            return [{} for _ in range(n)]
        keys = list(df.columns)
        return [dict(zip(keys, map(float, vals))) for vals in df.to_numpy(dtype=float).tolist()]

    out_v, base_v, err_v = column("output_value"), column("base_value"), column("additivity_error")
    attrs, fields = table(e.attributions), table(e.field_attributions)
    rows = []
    for i in range(n):
        row = {"method": e.method, "model": e.model, "output_value": out_v[i], "base_value": base_v[i],
               "attributions": attrs[i], "field_attributions": fields[i],
               "additivity_error": None if math.isnan(err_v[i]) else err_v[i],
               "reasons": [] if e.reasons is None else list(e.reasons[i])}
        for name, per_pair in e.details.items():
            row[name] = list(per_pair[i])
        rows.append(row)
    return rows


def context_block(data: Any, rows: Any) -> dict | None:
    """What context the explained rows were scored in, and where it came from (None: the
    dataset has no context features). Sources: "explicit" (--context), "user-latest" (the
    user's most recent logged context), "typical" (no logged context: the training mode or
    median), "pair" (the row's own)."""
    names = data.context_names
    if not names:
        return None
    source = dict(getattr(rows, "attrs", {}).get("context", {}))
    hidden = set(data.params.get("redacted_features") or ())  # privacy.redact_fields: never shown
    values = {c: "withheld" if c in hidden else plain(rows[c].iloc[0]) for c in names if c in rows.columns and len(rows)}
    return {"values": values, "source": {c: source.get(c, "pair") for c in names}}


def method_caution(run_dir: Any, instance: str, model: str) -> str | None:
    """The caution a method's reasons carry on ``model`` when the run's quality check judged
    it unfaithful there (the report says the same); None otherwise."""
    try:
        from .report.verdicts import caution_for
    except ImportError:  # pragma: no cover - the report package ships with the core
        return None
    try:
        return caution_for(run_dir, instance, model)
    except OSError:
        return None


# -- interactions that arrive after training ----------------------------------------------------
class LiveHistory:
    """Interactions that arrived after the run, folded into its warm data without retraining.

    Installs itself as the data's featurizer (wrapping the dataset's own): rows scored now (no
    timestamp column: candidates, explained pairs) get the user's new positives in front of
    their sequence features (most recent first, the oldest falling off), and the features the
    dataset derives from the sequence recomputed by its ``history_deriver``. Rows with a
    timestamp (training, test, background rows) are point-in-time and left as they were.
    Every interaction, positive or not, makes its item seen (no longer a candidate), and its
    context columns become the user's latest context.
    """

    def __init__(self, data: Any) -> None:
        import pandas as pd

        self.data = data
        self.inner = data.featurizer
        self.seq = data.schema.of_kind("sequence")
        self.positives: dict[Any, list] = {}  # user -> new positive items, oldest first
        self.versions: dict[Any, int] = {}  # user -> interactions folded in (what kept rankings check)
        self.count = 0
        ids = data.items.index
        # what a sequence feature holds for an item (docs/datasets.md): its id when ids are
        # numbers, else its position in the item table
        self._numeric_ids = pd.api.types.is_numeric_dtype(ids) and not pd.api.types.is_bool_dtype(ids)
        if self.inner is not None and self.seq:
            data.featurizer = self

    @property
    def updates_sequence(self) -> bool:
        return self.data.featurizer is self

    def columns(self) -> list[str]:
        """The columns an interaction may carry: the dataset's interaction columns."""
        return list(self.data.interactions.columns)

    def check(self, row: dict) -> dict:
        """One interaction (a mapping of the dataset's interaction columns) checked and typed:
        DataError naming the column and the fix; nothing changes."""
        data = self.data
        cols = self.columns()
        unknown = [c for c in row if c not in cols]
        if unknown:
            raise DataError(f"event field {unknown[0]!r} is not a column of dataset {data.name!r} (columns: {', '.join(cols)})")
        for need in (USER, ITEM) + ((LABEL,) if LABEL in cols else ()):
            if row.get(need) is None:
                raise DataError(f"an event needs {need!r} (columns of dataset {data.name!r}: {', '.join(cols)})")
        out = dict(row)
        out[USER] = data.check_user(row[USER])
        out[ITEM] = data.check_item(row[ITEM])
        if LABEL in out:
            try:
                out[LABEL] = float(out[LABEL])
            except (TypeError, ValueError):
                raise DataError(f"event field 'label' is {row[LABEL]!r}; give a number (1 = a positive interaction, 0 = not)") from None
            if out[LABEL] != out[LABEL] or out[LABEL] in (float("inf"), float("-inf")):
                raise DataError("event field 'label' must be a finite number (1 = a positive interaction, 0 = not)")
        ctx = {c: out[c] for c in data.context_names if out.get(c) is not None}
        out.update(data.context_values(ctx))
        for c in cols:
            if c in (USER, ITEM, LABEL) or c in data.context_names or out.get(c) is None:
                continue
            v = out[c]
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                ref = data.interactions[c]
                if ref.dtype.kind in "iuf":
                    raise DataError(f"event field {c!r} is {v!r}; column {c!r} of dataset {data.name!r} holds numbers")
        return out

    def add(self, row: dict) -> dict:
        """Fold one checked interaction in (see the class); returns it."""
        data = self.data
        user, item = row[USER], row[ITEM]
        data.seen(user)  # builds the cache it is added to
        data._seen_cache.setdefault(user, set()).add(item)
        positive = row.get(LABEL, 1.0) > 0
        if positive:
            self.positives.setdefault(user, []).append(item)
            data.history(user)
            data._history.setdefault(user, []).append(item)
        ctx = {c: row[c] for c in data.context_names if row.get(c) is not None}
        if ctx:
            latest = data._latest_context()
            for c, v in ctx.items():
                latest.loc[user, c] = v
        self.versions[user] = self.versions.get(user, 0) + 1
        self.count += 1
        return row

    def code(self, item: Any) -> float:
        return float(item) if self._numeric_ids else float(self.data.items.index.get_loc(item))

    def __call__(self, data: Any, rows: Any) -> Any:
        import numpy as np

        X = self.inner(data, rows)
        if not self.positives or TIMESTAMP in rows.columns:
            return X
        users = rows[USER].to_numpy()
        live = [u for u in self.positives if (users == u).any()] if len(users) else []
        if not live:
            return X
        n = len(self.seq)
        seq = np.array(X[self.seq].to_numpy(dtype=float, na_value=np.nan))  # a writable copy
        hit = np.zeros(len(X), dtype=bool)
        for u in live:
            mask = users == u
            new = np.array([self.code(i) for i in reversed(self.positives[u])], dtype=float)[:n]  # most recent first
            shifted = np.concatenate([np.broadcast_to(new, (int(mask.sum()), len(new))), seq[mask]], axis=1)[:, :n]
            seq[mask] = shifted
            hit |= mask
        X = X.copy()
        for j, name in enumerate(self.seq):
            X[name] = seq[:, j]
        if data.history_deriver is None:
            return X
        if hit.all():
            return data.rederive_history(X)
        part = data.rederive_history(X[hit])
        idx = np.flatnonzero(hit)
        for c in X.columns:
            if not part[c].equals(X[c].iloc[idx]):
                X.iloc[idx, X.columns.get_loc(c)] = part[c].to_numpy()
        return X
