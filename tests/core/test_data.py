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
