"""The sample third-party plugin (docs/examples) is installed and works through its entry point."""
from __future__ import annotations

import numpy as np

from whyrec.plugins import get_host


def test_example_plugin_is_found_through_its_entry_point():
    host = get_host(fresh=True)
    info = {i.name: i for i in host.plugin_infos()}["example"]
    assert info.error is None and info.version == "0.1.0"
    assert host.get("models", "popularity").plugin == "example"


def test_example_explainer_is_exact(host):
    data = host.create("datasets", "toy", {"n_users": 12}).load()
    model = host.create("models", "popularity", {"user_weight": 0.5})
    model.fit(data)
    recs = model.recommend(3, 4)
    expl = host.create("explainers", "popularity-reason").explain(model, data, recs)
    np.testing.assert_allclose(expl.pairs["output_value"], recs["score"])
    assert expl.max_additivity_error == 0.0
    assert set(expl.field_attributions.columns) == {"item", "user"}
