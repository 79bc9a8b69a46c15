"""A small real plugin for the report tests, and a helper that runs a whole pipeline with it.

One component per stage kind, each doing its real (small) computation, so the report is built
from the artifacts a real run writes: a logistic-regression model (numpy, JSON weights), its
exact linear SHAP explainer with a deletion-curve quality check, an attention-over-history
explainer, a linear-probability causal effect table with a graph drawing and an HTML graph, a
weight-rounding compressor with a fidelity report, and an A/B click-through analyzer.
The tests at the bottom check the maths of these components.
"""
from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import numpy as np
import pandas as pd

import whyrec
from whyrec import BaseModel, Explanation
from whyrec.atomic import write_json
from whyrec.results import CausalReport, CompressionReport, FeedbackReport, StageResult

HERE = Path(__file__).parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

FEATURES = ["age", "quality"]


class LinearModel(BaseModel):
    """Logistic regression on standardised age and quality (gradient descent, numpy)."""

    name = "linear"
    capabilities = frozenset({"additive"})

    def __init__(self, steps: int = 200, lr: float = 0.5) -> None:
        super().__init__(steps=steps, lr=lr)
        self.steps, self.lr = steps, lr

    def fit(self, data, ctx=None) -> dict:
        self.bind(data, FEATURES)
        X = data.features(data.train)[FEATURES].to_numpy(float)
        self.mu, self.sd = X.mean(0), X.std(0) + 1e-12
        Z = (X - self.mu) / self.sd
        y = data.train["label"].to_numpy(float)
        self.w, self.b = np.zeros(Z.shape[1]), 0.0
        self.curve = []
        for step in range(self.steps):
            p = 1 / (1 + np.exp(-(Z @ self.w + self.b)))
            self.w -= self.lr * Z.T @ (p - y) / len(y)
            self.b -= self.lr * float(np.mean(p - y))
            if step % 20 == 0 or step == self.steps - 1:
                loss = -np.mean(y * np.log(p + 1e-12) + (1 - y) * np.log(1 - p + 1e-12))
                self.curve.append({"step": step, "train_loss": float(loss)})
        return {"final_loss": self.curve[-1]["train_loss"], "steps": self.steps}

    def standardise(self, X: pd.DataFrame) -> np.ndarray:
        return (X[FEATURES].to_numpy(float) - self.mu) / self.sd

    def score_features(self, X: pd.DataFrame) -> np.ndarray:
        return self.standardise(X) @ self.w + self.b  # the margin (log-odds)

    def _save_weights(self, directory: Path) -> None:
        write_json(directory / "weights.json", {"mu": self.mu, "sd": self.sd, "w": self.w, "b": self.b})
        if getattr(self, "curve", None):
            write_json(directory / "training_curve.json", self.curve)

    def _load_weights(self, directory: Path) -> None:
        w = json.loads((directory / "weights.json").read_text())
        self.mu, self.sd, self.w, self.b = (np.asarray(w["mu"]), np.asarray(w["sd"]), np.asarray(w["w"]), float(w["b"]))


