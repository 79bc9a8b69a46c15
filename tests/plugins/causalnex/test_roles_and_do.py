"""Issue 14: causal roles from the registry, do() in the data's own units, causal vs attribution
that catches a confounded proxy, context columns, and the bad inputs of the causal stage."""
from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from whyrec.causal import CausalGraph, Edge
from whyrec.data import RecData
from whyrec.errors import DataError, UnsupportedError, WhyrecError
from whyrec.explanation import Explanation
from whyrec.schema import Feature, FeatureSchema
from whyrec_causalnex.attribution import AGREE, CAUSE_NOT_USED, LEANS_ON_PROXY, NOT_INPUT, SIGN_DISAGREES
from whyrec_causalnex.learner import CausalNexLearner

DISCOUNTS = [0.0, 0.05, 0.1, 0.2]


def _sigmoid(x):
    return 1 / (1 + np.exp(-x))


def make_shop(n_items: int = 600, n_users: int = 200, n_pairs: int = 4000, seed: int = 0,
              rating_effect: float = -0.7) -> RecData:
    """A shop where product quality raises both the rating and purchases.

    quality in {-1, 0, 1} (a product grade); rating = 3.5 + 0.5 quality + N(0, 0.7); reviews =
    quality + N(0, 0.8) (no effect); price = 10 + N(0, 2); discount in {0, 0.05, 0.1, 0.2}; a context column `evening`
    (0/1, on the interaction row);
    logit P(purchase) = -0.2 + 2.5 quality + rating_effect (rating - 3.5) + 8 discount + 1.5 evening
    (price has no effect: the purchase CPD keeps few parents, so the 4,000 rows fill it).
    A rating is a noisy read-out of quality, so a model that does not see quality leans on rating
    (or reviews) although a higher rating *lowers* purchases (rating_effect < 0)."""
    rng = np.random.default_rng(seed)
    quality = rng.choice([-1.0, 0.0, 1.0], n_items)
    items = pd.DataFrame({
        "quality": quality,
        "rating": 3.5 + 0.5 * quality + rng.normal(0, 0.7, n_items),
        "reviews": quality + rng.normal(0, 0.8, n_items),
        "price": 10 + rng.normal(0, 2, n_items),
        "discount": rng.choice(DISCOUNTS, n_items),
    }, index=pd.Index(np.arange(n_items), name="item"))
    items["item_id"] = items.index
    users = pd.DataFrame({"user_id": np.arange(n_users)}, index=pd.Index(np.arange(n_users), name="user"))
    u = rng.integers(0, n_users, n_pairs)
    i = rng.integers(0, n_items, n_pairs)
    evening = rng.binomial(1, 0.4, n_pairs).astype(float)
    it = items.iloc[i]
    logit = (-0.2 + 2.5 * it["quality"].to_numpy() + rating_effect * (it["rating"].to_numpy() - 3.5)
             + 8 * it["discount"].to_numpy() + 1.5 * evening)
    label = rng.binomial(1, _sigmoid(logit)).astype(float)
    inter = pd.DataFrame({"user": u, "item": i, "label": label, "timestamp": np.arange(n_pairs), "evening": evening})
    feats = [Feature("user_id", "user", "categorical"), Feature("item_id", "item", "categorical"),
             Feature("quality", "item"), Feature("rating", "item"), Feature("reviews", "item"),
             Feature("price", "item", actionable=True), Feature("discount", "item", actionable=True),
             Feature("evening", "context")]
    cut = int(0.8 * n_pairs)

    def featurize(data, rows):  # the context column comes from the row itself
        if "evening" not in rows.columns:
            raise DataError("rows without their context column 'evening'")
        X = data.items.reindex(rows["item"].to_numpy())[["item_id", "quality", "rating", "reviews", "price", "discount"]]
        X = X.reset_index(drop=True)
        X.insert(0, "user_id", rows["user"].to_numpy())
        X["evening"] = rows["evening"].to_numpy()
        return X

    return RecData(name=f"shop-{seed}", interactions=inter, users=users, items=items, schema=FeatureSchema(feats),
                   train=inter.iloc[:cut].reset_index(drop=True), test=inter.iloc[cut:].reset_index(drop=True),
                   featurizer=featurize)


def fast(**kw) -> CausalNexLearner:
    return CausalNexLearner(**{"bootstrap": 0, "effect_bootstrap": 0, "seed": 0, **kw})


@pytest.fixture(scope="module")
def shop():
    return make_shop()


