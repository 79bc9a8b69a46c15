"""The batch engine's main use: tree-shap on a LightGBM model, local vs Ray, row for row."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from whyrec.batch import explain_pairs_batched, read_batch_output
from whyrec_ray.executor import RayExecutor

LGB_TESTS = Path(__file__).resolve().parents[1] / "lightgbm"
sys.path.insert(0, str(LGB_TESTS))
import lgb_toy_data as toy  # noqa: E402


@pytest.fixture(scope="module")
def fitted():
    from ray import cloudpickle

    from whyrec_lightgbm.model import LightGBMModel
    from whyrec_shap.tree import TreeShap

    # The toy dataset's featurizer lives in a test module the Ray workers cannot import: ship it
    # by value (installed datasets, like MovieLens, are imported by the workers as usual).
    cloudpickle.register_pickle_by_value(toy)
    data = toy.make_toy_data()
    model = LightGBMModel(**toy.SMALL)
    model.fit(data)
    return data, model, TreeShap(n_reasons=0)


def test_tree_shap_on_lightgbm_local_and_ray_agree_and_add_up(ray_cluster, fitted, tmp_path):
    data, model, explainer = fitted
    rng = np.random.default_rng(3)
    n = 600
    df = pd.DataFrame({"user": rng.choice(data.user_ids, n), "item": rng.choice(data.item_ids, n)})
    df.loc[:3, "user"] = 9_999  # unknown users: tree-shap refuses them, so they are skipped and counted
    df.to_parquet(tmp_path / "p.parquet", index=False)
    kw = dict(chunk_rows=150, show_progress=False, explainer_name="tree-shap")
    local = explain_pairs_batched(model, data, explainer, tmp_path / "p.parquet", tmp_path / "local", **kw)
    remote = explain_pairs_batched(model, data, explainer, tmp_path / "p.parquet", tmp_path / "ray",
                                   executor=RayExecutor(workers=2), **kw)
    assert local.counts == remote.counts == {"explained": 596, "cold_start": 0, "skipped": 4, "unknown_user": 4, "unknown_item": 0}
    a, b = read_batch_output(tmp_path / "local"), read_batch_output(tmp_path / "ray")
    pd.testing.assert_frame_equal(a, b, check_exact=True)

    # the same numbers as one tree-shap call on all the known pairs
    one = explainer.explain(model, data, df.iloc[4:].reset_index(drop=True))
    got = a.iloc[4:].reset_index(drop=True)
    for f in model.feature_names:
        np.testing.assert_array_equal(got[f"attr__{f}"].to_numpy(), one.attributions[f].to_numpy())
    np.testing.assert_array_equal(got["output_value"].to_numpy(), one.pairs["output_value"].to_numpy())
    assert got["additivity_error"].max() < 1e-6
    assert (a.loc[:3, "status"] == "skipped").all()
