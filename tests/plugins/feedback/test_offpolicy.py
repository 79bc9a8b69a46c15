"""The off-policy analyzer: validated on the real Open Bandit logs (uniform random evaluated from
the BTS logs, against the random policy's own CTR) and on simulated logs with a known truth."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from whyrec.context import PipelineContext
from whyrec.data import RecData
from whyrec.errors import DataError, UnsupportedError
from whyrec.schema import FeatureSchema
from whyrec_example_plugin.popularity import PopularityModel

from whyrec_feedback.offpolicy import OffPolicy

RANDOM_CTR = 38 / 10_000  # on-policy CTR of the uniform-random logs of the OBD sample


def test_obd_uniform_random_from_bts_logs(obd, tmp_path):
    rep = OffPolicy(logging_variant="bts", reference_variant="random").analyze(obd)
    s = rep.summary
    bts = obd[obd["variant"] == "bts"]
    r, p = bts["label"].to_numpy(float), bts["propensity"].to_numpy(float)
    w = (1 / 80) / p  # uniform over the 80 items at each position
    assert s["n_items_logged"] == 80 and s["positions"] == [1, 2, 3]
    assert s["logged_events"] == 10_000 and s["logged_clicks"] == 42
    est = s["estimates"]
    assert est["IPS"]["value"] == pytest.approx(np.mean(w * r), rel=1e-12)
    assert est["SNIPS"]["value"] == pytest.approx(np.sum(w * r) / np.sum(w), rel=1e-12)
    assert s["weights"]["ess"] == pytest.approx(w.sum() ** 2 / (w ** 2).sum(), rel=1e-12)
    assert s["reference"]["ctr"] == RANDOM_CTR
    for e in ("IPS", "SNIPS", "DR", "DM"):
        assert est[e]["relative_error"] == pytest.approx((est[e]["value"] - RANDOM_CTR) / RANDOM_CTR)
        assert est[e]["ci_low"] < est[e]["value"] < est[e]["ci_high"]
    for e in ("IPS", "SNIPS", "DR"):  # the validation of the issue: the interval covers the on-policy CTR
        assert est[e]["covers_reference"], (e, est[e])
    assert s["supported"] and s["notes"] == []
    assert set(rep.tables["by_position"]["position"]) == {1, 2, 3}
    saved = {p.name for p in rep.save(tmp_path)}
    assert {"estimates.parquet", "estimates.csv", "by_position.parquet", "estimates.png", "weights.png", "summary.json"} <= saved


def test_simulated_logs_recover_the_true_ctr(sim):
    """Uniform random and the best fixed ranking, evaluated from the skewed policy's logs."""
    s = OffPolicy(logging_variant="skewed", reference_variant="random", bootstrap=400).analyze(sim.events).summary
    for e in ("IPS", "SNIPS", "DR"):
        assert s["estimates"][e]["ci_low"] < sim.truth["uniform"] < s["estimates"][e]["ci_high"], e
    # DM's interval holds the (regularised, hence biased) reward model fixed: it is too narrow,
    # which is why DR corrects it with the weighted residuals
    assert s["estimates"]["DM"]["bootstrap_se"] < s["estimates"]["DR"]["bootstrap_se"]
    assert s["weights"]["mean"] == pytest.approx(1.0, abs=0.03)  # E[w] = 1 under full support
    assert s["estimates"]["DR"]["bootstrap_se"] < s["estimates"]["IPS"]["bootstrap_se"]  # the reward model helps
    rank = OffPolicy(target="ranking", ranking=sim.truth["best_ranking"], logging_variant="skewed", bootstrap=400).analyze(sim.events)
    est = rank.summary["estimates"]
    for e in ("IPS", "SNIPS", "DR"):
        assert est[e]["ci_low"] < sim.truth["best_ranking_ctr"] < est[e]["ci_high"], e
    assert rank.summary["target_description"].startswith("fixed ranking")


