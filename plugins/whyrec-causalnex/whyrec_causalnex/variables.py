"""The causal variables: which features take part, and the table the learner works on.

The learner works on training rows: ``data.features(rows)`` of the whole rows (user, item and the
interaction's context columns: selecting ``rows[[user, item]]`` would lose the context) plus the
outcome column. Ids and
history sequences are not causal variables (an item id does not *cause* a click in any
interventional sense, and the ``hist_*`` positions are item ids too), so they are left out.
"""
from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from whyrec.errors import DataError

if TYPE_CHECKING:
    from whyrec.data import RecData

ID_NAMES = {"user", "item", "id", "user_id", "item_id"}


def is_id_feature(name: str) -> bool:
    return name in ID_NAMES or name.endswith("_id")


def _did_you_mean(name: str, options: list[str]) -> str:
    close = difflib.get_close_matches(name, options, n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def candidate_features(data: "RecData") -> list[str]:
    """Schema features that can be causal variables: not sequences, not ids."""
    return [f.name for f in data.schema if f.kind != "sequence" and not is_id_feature(f.name)]


def select_variables(
    data: "RecData",
    target: str,
    variables: list[str] | None,
    exclude: list[str] | None,
    max_variables: int,
) -> list[str]:
    """The feature names (without the outcome) the learner uses, in schema order.

    Raises DataError for unknown names, sequence/id features asked for explicitly, and more
    variables than ``max_variables`` (outcome included).
    """
    schema = data.schema
    candidates = candidate_features(data)
    if variables is not None:
        chosen = []
        for name in variables:
            if name == target:
                continue
            if name not in schema:
                raise DataError(
                    f"causal variable {name!r} is not a feature of dataset {data.name!r}"
                    f"{_did_you_mean(name, schema.names)}; usable features: {', '.join(candidates)}"
                )
            if schema[name].kind == "sequence":
                raise DataError(f"causal variable {name!r} is a history sequence position (item ids), not a causal "
                                f"variable; remove it from `variables`")
            if is_id_feature(name):
                raise DataError(f"causal variable {name!r} is an id; ids are not causal variables (an id cannot be "
                                f"intervened on); remove it from `variables`")
            if name not in chosen:
                chosen.append(name)
    else:
        chosen = list(candidates)
    for name in exclude or []:
        if name not in schema and name != target:
            raise DataError(f"`exclude` names {name!r}, which is not a feature of dataset {data.name!r}"
                            f"{_did_you_mean(name, schema.names)}")
    chosen = [n for n in chosen if n not in set(exclude or [])]
    n_vars = len(chosen) + 1
    if n_vars > max_variables:
        raise DataError(
            f"{n_vars} causal variables ({len(chosen)} features + the outcome {target!r}) exceed the limit "
            f"max_variables = {max_variables}: structure learning and Bayesian-network inference grow quickly "
            f"with the number of variables. Raise the limit with `max_variables = {n_vars}` in the causal entry "
            f"of registry.toml, or choose fewer with `variables = [...]` or `exclude = [...]`"
        )
    if not chosen:
        raise DataError(f"no causal variables left for dataset {data.name!r} (features: {schema.names}); "
                        f"list some with `variables = [...]`")
    return chosen


@dataclass
class VariableTable:
    """Raw values of the causal variables (features + outcome), one row per training pair.

    kinds: "numeric" or "categorical" per variable; fields: the schema field of each feature
    ("outcome" for the target); notes: what was imputed or recoded, in words.
    """

    frame: pd.DataFrame
    target: str
    kinds: dict[str, str]
    fields: dict[str, str]
    notes: list[str] = field(default_factory=list)
    medians: dict[str, float] = field(default_factory=dict)
    groups: tuple[np.ndarray, np.ndarray] | None = None  # user and item codes (0..k-1) of each row

    @property
    def names(self) -> list[str]:
        return list(self.frame.columns)

    @property
    def features(self) -> list[str]:
        return [c for c in self.frame.columns if c != self.target]

    def numeric_matrix(self, frame: pd.DataFrame | None = None) -> np.ndarray:
        """Float matrix for NOTEARS: numerics as they are, categoricals as integer codes."""
        df = self.frame if frame is None else frame
        cols = []
        for c in df.columns:
            s = df[c]
            if self.kinds[c] == "categorical":
                cats = pd.Categorical(self.frame[c].astype(str))
                codes = pd.Categorical(s.astype(str), categories=cats.categories).codes
                cols.append(codes.astype(float))
            else:
                cols.append(s.to_numpy(dtype=float))
        return np.column_stack(cols)


def build_table(
    data: "RecData",
    pairs: pd.DataFrame,
    features: list[str],
    target: str,
    max_levels: int,
    drop_constant: bool = False,
    check: bool = True,
    medians: dict[str, float] | None = None,
) -> VariableTable:
    """The variable table for ``pairs``: whole rows (user, item, context columns, target).

    ``check`` (on for the training table) refuses constant columns, all-missing columns and
    categoricals with more than ``max_levels`` levels; numeric NaN is filled with the median,
    categorical NaN becomes the level "missing" (both counted in ``notes``). ``medians`` (the
    training table's) fills numeric NaN of a test table the same way.
    """
    from whyrec.data import ITEM, USER

    if target not in pairs.columns:
        raise DataError(f"the outcome column {target!r} is not in the training pairs (columns: {list(pairs.columns)}); "
                        f"set `target` to one of them")
    # the whole rows: context (interaction-level) features come from the row itself
    feats = data.features(pairs)[features]
    if check:
        empty = [n for n in features if len(feats) and feats[n].isna().all()]
        if empty:
            raise DataError(
                f"causal variable {empty[0]!r} is missing in all {len(feats)} training rows"
                + (f" (so are {', '.join(map(repr, empty[1:]))})" if len(empty) > 1 else "")
                + f" of dataset {data.name!r}: there is nothing to learn from it and no value to fill it with; "
                  f"check that the column reaches the data (a context column must be in the interaction rows), "
                  f"or leave it out with `exclude = [{', '.join(chr(34) + n + chr(34) for n in empty)}]`")
    frame = pd.DataFrame(index=pairs.index)
    kinds: dict[str, str] = {}
    fields: dict[str, str] = {}
    notes: list[str] = []
    fill: dict[str, float] = {}
    for name in features:
        f = data.schema[name]
        s = feats[name]
        categorical = f.kind == "categorical" or isinstance(s.dtype, pd.CategoricalDtype) or s.dtype == object \
            or pd.api.types.is_string_dtype(s.dtype) or pd.api.types.is_bool_dtype(s.dtype)
        if categorical:
            s = s.astype(object).where(s.notna(), "missing").astype(str)
            n_missing = int(feats[name].isna().sum())
            if n_missing:
                notes.append(f"{name}: {n_missing} missing values became the level 'missing'")
            kinds[name] = "categorical"
        else:
            s = pd.to_numeric(s, errors="coerce").astype(float)
            n_missing = int(s.isna().sum())
            med = (medians or {}).get(name)
            if med is None:
                # all missing (only in a test table: the training table refuses it above): NaN
                # stays NaN rather than becoming an invented value
                med = float(s.median()) if n_missing < len(s) else float("nan")
            fill[name] = med
            if n_missing and med == med:
                s = s.fillna(med)
                notes.append(f"{name}: {n_missing} missing values filled with the training median {med:g}")
            kinds[name] = "numeric"
        frame[name] = s.to_numpy()
        fields[name] = f.field
    y = pairs[target]
    if not pd.api.types.is_numeric_dtype(y):
        frame[target] = y.astype(str).to_numpy()
        kinds[target] = "categorical"
    else:
        frame[target] = y.to_numpy(dtype=float)
        kinds[target] = "numeric"
    fields[target] = "outcome"
    frame = frame.reset_index(drop=True)
    groups = (pd.factorize(pairs[USER])[0].astype(np.int64), pd.factorize(pairs[ITEM])[0].astype(np.int64))
    table = VariableTable(frame=frame, target=target, kinds=kinds, fields=fields, notes=notes, medians=fill,
                          groups=groups)
    if check:
        _check_table(table, max_levels, drop_constant)
    return table


def _check_table(table: VariableTable, max_levels: int, drop_constant: bool) -> None:
    for name in list(table.frame.columns):
        frame = table.frame
        col = frame[name]
        n_unique = col.nunique(dropna=False)
        if n_unique <= 1:
            value = col.iloc[0] if len(col) else None
            value = value.item() if hasattr(value, "item") else value  # 5.0, not np.float64(5.0)
            if drop_constant and name != table.target:
                table.frame = frame.drop(columns=[name])
                table.kinds.pop(name)
                table.fields.pop(name)
                table.notes.append(f"{name}: constant ({value!r}) in the training rows, dropped")
                continue
            what = "the outcome" if name == table.target else "causal variable"
            raise DataError(
                f"{what} {name!r} is constant (value {value!r} in all {len(col)} training rows): it carries no "
                f"information about causes or effects; "
                + ("choose another `target`" if name == table.target else
                   f"remove it with `exclude = [\"{name}\"]` (or set `drop_constant = true`)")
            )
        if table.kinds[name] == "categorical" and n_unique > max_levels:
            raise DataError(
                f"categorical variable {name!r} has {n_unique} levels, more than max_levels = {max_levels}: its "
                f"conditional probability tables would be too sparse to estimate (and NOTEARS sees its codes as an "
                f"arbitrary order); exclude it with `exclude = [\"{name}\"]` or raise `max_levels` to {n_unique}"
            )
    if table.frame.shape[1] < 2:
        raise DataError(f"only {list(table.frame.columns)} left after dropping constant columns; a causal graph needs at "
                        f"least one feature next to the outcome")


def sample_rows(df: pd.DataFrame, max_rows: int, seed: int) -> pd.DataFrame:
    """At most ``max_rows`` rows, sampled without replacement (seeded), in their original order."""
    if max_rows and len(df) > max_rows:
        idx = np.sort(np.random.default_rng(seed).choice(len(df), max_rows, replace=False))
        return df.iloc[idx]
    return df


def as_list(value: Any) -> list:
    return [] if value is None else list(value)