class LinearShap:
    """Exact SHAP values of a linear model: w_j * (z_j - mean z_j); base = w . mean z + b."""

    def supports(self, model) -> bool:
        return isinstance(model, LinearModel)

    def explain(self, model, data, pairs: pd.DataFrame) -> Explanation:
        X = data.features(pairs)[FEATURES]
        Z = model.standardise(X)
        zbar = model.standardise(data.features(data.train)[FEATURES]).mean(0)
        phi = pd.DataFrame((Z - zbar) * model.w, columns=FEATURES)
        out = pairs[["user", "item", "rank"]].copy()
        out["output_value"] = Z @ model.w + model.b
        out["base_value"] = float(zbar @ model.w + model.b)
        reasons = [[f"{data.describe_feature(f, X[f].iloc[i])}: {phi[f].iloc[i]:+.2f}" for f in
                    phi.iloc[i].abs().sort_values(ascending=False).index] for i in range(len(pairs))]
        return Explanation(method="linear-shap", model=model.name, pairs=out, schema=data.schema.select(FEATURES),
                           attributions=phi, feature_values=X.reset_index(drop=True), reasons=reasons,
                           summary={"output_units": "log-odds"})

    def quality(self, model, data, expl: Explanation, ctx=None) -> StageResult:
        """Deletion curve: replace features by their mean in attribution order vs. random order."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        X = data.features(expl.pairs)[FEATURES].reset_index(drop=True)
        means = data.features(data.train)[FEATURES].mean()
        rng = np.random.default_rng(0)
        order_attr = [list(expl.attributions.iloc[i].sort_values(ascending=False).index) for i in range(len(X))]
        order_rand = [list(rng.permutation(FEATURES)) for _ in range(len(X))]

        def curve(orders):
            out = [model.score_features(X).mean()]
            Xs = X.copy()
            for step in range(len(FEATURES)):
                for i, order in enumerate(orders):
                    Xs.loc[i, order[step]] = means[order[step]]
                out.append(model.score_features(Xs).mean())
            return out

        table = pd.DataFrame({"removed": range(len(FEATURES) + 1), "attribution_order": curve(order_attr),
                              "random_order": curve(order_rand)})
        fig, ax = plt.subplots(figsize=(5, 3))
        ax.plot(table["removed"], table["attribution_order"], marker="o", label="attribution order")
        ax.plot(table["removed"], table["random_order"], marker="s", label="random order")
        ax.set_title("Deletion curve")
        ax.set_xlabel("features replaced by their mean")
        ax.set_ylabel("mean score (log-odds)")
        ax.legend()
        auc_attr, auc_rand = float(table["attribution_order"].mean()), float(table["random_order"].mean())
        return StageResult(summary={"deletion_auc": auc_attr, "random_deletion_auc": auc_rand,
                                    "faithful": auc_attr <= auc_rand}, tables={"deletion": table},
                           figures={"deletion_curve": fig}, kind="quality")


class HistoryAttention:
    """Attention of the candidate over the user's last 5 liked items: softmax(-|quality gap| / 0.5)."""

    def supports(self, model) -> bool:
        return True

    def explain(self, model, data, pairs: pd.DataFrame) -> Explanation:
        q = data.items["quality"]
        rows, reasons = [], []
        for i, (u, it) in enumerate(zip(pairs["user"], pairs["item"])):
            hist = list(reversed(data.history(u)))[:5]
            if not hist:
                reasons.append(["no history: explained by the item alone"])
                continue
            logits = -np.abs(q.loc[hist].to_numpy() - q.loc[it]) / 0.5
            w = np.exp(logits - logits.max())
            w /= w.sum()
            rows += [{"pair": i, "position": p, "history_item": h, "history_title": data.item_title(h), "weight": float(x)}
                     for p, (h, x) in enumerate(zip(hist, w))]
            top = np.argsort(-w)[:2]
            reasons.append(["because you liked " + " and ".join(f"{data.item_title(hist[j])} ({w[j]:.2f})" for j in top)])
        out = pairs[["user", "item", "rank"]].copy()
        return Explanation(method="history-attention", model=model.name, pairs=out, schema=data.schema,
                           additive=False, extras={"attention": pd.DataFrame(rows)}, reasons=reasons)

    def figures(self, expl: Explanation, data) -> dict:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        att = expl.extras["attention"]
        fig, ax = plt.subplots(figsize=(5, 3))
        by = att.groupby("position")["weight"].mean()
        ax.bar(by.index, by.to_numpy())
        ax.set_title("Mean attention by history position")
        ax.set_xlabel("history position (0 = most recent)")
        ax.set_ylabel("mean attention weight")
        return {"attention_by_position": fig}