def test_large_logs_with_distinct_propensities_use_the_split_poisson_bootstrap(sim, monkeypatch):
    """Too many distinct events for the exact bootstrap: the Poisson bootstrap with exact
    clicked events and a normal bulk gives the same standard errors."""
    from whyrec_feedback import offpolicy

    exact = OffPolicy(logging_variant="skewed", bootstrap=600).analyze(sim.events).summary
    assert exact["interval_method"].startswith("percentile bootstrap")
    monkeypatch.setattr(offpolicy, "EXACT_BOOTSTRAP_BUDGET", 1e4)
    split = OffPolicy(logging_variant="skewed", bootstrap=600).analyze(sim.events).summary
    assert split["interval_method"].startswith("Poisson bootstrap")
    for e in ("IPS", "SNIPS", "DR"):
        assert split["estimates"][e]["value"] == exact["estimates"][e]["value"]
        assert split["estimates"][e]["bootstrap_se"] == pytest.approx(exact["estimates"][e]["bootstrap_se"], rel=0.12)
        assert split["estimates"][e]["ci_low"] == pytest.approx(exact["estimates"][e]["ci_low"], rel=0.05)


def test_logs_without_propensities(obd):
    no_p = obd.drop(columns=["propensity"])
    with pytest.raises(DataError, match=r"IPS/SNIPS/DR need the logging policy's propensities, but the events have no 'propensity'"):
        OffPolicy().analyze(no_p)
    with pytest.raises(DataError, match=r"^off-policy: IPS need the logging"):
        OffPolicy(estimators=["ips"]).analyze(no_p)
    dm = OffPolicy(estimators=["DM"], logging_variant="bts", reference_variant="random", bootstrap=100).analyze(no_p).summary
    assert list(dm["estimates"]) == ["DM"] and "weights" not in dm
    partial = obd.assign(propensity=obd["propensity"].where(obd["event_id"] % 1000 != 0))
    with pytest.raises(DataError, match=r"20 of 20000 logged event\(s\) have no propensity"):
        OffPolicy().analyze(partial)


@pytest.mark.parametrize("bad", [0.0, -0.5, 1.2])
def test_propensities_out_of_range(obd, bad):
    broken = obd.copy()
    broken.loc[5, "propensity"] = bad
    with pytest.raises(DataError, match=r"1 propensity value\(s\) are outside \(0, 1\].* at event 5"):
        OffPolicy().analyze(broken)


def test_target_with_items_never_logged_is_unsupported(obd):
    rep = OffPolicy(items=list(range(80)) + [900, 901], logging_variant="bts", bootstrap=100).analyze(obd)
    s = rep.summary
    assert not s["supported"]
    assert s["unsupported"]["items_never_logged"] == [900, 901]
    assert s["unsupported"]["target_mass"] == pytest.approx(2 / 82)
    assert "UNSUPPORTED" in s["notes"][0] and "900, 901" in s["notes"][0] and "marked unsupported" in s["notes"][0]
    assert not rep.tables["estimates"]["supported"].any()
    bts = obd[obd["variant"] == "bts"]
    assert s["estimates"]["IPS"]["value"] == pytest.approx(np.mean(bts["label"] / 82 / bts["propensity"]))
    assert rep.tables["unsupported_items"]["item"].tolist() == ["900", "901"]
    ranked = OffPolicy(target="ranking", ranking=[7, 61, 555], logging_variant="bts", bootstrap=100).analyze(obd).summary
    assert not ranked["supported"] and ranked["unsupported"]["items_never_logged"] == [555]
    assert ranked["unsupported"]["target_mass"] == pytest.approx((bts["position"] == 3).mean())  # item 555 fills position 3


