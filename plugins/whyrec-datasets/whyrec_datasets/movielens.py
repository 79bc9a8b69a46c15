"""MovieLens-100K: ratings of 1,682 films by 943 users (GroupLens), as a click-style data set.

Labels come from ratings (``rating >= positive_rating`` is a positive, lower ratings are real
negatives) plus ``negatives`` sampled unseen films per positive. The split is by time per user;
item popularity and mean rating are computed from training rows only, and the history features
of a pair are computed as of the pair's time (see history.py), so nothing of the test period
reaches a feature.
"""
from __future__ import annotations

import csv
import functools
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from whyrec.data import ITEM, LABEL, RATING, TIMESTAMP, USER, RecData
from whyrec.errors import DataError
from whyrec.schema import Feature, FeatureSchema

from . import cache, kg
from .frames import show, require_file
from .history import HistoryIndex, PairLookup
from .splits import sample_negatives, time_split

# GroupLens genre order (u.genre); feature names use identifier-safe spellings.
GENRES = ["unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary",
          "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi",
          "Thriller", "War", "Western"]
GENRE_KEYS = [g.replace("'", "").replace("-", "_") for g in GENRES]  # Childrens, Film_Noir, Sci_Fi
GENRE_NAME = dict(zip(GENRE_KEYS, GENRES))
CACHE_FILES = ["ml-100k.inter", "ml-100k.item", "ml-100k.user"]
GROUPLENS_FILES = ["u.data", "u.item", "u.user"]


# -- reading the two source formats ----------------------------------------------------
def read_recbole(folder: Path) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """The atomic files of RecBole (tab separated, ``name:type`` headers)."""
    def read(name: str) -> pd.DataFrame:
        p = require_file(folder / name, "MovieLens")
        df = pd.read_csv(p, sep="\t", quoting=csv.QUOTE_NONE, dtype=str, keep_default_na=False)
        df.columns = [c.split(":")[0] for c in df.columns]
        return df

    inter, item, user = read("ml-100k.inter"), read("ml-100k.item"), read("ml-100k.user")
    ratings = pd.DataFrame({USER: inter["user_id"].astype(np.int64), ITEM: inter["item_id"].astype(np.int64),
                            RATING: inter["rating"].astype(float), TIMESTAMP: inter["timestamp"].astype(float).astype(np.int64)})
    year = pd.to_numeric(item["release_year"], errors="coerce")
    title = item["movie_title"].where(year.isna(), item["movie_title"] + " (" + year.astype("Int64").astype(str) + ")")
    genres = np.zeros((len(item), len(GENRES)), dtype=bool)
    tokens = item["class"].str.split(" ")
    for j, g in enumerate(GENRES):
        genres[:, j] = tokens.map(lambda t, g=g: g in t).to_numpy()
    items = _items_frame(item["item_id"].astype(np.int64).to_numpy(), title.to_numpy(), year.to_numpy(float), genres)
    users = pd.DataFrame({"age": user["age"].astype(float).to_numpy(), "gender": user["gender"].to_numpy(),
                          "occupation": user["occupation"].to_numpy(), "zip_code": user["zip_code"].to_numpy()},
                         index=pd.Index(user["user_id"].astype(np.int64).to_numpy(), name=USER))
    return ratings, users, items