@pytest.fixture(scope="module")
def shop_fitted(shop):
    learner = fast(effect_bootstrap=20, exogenous=["quality"], actionable=["price", "discount"])
    learner.fit(shop, learner.learn(shop))
    return learner


# -- discretisation and do() in the data's units --------------------------------------------
def test_a_few_valued_numeric_keeps_its_values(shop_fitted):
    st = shop_fitted.states["discount"]
    assert st.kind == "values" and st.values == DISCOUNTS and st.labels == ["0", "0.05", "0.1", "0.2"]
    assert shop_fitted.states["price"].kind == "bins"  # many values: quantile bins
    assert CausalNexLearner(max_value_states=3, bins=3).params["max_value_states"] == 3


def _gf(learner, do):
    """[P(negative), P(positive)] of the learner's g-formula."""
    p = learner.do_model.gf.mean_outcome(do)
    return np.array([1 - p, p])


def test_do_a_value_in_the_data_units(shop_fitted):
    res = shop_fitted.intervene({"discount": "0.1"})
    assert res["intervention"].iloc[0] == "do(discount = 0.1)"
    np.testing.assert_allclose(res["p_do"].to_numpy(), _gf(shop_fitted, {"discount": 0.1}), atol=1e-12)
    st = shop_fitted.states["rating"]
    mid = (st.edges[0] + st.edges[1]) / 2
    res = shop_fitted.intervene({"rating": f"{mid}"})
    assert res["intervention"].iloc[0] == f"do(rating = {mid} (state 'medium' {st.interval(1)}))"
    # the value itself, not the bin: another value in the same bin gets another answer
    np.testing.assert_allclose(res["p_do"].to_numpy(), _gf(shop_fitted, {"rating": mid}), atol=1e-12)
    other = shop_fitted.intervene({"rating": f"{(st.edges[0] + mid) / 2}"})
    assert abs(other["p_do"].iloc[1] - res["p_do"].iloc[1]) > 1e-6
    # a label is still a state when unambiguous (answered at the state's training median); several variables at once
    both = shop_fitted.intervene({"rating": "low", "discount": "0.2"})
    assert both["intervention"].iloc[0] == f"do(rating = low {st.interval(0)}, discount = 0.2)"
    low_median = float(np.median(shop_fitted.table.frame["rating"][shop_fitted.codes["rating"] == 0]))
    np.testing.assert_allclose(both["p_do"].to_numpy(), _gf(shop_fitted, {"rating": low_median, "discount": 0.2}),
                               atol=1e-12)


def test_the_bayesian_network_answers_for_the_state_with_do_estimator_bn(shop):
    learner = fast(exogenous=["quality"], actionable=["price", "discount"], do_estimator="bn")
    learner.fit(shop, learner.learn(shop))
    assert learner.do_model is None
    res = learner.intervene({"discount": "0.1"})
    np.testing.assert_allclose(res["p_do"].to_numpy(), learner.net.do_outcome({"discount": 2}), atol=1e-12)
    st = learner.states["rating"]
    mid = (st.edges[0] + st.edges[1]) / 2
    res = learner.intervene({"rating": f"{mid}"})
    np.testing.assert_allclose(res["p_do"].to_numpy(), learner.net.do_outcome({"rating": 1}), atol=1e-12)
    assert res.attrs["estimator"] == "Bayesian network, for the state (do_estimator = bn)"
    rng = learner.intervene({"discount": "0..0.05"})
    w = np.array(learner.states["discount"].counts[:2], dtype=float) / sum(learner.states["discount"].counts[:2])
    want = w[0] * learner.net.do_outcome({"discount": 0}) + w[1] * learner.net.do_outcome({"discount": 1})
    np.testing.assert_allclose(rng["p_do"].to_numpy(), want, atol=1e-12)