def test_bad_parameters(obd):
    with pytest.raises(DataError, match=r"logging_variant 'epsilon-greedy' has no events \(variants in the logs: bts, random\)"):
        OffPolicy(logging_variant="epsilon-greedy").analyze(obd)
    with pytest.raises(DataError, match="reference_variant 'rand' has no events"):
        OffPolicy(reference_variant="rand").analyze(obd)
    with pytest.raises(DataError, match="are both 'bts'"):
        OffPolicy(logging_variant="bts", reference_variant="bts").analyze(obd)
    with pytest.raises(DataError, match="target 'best' is not one of"):
        OffPolicy(target="best")
    with pytest.raises(DataError, match="set target = \"ranking\""):
        OffPolicy(ranking=[1, 2, 3])
    with pytest.raises(DataError, match=r"ranking has 2 item\(s\) but the logs have 3 positions"):
        OffPolicy(target="ranking", ranking=[1, 2]).analyze(obd)
    with pytest.raises(DataError, match="unknown estimator"):
        OffPolicy(estimators=["MAGIC"])
    with pytest.raises(DataError, match="reward feature 'age' is not a column"):
        OffPolicy(reward_features=["age"]).analyze(obd)
    with pytest.raises(DataError, match=r"target model 'lightgbm' is not a fitted model of no pipeline .*--run"):
        OffPolicy(target="model:lightgbm").analyze(obd)


# -- a registered whyrec model turned into a policy ---------------------------------------------
def _toy(n_users=30, n_items=11, seed=0):
    rng = np.random.default_rng(seed)
    users = pd.DataFrame(index=pd.Index(np.arange(n_users), name="user"))
    items = pd.DataFrame({"title": [f"item {i}" for i in range(n_items)]}, index=pd.Index(np.arange(n_items), name="item"))
    # item i is liked by about (i + 1) users: popularity ranks items 10, 9, 8, ...
    train = pd.DataFrame([(u, i, 1) for i in range(n_items) for u in rng.choice(n_users, i + 1, replace=False)],
                         columns=["user", "item", "label"])
    data = RecData(name="toy", interactions=train, users=users, items=items, schema=FeatureSchema([]), train=train)
    logs_n = 3000
    logs = pd.DataFrame({"event_id": np.arange(logs_n), "user": rng.integers(0, n_users, logs_n),
                         "item": rng.integers(0, n_items - 1, logs_n),  # item 10 is never logged
                         "position": rng.integers(1, 3, logs_n), "propensity": 1 / (n_items - 1),
                         "label": (rng.random(logs_n) < 0.2).astype(int), "variant": "uniform"})
    return data, logs


def test_registered_model_as_target_policy(tmp_path):
    data, logs = _toy()
    model = PopularityModel(user_weight=0.1)
    model.fit(data)
    ctx = PipelineContext(pipeline="toy", run_dir=tmp_path, models={"popularity": model})
    # expected choice: position k shows the user's k-th highest-scored item, logged or not
    scores = {u: model.score(pd.DataFrame({"user": u, "item": data.item_ids})) for u in data.user_ids}
    top = {u: data.item_ids[np.argsort(-s, kind="stable")[:2]] for u, s in scores.items()}
    chosen = np.array([top[u][p - 1] for u, p in zip(logs["user"], logs["position"])])
    s = OffPolicy(target="model:popularity", bootstrap=200).analyze(logs, ctx).summary
    assert s["target"] == "model:popularity"
    # the most popular item (10) is never logged: the model's policy is unsupported at position 1
    assert not s["supported"] and s["unsupported"]["items_never_logged"] == [10]
    assert s["unsupported"]["target_mass"] == pytest.approx((logs["position"] == 1).mean())
    w = (logs["item"].to_numpy() == chosen) / (1 / 10)  # target probability 1 over logging 1/10
    assert s["estimates"]["IPS"]["value"] == pytest.approx(np.mean(w * logs["label"]))


def test_model_policy_on_logged_items_is_supported(tmp_path):
    data, logs = _toy()
    data.items = data.items.drop(index=10)  # the model ranks only logged items now
    model = PopularityModel()
    model.fit(data)
    ctx = PipelineContext(pipeline="toy", run_dir=tmp_path, models={"popularity": model})
    s = OffPolicy(target="model:popularity", bootstrap=200).analyze(logs, ctx).summary
    assert s["supported"]
    strangers = logs.assign(user=logs["user"] + 1000)
    with pytest.raises(UnsupportedError, match=r"cannot score 30 logged user\(s\) it was not trained on"):
        OffPolicy(target="model:popularity").analyze(strangers, ctx)
