"""Constants and helpers shared by the whyrec-torch tests (conftest cannot be imported by name)."""
import numpy as np
import pandas as pd

COLD_USER = 60  # make_toy_data(n_users=60, cold_users=1): user 60 has no interactions


def rank_without(model, data, user, item, positions) -> int:
    """Independent rank: featurise all candidates, blank the history columns, score, stable sort."""
    cands = data.candidates(user)
    X = data.features(pd.DataFrame({"user": np.repeat(user, len(cands)), "item": cands}))[model.feature_names]
    for p in positions:
        X[model.sequence_features[p]] = np.nan
    s = model.score_features(X)
    order = np.argsort(-s, kind="stable")
    return int(np.flatnonzero(cands[order] == item)[0]) + 1
