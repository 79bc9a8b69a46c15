"""movielens-100k: the feature contract other plugins rely on, labels, split, no leakage."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from whyrec.errors import DataError
from whyrec_datasets.movielens import GENRE_KEYS, MovieLens100K

GENRES = ["unknown", "Action", "Adventure", "Animation", "Childrens", "Comedy", "Crime", "Documentary", "Drama",
          "Fantasy", "Film_Noir", "Horror", "Musical", "Mystery", "Romance", "Sci_Fi", "Thriller", "War", "Western"]


def test_feature_names_kinds_and_fields(movielens):
    s = movielens.schema
    expected = (["user_id", "age", "gender", "occupation", "item_id", "release_year"]
                + [f"genre_{g}" for g in GENRES] + ["item_popularity", "item_mean_rating"]
                + [f"hist_genre_{g}" for g in GENRES] + ["hist_len"] + [f"hist_{j}" for j in range(10)]
                + ["genre_match"])
    assert s.names == expected
    assert GENRE_KEYS == GENRES
    assert {n: s[n].kind for n in ("user_id", "gender", "occupation", "item_id")} == dict.fromkeys(
        ("user_id", "gender", "occupation", "item_id"), "categorical")
    assert s.of_kind("sequence") == [f"hist_{j}" for j in range(10)]
    assert s.groups("group")["item:genre"] == [f"genre_{g}" for g in GENRES]
    assert s.groups("group")["history:genre_profile"] == [f"hist_genre_{g}" for g in GENRES]
    assert s["genre_match"].field == "cross" and s["hist_len"].field == "history" and s["age"].field == "user"
    assert movielens.history_length == 10
    X = movielens.features(movielens.test.head(50))
    for name in s.names:
        want = "category" if s[name].kind == "categorical" else "float64"
        assert str(X[name].dtype) == want, name
    assert movielens.items.loc[50, "title"] == "Star Wars (1977)"


def test_counts_and_labels(movielens):
    assert len(movielens.interactions) == 100_000
    assert len(movielens.users) == 943 and len(movielens.items) == 1682
    assert int(movielens.interactions["label"].sum()) == 34174 + 21201  # ratings 4 and 5
    five = MovieLens100K(positive_rating=5, negatives=0).load()
    assert int(five.interactions["label"].sum()) == 21201


def test_time_split_has_no_leakage(movielens):
    tr, te = movielens.train, movielens.test
    last_train = tr.groupby("user")["timestamp"].max()
    first_test = te.groupby("user")["timestamp"].min()
    assert (first_test > last_train.reindex(first_test.index)).all()
    assert set(tr["user"]) == set(movielens.user_ids)  # every user keeps training data
    rated_test = te[~te["sampled"]]
    assert 0.15 < len(rated_test) / 100_000 < 0.2


def test_item_statistics_come_from_training_only(movielens):
    tr = movielens.train
    pos = tr[(tr["label"] == 1)].groupby("item").size().reindex(movielens.item_ids, fill_value=0)
    assert np.array_equal(movielens.items["item_popularity"].to_numpy(), pos.to_numpy(float))
    rated = tr[~tr["sampled"]]
    mean = rated.groupby("item")["rating"].mean()
    got = movielens.items.loc[mean.index, "item_mean_rating"]
    assert np.allclose(got.to_numpy(), mean.to_numpy())
    full = movielens.interactions.groupby("item")["label"].sum().reindex(movielens.item_ids, fill_value=0)
    assert (full.to_numpy() > pos.to_numpy()).sum() > 500  # test positives are not counted


def test_sampled_negatives(movielens):
    inter = movielens.interactions
    rated = set(zip(inter["user"], inter["item"]))
    for df in (movielens.train, movielens.test):
        neg = df[df["sampled"]]
        assert (neg["label"] == 0).all() and neg["rating"].isna().all()
        assert not any(p in rated for p in zip(neg["user"], neg["item"]))
    allneg = pd.concat([movielens.train, movielens.test])
    allneg = allneg[allneg["sampled"]]
    assert not allneg.duplicated(["user", "item"]).any()
    n_pos = int(inter["label"].sum())
    assert 3.5 * n_pos < len(allneg) <= 4 * n_pos  # heavy users are capped at half their unrated films
    again = MovieLens100K().load()
    pd.testing.assert_frame_equal(again.train, movielens.train)
    other = MovieLens100K(seed=1).load()
    assert not other.train.equals(movielens.train)


def _brute_history(data, user, before=None, n=10):
    tr = data.train
    pos = tr[(tr["user"] == user) & (tr["label"] == 1)]
    if before is not None:
        pos = pos[pos["timestamp"] < before]
    pos = pos.sort_values("timestamp", kind="stable")
    return list(pos["item"])[::-1][:n]


def _brute_features(data, user, item, hist):
    genres = data.items[[f"genre_{g}" for g in GENRES]]
    cand = genres.loc[item].to_numpy() > 0
    H = genres.loc[hist].to_numpy() > 0 if hist else np.zeros((0, len(GENRES)), bool)
    share = H.mean(axis=0) if hist else np.zeros(len(GENRES))
    match = int((H & cand).any(axis=1).sum())
    return share, match


def test_candidate_history_is_the_last_training_positives(movielens):
    user = 42
    cands = movielens.candidates(user)[:5]
    X = movielens.features(pd.DataFrame({"user": user, "item": cands}))
    hist = _brute_history(movielens, user)
    assert hist == movielens.history(user)[::-1][:10]
    assert X[[f"hist_{j}" for j in range(10)]].iloc[0].tolist() == [float(h) for h in hist]
    assert X["hist_len"].iloc[0] == len(hist) == 10
    for k, item in enumerate(cands):
        share, match = _brute_features(movielens, user, item, hist)
        assert np.allclose(X[[f"hist_genre_{g}" for g in GENRES]].iloc[k].to_numpy(), share)
        assert X["genre_match"].iloc[k] == match


def test_training_pairs_see_only_their_past(movielens):
    tr = movielens.train
    rows = tr[(tr["user"] == 7) & (tr["label"] == 1)].iloc[[0, 5, 30, 60]]
    X = movielens.features(rows[["user", "item"]])  # no timestamp given: found in training
    X2 = movielens.features(rows)  # with the timestamp column: the same
    pd.testing.assert_frame_equal(X, X2)
    for k, (_, r) in enumerate(rows.iterrows()):
        hist = _brute_history(movielens, 7, before=r["timestamp"])
        got = [int(v) for v in X[[f"hist_{j}" for j in range(10)]].iloc[k] if not np.isnan(v)]
        assert got == hist
        assert r["item"] not in got  # a positive never sees itself
        share, match = _brute_features(movielens, 7, r["item"], hist)
        assert X["genre_match"].iloc[k] == match
    assert X["hist_len"].iloc[0] == 0 and np.isnan(X["hist_0"].iloc[0])
    # a sampled negative shares its positive's history: the history cannot leak the label
    neg = tr[(tr["user"] == 7) & tr["sampled"] & (tr["timestamp"] == rows["timestamp"].iloc[2])].head(1)
    Xn = movielens.features(neg[["user", "item"]])
    assert Xn["hist_len"].iloc[0] == X["hist_len"].iloc[2]


def test_reasons(movielens):
    X = movielens.features(pd.DataFrame({"user": [1], "item": [50]}))
    row = X.iloc[0]
    n = int(row["hist_len"])
    share = row[[f"hist_genre_{g}" for g in ("Action", "Adventure", "Romance", "Sci_Fi", "War")]]
    best = share.idxmax().removeprefix("hist_genre_").replace("_", "-")
    assert movielens.describe_feature("genre_match", row["genre_match"], row) == \
        f"genre {best} matches {round(share.max() * n)} of your last {n} films"
    assert movielens.describe_feature("release_year", row["release_year"], row) == "released 1977"
    pop = int(row["item_popularity"])
    assert movielens.describe_feature("item_popularity", pop, row) == f"popular: {pop} likes in training"
    assert movielens.describe_feature("genre_Sci_Fi", 1.0, row) == "it is a Sci-Fi film"
    assert movielens.describe_feature("item_id", 50, row) == "this particular film: Star Wars (1977)"
    assert movielens.describe_feature("hist_0", row["hist_0"], row).startswith("you liked ")


def test_unknown_ids_are_data_errors(movielens):
    with pytest.raises(DataError, match="user 5000 is not in the data"):
        movielens.features(pd.DataFrame({"user": [5000], "item": [1]}))
    with pytest.raises(DataError, match="item 99999 is not in the data"):
        movielens.features(pd.DataFrame({"user": [1], "item": [99999]}))


def _grouplens_folder(tmp_path):
    """A tiny folder in the original GroupLens ml-100k format."""
    d = tmp_path / "ml-100k"
    d.mkdir()
    rows = []
    t = 880000000
    for u in (1, 2, 3):
        for k, it in enumerate((1, 2, 3, 4, 5)):
            rows.append(f"{u}\t{it}\t{5 if (u + it) % 2 else 2}\t{t + 100 * k + u}")
    (d / "u.data").write_text("\n".join(rows) + "\n")
    flags = ["0|0|0|1|1|1|0|0|0|0|0|0|0|0|0|0|0|0|0", "0|1|1|0|0|0|0|0|0|0|0|0|0|0|0|0|1|0|0",
             "0|0|0|0|0|0|0|0|1|0|0|0|0|0|1|0|0|0|0", "0|1|0|0|0|0|0|0|0|0|0|0|0|0|0|1|0|0|0",
             "1|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0", "0|0|0|0|0|1|0|0|0|0|0|0|0|0|0|0|0|0|0"]
    titles = ["Toy Story (1995)", "GoldenEye (1995)", "Casablanca (1942)", "Star Wars (1977)", "Odd (1990)", "Joke (1994)"]
    dates = ["01-Jan-1995", "01-Jan-1995", "01-Jan-1942", "01-Jan-1977", "", "01-Jan-1994"]
    (d / "u.item").write_text("\n".join(f"{k + 1}|{t}|{dt}||http://x|{f}" for k, (t, dt, f) in
                                        enumerate(zip(titles, dates, flags))) + "\n", encoding="latin-1")
    (d / "u.user").write_text("1|24|M|technician|85711\n2|53|F|other|94043\n3|23|M|writer|32067\n")
    return d


def test_original_grouplens_folder(tmp_path):
    d = _grouplens_folder(tmp_path)
    data = MovieLens100K(path=str(d), negatives=1, history_length=3).load()
    assert len(data.interactions) == 15 and len(data.items) == 6
    assert data.items.loc[4, "release_year"] == 1977 and np.isnan(data.items.loc[5, "release_year"])
    assert data.items.loc[1, "genres"] == "Animation|Children's|Comedy"
    assert data.schema.names[-1] == "genre_match" and "hist_2" in data.schema
    X = data.features(pd.DataFrame({"user": [1], "item": [6]}))
    assert X["hist_len"].iloc[0] == len(data.history(1)[-3:])
    (d / "u.user").unlink()
    with pytest.raises(DataError, match=r"MovieLens file .*u.user not found"):
        MovieLens100K(path=str(d)).load()


def test_bad_parameters():
    with pytest.raises(DataError, match="history_length=0"):
        MovieLens100K(history_length=0)
    with pytest.raises(DataError, match="positive_rating=6"):
        MovieLens100K(positive_rating=6)
    with pytest.raises(DataError, match="not a folder"):
        MovieLens100K(path="/nonexistent/ml-100k").load()


def test_rederive_history_reproduces_the_featurizer_and_follows_removals(movielens):
    X = movielens.features(movielens.test.head(300))
    assert movielens.rederive_history(X).equals(X)  # unedited rows: the featurizer's own values
    edited = X.copy()
    edited["hist_0"] = np.nan  # the most recent liked film taken out of every history
    edited.loc[edited.index[::2], "hist_3"] = np.nan
    got = movielens.rederive_history(edited)
    items = movielens.items
    genre_cols = [f"genre_{g}" for g in GENRES]
    for r in range(0, len(X), 7):  # by hand, from the items table, for a sample of rows
        ids = [int(v) for v in edited.iloc[r][[f"hist_{j}" for j in range(10)]] if not np.isnan(v)]
        cand = items.loc[int(edited.iloc[r]["item_id"]), genre_cols].to_numpy(float) > 0
        hist = items.loc[ids, genre_cols].to_numpy(float) if ids else np.zeros((0, len(GENRES)))
        assert got.iloc[r]["hist_len"] == len(ids)
        want = hist.mean(axis=0) if ids else np.zeros(len(GENRES))
        assert np.allclose(got.iloc[r][[f"hist_genre_{g}" for g in GENRES]].to_numpy(float), want)
        assert got.iloc[r]["genre_match"] == int(((hist > 0) & cand).any(axis=1).sum())
    untouched = [c for c in X.columns if not (c.startswith("hist_genre_") or c in ("hist_len", "genre_match", "hist_0", "hist_3"))]
    assert got[untouched].equals(X[untouched])
    assert (got["hist_len"] <= X["hist_len"]).all() and (got["hist_len"] < X["hist_len"]).any()


def test_reason_grammar_articles_and_counts():
    """Issue 15.7: "an Adventure film", "1 like", not "a Adventure film", "1 likes"."""
    from whyrec_datasets.movielens import _a, _count

    assert _a("Adventure") == "an Adventure" and _a("Sci-Fi") == "a Sci-Fi" and _a("Action") == "an Action"
    assert _count(1, "like") == "1 like" and _count(0, "like") == "0 likes" and _count(3, "film") == "3 films"


def test_simulator_reason_says_once():
    from whyrec_datasets.simulators import SIMULATORS, SimFeaturizer

    f = SimFeaturizer(SIMULATORS["sim-ecommerce"], None, None, None)
    assert f.describe("purchase_history", 1.0) == "you bought once in 90 days"
    assert f.describe("purchase_history", 3.0) == "you bought 3 times in 90 days"
    assert f.describe("purchase_history", 0.0) == "you bought nothing in 90 days"