def read_grouplens(folder: Path) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """The original GroupLens ml-100k/ folder: u.data, u.item (latin-1, '|'), u.user."""
    d = pd.read_csv(require_file(folder / "u.data", "MovieLens"), sep="\t", header=None,
                    names=[USER, ITEM, RATING, TIMESTAMP], dtype={RATING: float})
    it = pd.read_csv(require_file(folder / "u.item", "MovieLens"), sep="|", header=None, encoding="latin-1",
                     quoting=csv.QUOTE_NONE)
    if it.shape[1] != 5 + len(GENRES):
        raise DataError(f"{folder / 'u.item'}: expected {5 + len(GENRES)} '|'-separated columns, found {it.shape[1]}; "
                        f"is this the GroupLens ml-100k u.item?")
    us = pd.read_csv(require_file(folder / "u.user", "MovieLens"), sep="|", header=None,
                     names=["user", "age", "gender", "occupation", "zip_code"], dtype={"zip_code": str})
    year = pd.to_datetime(it[2], format="%d-%b-%Y", errors="coerce").dt.year.to_numpy(float)
    genres = it.iloc[:, 5:].to_numpy(dtype=np.int64) > 0
    items = _items_frame(it[0].to_numpy(np.int64), it[1].fillna("unknown").to_numpy(), year, genres)
    users = pd.DataFrame({"age": us["age"].astype(float).to_numpy(), "gender": us["gender"].to_numpy(),
                          "occupation": us["occupation"].to_numpy(), "zip_code": us["zip_code"].to_numpy()},
                         index=pd.Index(us["user"].to_numpy(np.int64), name=USER))
    return d.astype({USER: np.int64, ITEM: np.int64, TIMESTAMP: np.int64}), users, items


def _items_frame(ids: np.ndarray, title: np.ndarray, year: np.ndarray, genres: np.ndarray) -> pd.DataFrame:
    df = pd.DataFrame({"title": title, "release_year": year}, index=pd.Index(ids, name=ITEM))
    df["genres"] = ["|".join(np.array(GENRES)[row]) for row in genres]
    for j, key in enumerate(GENRE_KEYS):
        df[f"genre_{key}"] = genres[:, j].astype(float)
    return df


def read_source(path: str | None) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, str]:
    """(ratings, users, items, where) from ``path`` or the verified cache (fetched on demand)."""
    if path is None:
        folder = cache.ensure("ml-100k", CACHE_FILES)
        return (*read_recbole(folder), f"{folder} (recbole 1.2.1 wheel)")
    folder = Path(path).expanduser()
    if not folder.is_dir():
        raise DataError(f"MovieLens path {folder} is not a folder; pass the GroupLens ml-100k/ folder "
                        f"(u.data, u.item, u.user) or leave path unset to use the cache")
    if (folder / "u.data").exists() or not (folder / "ml-100k.inter").exists():
        return (*read_grouplens(folder), str(folder))
    return (*read_recbole(folder), str(folder))


