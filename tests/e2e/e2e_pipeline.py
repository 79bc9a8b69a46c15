"""The end-to-end pipeline of tests/e2e: a small generated `table` dataset through the real
plugins (LightGBM, torch-attention, tree-shap, exact-field-shapley, integrated-gradients,
causalnex-bn, distill, ab-test and off-policy on the Open Bandit logs), logged to a real MLflow
file store.

MovieLens-100K has no parameter to load a subset (the full set makes torch training and the
distillation far slower than this test's budget), so the data are a `table` written here: users
with an age and a segment, items with a category, a price and a quality, and context columns
(device, hour) on every logged impression. The click probability depends on quality, price,
segment x category and the device (a context column); age and hour are noise. Knowing this
truth lets the tests check what the report claims about causes.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

PIPELINE = "e2e"
EXPERIMENT = "whyrec-e2e"
SAMPLE_USERS, TOP_K = 4, 5
REPORT_USERS = 2
N_USERS, N_ITEMS, PER_USER = 150, 60, 40
SEGMENTS = ["a", "b", "c"]
CATEGORIES = ["c0", "c1", "c2", "c3"]
DEVICES = ["mobile", "desktop", "tablet"]
# the segment's favourite category
LIKES = {"a": "c0", "b": "c1", "c": "c2"}
# What clicks depend on in write_data (click_logit): quality, price, the device of the
# impression (context), and category through its match with the user's segment; age and hour
# are noise.
CAUSES = {"quality", "price", "device", "category", "segment"}
NOT_CAUSES = {"age", "hour"}


def click_logit(quality, price, match, mobile):
    return -1.2 + 1.6 * quality - 0.025 * price + 1.4 * match + 1.0 * mobile


def write_data(folder: Path, seed: int = 7) -> dict[str, Path]:
    """users.parquet, items.parquet and interactions.parquet (impressions with clicks)."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    users = pd.DataFrame({"user": np.arange(1, N_USERS + 1), "age": rng.integers(18, 70, N_USERS).astype(float),
                          "segment": rng.choice(SEGMENTS, N_USERS)})
    items = pd.DataFrame({"item": np.arange(101, 101 + N_ITEMS), "category": rng.choice(CATEGORIES, N_ITEMS),
                          "price": rng.uniform(5, 60, N_ITEMS).round(2), "quality": rng.normal(0, 1, N_ITEMS).round(3)})
    items["item_id"] = items["item"].astype(str)  # torch-attention's candidate-id feature
    n = N_USERS * PER_USER
    u = np.repeat(np.arange(N_USERS), PER_USER)
    i = rng.integers(0, N_ITEMS, n)
    device = rng.choice(DEVICES, n, p=[0.5, 0.35, 0.15])
    hour = rng.integers(0, 24, n).astype(float)
    match = (items["category"].to_numpy()[i] == pd.Series(users["segment"].to_numpy()[u]).map(LIKES).to_numpy()).astype(float)
    logit = click_logit(items["quality"].to_numpy()[i], items["price"].to_numpy()[i], match, (device == "mobile").astype(float))
    label = (rng.uniform(size=n) < 1 / (1 + np.exp(-logit))).astype(np.int8)
    ts = 1_700_000_000 + np.sort(rng.uniform(0, 90 * 86400, n)).round()
    inter = pd.DataFrame({"user": users["user"].to_numpy()[u], "item": items["item"].to_numpy()[i], "clicked": label,
                          "ts": ts[rng.permutation(n)], "device": device, "hour": hour})
    paths = {"users": folder / "users.parquet", "items": folder / "items.parquet", "interactions": folder / "interactions.parquet"}
    users.to_parquet(paths["users"], index=False)
    items.to_parquet(paths["items"], index=False)
    inter.to_parquet(paths["interactions"], index=False)
    return paths


def toml_value(v) -> str:
    """One-line TOML (inline tables may not span lines)."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, (str, Path)):
        return '"' + str(v).replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(v, list):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{k} = {toml_value(x)}" for k, x in v.items()) + " }"
    raise TypeError(f"no TOML for {v!r}")


# Levels other than the defaults (0.95 / alpha 0.05), so a label written from a constant shows up.
CAUSAL_CI = 0.9
FEEDBACK_ALPHA = 0.1
CONTEXT = ["device", "hour"]
CAUSAL_VARIABLES = ["age", "segment", "category", "price", "quality", *CONTEXT]


def stages(paths: dict[str, Path]) -> dict:
    """The pipeline's stages, small enough for a test: few trees, one epoch, few resamples."""
    obd = {"use": "open-bandit"}
    return {
        "dataset": {"use": "table", "interactions": paths["interactions"], "users": paths["users"],
                    "items": paths["items"], "user_col": "user", "item_col": "item", "label_col": "clicked",
                    "timestamp_col": "ts", "context_features": CONTEXT,
                    "categorical": ["item_id", "category", "segment", *CONTEXT[:1]], "history_length": 5, "negatives": 1},
        "model": [{"use": "lightgbm", "n_estimators": 40, "num_leaves": 15, "min_child_samples": 10},
                  {"use": "torch-attention", "epochs": 3, "embedding_dim": 8, "attention_hidden": 8, "hidden": [16],
                   "batch_size": 256}],
        "explainers": [{"use": "tree-shap", "quality_pairs": 8},
                       {"use": "exact-field-shapley", "background_size": 20, "quality_pairs": 8},
                       {"use": "integrated-gradients", "steps": 16}],
        "causal": {"use": "causalnex-bn", "variables": CAUSAL_VARIABLES, "max_rows": 3000, "bootstrap": 3,
                   "effect_bootstrap": 20, "max_iter": 50, "ci": CAUSAL_CI},
        "compressor": {"use": "distill", "teacher": "torch-attention", "student": "mlp",
                       "student_params": {"hidden": [8], "epochs": 3}, "eval_users": 20, "explain_users": 2,
                       "explain_k": 2, "repeats": 1, "explainer": "occlusion"},
        "feedback": [{"use": "ab-test", "control": "random", "alpha": FEEDBACK_ALPHA, "logs": obd},
                     {"use": "off-policy", "name": "uniform-from-bts", "logging_variant": "bts",
                      "reference_variant": "random", "bootstrap": 200, "alpha": FEEDBACK_ALPHA, "logs": obd}],
    }


def registry_text(paths: dict[str, Path], mlflow_uri: str) -> str:
    lines = ["[defaults]", f'pipeline = "{PIPELINE}"', "", f"[pipelines.{PIPELINE}]",
             'description = "end-to-end test: a small table through every real plugin"',
             "seed = 3", "sample_users = 4", "top_k = 5", "eval_users = 40"]
    lines += [f"{k} = {toml_value(v)}" for k, v in stages(paths).items()]
    lines += [f"report = {toml_value({'enabled': True, 'users': REPORT_USERS})}"]  # fewer waterfall figures to draw
    lines += ["", f"[pipelines.{PIPELINE}.tracking]", f"mlflow_uri = {toml_value(mlflow_uri)}",
              f"mlflow_experiment = {toml_value(EXPERIMENT)}", ""]
    return "\n".join(lines)
