"""Reading and checking tables: every bad input becomes a one-line DataError naming the fix."""
from __future__ import annotations

import re
import warnings
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np
import pandas as pd

from whyrec.errors import DataError, DataWarning

PARQUET_SUFFIXES = (".parquet", ".pq", ".parq")
CSV_SUFFIXES = (".csv", ".tsv", ".txt", ".csv.gz", ".tsv.gz")


def require_file(path: str | Path, what: str) -> Path:
    p = Path(path).expanduser()
    if not p.is_file():
        where = "folder does not exist" if not p.parent.exists() else "no such file"
        raise DataError(f"{what} file {p} not found ({where}); check the path in registry.toml")
    return p


def file_columns(path: Path) -> list[str]:
    """Column names of a Parquet or CSV file without reading its rows."""
    name = path.name.lower()
    if name.endswith(PARQUET_SUFFIXES):
        import pyarrow.parquet as pq

        try:
            return list(pq.read_schema(path).names)
        except Exception as exc:  # noqa: BLE001 (pyarrow raises several types for a bad file)
            raise DataError(f"{path}: not a readable Parquet file ({exc}); re-export it") from None
    try:
        return list(pd.read_csv(path, nrows=0, sep=_sep(path)).columns)
    except pd.errors.EmptyDataError:
        raise DataError(f"{path}: the file is empty; it needs a header row and data rows") from None
    except (UnicodeDecodeError, pd.errors.ParserError) as exc:
        raise DataError(f"{path}: not a readable CSV file ({exc}); re-export it as UTF-8 CSV or Parquet") from None


def _sep(path: Path) -> str:
    return "\t" if ".tsv" in path.name.lower() else ","


def read_table(path: str | Path, columns: Sequence[str] | None, what: str, *,
               declared: dict[str, str] | None = None) -> pd.DataFrame:
    """Read ``columns`` (all when None) of a Parquet/CSV file.

    ``declared`` maps column -> the registry key that named it, so a missing column error says
    which setting to change. Raises DataError for a missing file, missing columns or no rows.
    """
    p = require_file(path, what)
    name = p.name.lower()
    if not name.endswith(PARQUET_SUFFIXES + CSV_SUFFIXES):
        raise DataError(f"{what} file {p}: unknown format; use .parquet or .csv (or .tsv)")
    have = file_columns(p)
    if columns is not None:
        require_columns(have, columns, f"{what} file {p}", declared)
    if name.endswith(PARQUET_SUFFIXES):
        import pyarrow.parquet as pq

        # Arrow reads only the needed columns; to_pandas shares buffers where it can.
        table = pq.read_table(p, columns=list(dict.fromkeys(columns)) if columns is not None else None)
        df = table.to_pandas(self_destruct=True, split_blocks=True)
    else:
        try:
            df = pd.read_csv(p, usecols=list(dict.fromkeys(columns)) if columns is not None else None,
                             sep=_sep(p), engine="pyarrow")
        except Exception as exc:  # noqa: BLE001 (pyarrow's CSV errors are varied)
            raise DataError(f"{what} file {p}: cannot parse it as CSV ({str(exc).splitlines()[0]})") from None
    if len(df) == 0:
        raise DataError(f"{what} file {p} has no rows; it needs at least one data row")
    return df


def require_columns(have: Iterable[str], wanted: Iterable[str], source: str,
                    declared: dict[str, str] | None = None) -> None:
    have = list(have)
    missing = [c for c in wanted if c not in have]
    if missing:
        c = missing[0]
        key = f" (declared by {declared[c]})" if declared and c in declared else ""
        shown = ", ".join(have[:30]) + (", ..." if len(have) > 30 else "")
        raise DataError(f"{source}: column {c!r}{key} is not in it; its columns are: {shown}")


def check_not_empty(df: pd.DataFrame, source: str) -> None:
    if len(df) == 0:
        raise DataError(f"{source} has no rows; it needs at least one data row")


def check_ids(df: pd.DataFrame, column: str, source: str) -> None:
    """An id column must have no nulls (they cannot be joined or recommended)."""
    nulls = df[column].isna().to_numpy()
    if nulls.any():
        rows = np.flatnonzero(nulls)[:3].tolist()
        raise DataError(
            f"{source}: id column {column!r} has {int(nulls.sum())} null values (first at rows {rows}); "
            f"drop or fill those rows"
        )


def _looks_numeric(v: Any) -> bool:
    try:
        float(str(v))
    except ValueError:
        return False
    return True


