"""``table``: the user's own interaction logs from Parquet or CSV files.

Columns are declared in registry.toml (``user_col``, ``item_col``, ``label_col`` or
``rating_col``, ``timestamp_col``, optional ``position_col`` / ``propensity_col`` /
``variant_col``); feature columns come from the users file, the items file and the interactions
file (context features), and are categorical or numeric as declared, or inferred from their
type. Everything is column-wise (Arrow/pandas/numpy): millions of rows load in seconds, and
only the declared columns are read.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from whyrec.data import ITEM, LABEL, POSITION, PROPENSITY, RATING, TIMESTAMP, USER, VARIANT, RecData
from whyrec.errors import DataError
from whyrec.schema import Feature, FeatureSchema

from .frames import (show, check_ids, check_label, file_columns, read_table, require_columns, require_file,
                     warn_duplicate_rows, warn_mixed_ids)
from .history import HistoryIndex, PairLookup
from .splits import sample_negatives, time_split


def _to_seconds(col: pd.Series, source: str, name: str) -> np.ndarray:
    """Timestamps as float seconds since the epoch (numbers are taken as seconds already)."""
    if pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col):
        out = col.to_numpy(dtype=float)
    else:
        try:
            dt = pd.to_datetime(col, utc=True)
        except (ValueError, TypeError) as exc:
            raise DataError(f"{source}: timestamp column {name!r} is neither numbers nor dates ({exc}); "
                            f"store seconds since 1970 or ISO dates") from None
        out = (dt - pd.Timestamp("1970-01-01", tz="UTC")).dt.total_seconds().to_numpy()
    if np.isnan(out).any():
        raise DataError(f"{source}: timestamp column {name!r} has {int(np.isnan(out).sum())} missing values; fill or drop them")
    return out


def _type(value: Any) -> str:
    return type(value.item() if hasattr(value, "item") else value).__name__


def _is_categorical(s: pd.Series) -> bool:
    return not (pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s))


class Table:
    """Your own interactions (Parquet/CSV) with user, item and context features."""

    def __init__(
        self,
        interactions: str | Path,  # Path-typed: relative to registry.toml in a pipeline, recorded absolute
        users: str | Path | None = None,
        items: str | Path | None = None,
        user_col: str = "user",
        item_col: str = "item",
        label_col: str | None = None,
        rating_col: str | None = None,
        positive_rating: float | None = None,
        timestamp_col: str | None = None,
        position_col: str | None = None,
        propensity_col: str | None = None,
        variant_col: str | None = None,
        user_features: list[str] | None = None,
        item_features: list[str] | None = None,
        context_features: list[str] | None = None,
        categorical: list[str] | None = None,
        numeric: list[str] | None = None,
        title_col: str | None = None,
        id_features: bool = False,
        history_length: int = 0,
        negatives: int = 0,
        test_fraction: float = 0.2,
        split: Literal["user", "global"] = "user",
        keep_cold_start: bool = False,
        seed: int = 0,
        name: str = "table",
        kg: str | Path | None = None,  # triples file (head, relation, tail): data.knowledge_graph(), see kg.py
        kg_link: str | Path | None = None,  # (item, entity) link file; without it a triple's head is an item id
        domain: str = "default",  # the words of its sentences: video, ecommerce, finance or default
    ) -> None:
        if label_col is None and rating_col is None:
            raise DataError("table: declare the outcome: label_col = \"<0/1 column>\" or rating_col = \"<column>\" "
                            "with positive_rating")
        if label_col is None and positive_rating is None:
            raise DataError(f"table: rating_col = {rating_col!r} needs positive_rating (ratings >= it are positives)")
        from whyrec.sentences import DOMAINS

        if domain not in DOMAINS:
            raise DataError(f"table: domain={domain!r} is not one of {', '.join(DOMAINS)} (it picks the words of "
                            "explanation sentences)")
        if split not in ("user", "global"):
            raise DataError(f"table: split={split!r} must be 'user' or 'global'")
        if int(history_length) < 0 or int(negatives) < 0:
            raise DataError("table: history_length and negatives must be >= 0")
        self.paths = {"interactions": interactions, "users": users, "items": items}
        self.cols = {USER: user_col, ITEM: item_col, LABEL: label_col, RATING: rating_col,
                     TIMESTAMP: timestamp_col, POSITION: position_col, PROPENSITY: propensity_col,
                     VARIANT: variant_col}
        self.positive_rating = positive_rating
        self.user_features, self.item_features = user_features, item_features
        self.context_features = list(context_features or [])
        self.categorical, self.numeric = set(categorical or []), set(numeric or [])
        both = self.categorical & self.numeric
        if both:
            raise DataError(f"table: {sorted(both)} are declared both categorical and numeric; pick one")
        self.title_col = title_col
        self.id_features = bool(id_features)
        self.history_length, self.negatives = int(history_length), int(negatives)
        self.test_fraction, self.split, self.keep_cold_start = float(test_fraction), split, keep_cold_start
        self.seed, self.name = int(seed), name
        self.kg, self.kg_link = kg, kg_link
        self.domain = domain

    @property
    def params(self) -> dict:
        return {**self.paths, **{f"{k}_col": v for k, v in self.cols.items()}, "positive_rating": self.positive_rating,
                "user_features": self.user_features, "item_features": self.item_features,
                "context_features": self.context_features, "categorical": sorted(self.categorical),
                "numeric": sorted(self.numeric), "id_features": self.id_features, "history_length": self.history_length, "negatives": self.negatives,
                "test_fraction": self.test_fraction, "split": self.split, "seed": self.seed,
                "domain": self.domain}

    # -- reading ------------------------------------------------------------------------------
    def _side_table(self, kind: str, key_col: str, features: list[str] | None, ids: pd.Index,
                    inter: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
        """users or items table indexed by every id seen in the interactions or the file."""
        path = self.paths[kind]
        idx_name = USER if kind == "users" else ITEM
        if path is None:
            feats = list(features or [])
            require_columns(inter.columns, feats, f"interactions file {self.paths['interactions']}",
                            {c: f"{kind[:-1]}_features" for c in feats})
            # features constant per id taken from the interactions (first row of each id)
            key = inter[USER if kind == "users" else ITEM]
            first = ~key.duplicated().to_numpy()
            df = inter.loc[first, feats].set_axis(key.to_numpy()[first]) if feats else pd.DataFrame(index=key.to_numpy()[first])
            return df.reindex(ids).rename_axis(idx_name), feats
        p = require_file(path, kind[:-1] + "s")
        have = file_columns(p)
        require_columns(have, [key_col], f"{kind} file {p}", {key_col: f"{kind[:-1]}_col"})
        feats = [c for c in have if c != key_col and c != self.title_col] if features is None else list(features)
        extra = [self.title_col] if (kind == "items" and self.title_col) else []
        df = read_table(p, [key_col, *feats, *extra], kind[:-1] + "s",
                        declared={**{c: f"{kind[:-1]}_features" for c in feats}, key_col: f"{kind[:-1]}_col",
                                  **({self.title_col: "title_col"} if extra else {})})
        check_ids(df, key_col, f"{kind} file {p}")
        dup = df[key_col].duplicated()
        if dup.any():
            raise DataError(f"{kind} file {p}: {int(dup.sum())} duplicate ids in {key_col!r} "
                            f"(e.g. {show(df.loc[dup, key_col].iloc[0])}); each {kind[:-1]} needs one row")
        df = df.set_index(key_col)
        if len(ids) and not ids.isin(df.index).any():
            raise DataError(
                f"{kind} file {p}: none of its {key_col!r} ids matches an id of the interactions "
                f"(file: {show(df.index[0])} ({_type(df.index[0])}), interactions: {show(ids[0])} "
                f"({_type(ids[0])})); store the ids with the same values and type in both files")
        if extra:
            df = df.rename(columns={self.title_col: "title"})
        all_ids = ids.union(df.index, sort=False) if len(df.index.difference(ids)) else ids
        return df.reindex(all_ids).rename_axis(idx_name), feats

    def load(self) -> RecData:
        ipath = self.paths["interactions"]
        declared = {v: f"{k}_col" for k, v in self.cols.items() if v is not None}
        declared.update({c: "context_features" for c in self.context_features})
        wanted = [v for v in self.cols.values() if v is not None] + self.context_features
        for side in ("users", "items"):
            if self.paths[side] is None:
                feats = self.user_features if side == "users" else self.item_features
                wanted += list(feats or [])
                declared.update({c: f"{side[:-1]}_features" for c in feats or []})
        if self.title_col and self.paths["items"] is None:
            wanted.append(self.title_col)
            declared[self.title_col] = "title_col"
        raw = read_table(ipath, list(dict.fromkeys(wanted)), "interactions", declared=declared)
        src = f"interactions file {ipath}"
        check_ids(raw, self.cols[USER], src)
        check_ids(raw, self.cols[ITEM], src)
        warn_mixed_ids(raw, self.cols[USER], src, personal=True)
        warn_mixed_ids(raw, self.cols[ITEM], src)

        # Standard column names (pandas copy-on-write: renaming does not copy the data).
        inter = raw.rename(columns={v: k for k, v in self.cols.items() if v is not None and k not in (LABEL, RATING)})
        if self.cols[RATING] is not None:
            rating = check_label(raw[self.cols[RATING]], "rating", src, self.cols[RATING])
        if self.cols[LABEL] is not None:
            label = check_label(raw[self.cols[LABEL]], "binary", src, self.cols[LABEL])
        else:
            label = rating >= float(self.positive_rating)
        drop = [c for c in (self.cols[LABEL], self.cols[RATING]) if c is not None and c not in (LABEL, RATING)]
        inter = inter.drop(columns=[c for c in drop if c not in self.context_features])
        inter[LABEL] = label.astype(np.int8)
        if self.cols[RATING] is not None:
            inter[RATING] = rating
        if self.cols[TIMESTAMP] is not None:
            inter[TIMESTAMP] = _to_seconds(inter[TIMESTAMP], src, self.cols[TIMESTAMP])
        else:  # no time column: the file's row order is the time order
            inter[TIMESTAMP] = np.arange(len(inter), dtype=float)
        for col in (POSITION, PROPENSITY):
            if self.cols[col] is not None and not pd.api.types.is_numeric_dtype(inter[col]):
                raise DataError(f"{src}: {col} column {self.cols[col]!r} must be numeric")
        if self.cols[PROPENSITY] is not None:
            p = inter[PROPENSITY].to_numpy(float)
            if np.isnan(p).any() or (p <= 0).any() or (p > 1).any():
                raise DataError(f"{src}: propensity column {self.cols[PROPENSITY]!r} must be in (0, 1] with no nulls")

        user_codes, user_ids = pd.factorize(inter[USER], sort=True)
        item_codes, item_ids = pd.factorize(inter[ITEM], sort=True)
        if self.cols[TIMESTAMP] is not None:  # without times, identical rows are repeats in file order
            warn_duplicate_rows(pd.DataFrame({"u": user_codes, "i": item_codes, "t": inter[TIMESTAMP].to_numpy()}),
                                src, f"user ({self.cols[USER]!r}), item ({self.cols[ITEM]!r}) and time ({self.cols[TIMESTAMP]!r})")
        users, ufeats = self._side_table("users", self.cols[USER], self.user_features, user_ids, inter)
        items, ifeats = self._side_table("items", self.cols[ITEM], self.item_features, item_ids, inter)
        if len(users) != len(user_ids):  # users file adds users without interactions: recode
            user_codes = users.index.get_indexer(inter[USER])
        if len(items) != len(item_ids):
            item_codes = items.index.get_indexer(inter[ITEM])
        if "title" in inter.columns and self.paths["items"] is None and self.title_col:
            items["title"] = inter.groupby(ITEM, sort=False)[self.title_col].first().reindex(items.index)
        for c in ufeats + ifeats + self.context_features:
            if c in (USER, ITEM, LABEL):
                raise DataError(f"table: feature {c!r} clashes with a standard column name; rename it")
            if self.id_features and c in ID_FEATURES:
                raise DataError(f"table: feature column {c!r} clashes with the id feature id_features = true adds; "
                                f"rename the column, or set id_features = false")

        for df, feats, key in ((users, ufeats, "user_features"), (items, ifeats, "item_features"),
                               (inter, self.context_features, "context_features")):
            for c in feats:  # an empty column would silently become a constant (0, a median) downstream
                if df[c].isna().all():
                    raise DataError(f"table: column {c!r} (declared in {key}) has no values in any of its {len(df):,} rows; "
                                    f"fill it or remove it from {key}")
        schema, kinds = self._schema(users, items, inter, ufeats, ifeats)
        for df, feats in ((users, ufeats), (items, ifeats), (inter, self.context_features)):
            for c in feats:
                if kinds[c] == "categorical" and not isinstance(df[c].dtype, pd.CategoricalDtype):
                    df[c] = df[c].astype("category")
                elif kinds[c] == "numeric":
                    if not pd.api.types.is_numeric_dtype(df[c]) and not pd.api.types.is_bool_dtype(df[c]):
                        vals = pd.to_numeric(df[c], errors="coerce")
                        bad = vals.isna() & df[c].notna()
                        if bad.any():
                            raise DataError(f"table: feature {c!r} is declared numeric but holds "
                                            f"{df.loc[bad, c].iloc[0]!r}; declare it categorical or fix the values")
                        df[c] = vals
                    df[c] = df[c].astype(float)

        n_users, n_items = len(users), len(items)
        ts = inter[TIMESTAMP].to_numpy()
        is_test, keep, report = time_split(user_codes, ts, self.test_fraction, self.split, self.keep_cold_start,
                                             names=users.index.to_numpy(), n_users=len(users))
        pair_cols = [USER, ITEM, LABEL, TIMESTAMP] + [c for c in (RATING, POSITION, PROPENSITY, VARIANT)
                                                    if c in inter.columns] + self.context_features
        pair_cols = list(dict.fromkeys(pair_cols))
        train = inter.loc[~is_test, pair_cols]
        test = inter.loc[is_test & keep, pair_cols]
        sampled = 0
        if self.negatives > 0:
            rng = np.random.default_rng(self.seed)
            seen = np.unique(user_codes.astype(np.int64) * n_items + item_codes)
            lab = inter[LABEL].to_numpy()
            pos_rows = np.flatnonzero(lab == 1)
            parent, neg_item = sample_negatives(user_codes[pos_rows], n_items, seen, self.negatives, rng)
            parent = pos_rows[parent]
            sampled = len(parent)
            neg = pd.DataFrame({USER: users.index.to_numpy()[user_codes[parent]],
                                ITEM: items.index.to_numpy()[neg_item], LABEL: np.zeros(len(parent), np.int8),
                                TIMESTAMP: ts[parent]})
            for c in self.context_features:  # the negative was "shown" in the positive's context
                neg[c] = inter[c].to_numpy()[parent]
            neg_test = is_test[parent]
            neg_keep = keep[parent]
            train = pd.concat([train, neg[~neg_test]], ignore_index=True)
            test = pd.concat([test, neg[neg_test & neg_keep]], ignore_index=True)
        train = train.reset_index(drop=True)
        test = test.reset_index(drop=True)

        hist = lookup = None
        if self.history_length > 0:
            tr_u = users.index.get_indexer(train[USER])
            tr_i = items.index.get_indexer(train[ITEM])
            pos = train[LABEL].to_numpy() == 1
            tts = train[TIMESTAMP].to_numpy()
            hist = HistoryIndex(tr_u[pos], tr_i[pos], tts[pos], n_users, self.history_length)
            lookup = PairLookup(tr_u, tr_i, tts, n_items)
        featurizer = TableFeaturizer(users, items, ufeats, ifeats, self.context_features, kinds, hist, lookup,
                                     self.history_length, self.name, id_features=self.id_features)
        params = dict(self.params, split_report=report.to_dict(), sampled_negatives=int(sampled))
        desc = (f"{self.name}: {len(inter):,} interactions of {n_users:,} users with {n_items:,} items from {ipath}")
        data = RecData(name=self.name, interactions=inter, users=users, items=items, schema=schema, train=train,
                       test=test, featurizer=featurizer, describer=featurizer.describe, params=params,
                       history_deriver=featurizer.rederive_history if self.history_length > 0 else None,
                       description=desc, history_length=self.history_length)
        if self.kg is not None:  # read now: a bad triples file fails the dataset stage, its warnings go with it
            from . import kg

            kg.attach(data, graph=kg.table_graph(self.kg, items, self.kg_link))
        return data

    def _schema(self, users, items, inter, ufeats, ifeats) -> tuple[FeatureSchema, dict[str, str]]:
        declared = self.categorical | self.numeric
        all_feats = ufeats + ifeats + self.context_features
        unknown = sorted(declared - set(all_feats))
        if unknown:
            raise DataError(f"table: {unknown} are declared categorical/numeric but are not features; "
                            f"features are {all_feats}")
        kinds: dict[str, str] = {}
        feats: list[Feature] = []
        for field, df, names in (("user", users, ufeats), ("item", items, ifeats), ("context", inter, self.context_features)):
            if self.id_features and field in ("user", "item"):  # first of its field, as in MovieLens
                feats.append(Feature(f"{field}_id", field, "categorical", description=ID_FEATURES[f"{field}_id"]))
            for c in names:
                if c in self.categorical:
                    kind = "categorical"
                elif c in self.numeric:
                    kind = "numeric"
                else:
                    kind = "categorical" if _is_categorical(df[c]) else "numeric"
                kinds[c] = kind
                feats.append(Feature(c, field, kind, description=f"{field} column {c!r}"))
        if self.history_length > 0:
            n = self.history_length
            feats.append(Feature("hist_len", "history", "numeric", description=f"positives in the history (<= {n})"))
            feats += [Feature(f"hist_{j}", "history", "sequence", group="sequence",
                              description=f"item of the user's {j + 1}. most recent positive (NaN if none)")
                      for j in range(n)]
        try:
            return FeatureSchema(feats), kinds
        except ValueError as exc:
            raise DataError(f"table: {exc}; a column is listed as a feature twice") from None


ID_FEATURES = {
    "user_id": "the user (categorical id: lets a model learn per-user effects)",
    "item_id": "the item (categorical id, the same value the history features hold for it: the id when ids "
               "are numbers, else its code)",
}


class TableFeaturizer:
    """Joins user and item features by id codes, takes context features from the pairs, and
    builds the history sequence when ``history_length`` > 0; with ``id_features`` also the
    categorical ``user_id`` and ``item_id`` features."""

    def __init__(self, users, items, ufeats, ifeats, cfeats, kinds, hist, lookup, n, name,
                 id_features: bool = False) -> None:
        self.users, self.items = users, items
        self.ufeats, self.ifeats, self.cfeats, self.kinds = ufeats, ifeats, cfeats, kinds
        self.hist, self.lookup, self.n, self.name = hist, lookup, n, name
        ids = items.index
        self.numeric_item_ids = pd.api.types.is_numeric_dtype(ids) and not pd.api.types.is_bool_dtype(ids)
        self.seq_ids = ids.to_numpy().astype(float) if self.numeric_item_ids else np.arange(len(ids), dtype=float)
        self.id_features = id_features
        # item_id holds what hist_j holds for the same item (the id, or the code for non-numeric
        # ids), so a sequence model can match the candidate against the history.
        self.user_cat = pd.CategoricalDtype(users.index.to_numpy())
        self.item_cat = pd.CategoricalDtype(ids.to_numpy() if self.numeric_item_ids else np.arange(len(ids)))

    def __call__(self, data: RecData, pairs: pd.DataFrame) -> pd.DataFrame:
        u = self.users.index.get_indexer(pairs[USER])
        i = self.items.index.get_indexer(pairs[ITEM])
        if (u < 0).any():
            raise DataError(f"{self.name}: user {show(pairs[USER].to_numpy()[u < 0][0])} is not in the data")
        if (i < 0).any():
            raise DataError(f"{self.name}: item {show(pairs[ITEM].to_numpy()[i < 0][0])} is not in the data")
        cols: dict[str, Any] = {}
        if self.id_features:
            cols["user_id"] = pd.Categorical.from_codes(u, dtype=self.user_cat)
            cols["item_id"] = pd.Categorical.from_codes(i, dtype=self.item_cat)
        for df, names, codes in ((self.users, self.ufeats, u), (self.items, self.ifeats, i)):
            for c in names:
                col = df[c]
                if self.kinds[c] == "categorical":
                    cols[c] = pd.Categorical.from_codes(col.array.codes[codes], dtype=col.dtype)
                else:
                    cols[c] = col.to_numpy(float)[codes]
        for c in self.cfeats:
            if c not in pairs.columns:  # RecData.features refuses such rows first; never featurize a guess
                raise DataError(f"{self.name}: rows lack context column {c!r}; state it (RecData.with_context)")
            if self.kinds[c] == "numeric":
                cols[c] = pd.to_numeric(pairs[c], errors="coerce").to_numpy(float)
            else:  # the logged categories, so codes match training whatever the rows' own dtype
                cols[c] = pd.Categorical(pairs[c].astype(object).where(pairs[c].notna(), None),
                                         dtype=data.interactions[c].dtype)
        if self.n > 0:
            if TIMESTAMP in pairs.columns:
                t = pd.to_numeric(pairs[TIMESTAMP], errors="coerce").to_numpy(float)
                t = np.where(np.isnan(t), np.inf, t)
            else:
                t = self.lookup.time_of(u, i)
            H = self.hist.matrix(u, self.hist.cut_before(u, t))
            valid = H >= 0
            cols["hist_len"] = valid.sum(axis=1).astype(float)
            ids = np.where(valid, self.seq_ids[np.clip(H, 0, None)], np.nan)
            for j in range(self.n):
                cols[f"hist_{j}"] = ids[:, j]
        return pd.DataFrame(cols, index=pairs.index, copy=False)

    def rederive_history(self, X: pd.DataFrame) -> pd.DataFrame:
        """``hist_len`` recounted from the rows' ``hist_j`` (NaN = no item): the one feature
        this dataset derives from the history."""
        out = X.copy()
        seq = X[[f"hist_{j}" for j in range(self.n)]].to_numpy(dtype=float, na_value=np.nan)
        out["hist_len"] = np.isfinite(seq).sum(axis=1).astype(float)
        return out

    def item_of(self, value: Any) -> Any:
        """The item id an ``item_id`` (or history) value stands for (the code's id for non-numeric ids)."""
        if self.numeric_item_ids:
            return value
        try:
            return self.items.index[int(value)]
        except (TypeError, ValueError, IndexError):
            return value

    def describe(self, name: str, value: Any, row: Any = None) -> str | None:
        if self.id_features and name == "user_id":
            return f"your own taste (user {value})"
        if self.id_features and name == "item_id":
            item = self.item_of(value)
            title = self.items["title"].get(item) if "title" in self.items.columns else None
            return f"this particular item: {title if isinstance(title, str) else item}"
        if name == "hist_len":
            return f"based on your {int(value)} most recent positives"
        if name.startswith("hist_") and name[5:].isdigit():
            return None if value is None or (isinstance(value, float) and np.isnan(value)) else f"you recently liked item {value:g}"
        if name in self.kinds:
            return f"{name} is {value}" if self.kinds[name] == "categorical" else f"{name} = {float(value):.4g}"
        return None