def test_a_range_is_the_count_weighted_mix_of_the_states_it_covers(shop_fitted):
    st = shop_fitted.states["discount"]
    res = shop_fitted.intervene({"discount": "0..0.05"})
    w = np.array(st.counts[:2], dtype=float) / sum(st.counts[:2])
    want = w[0] * _gf(shop_fitted, {"discount": 0.0}) + w[1] * _gf(shop_fitted, {"discount": 0.05})
    np.testing.assert_allclose(res["p_do"].to_numpy(), want, atol=1e-12)
    # a range over a binned variable: an even mix of 5 quantiles of the training values inside it
    pst = shop_fitted.states["rating"]
    lo, hi = pst.support[0], pst.edges[0]
    x = shop_fitted.table.frame["rating"].to_numpy(float)
    qs = np.quantile(x[(x >= lo) & (x <= hi)], (np.arange(5) + 0.5) / 5)
    want = np.mean([_gf(shop_fitted, {"rating": float(q)}) for q in qs], axis=0)
    np.testing.assert_allclose(shop_fitted.intervene({"rating": f"{lo}..{hi}"})["p_do"].to_numpy(), want, atol=1e-12)
    text = res["intervention"].iloc[0]
    assert text.startswith("do(discount in [0, 0.05] (a mix, by training counts, of state '0' ")
    assert res.attrs["selections"]["discount"]["states"][1] == {"code": 1, "state": "0.05", "interval": "0.05",
                                                                "weight": pytest.approx(w[1])}


@pytest.mark.parametrize("level,msg", [
    ("0.3", r"intervention: discount = 0.3 is outside the data: discount ranges over \[0, 0.2\] in the training rows"),
    ("-1", r"intervention: discount = -1 is outside the data"),
    ("0.15", r"intervention: discount takes the values 0, 0.05, 0.1, 0.2 in the training rows; 0.15 is not one of them"),
    ("0.1..0.5", r"intervention: discount = 0.1..0.5 is outside the data"),
    ("0.2..0.1", r"intervention: discount = 0.2..0.1: the range is empty"),
])
def test_do_outside_the_data_is_an_error(shop_fitted, level, msg):
    with pytest.raises(DataError, match=msg) as exc:
        shop_fitted.intervene({"discount": level})
    assert "\n" not in str(exc.value)


def test_a_number_is_never_a_state_code(shop_fitted):
    """`--do price=0` used to mean state code 0; now it is a price of 0, which the data never had."""
    lo = shop_fitted.states["price"].support[0]
    assert lo > 2
    with pytest.raises(DataError, match=rf"price = 0 is outside the data: price ranges over \[{lo:.4g}, "):
        shop_fitted.intervene({"price": "0"})
    with pytest.raises(DataError, match=r"price = 2 is outside the data"):
        shop_fitted.intervene({"price": 2})


def test_do_on_a_variable_that_is_not_actionable_is_answered_and_labelled(shop_fitted):
    res = shop_fitted.intervene({"rating": "high"})
    assert not res["actionable"].any() and res.attrs["not_actionable"] == ["rating"]
    assert shop_fitted.not_actionable_text(["rating"]) == (
        "not actionable: rating is observed, not set by the business (actionable: price, discount); this is a what-if "
        "on the learned graph, unsupported as a decision")
    assert shop_fitted.intervene({"discount": "0.1"})["actionable"].all()


# -- roles ---------------------------------------------------------------------------------
def test_roles_are_constraints(shop_fitted):
    g = shop_fitted.graph
    assert not [e for e in g.edges if e.target == "quality"]  # exogenous: nothing causes it
    assert "quality" in g.constraints["tabu_children"]
    assert shop_fitted.actionable_variables() == ["price", "discount"]


def test_the_interventions_default_to_the_actionable_role(shop):
    learner = fast(actionable=["discount"], variables=["discount", "price", "quality"])
    learner.fit(shop, learner.learn(shop))
    rep = learner.report(shop, [])
    assert rep.summary["interventions"] == ["discount"] and rep.summary["interventions_from"] == "the `actionable` variables"
    eff = rep.tables["effects"]
    assert eff.set_index("feature")["actionable"].to_dict() == {"discount": True, "price": False, "quality": False}