GRAPH_HTML = """<!DOCTYPE html><html><head><meta charset="utf-8"><title>graph</title></head><body>
<svg id="g" width="360" height="140" xmlns="http://www.w3.org/2000/svg">
<text x="20" y="30">age</text><text x="20" y="110">quality</text><text x="280" y="70">label</text>
<line x1="70" y1="28" x2="270" y2="65" stroke="black"/><line x1="80" y1="106" x2="270" y2="72" stroke="black"/>
</svg><p id="n"></p><script>document.getElementById('n').textContent = 'edges: 2';</script></body></html>"""


class EffectTable:
    """Linear probability model of the label on age and quality: effects with 95% intervals."""

    def __init__(self, target: str = "label") -> None:
        self.target = target

    def run(self, ctx) -> CausalReport:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        data = ctx.data
        X = data.features(data.train)[FEATURES].to_numpy(float)
        Z = np.column_stack([np.ones(len(X)), (X - X.mean(0)) / X.std(0)])
        y = data.train[self.target].to_numpy(float)
        beta, *_ = np.linalg.lstsq(Z, y, rcond=None)
        resid = y - Z @ beta
        cov = np.linalg.inv(Z.T @ Z) * resid.var(ddof=Z.shape[1])
        se = np.sqrt(np.diag(cov))
        effects = pd.DataFrame({"feature": FEATURES, "effect_per_sd": beta[1:], "ci_low": beta[1:] - 1.96 * se[1:],
                                "ci_high": beta[1:] + 1.96 * se[1:]})
        attr = {}
        for e in ctx.explanations:
            if e.attributions is not None and set(FEATURES) <= set(e.attributions.columns):
                attr = e.attributions.abs().mean().to_dict()
        compare = pd.DataFrame({"feature": FEATURES, "causal_effect": np.abs(beta[1:]),
                                "mean_abs_attribution": [attr.get(f, np.nan) for f in FEATURES]})
        fig, ax = plt.subplots(figsize=(4, 2.5))
        for (x0, y0), lab in zip([(0, 1), (0, 0)], FEATURES):
            ax.annotate("", xy=(1, 0.5), xytext=(x0, y0), arrowprops={"arrowstyle": "->"})
            ax.text(x0 - 0.05, y0, lab, ha="right", va="center")
        ax.text(1.05, 0.5, self.target, va="center")
        ax.set_xlim(-0.6, 1.5)
        ax.set_axis_off()
        ax.set_title("Causal graph")
        return CausalReport(summary={"target": self.target, "method": "linear probability model", "n": int(len(y))},
                            tables={"effects": effects, "causal_vs_attribution": compare}, csv_tables=("effects",),
                            figures={"graph": fig}, files={"graph.html": GRAPH_HTML})


class RoundWeights:
    """Compress a linear model by rounding its weights to one decimal; fidelity on sample users."""

    def __init__(self, decimals: int = 1) -> None:
        self.decimals = decimals

    def compress(self, model, data, ctx=None):
        student = LinearModel(**model.params)
        student.bind(data, model.feature_names)
        student.mu, student.sd, student.b = model.mu, model.sd, round(model.b, self.decimals)
        student.w = np.round(model.w, self.decimals)
        users = ctx.sample_users() if ctx is not None else list(data.user_ids[:5])
        rows = []
        for u in users:
            t = set(model.recommend(u, 5)["item"])
            s = set(student.recommend(u, 5)["item"])
            rows.append({"user": u, "jaccard@5": len(t & s) / len(t | s)})
        per_user = pd.DataFrame(rows)
        summary = {"jaccard@5": float(per_user["jaccard@5"].mean()), "decimals": self.decimals, "users": len(users)}
        return student, CompressionReport(summary=summary, tables={"fidelity_per_user": per_user})


