"""The popularity model and its exact explainer: a model that scores pairs, not feature rows."""
from __future__ import annotations

import numpy as np
import pytest

from whyrec_example_plugin.popularity import PopularityModel


def test_explainer_is_exact_and_skips_other_models(host, data):
    model = host.create("models", "popularity", {"user_weight": 0.5})
    model.fit(data)
    recs = model.recommend(3, 4)
    explainer = host.create("explainers", "popularity-reason")
    expl = explainer.explain(model, data, recs)
    np.testing.assert_allclose(expl.pairs["output_value"], recs["score"])
    assert expl.max_additivity_error == 0.0
    assert expl.reasons[0][0].endswith(data.item_title(recs["item"].iloc[0]))
    logistic = host.create("models", "logistic")
    assert explainer.supports(model) and not explainer.supports(logistic)


def test_popular_items_rank_first_and_survive_save_and_load(host, data, tmp_path):
    model = host.create("models", "popularity", {"user_weight": 0.0})
    model.fit(data)
    pos = data.train[data.train["label"] > 0].groupby("item").size()
    top = model.recommend(7, 1)["item"].iloc[0]
    assert pos.get(top, 0) == max(pos.get(i, 0) for i in data.candidates(7))
    model.save(tmp_path / "m")
    loaded = PopularityModel.load(tmp_path / "m", data)
    rows = data.test.head(20)
    np.testing.assert_allclose(loaded.score(rows), model.score(rows))


def test_it_does_not_score_feature_rows(data):
    with pytest.raises(NotImplementedError, match="scores pairs, not feature rows"):
        PopularityModel().score_features(data.features(data.test.head(2)))


def test_validate_refuses_the_reason_explainer_without_a_popularity_model(host, tmp_path):
    """Capabilities declared at registration: checked before anything loads or trains."""
    import whyrec
    from whyrec.registry import load_registry

    from example_data import make_data

    class Data:  # a dataset component for the registry (a plugin of the test's own)
        @whyrec.hookimpl
        def register_datasets(self, register):
            register("example-shop", lambda: type("D", (), {"load": staticmethod(make_data)})())

    host.add(Data(), "example-data")
    reg = tmp_path / "registry.toml"
    reg.write_text('[pipelines.p]\ndataset = { use = "example-shop" }\nmodel = { use = "logistic" }\n'
                   'explainers = [ { use = "popularity-reason" } ]\n')
    problems = load_registry(reg).problems(host)
    assert len(problems) == 1 and "supports none of this pipeline's models" in problems[0]
    assert "popularity-terms" in problems[0]
    reg.write_text(reg.read_text().replace('model = { use = "logistic" }',
                                           'model = [ { use = "logistic" }, { use = "popularity" } ]'))
    assert load_registry(reg).problems(host) == []
