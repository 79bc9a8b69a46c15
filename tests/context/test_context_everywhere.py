"""A shop's own table whose click depends on context columns, through every consumer.

The label is driven mainly by two interaction-level columns (``evening``, numeric 0/1, and
``device``, categorical), so any consumer that builds feature rows from ``pairs[[user, item]]``
(dropping context) fails here: the model loses its AUC, explainers give context 0, the causal
learner sees no context variable, explain-batch and the CLI cannot state context.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

import whyrec
from whyrec.cli import cli
from whyrec.data import LABEL
from whyrec.errors import DataError
from whyrec.metrics import auc

N_USERS, N_ITEMS, N_ROWS = 80, 120, 4000
REGISTRY = """
[pipelines.shop]
seed = 3
sample_users = 3
top_k = 5
eval_users = 20
model = [ {{ use = "lightgbm", n_estimators = 60 }} ]
explainers = [ {{ use = "tree-shap" }}, {{ use = "exact-field-shapley", background_size = 50 }} ]
report = {{ enabled = false }}

[pipelines.shop.dataset]
use = "table"
interactions = "{inter}"
users = "{users}"
items = "{items}"
user_col = "uid"
item_col = "iid"
label_col = "clicked"
timestamp_col = "ts"
context_features = ["evening", "device"]
categorical = ["item_id"]
history_length = 3
"""


def shop_files(d):
    """Logs where the evening and the device decide most clicks; price and age matter a little."""
    rng = np.random.default_rng(11)
    u = rng.integers(0, N_USERS, N_ROWS)
    i = rng.integers(0, N_ITEMS, N_ROWS)
    evening = rng.integers(0, 2, N_ROWS).astype(float)
    device = rng.choice(["ios", "android", "web"], N_ROWS)
    price = rng.uniform(1, 50, N_ITEMS)
    age = rng.integers(18, 70, N_USERS).astype(float)
    logit = -1.0 + 2.5 * evening + np.select([device == "ios", device == "web"], [1.5, -1.5], 0.0) \
        - 0.02 * (price[i] - 25) + 0.01 * (age[u] - 40)
    clicked = (rng.random(N_ROWS) < 1 / (1 + np.exp(-logit))).astype(int)
    inter = pd.DataFrame({"uid": u, "iid": i, "ts": np.arange(N_ROWS, dtype=float), "clicked": clicked,
                          "evening": evening, "device": device})
    inter.to_parquet(d / "inter.parquet", index=False)
    pd.DataFrame({"uid": np.arange(N_USERS), "age": age}).to_parquet(d / "users.parquet", index=False)
    pd.DataFrame({"iid": np.arange(N_ITEMS), "item_id": np.arange(N_ITEMS), "price": price}).to_parquet(
        d / "items.parquet", index=False)
    return d


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    return shop_files(tmp_path_factory.mktemp("shop"))


@pytest.fixture(scope="module")
def data(files):
    return whyrec.component("datasets", "table", interactions=str(files / "inter.parquet"),
                            users=str(files / "users.parquet"), items=str(files / "items.parquet"), user_col="uid",
                            item_col="iid", label_col="clicked", timestamp_col="ts",
                            context_features=["evening", "device"], categorical=["item_id"], history_length=3).load()


@pytest.fixture(scope="module")
def lgb(data):
    m = whyrec.component("models", "lightgbm", n_estimators=60, seed=0)
    m.fit(data)
    return m


def whyrec_cli(*args: str) -> subprocess.CompletedProcess:
    """The installed `whyrec` command, as a user runs it (exit code, one-line errors)."""
    exe = Path(sys.executable).parent / "whyrec"
    return subprocess.run([str(exe), *args], capture_output=True, text=True, timeout=300)


def context_share(attr: pd.DataFrame, names=("evening", "device")) -> float:
    a = attr.abs().sum(axis=0)
    return float(a[[c for c in names if c in a.index]].sum() / a.sum())


def test_model_trains_on_context_and_metrics_score_whole_rows(data, lgb):
    assert {"evening", "device"} <= set(lgb.feature_names)
    test = data.test
    m = lgb.evaluate(data, max_users=10)
    direct = auc(test[LABEL].to_numpy(), lgb.score_features(data.features(test)[lgb.feature_names]))
    assert m["auc"] == pytest.approx(direct, abs=1e-12)
    assert m["auc"] > 0.75  # without the context columns these logs give about 0.55
    # the same rows with the evening flipped score differently: context really reaches the model
    flipped = test.assign(evening=1.0 - test["evening"])
    assert np.mean(np.abs(lgb.score(flipped) - lgb.score(test))) > 0.5


def test_rows_without_context_are_refused_and_stated_context_is_used(data, lgb):
    bare = pd.DataFrame({"user": [1, 1], "item": [2, 3]})
    with pytest.raises(DataError, match="lack context column"):
        lgb.score(bare)
    night = lgb.score(data.with_context(bare, {"evening": "0", "device": "web"}))
    eve = lgb.score(data.with_context(bare, {"evening": "1", "device": "web"}))
    assert (eve - night > 0.5).all()
    recs = lgb.recommend(1, 5, context={"evening": 1, "device": "ios"})
    assert (recs["evening"] == 1.0).all() and (recs["device"].astype(str) == "ios").all()
    assert recs.attrs["context"] == {"evening": "explicit", "device": "explicit"}
    with pytest.raises(DataError, match="did you mean 'evening'"):
        data.with_context(bare, {"evenin": 1})
    with pytest.raises(DataError, match="'tablet' is not a value of 'device'"):
        data.with_context(bare, {"device": "tablet"})


@pytest.mark.parametrize("method,params", [("tree-shap", {}), ("exact-field-shapley", {"background_size": 50}),
                                           ("permutation-shap", {"background_size": 40, "max_evals": 100})])
def test_explainers_credit_context(data, lgb, method, params):
    rows = data.test.head(20).reset_index(drop=True)
    e = whyrec.component("explainers", method, **params).explain(lgb, data, rows)
    table = e.attributions if e.attributions is not None else e.field_attributions
    if "context" in table.columns:  # field-level methods
        share = float(table["context"].abs().sum() / table.abs().sum().sum())
    else:
        share = context_share(table)
    assert share > 0.3, f"{method}: context gets {share:.0%} of the attribution"
    # explained in each row's own context: the explained scores are the model's scores of those rows
    assert np.allclose(e.pairs["output_value"], lgb.score(rows), atol=1e-6)


@pytest.fixture(scope="module")
def attention(data):
    m = whyrec.component("models", "torch-attention", epochs=2, seed=0)
    m.fit(data)
    return m


def test_attention_model_and_gradient_explainers_use_context(data, attention):
    assert {"evening", "device"} <= set(attention.feature_names)
    assert attention.evaluate(data, max_users=5)["auc"] > 0.7
    rows = data.test.head(12).reset_index(drop=True)
    for name, params in (("integrated-gradients", {"steps": 16}), ("gradient-shap", {"n_samples": 32})):
        e = whyrec.component("explainers", name, **params).explain(attention, data, rows)
        assert context_share(e.attributions) > 0.3, name
        assert {"evening", "device"} <= set(e.pairs.columns)
        assert np.allclose(e.pairs["output_value"], attention.score(rows), atol=1e-4)
        if name == "integrated-gradients":  # reasons carry weight and use the domain's words, not a film site's
            reasons = [r for i in range(len(rows)) for r in e.reasons[i]]
            assert reasons and not any(r.endswith(("+0", "-0")) for r in reasons), reasons
            assert not any("you watched" in r for r in reasons), reasons


def test_distilled_student_sees_context(data, lgb):
    student, report = whyrec.component("compressors", "distill", student="tree-student", eval_users=10, explain_users=0, repeats=1).compress(lgb, data)
    assert {"evening", "device"} <= set(student.feature_names)
    test = data.test
    z_t, z_s = lgb.score(test), student.score(test)
    assert np.corrcoef(z_t, z_s)[0, 1] > 0.9


def test_causal_learner_has_context_variables(data):
    learner = whyrec.component("causal_learners", "causalnex-bn", bootstrap=0, max_rows=3000)
    graph = learner.learn(data)
    assert {"evening", "device"} <= set(graph.nodes)
    assert "evening" in graph.parents("label")


@pytest.fixture(scope="module")
def run(files, tmp_path_factory):
    d = tmp_path_factory.mktemp("shoprun")
    reg = d / "registry.toml"
    reg.write_text(REGISTRY.format(inter=files / "inter.parquet", users=files / "users.parquet",
                                   items=files / "items.parquet"))
    return whyrec.run("shop", registry=reg, out=d / "runs")


def test_run_explanations_carry_context(run):
    expl = [e for e in run.explanations() if e.method == "tree-shap" or "tree" in e.method]
    assert expl, "the run produced no tree-shap explanation"
    e = expl[0]
    assert {"evening", "device"} <= set(e.pairs.columns)
    assert context_share(e.attributions) > 0.2


def test_explain_cli_states_and_uses_context(run):
    r = CliRunner()
    user = str(run.load_data().test["user"].iloc[0])
    out = {}
    for ev in ("0", "1"):
        res = r.invoke(cli, ["explain", str(run.path), "--user", user, "-k", "3", "--method", "tree-shap",
                             "--context", f"evening={ev}", "--context", "device=ios", "--format", "json"])
        assert res.exit_code == 0, res.output
        out[ev] = json.loads(res.output)
        assert out[ev]["context"]["source"] == {"evening": "explicit", "device": "explicit"}
        assert out[ev]["context"]["values"]["evening"] == float(ev)
    assert out["1"]["recommendations"][0]["score"] - out["0"]["recommendations"][0]["score"] > 0.5
    res = r.invoke(cli, ["explain", str(run.path), "--user", user, "-k", "3", "--method", "tree-shap"])
    assert res.exit_code == 0, res.output
    assert "context: evening=" in res.output and "the user's latest logged context" in res.output
    items = [r["item"] for r in out["1"]["recommendations"]]
    res = r.invoke(cli, ["explain", str(run.path), "--user", user, "--why-above", str(items[0]), str(items[2]),
                         "--context", "evening=1", "--context", "device=ios", "--format", "json"])
    assert res.exit_code == 0, res.output
    wa = json.loads(res.output)
    assert wa["context"]["source"] == {"evening": "explicit", "device": "explicit"}
    assert wa["score_a"] == pytest.approx(out["1"]["recommendations"][0]["score"], abs=1e-9)  # scored in the stated context
    assert wa["counterfactual"]["already_in_top_k"] is True
    bad = whyrec_cli("explain", str(run.path), "--user", user, "--context", "evning=1")
    assert bad.returncode != 0 and "did you mean 'evening'" in bad.stderr and "Traceback" not in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1, bad.stderr


def test_explain_batch_uses_the_files_context_and_refuses_a_missing_column(run, tmp_path):
    r = CliRunner()
    data = run.load_data()
    rows = data.test.head(30)[["user", "item", "evening", "device"]].reset_index(drop=True)
    rows["device"] = rows["device"].astype(str)
    rows.to_parquet(tmp_path / "pairs.parquet", index=False)
    res = r.invoke(cli, ["explain-batch", str(run.path), "--pairs", str(tmp_path / "pairs.parquet"), "--out", str(tmp_path / "o1")])
    assert res.exit_code == 0, res.output
    out = pd.read_parquet(tmp_path / "o1").sort_values("row")
    attr = out[[c for c in out.columns if c.startswith("attr__")]].rename(columns=lambda c: c[len("attr__"):])
    assert context_share(attr) > 0.2
    model = run.load_model()
    assert np.allclose(out["output_value"].to_numpy(), model.score(data.with_context(rows)), atol=1e-6)

    rows[["user", "item"]].to_parquet(tmp_path / "bare.parquet", index=False)
    bad = whyrec_cli("explain-batch", str(run.path), "--pairs", str(tmp_path / "bare.parquet"), "--out", str(tmp_path / "o2"))
    assert bad.returncode != 0 and "no context column 'evening'" in bad.stderr and "--context evening=" in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1, bad.stderr
    assert not (tmp_path / "o2" / "_SUCCESS").exists()
    res = r.invoke(cli, ["explain-batch", str(run.path), "--pairs", str(tmp_path / "bare.parquet"), "--out", str(tmp_path / "o3"),
                         "--context", "evening=1", "--context", "device=ios"])
    assert res.exit_code == 0, res.output
    o3 = pd.read_parquet(tmp_path / "o3").sort_values("row")
    stated = data.with_context(rows[["user", "item"]], {"evening": 1, "device": "ios"})
    assert np.allclose(o3["output_value"].to_numpy(), model.score(stated), atol=1e-6)


def test_all_missing_context_column_is_refused(files, tmp_path):
    inter = pd.read_parquet(files / "inter.parquet")
    inter["delivery_minutes"] = np.nan
    inter.to_parquet(tmp_path / "inter.parquet", index=False)
    t = whyrec.component("datasets", "table", interactions=str(tmp_path / "inter.parquet"), user_col="uid", item_col="iid",
                         label_col="clicked", context_features=["evening", "delivery_minutes"])
    with pytest.raises(DataError, match=r"column 'delivery_minutes' \(declared in context_features\) has no values"):
        t.load()


def test_shipped_registry_validates():
    r = CliRunner().invoke(cli, ["validate", "--registry", str(Path(__file__).parents[2] / "registry.toml")])
    assert r.exit_code == 0, r.output


def test_relative_paths_resolve_against_the_registry_and_are_recorded_absolute(files, tmp_path, monkeypatch):
    """A registry with `interactions = "data/inter.parquet"` runs from any folder, and the run is
    explained from yet another one: paths are the registry's, recorded absolutely."""
    import shutil

    proj = tmp_path / "proj"
    (proj / "data").mkdir(parents=True)
    for name in ("inter.parquet", "users.parquet", "items.parquet"):
        shutil.copy(files / name, proj / "data" / name)
    (proj / "registry.toml").write_text(REGISTRY.format(inter="data/inter.parquet", users="data/users.parquet",
                                                        items="data/items.parquet").replace("eval_users = 20", "eval_users = 3")
                                        .replace(', { use = "exact-field-shapley", background_size = 50 }', ""))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    run = whyrec.run("shop", registry=proj / "registry.toml", out=tmp_path / "runs")
    entry = run.spec("dataset")[0]
    assert entry["params"]["interactions"] == str(proj / "data" / "inter.parquet")
    monkeypatch.chdir(tmp_path)
    res = whyrec_cli("explain", str(run.path), "--user", str(run.load_data().test["user"].iloc[0]), "-k", "2")
    assert res.returncode == 0, res.stderr