class CtrAB:
    """Click-through rate per variant (even users = A, odd = B) with a two-proportion z-test."""

    def analyze(self, events: pd.DataFrame, ctx=None) -> FeedbackReport:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        ev = events.copy()
        if "variant" not in ev.columns:
            ev["variant"] = np.where(ev["user"] % 2 == 0, "A", "B")
        arms = ev.groupby("variant")["label"].agg(["size", "mean"]).rename(columns={"size": "events", "mean": "ctr"})
        arms["ci_half_width"] = 1.96 * np.sqrt(arms["ctr"] * (1 - arms["ctr"]) / arms["events"])
        (na, pa), (nb, pb) = arms.loc["A", ["events", "ctr"]], arms.loc["B", ["events", "ctr"]]
        pool = (pa * na + pb * nb) / (na + nb)
        z = (pb - pa) / math.sqrt(pool * (1 - pool) * (1 / na + 1 / nb))
        p_value = math.erfc(abs(z) / math.sqrt(2))
        fig, ax = plt.subplots(figsize=(4, 3))
        ax.bar(arms.index, arms["ctr"], yerr=arms["ci_half_width"], capsize=6)
        ax.set_title("Click-through rate per variant")
        ax.set_xlabel("variant")
        ax.set_ylabel("CTR (clicks / events)")
        return FeedbackReport(summary={"lift": float(pb - pa), "z": float(z), "p_value": p_value},
                              tables={"arms": arms.reset_index()}, figures={"ctr": fig})


@whyrec.hookimpl
def register_models(register):
    register("linear", LinearModel)


@whyrec.hookimpl
def register_explainers(register):
    register("linear-shap", LinearShap)
    register("history-attention", HistoryAttention)


@whyrec.hookimpl
def register_causal_learners(register):
    register("effect-table", EffectTable)


@whyrec.hookimpl
def register_compressors(register):
    register("round", RoundWeights)


@whyrec.hookimpl
def register_feedback_analyzers(register):
    register("ctr-ab", CtrAB)


PIPELINE = """
[pipelines.report]
seed = 1
sample_users = 3
top_k = 4
report = { users = 2 }
dataset = { use = "toy", n_users = 24 }
model = [ { use = "linear" }, { use = "popularity" } ]
explainers = [ { use = "linear-shap" }, { use = "history-attention" }, { use = "popularity-reason" } ]
causal = { use = "effect-table" }
compressor = { use = "round", teacher = "linear" }
feedback = { use = "ctr-ab", logs = { use = "toy", n_users = 24 } }
"""


def make_host():
    """A fresh plugin host: built-ins, the sample plugin, the toy dataset and this plugin."""
    import toyplugin
    import whyrec_example_plugin

    from whyrec import builtins
    from whyrec.plugins import PluginHost

    host = PluginHost()
    host.add(builtins, "whyrec.builtins")
    host.add(whyrec_example_plugin, "example")
    host.add(toyplugin, "toyplugin")
    host.add(sys.modules[__name__], "reportkit")
    host.check()
    return host


def run_pipeline(tmp: Path, host=None):
    """Run the whole pipeline above into ``tmp``/runs and return the Run (report included)."""
    reg = tmp / "registry.toml"
    reg.write_text(PIPELINE)
    return whyrec.run("report", registry=reg, out=tmp / "runs", host=host or make_host())


# -- tests of the components themselves ---------------------------------------------------
def test_linear_shap_is_exact(tmp_path):
    run = run_pipeline(tmp_path)
    expl = Explanation.load(run.path / "explanations" / "linear-shap__linear")
    assert expl.max_additivity_error < 1e-12
    att = pd.read_parquet(run.path / "explanations" / "history-attention__linear" / "extra_attention.parquet")
    sums = att.groupby("pair")["weight"].sum().to_numpy()
    np.testing.assert_allclose(sums, 1.0, atol=1e-12)  # softmax rows sum to one
    m = run.manifest
    assert m["status"] == "complete"
    assert [s["status"] for s in m["stages"]] == ["complete"] * len(m["stages"])
    assert (run.path / "report.html").stat().st_size > 50_000
