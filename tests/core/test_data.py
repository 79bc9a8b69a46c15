"""RecData.rederive_history: the optional contract a dataset offers for edited histories."""
import dataclasses

import pandas as pd
import pytest

from whyrec.errors import DataError, UnsupportedError

from toyplugin import ToyDataset


def test_without_a_deriver_the_edit_is_refused_by_name():
    data = ToyDataset().load()
    X = data.features(data.test[["user", "item"]].head(3))
    with pytest.raises(UnsupportedError, match="dataset 'toy' cannot rebuild history features.*hold them fixed"):
        data.rederive_history(X)


def test_a_deriver_that_changes_the_columns_is_caught():
    data = dataclasses.replace(ToyDataset().load(), history_deriver=lambda X: X.drop(columns=X.columns[0]))
    X = data.features(data.test[["user", "item"]].head(3))
    with pytest.raises(DataError, match="history_deriver changed the rows or columns"):
        data.rederive_history(X)
    ok = dataclasses.replace(data, history_deriver=lambda X: X.assign(**{X.columns[-1]: 0.0}))
    assert (ok.rederive_history(X)[X.columns[-1]] == 0.0).all()
    assert isinstance(ok.rederive_history(X), pd.DataFrame)


def test_default_featurizer_takes_context_from_the_rows_and_replace_starts_fresh_caches():
    import dataclasses

    import numpy as np
    import pandas as pd

    from whyrec import Feature, FeatureSchema, RecData
    from whyrec.errors import DataError

    users = pd.DataFrame({"age": [20.0, 40.0]}, index=pd.Index([1, 2], name="user"))
    items = pd.DataFrame({"price": [5.0, 9.0]}, index=pd.Index([10, 11], name="item"))
    inter = pd.DataFrame({"user": [1, 2], "item": [10, 11], "label": [1, 0], "timestamp": [1.0, 2.0], "hour": [8.0, 21.0]})
    schema = FeatureSchema([Feature("age", "user"), Feature("price", "item"), Feature("hour", "context")])
    data = RecData("hand", inter, users, items, schema, train=inter, test=inter.iloc[:0])
    X = data.features(inter)
    assert X["hour"].tolist() == [8.0, 21.0] and X["price"].tolist() == [5.0, 9.0]
    with pytest.raises(DataError, match="lack context column"):
        data.features(inter[["user", "item"]])
    h = data.data_hash()
    other = dataclasses.replace(data, interactions=inter.assign(label=[0, 0]))
    assert other.data_hash() != h  # a replaced table is hashed again, not the stale cache
    assert np.array_equal(data.features(data.user_pairs(1, [11]))["hour"], [8.0])  # user 1's latest context
