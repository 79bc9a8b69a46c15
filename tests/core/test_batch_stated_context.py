"""explain-batch with a stated context (``--context hour=...``), at the unit level: a small table
with a context column that the pairs file lacks. The stated value reaches every chunk's explainer
(each row is explained at that value, not at the user's latest logged one), and it is part of the
job's identity (another value is another job, refused in the same directory)."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).parent))
import batch_toy as bt  # noqa: E402

from whyrec import Feature, FeatureSchema, RecData  # noqa: E402
from whyrec.batch import ATTR, explain_pairs_batched, read_batch_output  # noqa: E402
from whyrec.errors import DataError  # noqa: E402


def _with_hour():
    base = bt.make_data(n_users=6, n_items=8)
    inter = base.interactions.copy()
    inter["hour"] = (np.arange(len(inter)) % 5 + 8).astype(float)  # logged hours 8..12
    schema = FeatureSchema([Feature("age", "user"), Feature("quality", "item"), Feature("price", "item"),
                            Feature("hour", "context")])
    data = RecData("batch-toy-hour", inter, base.users, base.items, schema, train=inter, test=inter.iloc[:0])
    model = bt.LinearToy(weights=(0.02, 1.5, -0.1, 0.5))
    model.fit(data)
    return data, model


def test_the_stated_context_reaches_every_chunk_and_is_part_of_the_job(tmp_path):
    data, model = _with_hour()
    pairs = tmp_path / "p.parquet"
    bt.write_pairs(pairs, 7, data)  # user, item, request_id: no hour column
    hour_mean = float(data.train["hour"].mean())
    assert hour_mean != 3.0
    kw = dict(show_progress=False, explainer_name="LinearExplainer", chunk_rows=3)
    explain_pairs_batched(model, data, bt.LinearExplainer(), pairs, tmp_path / "out", context={"hour": "3"}, **kw)
    out = read_batch_output(tmp_path / "out")
    assert len(out) == 7 and (out["status"] == "explained").all()
    # LinearExplainer: attribution of hour = 0.5 * (hour - mean hour), at the stated hour in every row
    np.testing.assert_allclose(out[ATTR + "hour"].to_numpy(float), 0.5 * (3.0 - hour_mean), rtol=1e-12)
    # the same rows at the users' latest logged hours give other attributions: the statement mattered
    latest = data.with_context(pd.read_parquet(pairs)[["user", "item"]])
    assert not np.allclose(0.5 * (latest["hour"].to_numpy(float) - hour_mean), 0.5 * (3.0 - hour_mean))
    # another stated value is another job: refused in the same directory, accepted in a new one
    with pytest.raises(DataError, match="different"):
        explain_pairs_batched(model, data, bt.LinearExplainer(), pairs, tmp_path / "out", context={"hour": "4"}, **kw)
    explain_pairs_batched(model, data, bt.LinearExplainer(), pairs, tmp_path / "out4", context={"hour": "4"}, **kw)
    out4 = read_batch_output(tmp_path / "out4")
    np.testing.assert_allclose(out4[ATTR + "hour"].to_numpy(float), 0.5 * (4.0 - hour_mean), rtol=1e-12)