@pytest.mark.parametrize("kw,msg", [
    ({"exogenous": ["label"]}, r"`exogenous` lists the outcome 'label': exogenous variables are caused by nothing"),
    ({"outcome": "purchase", "exogenous": ["purchase"]}, r"`exogenous` lists the outcome 'purchase'"),
    ({"actionable": ["label"]}, r"`actionable` lists the outcome 'label'"),
    ({"outcome": "buy", "target": "purchase"}, r"`outcome` = 'buy' and `target` = 'purchase' name two different outcomes"),
    ({"required_edges": [["price", "rating"], ["rating", "reviews"], ["reviews", "price"]]},
     r"`required_edges` form a cycle \(price -> rating -> reviews -> price\)"),
    ({"required_edges": [["price", "quality"]], "exogenous": ["quality"]},
     r"required edge 'price' -> 'quality' contradicts the constraints: nothing may cause 'quality' because it is in "
     r"`exogenous`"),
    ({"required_edges": [["label", "price"]]}, r"'label' may cause nothing because the outcome causes nothing"),
    ({"actionable": ["price"], "exclude": ["price"]}, r"'price' is both in `actionable` and in `exclude`"),
    ({"actionable": ["prise"], "variables": ["price", "rating"]},
     r"`actionable` names 'prise', which is not in `variables` \(did you mean 'price'\?\)"),
    ({"exogenous": "quality"}, r"`exogenous`: expected a list of variable names"),
    ({"required_edges": [["price", "price"]]}, r"`required_edges`: edge 'price' -> 'price' is a self-loop"),
])
def test_contradicting_roles_are_refused_before_any_data(kw, msg):
    with pytest.raises(WhyrecError, match=msg) as exc:
        CausalNexLearner(**kw)
    assert "\n" not in str(exc.value)


def test_role_names_are_checked_against_the_data(shop):
    with pytest.raises(DataError, match=r"`exogenous` names 'qualty', which is not a causal variable \(did you mean "
                                        r"'quality'\?\)"):
        fast(exogenous=["qualty"]).learn(shop)
    with pytest.raises(DataError, match=r"`actionable` names 'discout', which is not a causal variable \(did you mean "
                                        r"'discount'\?\)"):
        fast(actionable=["discout"]).learn(shop)


def test_the_outcome_role_names_the_target(shop):
    data = dataclasses.replace(shop, train=shop.train.rename(columns={"label": "purchase"}))
    learner = fast(outcome="purchase", variables=["discount", "price"])
    g = learner.learn(data)
    assert learner.target == "purchase" and g.nodes[-1] == "purchase"


def test_roles_in_the_registry_stop_the_run_before_training(tmp_path):
    """A contradiction in registry.toml fails `whyrec run` in the constructor, before the dataset
    loads, with the file, pipeline and key."""
    import whyrec
    import whyrec_causalnex
    from whyrec import builtins
    from whyrec.errors import RegistryError
    from whyrec.plugins import PluginHost

    import cnx_toy_plugin

    host = PluginHost()
    host.add(builtins, "whyrec.builtins")
    host.add(whyrec_causalnex, "whyrec-causalnex")
    host.add(cnx_toy_plugin, "cnx-toy")
    host.check()
    reg = tmp_path / "registry.toml"
    reg.write_text('[pipelines.toy]\ndataset = { use = "toy-scm", n_pairs = 400 }\n'
                   'causal = { use = "causalnex-bn", outcome = "label", exogenous = ["label"] }\n')
    with pytest.raises(RegistryError) as exc:
        whyrec.run(registry=reg, out=tmp_path / "runs", host=host)
    assert str(exc.value).startswith(f"{reg}: pipelines.toy.causal: `exogenous` lists the outcome 'label'")
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


# -- rows and columns ------------------------------------------------------------------------
def test_context_columns_are_causal_variables(shop_fitted):
    """`evening` lives on the interaction row, not in the user or item tables."""
    assert "evening" in shop_fitted.table.names and shop_fitted.table.fields["evening"] == "context"
    train = shop_fitted.table.frame["evening"]
    assert train.isin([0.0, 1.0]).all() and 0.3 < train.mean() < 0.5
    assert ["evening", "label"] in [[e.source, e.target] for e in shop_fitted.graph.edges]


def test_an_all_missing_column_is_refused_not_filled(shop):
    items = shop.items.assign(rating=np.nan)
    with pytest.raises(DataError) as exc:
        fast().learn(dataclasses.replace(shop, items=items))
    msg = str(exc.value)
    assert msg.startswith("causal variable 'rating' is missing in all 3200 training rows of dataset 'shop-0': there is "
                          "nothing to learn from it and no value to fill it with")
    assert msg.endswith('or leave it out with `exclude = ["rating"]`') and "\n" not in msg
    g = fast(exclude=["rating"], variables=["price", "rating", "discount"]).learn(
        dataclasses.replace(shop, items=items))
    assert "rating" not in g.nodes


