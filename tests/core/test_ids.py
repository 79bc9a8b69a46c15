"""whyrec.ids: one id in any dtype is one key; vocabularies sort the same everywhere."""
import numpy as np
import pandas as pd

from whyrec.ids import CategoryLookup, sort_key, value_key, value_keys


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


def test_category_lookup_maps_each_categories_index_once():
    calls = []

    def lookup(s):
        calls.append(len(s))
        return np.array([10 + int(k) for k in s])

    by_cat = CategoryLookup()
    dtype = pd.CategoricalDtype([3, 1, 2])
    a = pd.Series(pd.Categorical.from_codes([0, 2, -1], dtype=dtype))
    b = pd.Series(pd.Categorical.from_codes([1, 1], dtype=dtype))
    assert list(by_cat(a, lookup, missing=-7)) == [13, 12, -7]
    assert list(by_cat(b, lookup, missing=-7)) == [11, 11]
    assert calls == [3]  # the second batch shares the categories index: no new mapping
    other = pd.Series(pd.Categorical([2, 5]))  # another index: mapped afresh, never the stale map
    assert list(by_cat(other, lookup, missing=-7)) == [12, 15]
    assert calls == [3, 2]
    empty = pd.Series(pd.Categorical([None, None], categories=[]))
    assert list(by_cat(empty, lambda s: np.array([], dtype=np.int64), missing=-7)) == [-7, -7]


def test_large_ids_keep_their_value_in_every_dtype():
    big = 2**63 + 5
    assert list(value_keys(pd.Series([big], dtype="uint64"))) == [str(big)] == [value_key(np.uint64(big))]
    assert list(value_keys(pd.Series([1e19]))) == [value_key(1e19)] == ["10000000000000000000"]
    assert list(value_keys(pd.Series([2**53 + 1, None], dtype="Int64"))) == [str(2**53 + 1), None]
    assert list(value_keys(pd.Series([3.0, 2.5, -7.0]))) == ["3", "2.5", "-7"]
