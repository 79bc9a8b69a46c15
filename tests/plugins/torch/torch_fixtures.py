"""Constants and helpers shared by the whyrec-torch tests (conftest cannot be imported by name)."""
import numpy as np
import pandas as pd

COLD_USER = 60  # make_toy_data(n_users=60, cold_users=1): user 60 has no interactions


def rows_without(model, data, user, positions, rederive: bool = False) -> pd.DataFrame:
    """The model's feature rows of all the user's candidates with history positions blanked.
    ``rederive`` also recomputes the toy data's history-derived features by hand: ``hist_len``
    (filled positions) and ``genre_match`` (remaining history items of the candidate's genre)."""
    cands = data.candidates(user)
    X = data.features(pd.DataFrame({"user": np.repeat(user, len(cands)), "item": cands}))
    seq = [f"hist_{k}" for k in range(data.history_length)]
    for p in positions:
        X[seq[p]] = np.nan
    if rederive:
        H = X[seq].to_numpy(dtype=float)
        genre_of = data.items["genre"]
        hist_genre = np.array([[genre_of[int(v)] if not np.isnan(v) else np.nan for v in row] for row in H])
        X["hist_len"] = (~np.isnan(H)).sum(axis=1).astype(float)
        X["genre_match"] = (hist_genre == genre_of.reindex(cands).to_numpy(dtype=float)[:, None]).sum(axis=1).astype(float)
    return X[model.feature_names]


def rank_without(model, data, user, item, positions, rederive: bool = False) -> int:
    """Independent rank: featurise all candidates, blank the history columns, score, stable sort."""
    cands = data.candidates(user)
    s = model.score_features(rows_without(model, data, user, positions, rederive))
    order = np.argsort(-s, kind="stable")
    return int(np.flatnonzero(cands[order] == item)[0]) + 1