# -- the dataset -------------------------------------------------------------------------
class MovieLens100K:
    """MovieLens-100K with user, item, history and cross features (ratings to click labels)."""

    def __init__(self, path: str | Path | None = None, positive_rating: float = 4.0, negatives: int = 4,
                 test_fraction: float = 0.2, history_length: int = 10, seed: int = 0) -> None:
        if not 1 <= int(history_length) <= 200:
            raise DataError(f"movielens-100k: history_length={history_length} must be between 1 and 200")
        if int(negatives) < 0:
            raise DataError(f"movielens-100k: negatives={negatives} must be >= 0")
        if not 1 <= float(positive_rating) <= 5:
            raise DataError(f"movielens-100k: positive_rating={positive_rating} must be between 1 and 5 (ratings are 1-5)")
        self.path = path
        self.positive_rating = float(positive_rating)
        self.negatives = int(negatives)
        self.test_fraction = float(test_fraction)
        self.history_length = int(history_length)
        self.seed = int(seed)

    @property
    def params(self) -> dict:
        return {"path": self.path, "positive_rating": self.positive_rating, "negatives": self.negatives,
                "test_fraction": self.test_fraction, "history_length": self.history_length, "seed": self.seed}

    def load(self) -> RecData:
        ratings, users, items, where = read_source(self.path)
        users = users.sort_index()
        items = items.sort_index()
        u_code = users.index.get_indexer(ratings[USER].to_numpy())
        i_code = items.index.get_indexer(ratings[ITEM].to_numpy())
        if (u_code < 0).any() or (i_code < 0).any():
            bad = ratings[(u_code < 0) | (i_code < 0)].iloc[0]
            raise DataError(f"MovieLens ratings at {where} mention user {bad[USER]} / item {bad[ITEM]} "
                            f"that the user/item files do not define; the files do not belong together")
        n_users, n_items = len(users), len(items)
        rating = ratings[RATING].to_numpy(float)
        ts = ratings[TIMESTAMP].to_numpy(np.int64)
        label = (rating >= self.positive_rating).astype(np.int8)
        interactions = pd.DataFrame({USER: ratings[USER].to_numpy(), ITEM: ratings[ITEM].to_numpy(),
                                     LABEL: label, RATING: rating, TIMESTAMP: ts})

        is_test, keep, report = time_split(u_code, ts, self.test_fraction, "user", names=users.index.to_numpy(),
                                           n_users=n_users)

        # Sampled negatives: films the user never rated, stamped with their positive's time.
        rng = np.random.default_rng(self.seed)
        rated = np.unique(u_code.astype(np.int64) * n_items + i_code)
        pos_rows = np.flatnonzero(label == 1)
        parent, neg_item = sample_negatives(u_code[pos_rows], n_items, rated, self.negatives, rng)
        parent = pos_rows[parent]
        all_u = np.concatenate([u_code, u_code[parent]])
        all_i = np.concatenate([i_code, neg_item])
        all_ts = np.concatenate([ts, ts[parent]])
        all_label = np.concatenate([label, np.zeros(len(parent), np.int8)])
        all_rating = np.concatenate([rating, np.full(len(parent), np.nan)])
        all_test = np.concatenate([is_test, is_test[parent]])
        sampled = np.concatenate([np.zeros(len(u_code), bool), np.ones(len(parent), bool)])
        pairs = pd.DataFrame({USER: users.index.to_numpy()[all_u], ITEM: items.index.to_numpy()[all_i],
                              LABEL: all_label, RATING: all_rating, TIMESTAMP: all_ts, "sampled": sampled})
        order = np.lexsort((sampled, all_ts, all_u))
        pairs = pairs.iloc[order].reset_index(drop=True)
        test_mask = all_test[order]
        train = pairs[~test_mask].reset_index(drop=True)
        test = pairs[test_mask].reset_index(drop=True)

        # Item statistics from training rows only (no test leakage).
        tr_u = users.index.get_indexer(train[USER].to_numpy())
        tr_i = items.index.get_indexer(train[ITEM].to_numpy())
        tr_rated = ~train["sampled"].to_numpy()
        tr_pos = train[LABEL].to_numpy() == 1
        pop = np.bincount(tr_i[tr_pos], minlength=n_items).astype(float)
        cnt = np.bincount(tr_i[tr_rated], minlength=n_items)
        tot = np.bincount(tr_i[tr_rated], weights=train[RATING].to_numpy()[tr_rated], minlength=n_items)
        global_mean = float(tot.sum() / max(cnt.sum(), 1))
        mean = np.where(cnt > 0, tot / np.maximum(cnt, 1), global_mean)
        items = items.copy()
        items["item_popularity"] = pop
        items["item_mean_rating"] = mean
        items["train_ratings"] = cnt

        hist = HistoryIndex(tr_u[tr_pos], tr_i[tr_pos], train[TIMESTAMP].to_numpy()[tr_pos], n_users, self.history_length)
        lookup = PairLookup(tr_u, tr_i, train[TIMESTAMP].to_numpy(), n_items)
        featurizer = MovieLensFeaturizer(users, items, hist, lookup, self.history_length)
        schema = movielens_schema(self.history_length)
        params = dict(self.params, domain="video", source=where, split=report.to_dict(),
                      sampled_negatives=int(len(parent)))
        desc = (f"MovieLens-100K from {where}: {len(ratings):,} ratings, rating >= {self.positive_rating:g} is "
                f"a positive, {self.negatives} sampled negatives per positive, per-user time split "
                f"({self.test_fraction:.0%} latest to test)")
        data = RecData(name="movielens-100k", interactions=interactions, users=users, items=items, schema=schema,
                       train=train, test=test, featurizer=featurizer, describer=featurizer.describe,
                       history_deriver=featurizer.rederive_history, params=params, description=desc, history_length=self.history_length)
        # data.knowledge_graph(): the .kg/.link next to path's files, else the cache's (loaded on first use)
        own = Path(self.path).expanduser() if self.path is not None else None
        kg_folder = own if own is not None and (own / "ml-100k.kg").exists() else None
        return kg.attach(data, functools.partial(kg.movielens_graph, kg_folder, items))


