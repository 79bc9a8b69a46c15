"""whyrec.ids: one id in any dtype is one key; vocabularies sort the same everywhere."""
import numpy as np
import pandas as pd

from whyrec.ids import sort_key, value_key, value_keys


def test_same_id_in_any_dtype_maps_to_one_key():
    assert list(value_keys(pd.Series([12, 13]))) == ["12", "13"]
    assert list(value_keys(pd.Series([12.0, np.nan, 2.5, np.inf]))) == ["12", None, "2.5", None]
    assert list(value_keys(pd.Series(["12", None], dtype=object))) == ["12", None]
    assert list(value_keys(pd.Series(pd.Categorical([12, 14, None])))) == ["12", "14", None]
    assert list(value_keys(pd.Series([True, False]))) == ["1", "0"]
    assert list(value_keys(pd.Series([1, None], dtype="Int64"))) == ["1", None]
    assert [value_key(x) for x in (np.int64(12), 12.0, "12", pd.NA, None, np.float32(12))] == ["12", "12", "12", None, None, "12"]


def test_object_column_agrees_with_typed_columns():
    mixed = pd.Series([7, 7.0, "7", np.int32(7), "a"], dtype=object)
    assert list(value_keys(mixed)) == ["7", "7", "7", "7", "a"]


def test_sort_key_orders_numbers_numerically_then_strings():
    assert sorted(["10", "b", "9", "2.5", "a"], key=sort_key) == ["2.5", "9", "10", "a", "b"]