def test_fewer_rows_than_the_learner_needs(shop):
    small = dataclasses.replace(shop, train=shop.train.iloc[:60])
    with pytest.raises(DataError) as exc:
        fast(variables=["price", "discount"]).learn(small)
    assert str(exc.value) == (
        "causalnex-bn: dataset 'shop-0' has 60 training rows for 3 causal variables (outcome included); structure "
        "learning and the network's probability tables need at least 100 (10 per variable, 100 at least): use more "
        "data, or fewer variables with `variables = [...]` / `exclude = [...]`")
    with pytest.raises(DataError) as exc:
        fast(max_rows=90, variables=["price", "discount"]).learn(shop)
    assert str(exc.value) == (
        "causalnex-bn: max_rows = 90 keeps 90 of dataset 'shop-0''s 3200 training rows for 3 causal variables (outcome "
        "included); structure learning and the network's probability tables need at least 100 (10 per variable, 100 "
        "at least): raise max_rows to at least 100")


# -- causal vs attribution catches the proxy of a hidden confounder ----------------------------
def linear_shap(data: RecData, rows: pd.DataFrame, features: list[str], name: str) -> Explanation:
    """A logistic model on ``features`` (not quality), and its exact SHAP w_j (x_j - mean_j)."""
    from sklearn.linear_model import LogisticRegression

    X = data.features(data.train)[features].to_numpy(float)
    m = LogisticRegression(max_iter=1000).fit(X, data.train["label"].to_numpy())
    Xe = data.features(rows)[features].to_numpy(float)
    attr = pd.DataFrame((Xe - X.mean(axis=0)) * m.coef_[0], columns=features)
    pairs = rows[["user", "item"]].reset_index(drop=True).assign(output_value=Xe @ m.coef_[0] + m.intercept_[0],
                                                                 base_value=float(X.mean(axis=0) @ m.coef_[0]))
    return Explanation(method="linear-shap", model=name, pairs=pairs, schema=data.schema.select(features),
                       attributions=attr, feature_values=pd.DataFrame(Xe, columns=features)), m


def explanations(shop):
    rows = shop.test.iloc[:200]
    by_rating, m1 = linear_shap(shop, rows, ["rating", "price", "discount"], "by-rating")
    by_reviews, m2 = linear_shap(shop, rows, ["reviews", "price", "discount"], "by-reviews")
    return [by_rating, by_reviews], (m1, m2)


def test_the_model_leans_on_a_confounded_proxy_and_the_comparison_says_so(shop, shop_fitted):
    """Quality is not a model input: one model reads it off the rating, another off the reviews."""
    expl, (m1, m2) = explanations(shop)
    assert m1.coef_[0][0] > 0 and m2.coef_[0][0] > 0  # both models score the proxy up
    rep = shop_fitted.report(shop, expl)
    cva = rep.tables["causal_vs_attribution"]
    t = cva[cva["model"] == "by-rating"].set_index("feature")
    # rating: the model scores a higher rating higher; do(high rating) lowers purchases
    assert t.loc["rating", "flag"] == SIGN_DISAGREES
    assert t.loc["rating", "attribution_sign"] == 1 and t.loc["rating", "causal_sign"] == -1
    assert t.loc["rating", "causal_direction_high"] < 0 < t.loc["rating", "attribution_direction_low"]
    assert t.loc["discount", "flag"] == AGREE
    assert t.loc["discount", "causal_sign"] == t.loc["discount", "attribution_sign"] == 1
    assert t.loc["quality", "flag"] == CAUSE_NOT_USED + NOT_INPUT
    # reviews: no causal effect at all (no directed path), yet a large share of the attribution
    t = cva[cva["model"] == "by-reviews"].set_index("feature")
    assert t.loc["reviews", "flag"] == LEANS_ON_PROXY and not t.loc["reviews", "path_to_outcome"]
    assert t.loc["reviews", "attribution_share"] > 0.2
    assert rep.summary["flags"][SIGN_DISAGREES] == 1 and rep.summary["flags"][LEANS_ON_PROXY] == 1


def test_the_report_section_shows_the_same_flags(shop, shop_fitted, tmp_path):
    from whyrec_causalnex.report import _stage_html

    expl, _ = explanations(shop)
    rep = shop_fitted.report(shop, expl)
    rep.tables["causal_vs_attribution"].to_parquet(tmp_path / "causal_vs_attribution.parquet")
    import json

    (tmp_path / "summary.json").write_text(json.dumps(rep.summary, default=str))
    html = _stage_html(tmp_path)
    assert f"<b>rating</b> (by-rating, linear-shap): {SIGN_DISAGREES} — the model scores higher when it is higher" in html
    assert f"<b>reviews</b> (by-reviews, linear-shap): {LEANS_ON_PROXY} — " in html