def movielens_schema(n: int) -> FeatureSchema:
    f = [
        Feature("user_id", "user", "categorical", description="the user (id embedding)"),
        Feature("age", "user", "numeric", description="age in years"),
        Feature("gender", "user", "categorical", description="M or F"),
        Feature("occupation", "user", "categorical", description="one of 21 occupations"),
        Feature("item_id", "item", "categorical", description="the film (id embedding)"),
        Feature("release_year", "item", "numeric", description="year of release (NaN if unknown)"),
    ]
    f += [Feature(f"genre_{k}", "item", "numeric", group="genre", description=f"1 if the film is {GENRE_NAME[k]}")
          for k in GENRE_KEYS]
    f += [
        Feature("item_popularity", "item", "numeric", description="positives of the film in training"),
        Feature("item_mean_rating", "item", "numeric", description="mean training rating of the film"),
    ]
    f += [Feature(f"hist_genre_{k}", "history", "numeric", group="genre_profile",
                  description=f"share of the user's last {n} liked films that are {GENRE_NAME[k]}")
          for k in GENRE_KEYS]
    f.append(Feature("hist_len", "history", "numeric", description=f"number of liked films in the history (<= {n})"))
    f += [Feature(f"hist_{j}", "history", "sequence", group="sequence",
                  description=f"item id of the {_ordinal(j + 1)} most recent liked film (NaN if none)")
          for j in range(n)]
    f.append(Feature("genre_match", "cross", "numeric",
                     description=f"how many of the user's last {n} liked films share a genre with this film"))
    return FeatureSchema(f)


def _a(word: str) -> str:
    """The indefinite article for ``word``: "an Adventure film", "a Comedy film"."""
    return f"{'an' if str(word)[:1].lower() in 'aeiou' else 'a'} {word}"


def _count(n: int, noun: str, plural: str | None = None) -> str:
    """"1 film", "3 films"."""
    return f"{n} {noun if n == 1 else plural or noun + 's'}"


def _ordinal(k: int) -> str:
    return f"{k}{'th' if 10 <= k % 100 <= 20 else {1: 'st', 2: 'nd', 3: 'rd'}.get(k % 10, 'th')}"