def id_shape(v: Any) -> str:
    """An id's spelling without the id: digits become 9, letters a ('cust-0104-zq' -> 'aaaa-9999-aa')."""
    return re.sub(r"[^\W\d_]", "a", re.sub(r"\d", "9", str(v)))


def warn_mixed_ids(df: pd.DataFrame, column: str, source: str, personal: bool = False) -> None:
    """Ids written two ways in one text column ("u5" next to "5") are different ids to every
    join: warn, naming both kinds, since they are probably one. (A file column has one type:
    Parquet cannot mix them, CSV reads both as text.) ``personal`` (user ids): the examples are
    shown by their shape only, since a run records its warnings in its manifest, where a
    pipeline with ``privacy`` promises no raw user id."""
    col = df[column]
    if pd.api.types.is_numeric_dtype(col) or (isinstance(col.dtype, pd.CategoricalDtype)
                                               and pd.api.types.is_numeric_dtype(col.cat.categories)):
        return
    uniq = pd.unique(col.dropna())
    numeric = [v for v in uniq if _looks_numeric(v)]
    if numeric and len(numeric) < len(uniq):
        other = next(v for v in uniq if not _looks_numeric(v))
        show = (lambda v: f"shaped {id_shape(v)!r}") if personal else (lambda v: repr(str(v)))  # noqa: E731
        note = " (user ids by their shape: 9 a digit, a a letter)" if personal else ""
        warnings.warn(f"{source}: id column {column!r} mixes numeric ids ({len(numeric):,}, e.g. {show(numeric[0])}) and "
                      f"other ids ({len(uniq) - len(numeric):,}, e.g. {show(other)}){note}; if e.g. 'u5' and '5' are one "
                      "id, write them the same way", DataWarning, stacklevel=2)


def warn_duplicate_rows(keys: pd.DataFrame, source: str, what: str) -> int:
    """Rows repeating an earlier row's ``keys`` (e.g. user, item and time: ``what`` names them)
    are kept, since a repeated interaction can be data, but usually come from a logging or join
    bug that double-counts: warn with the count and the first one. Returns the count."""
    # Row hashes first (numeric keys hash in about a second for millions of rows), then the exact
    # comparison on the few rows whose hash repeats, so a hash collision never counts.
    h = pd.Series(pd.util.hash_pandas_object(keys, index=False).to_numpy())
    rep = h.duplicated(keep=False).to_numpy()
    dup = np.zeros(len(keys), dtype=bool)
    if rep.any():
        dup[np.flatnonzero(rep)] = keys[rep].duplicated(keep="first").to_numpy()
    n = int(dup.sum())
    if n:
        first = int(np.flatnonzero(dup)[0])
        warnings.warn(f"{source}: {n:,} rows repeat the {what} of an earlier row (first at row {first}); they are "
                      "kept as repeated interactions: drop them first (e.g. pandas drop_duplicates) if they are "
                      "logging artefacts", DataWarning, stacklevel=2)
    return n


def check_label(values: pd.Series, kind: str, source: str, column: str) -> np.ndarray:
    """Validate a label column of the declared kind; returns it as float.

    kind "binary": only 0/1 (or booleans); "rating": any finite numbers (thresholded later).
    """
    if values.isna().any():
        n = int(values.isna().sum())
        raise DataError(f"{source}: {kind} label column {column!r} has {n} null values; fill or drop them")
    if values.dtype == bool:
        return values.to_numpy(dtype=float)
    if not pd.api.types.is_numeric_dtype(values):
        sample = values.astype(str).unique()[:3].tolist()
        raise DataError(
            f"{source}: {kind} label column {column!r} holds non-numeric values (e.g. {sample}); "
            f"use 0/1 for label= or numbers for rating="
        )
    arr = values.to_numpy(dtype=float)
    if not np.isfinite(arr).all():
        raise DataError(f"{source}: {kind} label column {column!r} has infinite values; fix or drop them")
    if kind == "binary":
        bad = ~np.isin(arr, (0.0, 1.0))
        if bad.any():
            sample = np.unique(arr[bad])[:3].tolist()
            raise DataError(
                f"{source}: label column {column!r} is declared binary but holds {sample}; "
                f"use 0/1 values, or declare it as rating= with positive_rating= to threshold it"
            )
    return arr


def show(value) -> str:
    """repr of a value as a user wrote it (numpy scalars as plain Python values)."""
    return repr(value.item() if hasattr(value, "item") else value)
