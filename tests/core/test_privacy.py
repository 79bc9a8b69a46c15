"""privacy = { hash_ids, salt_env, redact_fields }: no raw user id and no redacted value in
anything a run writes (run directory, explain-batch output, MLflow store), explanations shown
to a user hold no other user's id, and bad privacy settings are refused before training."""
from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from whyrec.cli import main
from whyrec.errors import RegistryError, RunDirError
from whyrec.privacy import Privacy, parse, protect
from whyrec.runner import run

SALT = "a-test-secret-of-32-characters!!"
ENV = "WHYREC_TEST_SALT"


def _write_table(d: Path, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    n_users, n_items, n = 40, 30, 1600
    uids = [f"cust-{rng.integers(16**7, 16**8):08x}" for _ in range(n_users)]  # distinctive: easy to find if leaked
    income = np.round(rng.uniform(20_000, 90_000, n_users), 3) + 0.123  # distinctive decimals
    u = rng.integers(0, n_users, n)
    i = rng.integers(0, n_items, n)
    device = rng.choice(["ios", "android"], n)
    logit = -0.5 + (income[u] - 55_000) / 20_000 + 0.8 * (i % 3 == 0) + 0.7 * (device == "ios")
    inter = pd.DataFrame({"uid": [uids[k] for k in u], "iid": i + 500, "clicked": (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int),
                          "ts": np.arange(n, dtype=float), "device": device})
    inter.to_parquet(d / "inter.parquet")
    pd.DataFrame({"uid": uids, "income": income, "segment": rng.choice(["a", "b"], n_users)}).to_parquet(d / "users.parquet")
    pd.DataFrame({"iid": np.arange(n_items) + 500, "price": rng.uniform(1, 50, n_items).round(2)}).to_parquet(d / "items.parquet")
    return {"uids": uids, "income": income.tolist()}


def _registry(d: Path, privacy: str) -> Path:
    text = f"""
[pipelines.p]
seed = 1
sample_users = 3
top_k = 4
eval_users = 20
{privacy}
dataset = {{ use = "table", interactions = "inter.parquet", users = "users.parquet", items = "items.parquet", user_col = "uid", item_col = "iid", label_col = "clicked", timestamp_col = "ts", user_features = ["income", "segment"], item_features = ["price"], context_features = ["device"], id_features = true, history_length = 3 }}
model = {{ use = "lightgbm", n_estimators = 30 }}
explainers = [ {{ use = "tree-shap", quality_pairs = 4 }}, {{ use = "exact-field-shapley", background_size = 10, quality_pairs = 4 }} ]
report = {{ users = 2 }}

[pipelines.p.tracking]
mlflow_uri = "{(d / 'mlruns').as_uri()}"
mlflow_experiment = "privacy"
"""
    (d / "registry.toml").write_text(text)
    return d / "registry.toml"


PRIVACY = f'privacy = {{ hash_ids = true, salt_env = "{ENV}", redact_fields = ["user"] }}'


@pytest.fixture(scope="module")
def private_run(tmp_path_factory):
    d = tmp_path_factory.mktemp("privacy")
    truth = _write_table(d)
    reg = _registry(d, PRIVACY)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(ENV, SALT)
        r = run("p", registry=reg, out=d / "runs")
        pd.DataFrame({"user": truth["uids"][:5], "item": [500, 501, 502, 503, 504], "device": ["ios"] * 5}).to_parquet(d / "pairs.parquet")
        main(["explain-batch", str(r.path), "--pairs", str(d / "pairs.parquet"), "--out", str(d / "batch")])
    return d, r, truth


def _strings(path: Path) -> list[str]:
    """Every piece of text a file holds: parquet cells and names read through Arrow (its pages
    are compressed), anything else as bytes decoded loosely."""
    if path.suffix == ".parquet":
        t = pq.read_table(path)
        out = list(t.column_names)
        for col in t.columns:
            out += [str(v) for v in col.to_pylist()]
        return out
    return [path.read_bytes().decode("utf-8", "replace")]


def _leaks(root: Path, needles: list[str]) -> list[str]:
    found = []
    for p in sorted(root.rglob("*")):
        if p.is_file():
            blob = "\n".join(_strings(p))
            found += [f"{p.relative_to(root)}: {n}" for n in needles if n in blob]
    return found


def test_no_raw_user_id_or_redacted_value_in_any_artifact(private_run):
    d, r, truth = private_run
    assert r.manifest["status"] == "complete"
    needles = truth["uids"] + [f"{v:.3f}" for v in truth["income"]] + [repr(v) for v in truth["income"]]
    roots = [r.path, d / "batch", d / "mlruns"]
    assert all(p.exists() and any(p.rglob("*")) for p in roots), roots
    n_files = sum(1 for root in roots for p in root.rglob("*") if p.is_file())
    assert n_files > 30  # the scan saw the run's artifacts, the batch parts and the MLflow store
    leaks = [x for root in roots for x in _leaks(root, needles)]
    assert leaks == [], leaks[:10]
    # ... and the ids that are there are the pseudonyms of the real users
    recs = pd.read_parquet(r.path / "explanations" / "recommendations__lightgbm.parquet")
    priv = Privacy(hash_ids=True, key=SALT.encode())
    assert set(recs["user"]) <= {priv.pseudonym(u) for u in truth["uids"]}
    batch = pd.concat([pd.read_parquet(p) for p in sorted((d / "batch").rglob("*.parquet"))])
    assert sorted(batch["user"]) == sorted(priv.pseudonym(u) for u in truth["uids"][:5])
    assert (batch["status"] == "explained").all()


def test_manifest_holds_a_key_check_not_the_key(private_run):
    _, r, _ = private_run
    p = r.manifest["privacy"]
    assert p["hash_ids"] is True and p["salt_env"] == ENV and p["redact_fields"] == ["user"]
    assert SALT not in (r.path / "manifest.json").read_text()
    assert p["key_check"] == Privacy(hash_ids=True, key=SALT.encode()).key_check()


def test_redacted_values_are_withheld_but_still_used_by_the_model(private_run):
    _, r, _ = private_run
    attr = pd.read_parquet(r.path / "explanations" / "tree-shap__lightgbm" / "attributions.parquet")
    inc = attr[attr["feature"] == "income"]
    assert len(inc) and set(inc["value"]) == {"withheld"}
    assert inc["attribution"].abs().sum() > 0  # income drives the label: the model uses it
    assert set(attr.loc[attr["feature"] == "price", "value"]) != {"withheld"}  # other fields keep their values


def test_explain_takes_the_users_own_id_and_shows_no_other_user(private_run, capsys, monkeypatch):
    _, r, truth = private_run
    monkeypatch.setenv(ENV, SALT)
    me = truth["uids"][7]
    main(["explain", str(r.path), "--user", me, "-k", "3", "--format", "json"])
    out = capsys.readouterr().out
    js = json.loads(out)
    assert js["user"] == Privacy(hash_ids=True, key=SALT.encode()).pseudonym(me)
    others = [u for u in truth["uids"] if u != me]
    assert not [u for u in others if u in out]
    other_pseudonyms = {Privacy(hash_ids=True, key=SALT.encode()).pseudonym(u) for u in others}
    assert not set(re.findall(r"u_[0-9a-f]{20}", out)) & other_pseudonyms
    assert me not in out


def test_a_wrong_secret_is_refused_by_commands_on_the_run(private_run, monkeypatch, capsys):
    _, r, truth = private_run
    monkeypatch.setenv(ENV, "another-secret-of-enough-length")
    with pytest.raises(SystemExit) as e:
        main(["explain", str(r.path), "--user", truth["uids"][0]])
    assert e.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "is not the one this run pseudonymised its user ids with" in err and ENV in err


def test_missing_secret_refuses_the_run_before_training(tmp_path, monkeypatch):
    _write_table(tmp_path)
    monkeypatch.delenv(ENV, raising=False)
    reg = _registry(tmp_path, PRIVACY)
    with pytest.raises(RegistryError, match=rf"environment variable '{ENV}', which is not set"):
        run("p", registry=reg, out=tmp_path / "runs")
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").rglob("model.json"))


def test_short_secret_is_refused(tmp_path, monkeypatch):
    _write_table(tmp_path)
    monkeypatch.setenv(ENV, "short")
    with pytest.raises(RegistryError, match="has 5 characters; use at least 16"):
        run("p", registry=_registry(tmp_path, PRIVACY), out=tmp_path / "runs")


@pytest.mark.parametrize("table, message", [
    ({"hash_id": True}, "unknown key 'hash_id'; did you mean 'hash_ids'?"),
    ({"hash_ids": "yes"}, "privacy.hash_ids: expected bool"),
    ({"hash_ids": True}, "hash_ids = true needs salt_env"),
    ({"redact_fields": ["user", 3]}, "expected a list of field names"),
    # a misspelt field or a feature's name is refused by `whyrec validate`, before the data loads
    ({"redact_fields": ["usr"]}, "privacy.redact_fields: 'usr' is not a field; did you mean 'user'? (redact_fields takes "
                                 "fields: user, item, context, history, cross; not feature names"),
    ({"redact_fields": ["user", "income"]}, "privacy.redact_fields: 'income' is not a field (redact_fields takes fields"),
])
def test_bad_privacy_tables(table, message):
    with pytest.raises(RegistryError) as e:
        parse(table, "registry.toml: pipelines.p.privacy")
    assert message in str(e.value)


def test_redacting_an_unknown_field_names_the_fields(tmp_path, monkeypatch):
    _write_table(tmp_path)
    monkeypatch.setenv(ENV, SALT)
    reg = _registry(tmp_path, f'privacy = {{ redact_fields = ["cross"] }}')  # a field, but not one of this dataset's
    with pytest.raises(RegistryError) as e:
        run("p", registry=reg, out=tmp_path / "runs")
    assert "redact_fields names 'cross', which is not a field of dataset" in str(e.value)
    assert "(fields: context, history, item, user)" in str(e.value)


def test_pseudonymised_features_equal_the_originals_up_to_the_id(tmp_path):
    """protect() changes ids, never what the model sees: the same rows give the same features,
    with user_id's categories renamed (same codes) and history features unchanged."""
    from whyrec_datasets.table import Table

    _write_table(tmp_path)
    data = Table(interactions=str(tmp_path / "inter.parquet"), users=str(tmp_path / "users.parquet"), user_col="uid",
                 item_col="iid", label_col="clicked", timestamp_col="ts", user_features=["income"],
                 context_features=["device"], id_features=True, history_length=3).load()
    priv = Privacy(hash_ids=True, key=SALT.encode())
    data.knowledge_graph = lambda: "the dataset's graph"  # item facts hold no user: they travel unchanged
    safe = protect(data, priv)
    assert safe.knowledge_graph() == "the dataset's graph"
    rows = data.test.head(50)
    a = data.features(rows)
    fake_rows = rows.assign(user=[priv.pseudonym(u) for u in rows["user"]])
    b = safe.features(fake_rows)
    assert list(a.columns) == list(b.columns)
    pd.testing.assert_frame_equal(a.drop(columns="user_id"), b.drop(columns="user_id"))
    assert (a["user_id"].cat.codes.to_numpy() == b["user_id"].cat.codes.to_numpy()).all()
    assert list(b["user_id"].astype(str)) == [priv.pseudonym(u) for u in a["user_id"].astype(str)]
    assert safe.history(fake_rows["user"].iloc[0]) == data.history(rows["user"].iloc[0])
    assert safe.check_user(rows["user"].iloc[0]) == fake_rows["user"].iloc[0]  # the id the person knows


def test_redacted_context_is_withheld_in_explain_output(tmp_path):
    """redact_fields = ["context"]: the context block of explain/serve names the column, not its value."""
    from whyrec.session import context_block
    from whyrec_datasets.table import Table

    _write_table(tmp_path)
    data = Table(interactions=str(tmp_path / "inter.parquet"), user_col="uid", item_col="iid", label_col="clicked",
                 timestamp_col="ts", context_features=["device"]).load()
    safe = protect(data, Privacy(redact_fields=("context",)))
    rows = safe.test.head(1)
    assert context_block(data, rows)["values"]["device"] in ("ios", "android")
    assert context_block(safe, rows)["values"] == {"device": "withheld"}