class MovieLensFeaturizer:
    """Builds the feature matrix for (user, item) pairs with array operations only.

    Per-item genre matrices and bitmasks, and per-user attribute codes, are precomputed; a
    pair's history comes from HistoryIndex (as of the pair's training time, or the whole
    training history for any other pair).
    """

    def __init__(self, users: pd.DataFrame, items: pd.DataFrame, hist: HistoryIndex, lookup: PairLookup, n: int) -> None:
        self.user_index, self.item_index = users.index, items.index
        self.hist, self.lookup, self.n = hist, lookup, n
        self.user_ids = users.index.to_numpy()
        self.item_ids_f = items.index.to_numpy().astype(float)
        self.user_cat = pd.CategoricalDtype(users.index.to_numpy())
        self.item_cat = pd.CategoricalDtype(items.index.to_numpy())
        self.age = users["age"].to_numpy(float)
        g = pd.Categorical(users["gender"])
        o = pd.Categorical(users["occupation"])
        self.gender_codes, self.gender_cat = g.codes, g.dtype
        self.occ_codes, self.occ_cat = o.codes, o.dtype
        self.year = items["release_year"].to_numpy(float)
        self.genre = items[[f"genre_{k}" for k in GENRE_KEYS]].to_numpy(np.float32)
        # Padding row (index -1 -> last row) of zeros, so absent history items add nothing.
        self.genre_pad = np.vstack([self.genre, np.zeros((1, len(GENRES)), np.float32)])
        bits = (self.genre > 0).astype(np.int64) @ (1 << np.arange(len(GENRES), dtype=np.int64))
        self.mask_pad = np.concatenate([bits, [0]])
        self.pop = items["item_popularity"].to_numpy(float)
        self.mean = items["item_mean_rating"].to_numpy(float)
        self.titles = items["title"].to_numpy()
        self.numeric_names = [f.name for f in movielens_schema(n) if f.kind != "categorical"]

    def codes(self, pairs: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        u = self.user_index.get_indexer(pairs[USER].to_numpy())
        i = self.item_index.get_indexer(pairs[ITEM].to_numpy())
        if (u < 0).any():
            raise DataError(f"movielens-100k: user {show(pairs[USER].to_numpy()[u < 0][0])} is not in the data "
                            f"(users are 1..{len(self.user_index)})")
        if (i < 0).any():
            raise DataError(f"movielens-100k: item {show(pairs[ITEM].to_numpy()[i < 0][0])} is not in the data "
                            f"(items are 1..{len(self.item_index)})")
        return u, i

    def __call__(self, data: RecData, pairs: pd.DataFrame) -> pd.DataFrame:
        u, i = self.codes(pairs)
        if TIMESTAMP in pairs.columns:
            t = pd.to_numeric(pairs[TIMESTAMP], errors="coerce").to_numpy(float)
            t = np.where(np.isnan(t), np.inf, t)
        else:
            t = self.lookup.time_of(u, i)
        cut = self.hist.cut_before(u, t)
        H = self.hist.matrix(u, cut)  # (m, n) item codes, -1 = none
        valid = H >= 0
        hist_len = valid.sum(axis=1)
        gsum = np.zeros((len(u), len(GENRES)), np.float32)
        match = np.zeros(len(u), np.int64)
        cand_mask = self.mask_pad[i]
        for j in range(self.n):  # n (history length) iterations, each vectorised over all pairs
            gsum += self.genre_pad[H[:, j]]
            match += (self.mask_pad[H[:, j]] & cand_mask) != 0
        # One float block in schema order (cheap to build and to select), then the categoricals.
        m, g, n = len(u), len(GENRES), self.n
        F = np.empty((m, 2 + g + 2 + g + 1 + n + 1))
        F[:, 0] = self.age[u]
        F[:, 1] = self.year[i]
        F[:, 2:2 + g] = self.genre[i]
        o = 2 + g
        F[:, o] = self.pop[i]
        F[:, o + 1] = self.mean[i]
        F[:, o + 2:o + 2 + g] = gsum / np.maximum(hist_len, 1)[:, None]
        o += 2 + g
        F[:, o] = hist_len
        F[:, o + 1:o + 1 + n] = np.where(valid, self.item_ids_f[np.clip(H, 0, None)], np.nan)
        F[:, o + 1 + n] = match
        out = pd.DataFrame(F, columns=self.numeric_names, index=pairs.index, copy=False)
        out.insert(0, "user_id", pd.Categorical.from_codes(u, dtype=self.user_cat))
        out.insert(2, "gender", pd.Categorical.from_codes(self.gender_codes[u], dtype=self.gender_cat))
        out.insert(3, "occupation", pd.Categorical.from_codes(self.occ_codes[u], dtype=self.occ_cat))
        out.insert(4, "item_id", pd.Categorical.from_codes(i, dtype=self.item_cat))
        return out

    def rederive_history(self, X: pd.DataFrame) -> pd.DataFrame:
        """Feature rows with ``hist_genre_*``, ``hist_len`` and ``genre_match`` rebuilt from the
        rows' ``hist_j`` ids (NaN = no film there), by the formulas ``__call__`` uses. A film
        removed from a history leaves its position empty: no older film moves up."""
        n, g = self.n, len(GENRES)
        seq = X[[f"hist_{j}" for j in range(n)]].to_numpy(dtype=float, na_value=np.nan)
        valid = np.isfinite(seq)
        codes = np.full(seq.shape, -1, dtype=np.int64)
        codes[valid] = self.item_index.get_indexer(seq[valid].astype(np.int64))  # an unknown id adds no genre
        cand = self.item_index.get_indexer(pd.to_numeric(pd.Series(np.asarray(X["item_id"], dtype=object)),
                                                         errors="coerce").to_numpy(dtype=float, na_value=-1).astype(np.int64))
        cand_mask = self.mask_pad[cand]  # index -1 (unknown film) is the padding row: no genre
        hist_len = valid.sum(axis=1)
        gsum = self.genre_pad[codes].sum(axis=1)
        match = ((self.mask_pad[codes] & cand_mask[:, None]) != 0).sum(axis=1)
        out = X.copy()
        shares = gsum / np.maximum(hist_len, 1)[:, None]
        for k, key in enumerate(GENRE_KEYS):
            out[f"hist_genre_{key}"] = shares[:, k].astype(float)
        out["hist_len"] = hist_len.astype(float)
        out["genre_match"] = match.astype(float)
        return out

    # -- reasons ---------------------------------------------------------------------------
    def _title(self, item: Any) -> str:
        try:
            return str(self.titles[self.item_index.get_loc(int(item))])
        except (KeyError, TypeError, ValueError):
            return f"film {item}"

    def describe(self, name: str, value: Any, row: Any = None) -> str | None:
        """Words for a feature value; ``row`` (the pair's feature row) lets a reason combine features."""
        def get(key: str, default: Any = None) -> Any:
            try:
                return row[key] if row is not None and key in row else default
            except (TypeError, KeyError):
                return default

        missing = value is None or (isinstance(value, float) and np.isnan(value))
        if name == "genre_match":
            n = int(get("hist_len", self.n) or 0)
            if n == 0:
                return "you have no liked films in your history yet"
            best, best_k = None, 0
            for k in GENRE_KEYS:
                if get(f"genre_{k}", 0) and get(f"hist_genre_{k}") is not None:
                    cnt = int(round(float(get(f"hist_genre_{k}")) * n))
                    if cnt > best_k:
                        best, best_k = GENRE_NAME[k], cnt
            if best is not None:
                return f"genre {best} matches {best_k} of your last {_count(n, 'film')}"
            return f"shares a genre with {int(value)} of your last {_count(n, 'film')}"
        if name.startswith("hist_genre_"):
            k = name[len("hist_genre_"):]
            n = int(get("hist_len", self.n) or 0)
            return f"{GENRE_NAME.get(k, k)} is {int(round(float(value) * n))} of your last {_count(n, 'liked film')}"
        if name.startswith("genre_"):
            g = GENRE_NAME.get(name[len("genre_"):], name[len("genre_"):])
            return f"it is {_a(g)} film" if value and float(value) > 0 else f"it is not {_a(g)} film"
        if name == "release_year":
            return "release year unknown" if missing else f"released {int(value)}"
        if name == "item_popularity":
            v = int(value)
            return f"popular: {_count(v, 'like')} in training" if v >= 50 else f"niche: {_count(v, 'like')} in training"
        if name == "item_mean_rating":
            return f"rated {float(value):.1f}/5 on average"
        if name == "age":
            return f"your age: {int(value)}"
        if name == "gender":
            return f"your gender: {value}"
        if name == "occupation":
            return f"your occupation: {value}"
        if name == "user_id":
            return f"your personal taste (user {value})"
        if name == "item_id":
            return f"this particular film: {self._title(value)}"
        if name == "hist_len":
            return (f"based on your {int(value)} most recent liked films" if int(value) != 1
                    else "based on your most recent liked film")
        if name.startswith("hist_") and name[5:].isdigit():
            if missing:
                return None
            return f"you liked {self._title(value)} ({_ordinal(int(name[5:]) + 1)} most recent)"
        return None
