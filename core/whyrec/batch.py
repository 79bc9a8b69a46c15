"""Streamed, resumable batch explanations: ``whyrec explain-batch``.

A platform explains millions of (user, item) pairs a night. This module reads a Parquet file of
pairs in fixed-size chunks, has an executor (``local`` in process, ``ray`` from the whyrec-ray
plugin, or any registered one) explain each chunk with a registered explainer, and writes one
Parquet part per chunk plus a ``_SUCCESS`` manifest::

    OUT/_job.json            what this job is (its fingerprint): written before any part
    OUT/part-00000.parquet   rows [0, chunk_rows) of the input, in input order
    OUT/part-00001.parquet   ...
    OUT/_SUCCESS             JSON: row counts per part and per status; written last

Why it is built this way:

* Memory: only ``chunk_rows`` input rows per chunk in flight (times the executor's window),
  whatever the size of the input; parts are written as soon as they arrive.
* Resume: chunk boundaries are fixed by ``chunk_rows`` (not by the file's row groups), every
  part is written atomically (temp file + rename) and carries, in its Parquet metadata, the job
  fingerprint, its index, its row count and a hash of the input pairs it explains. A rerun after
  any crash (SIGKILL included) keeps every part whose metadata matches the input and redoes the
  rest, so the finished output holds every input row exactly once.
* Safety: an output directory holding another job's parts (other pairs, model, explainer or
  options) is refused, never mixed; a lock stops two writers of the same directory.
* Unknown users/items are never silently dropped: each output row has a ``status``
  (``explained``, ``cold_start`` or ``skipped``) and ``unknown`` (``user``, ``item``,
  ``user,item`` or null) and ``_SUCCESS`` counts them.

Output columns: ``row`` (0-based row of the input file), every input column, ``status``,
``unknown``, ``output_value``, ``base_value``, ``additivity_error``, then one ``attr__<feature>``
per feature attribution and one ``field__<field>`` per field attribution.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

import click

from .atomic import atomic_path, plain, write_json
from .data import ITEM, USER
from .errors import DataError, RunDirError, UnsupportedError, WhyrecError

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

    from .data import RecData

FORMAT_VERSION = 1
DEFAULT_CHUNK_ROWS = 50_000
COLD_START = ("skip", "explain")
JOB_FILE, SUCCESS_FILE, LOCK_FILE = "_job.json", "_SUCCESS", "_job.lock"
PART_RE = re.compile(r"^part-(\d{5,})\.parquet$")
META_KEY = b"whyrec.batch"
# Columns the engine adds; an input column with one of these names would be ambiguous.
OUTPUT_COLUMNS = ("row", "status", "unknown", "output_value", "base_value", "additivity_error")
ATTR, FIELD = "attr__", "field__"


def part_name(i: int) -> str:
    return f"part-{i:05d}.parquet"


# -- the result ----------------------------------------------------------------------------
@dataclass
class BatchResult:
    """What one call of :func:`explain_pairs_batched` did."""

    out_dir: Path
    rows: int
    parts: int
    counts: dict[str, int]
    parts_reused: int
    parts_written: int
    rows_written: int
    seconds: float
    manifest: dict = field(default_factory=dict)

    @property
    def rows_per_s(self) -> float:
        return self.rows_written / self.seconds if self.seconds > 0 else float("nan")


# -- the per-chunk work (runs on the executor: in process or on a Ray worker) ----------------
class ChunkExplainer:
    """Explain one chunk: ``(index, pyarrow.Table) -> (index, pyarrow.Table)``.

    A plain object holding the model, data and explainer, so a cluster executor can ship it to
    its workers once (Ray serialises it into its object store) and call it per chunk.
    """

    def __init__(self, model: Any, data: "RecData", explainer: Any, cold_start: str, layout: dict,
                 context: dict | None = None) -> None:
        self.model, self.data, self.explainer = model, data, explainer
        self.cold_start = cold_start
        self.layout = layout
        self.context = dict(context or {})

    def __call__(self, task: "tuple[int, pa.Table]") -> "tuple[int, pa.Table]":
        import numpy as np
        import pyarrow as pa

        index, table = task
        n = table.num_rows
        table = _pseudonymous_users(table, self.data)
        pairs = _id_frame(table, self.data)
        known_user = pairs.pop("_known_user").to_numpy(bool)
        known_item = pairs.pop("_known_item").to_numpy(bool)
        null = pairs.pop("_null").to_numpy(bool)
        if self.data.context_names:  # the file's own context columns, and the stated --context values
            pairs = self.data.with_context(pairs, self.context)
        known = known_user & known_item
        # A null id is no user at all: never explained, whatever cold_start says.
        todo = ~null if self.cold_start == "explain" else known

        lay = self.layout
        cols = {name: np.full(n, np.nan) for name in ("output_value", "base_value", "additivity_error")}
        cols.update({ATTR + f: np.full(n, np.nan) for f in lay["features"]})
        cols.update({FIELD + f: np.full(n, np.nan) for f in lay["fields"]})
        # Known and cold-start pairs are explained in separate calls, so an explainer that
        # cannot explain unknown ids fails with a message that says so.
        for mask, cold in ((known, False), (todo & ~known, True)):
            if not mask.any():
                continue
            sub = pairs[mask].reset_index(drop=True)
            try:
                expl = self.explainer.explain(self.model, self.data, sub)
            except WhyrecError as exc:
                if not cold:
                    raise
                raise UnsupportedError(
                    f"explainer {lay['explainer']!r} cannot explain pairs whose user or item the dataset does not know ({exc}); "
                    f"use cold_start = skip (--cold-start skip): they are then kept with status 'skipped' and counted "
                    "(into a new --out if this job already wrote parts: those belong to the cold_start = explain job)"
                ) from exc
            _check_explanation(expl, sub, lay, lay["explainer"])
            for name in ("output_value", "base_value", "additivity_error"):
                if name in expl.pairs.columns:
                    cols[name][mask] = expl.pairs[name].to_numpy(float)
            for f in lay["features"]:
                cols[ATTR + f][mask] = expl.attributions[f].to_numpy(float)
            for f in lay["fields"]:
                cols[FIELD + f][mask] = expl.field_attributions[f].to_numpy(float)

        status = np.where(known, "explained", np.where(todo, "cold_start", "skipped"))
        unknown = np.where(known_user, np.where(known_item, None, "item"), np.where(known_item, "user", "user,item"))
        out = table
        first = lay["chunk_rows"] * index
        out = out.add_column(0, "row", pa.array(np.arange(first, first + n, dtype=np.int64)))
        out = out.append_column("status", pa.array(status.tolist(), pa.string()))
        out = out.append_column("unknown", pa.array(unknown.tolist(), pa.string()))
        for name, arr in cols.items():
            out = out.append_column(name, pa.array(arr, pa.float64()))
        return index, out


def _cold_start_advice(explainer: Any, name: str, model: Any, data: "RecData", out_dir: Path, context: dict) -> str:
    """What to do about skipped pairs: advise --cold-start explain only if the explainer can
    explain the first skipped pair (tried on that one pair), else say why it cannot."""
    import pandas as pd
    import pyarrow.parquet as pq

    first = None
    for part in sorted(p for p in out_dir.iterdir() if PART_RE.match(p.name)):
        t = pq.read_table(part, columns=[USER, ITEM, "status", *[c for c in data.context_names
                                                                  if c in pq.read_schema(part).names]]).to_pandas()
        hit = t[(t["status"] == "skipped") & t[USER].notna() & t[ITEM].notna()]
        if len(hit):
            first = hit.drop(columns="status").head(1).reset_index(drop=True)
            break
    if first is None:  # only null ids were skipped: no option explains those
        return "they have no user or no item id, which no option can explain"
    try:
        probe = data.with_context(first, context) if data.context_names else first
        explainer.explain(model, data, probe)
    except (WhyrecError, KeyError, ValueError) as exc:
        return (f"{name} cannot explain pairs whose user or item the dataset does not know ({str(exc).splitlines()[0][:160]}); "
                "retrain with those users and items, or use an explainer that handles unknown ids")
    return "rerun into a new --out with --cold-start explain to explain them"


def _pseudonymous_users(table: "pa.Table", data: "RecData") -> "pa.Table":
    """With pseudonymised data (whyrec.privacy) a pairs file holds the ids people know; the
    output must not, so the user column becomes each id's pseudonym before anything else."""
    if data.user_alias is None:
        return table
    import pyarrow as pa

    fake = [None if u is None else str(data.user_alias(u)) for u in table.column(USER).to_pylist()]
    return table.set_column(table.schema.get_field_index(USER), USER, pa.array(fake, pa.string()))


def _id_frame(table: "pa.Table", data: "RecData") -> "pd.DataFrame":
    """USER/ITEM as a DataFrame with the dataset's id dtypes, plus known-id and null-id masks."""
    import numpy as np
    import pandas as pd

    out = {}
    null = np.zeros(table.num_rows, bool)
    for col, index in ((USER, data.users.index), (ITEM, data.items.index)):
        values = table.column(col).to_pandas()
        isnull = values.isna().to_numpy()
        null |= isnull
        if values.dtype.kind in "fiu" and index.dtype.kind in "iu":
            # Parquet writers turn int ids with nulls into floats: compare as ints where integral.
            ok = ~isnull & (values.fillna(0).to_numpy() == np.floor(values.fillna(0).to_numpy()))
            conv = pd.Series(np.where(ok, values.fillna(0), 0).astype(index.dtype), index=values.index)
            known = ok & conv.isin(index).to_numpy()
            out[col] = conv
        else:
            known = ~isnull & values.isin(index).to_numpy()
            out[col] = values
        out[f"_known_{'user' if col == USER else 'item'}"] = known
    out["_null"] = null
    for c in data.context_names:  # context travels with its row
        if c in table.column_names:
            out[c] = table.column(c).to_pandas()
    return pd.DataFrame(out)


def _check_explanation(expl: Any, pairs: "pd.DataFrame", layout: dict, name: str) -> None:
    import numpy as np

    if len(expl.pairs) != len(pairs):
        raise UnsupportedError(f"explainer {name!r} returned {len(expl.pairs)} rows for {len(pairs)} pairs; batch explanation needs one row per pair")
    if not (np.array_equal(expl.pairs[USER].to_numpy(), pairs[USER].to_numpy())
            and np.array_equal(expl.pairs[ITEM].to_numpy(), pairs[ITEM].to_numpy())):
        raise UnsupportedError(f"explainer {name!r} returned its pairs in another order; batch explanation needs input order")
    got_f = [] if expl.attributions is None else list(expl.attributions.columns)
    got_g = [] if expl.field_attributions is None else list(expl.field_attributions.columns)
    if sorted(got_f) != sorted(layout["features"]) or sorted(got_g) != sorted(layout["fields"]):
        raise UnsupportedError(
            f"explainer {name!r} returned attribution columns {got_f} / fields {got_g} for one chunk but "
            f"{layout['features']} / {layout['fields']} for the first pair; batch output needs the same columns for every pair"
        )


# -- reading the pairs file ------------------------------------------------------------------
def _open_pairs(path: Path) -> Any:
    import pyarrow as pa
    import pyarrow.parquet as pq

    if not path.is_file():
        raise DataError(f"{path}: no such pairs file; pass a Parquet file with columns {USER!r} and {ITEM!r}")
    try:
        # buffer_size streams column chunks instead of loading whole row groups at once.
        return pq.ParquetFile(path, buffer_size=1 << 20, pre_buffer=False)
    except (pa.ArrowException, OSError) as exc:
        raise DataError(f"{path}: not a readable Parquet file ({exc}); write the pairs with pandas.DataFrame.to_parquet") from exc


def _check_pairs_schema(path: Path, schema: "pa.Schema", data: "RecData", context: dict | None = None) -> None:
    import pyarrow as pa

    names = list(schema.names)
    missing = [c for c in (USER, ITEM) if c not in names]
    if missing:
        raise DataError(f"{path}: pairs file has no column {', '.join(repr(c) for c in missing)} (columns: {names}); "
                        f"explain-batch needs one row per pair with columns {USER!r} and {ITEM!r}")
    lacking = [c for c in data.context_names if c not in names and c not in (context or {})]
    if lacking:
        raise DataError(f"{path}: pairs file has no context column {lacking[0]!r}, which dataset {data.name!r} declares "
                        f"(context features: {data.context_names}); add it with each pair's own context, or state one "
                        f"value for every row with --context {lacking[0]}=VALUE")
    for c in context or {}:
        if c in names:
            raise DataError(f"{path}: --context {c}=... would override the file's own column {c!r}; drop one of them")
    clash = [c for c in names if c in OUTPUT_COLUMNS or c.startswith((ATTR, FIELD))]
    if clash:
        raise DataError(f"{path}: column(s) {clash} clash with explain-batch output columns {list(OUTPUT_COLUMNS)}; rename them")
    for col, index, what in ((USER, data.users.index, "user"), (ITEM, data.items.index, "item")):
        if col == USER and data.user_alias is not None:
            continue  # pseudonymised: any id type is mapped to its pseudonym per chunk
        t = schema.field(col).type
        col_num = pa.types.is_integer(t) or pa.types.is_floating(t)
        idx_num = index.dtype.kind in "iuf"
        if col_num != idx_num:
            holds = "numbers" if col_num else "text"
            ids = "numbers" if idx_num else "text"
            raise DataError(f"{path}: column {col!r} holds {holds} ({t}) but dataset {data.name!r} {what} ids are {ids} "
                            f"({index.dtype}, e.g. {list(index[:3])}); cast the column to the ids' type")


def _iter_chunks(pf: Any, chunk_rows: int) -> "Iterator[pa.Table]":
    """Fixed-size chunks (the last one shorter), independent of the file's row groups."""
    import pyarrow as pa

    buf: list = []
    n = 0
    for rb in pf.iter_batches(batch_size=min(chunk_rows, 65_536), use_threads=False):
        while rb.num_rows:
            take = min(chunk_rows - n, rb.num_rows)
            buf.append(rb.slice(0, take))
            n += take
            rb = rb.slice(take)
            if n == chunk_rows:
                yield pa.Table.from_batches(buf).combine_chunks()
                buf, n = [], 0
    if n:
        yield pa.Table.from_batches(buf).combine_chunks()


def _chunk_hash(table: "pa.Table") -> str:
    import pandas as pd

    ids = table.select([USER, ITEM]).to_pandas()
    return hashlib.sha256(pd.util.hash_pandas_object(ids, index=False).to_numpy().tobytes()).hexdigest()


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def dir_sha256(path: Path) -> str:
    """Hash of every file under ``path`` (names and contents): identifies a saved model."""
    h = hashlib.sha256()
    for p in sorted(q for q in Path(path).rglob("*") if q.is_file() and not q.name.endswith(".tmp")):
        h.update(str(p.relative_to(path)).encode() + b"\0" + file_sha256(p).encode())
    return h.hexdigest()


# -- the job and its output directory -------------------------------------------------------
def _probe_layout(model: Any, data: "RecData", explainer: Any, name: str) -> dict:
    """Explain one known pair to learn the explainer's output columns before any chunk runs."""
    import pandas as pd

    if data.train is not None and len(data.train):
        probe = data.train.iloc[:1].reset_index(drop=True)  # a whole row: context included
    else:
        probe = data.user_pairs(data.user_ids[0], data.item_ids[:1])
    expl = explainer.explain(model, data, probe)
    return {
        "explainer": name,
        "features": [] if expl.attributions is None else [str(c) for c in expl.attributions.columns],
        "fields": [] if expl.field_attributions is None else [str(c) for c in expl.field_attributions.columns],
        "method": getattr(expl, "method", name),
        "additive": bool(getattr(expl, "additive", False)),
    }


def _fingerprint(job: dict) -> str:
    keys = ("format", "pairs_sha256", "rows", "chunk_rows", "cold_start", "model", "explainer", "columns")
    ident = {k: job[k] for k in keys}
    if job.get("context"):  # stated context values change every attribution (absent: as before)
        ident["context"] = job["context"]
    return hashlib.sha256(json.dumps(ident, sort_keys=True, default=str).encode()).hexdigest()


def _job_diff(old: dict, new: dict) -> list[str]:
    out = []
    labels = {"pairs_sha256": "pairs file (sha256)", "rows": "input rows", "chunk_rows": "chunk_rows",
              "cold_start": "cold_start", "model": "model", "explainer": "explainer", "columns": "output columns",
              "format": "format version"}
    def short(v: Any) -> Any:
        return v[:12] if isinstance(v, str) and len(v) == 64 else v  # a sha256: its prefix is enough

    def diff(label: str, a: Any, b: Any) -> None:
        if isinstance(a, dict) and isinstance(b, dict):  # name only the keys that differ
            for key in sorted(set(a) | set(b), key=str):
                if a.get(key) != b.get(key):
                    diff(f"{label} {key}", a.get(key), b.get(key))
        elif a != b:
            out.append(f"{label}: {short(a)!r} there, {short(b)!r} now")

    for k, label in labels.items():
        diff(label, old.get(k), new.get(k))
    return out


def _prepare_out_dir(out_dir: Path, job: dict) -> dict | None:
    """Refuse a directory that is not this job's; return the stored job when resuming."""
    existing = [p.name for p in out_dir.iterdir() if p.name != LOCK_FILE]
    jf = out_dir / JOB_FILE
    if not jf.exists():
        if existing:
            raise DataError(f"{out_dir}: directory is not empty ({', '.join(sorted(existing)[:5])}{', ...' if len(existing) > 5 else ''}) "
                            f"and holds no explain-batch job ({JOB_FILE}); choose an empty or new --out directory")
        return None
    try:
        old = json.loads(jf.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise DataError(f"{jf}: unreadable ({exc}); this is not an explain-batch output directory, choose another --out") from exc
    if old.get("fingerprint") != job["fingerprint"]:
        diff = "; ".join(_job_diff(old, job)) or "fingerprint differs"
        raise DataError(f"{out_dir}: holds the parts of a different explain-batch job ({diff}); "
                        f"refusing to mix them: choose a new --out directory or delete {out_dir}")
    return old


class _DirLock:
    """An exclusive flock on OUT/_job.lock: released by the OS even when the process is killed."""

    def __init__(self, out_dir: Path) -> None:
        self.path = out_dir / LOCK_FILE
        self.fh = None

    def __enter__(self) -> "_DirLock":
        import fcntl

        self.fh = open(self.path, "a+")
        try:
            fcntl.flock(self.fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self.fh.close()
            raise DataError(f"{self.path.parent}: another explain-batch is writing this directory; wait for it or choose another --out") from None
        return self

    def __exit__(self, *exc: Any) -> None:
        import fcntl

        fcntl.flock(self.fh.fileno(), fcntl.LOCK_UN)
        self.fh.close()


def _part_meta(path: Path) -> dict | None:
    """The batch metadata of a finished part, or None if it is unreadable."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        md = pq.read_metadata(path)
        meta = json.loads((md.metadata or {})[META_KEY])
        meta["num_rows"] = md.num_rows
        return meta
    except (pa.ArrowException, OSError, KeyError, ValueError):
        return None


def _write_part(out_dir: Path, index: int, table: "pa.Table", job: dict, input_hash: str) -> dict:
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    counts = {s: 0 for s in ("explained", "cold_start", "skipped")}
    vc = pc.value_counts(table.column("status"))
    for entry in vc.to_pylist():
        counts[entry["values"]] = entry["counts"]
    unk = table.column("unknown")
    counts["unknown_user"] = int(pc.sum(pc.match_substring(unk, "user")).as_py() or 0)
    counts["unknown_item"] = int(pc.sum(pc.match_substring(unk, "item")).as_py() or 0)
    meta = {"job": job["fingerprint"], "part": index, "first_row": index * job["chunk_rows"],
            "rows": table.num_rows, "input_sha256": input_hash, "counts": counts}
    table = table.replace_schema_metadata({**(table.schema.metadata or {}), META_KEY: json.dumps(meta).encode()})
    with atomic_path(out_dir / part_name(index)) as tmp:
        pq.write_table(table, tmp)
    return meta


def _clean_temp_files(out_dir: Path) -> None:
    # Leftovers of atomic writes interrupted by a kill: never presented as parts.
    for p in out_dir.glob(".part-*.tmp"):
        p.unlink(missing_ok=True)
    for p in out_dir.glob(f".{SUCCESS_FILE}.*.tmp"):
        p.unlink(missing_ok=True)


# -- the engine ------------------------------------------------------------------------------
def explain_pairs_batched(
    model: Any,
    data: "RecData",
    explainer: Any,
    pairs_path: str | os.PathLike,
    out_dir: str | os.PathLike,
    executor: Any = None,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    cold_start: str = "skip",
    *,
    explainer_name: str | None = None,
    explainer_params: dict | None = None,
    model_name: str | None = None,
    model_fingerprint: str | None = None,
    show_progress: bool = True,
    context: dict | None = None,
) -> BatchResult:
    """Explain every (user, item) row of the Parquet file ``pairs_path`` into ``out_dir``.

    model, data, explainer: a fitted model, its RecData and an explainer object
        (``explainer.explain(model, data, pairs) -> Explanation``).
    executor: anything with ``map_batches(fn, batches)`` yielding ``fn(batch)`` in order
        (default: the built-in local executor).
    chunk_rows: rows per chunk and per part file; peak memory grows with it (times the
        executor's in-flight window), not with the input.
    cold_start: "skip" (unknown users/items are written with status "skipped" and no
        attributions) or "explain" (explained like the rest, status "cold_start"; the
        model sees missing features).
    model_fingerprint: identifies the model's weights in the job fingerprint (the CLI passes a
        hash of the saved model directory); without it the model's name, parameters, features
        and data hash identify it.
    context: values of context columns the pairs file lacks, the same for every row
        (``--context key=value``); a context column that is neither in the file nor here is
        an error, never filled in silently.

    Rerunning with the same arguments resumes: finished parts are kept, the rest redone.
    """
    pairs_path, out_dir = Path(pairs_path), Path(out_dir)
    if cold_start not in COLD_START:
        raise DataError(f"cold_start must be one of {list(COLD_START)}, got {cold_start!r}")
    if not isinstance(chunk_rows, int) or chunk_rows < 1:
        raise DataError(f"chunk_rows must be a positive integer, got {chunk_rows!r}")
    if executor is None:
        from .builtins.executors import LocalExecutor

        executor = LocalExecutor()
    explainer_name = explainer_name or getattr(explainer, "component_name", None) or type(explainer).__name__
    model_name = model_name or getattr(model, "name", type(model).__name__)
    if hasattr(explainer, "supports") and not explainer.supports(model):
        raise UnsupportedError(f"explainer {explainer_name!r} does not support model {model_name!r}")

    pf = _open_pairs(pairs_path)
    schema = pf.schema_arrow
    context = {c: plain(v) for c, v in data.context_values(context).items()}  # did-you-mean and types, before anything runs
    _check_pairs_schema(pairs_path, schema, data, context)
    n_rows = pf.metadata.num_rows
    if n_rows == 0:
        raise DataError(f"{pairs_path}: pairs file has no rows; explain-batch needs at least one (user, item) pair")
    n_parts = math.ceil(n_rows / chunk_rows)
    layout = _probe_layout(model, data, explainer, explainer_name)
    layout["chunk_rows"] = chunk_rows
    columns = ["row", *schema.names, "status", "unknown", "output_value", "base_value", "additivity_error",
               *(ATTR + f for f in layout["features"]), *(FIELD + f for f in layout["fields"])]
    job = {
        "format": FORMAT_VERSION,
        "pairs": str(pairs_path.resolve()),
        "pairs_sha256": file_sha256(pairs_path),
        "rows": n_rows,
        "parts": n_parts,
        "chunk_rows": chunk_rows,
        "cold_start": cold_start,
        "model": {"name": model_name, "fingerprint": model_fingerprint or _model_identity(model, data)},
        "explainer": {"name": explainer_name, "params": explainer_params or {}},
        "method": layout["method"],
        "columns": columns,
        "context": context,
    }
    job["fingerprint"] = _fingerprint(job)

    t0 = time.perf_counter()
    if out_dir.exists() and not out_dir.is_dir():
        raise DataError(f"{out_dir}: exists and is not a directory; pass a directory for --out")
    if out_dir.exists():
        _prepare_out_dir(out_dir, job)  # refuse a foreign directory before touching it
    out_dir.mkdir(parents=True, exist_ok=True)
    with _DirLock(out_dir):  # and check again under the lock: no other writer slips in between
        old = _prepare_out_dir(out_dir, job)
        _clean_temp_files(out_dir)
        if old is None:
            write_json(out_dir / JOB_FILE, job)
        try:
            return _run_job(out_dir, job, pf, executor, model, data, explainer, cold_start, layout, columns,
                            n_rows, n_parts, t0, show_progress)
        except BaseException:
            if old is None:
                _unclaim(out_dir)  # still under the lock: no other writer sees a half-released claim
            raise


def _unclaim(out_dir: Path) -> None:
    """A new job that failed before writing any part gives up its claim on the directory, so a
    rerun with other options (e.g. --cold-start skip, as the error advises) is not refused as
    "a different job". Called under the lock; the lock file stays (an empty lock file claims
    nothing, and removing it could let two writers lock different files)."""
    try:
        if any(PART_RE.match(p.name) for p in out_dir.iterdir()):
            return  # finished parts: keep the job file, a rerun with the same arguments resumes
        _clean_temp_files(out_dir)
        (out_dir / JOB_FILE).unlink(missing_ok=True)
    except OSError:
        pass


def _run_job(out_dir: Path, job: dict, pf: Any, executor: Any, model: Any, data: "RecData", explainer: Any,
             cold_start: str, layout: dict, columns: list[str], n_rows: int, n_parts: int, t0: float,
             show_progress: bool) -> BatchResult:
    """Explain the chunks not yet done and write ``_SUCCESS`` (the caller holds the lock)."""
    from .progress import progress

    chunk_rows = job["chunk_rows"]
    success = out_dir / SUCCESS_FILE
    metas: dict[int, dict] = {}
    for p in out_dir.iterdir():
        m = PART_RE.match(p.name)
        if m is None:
            continue
        idx = int(m.group(1))
        meta = _part_meta(p)
        if meta is not None and meta.get("job") not in (None, job["fingerprint"]):
            raise DataError(f"{p}: part of a different explain-batch job; refusing to mix, choose a new --out directory")
        if meta is None or idx >= n_parts or meta.get("part") != idx:
            p.unlink()  # unreadable or out of place: redo it
            continue
        metas[idx] = meta

    stats = {"reused": 0, "written": 0, "rows_written": 0}
    bar = progress(total=n_rows, desc="explain-batch", unit="rows", unit_scale=True) if show_progress else None

    def todo() -> "Iterator[tuple[int, pa.Table]]":
        for i, chunk in enumerate(_iter_chunks(pf, chunk_rows)):
            h = _chunk_hash(chunk)
            meta = metas.get(i)
            if meta is not None and meta["input_sha256"] == h and meta["num_rows"] == meta["rows"] == chunk.num_rows:
                stats["reused"] += 1
                if bar is not None:
                    bar.update(chunk.num_rows)
                continue
            if meta is not None:  # stale part: take it away before anything else happens
                (out_dir / part_name(i)).unlink(missing_ok=True)
                metas.pop(i)
            success.unlink(missing_ok=True)
            hashes[i] = h
            yield i, chunk

    hashes: dict[int, str] = {}
    fn = ChunkExplainer(model, data, explainer, cold_start, layout, job.get("context"))
    results = executor.map_batches(fn, todo())
    try:
        for i, table in results:
            if table.schema.names != columns:
                raise UnsupportedError(f"chunk {i}: output columns {table.schema.names} differ from the job's {columns}")
            metas[i] = _write_part(out_dir, i, table, job, hashes.pop(i))
            metas[i]["num_rows"] = table.num_rows
            stats["written"] += 1
            stats["rows_written"] += table.num_rows
            if bar is not None:
                bar.update(table.num_rows)
    finally:
        close = getattr(results, "close", None)
        if close is not None:  # stop a cluster executor's workers now, not at garbage collection
            close()
        if bar is not None:
            bar.close()

    missing = [i for i in range(n_parts) if i not in metas]
    if missing:
        raise WhyrecError(f"{out_dir}: parts {missing[:10]} were not produced; rerun to resume")
    seconds = time.perf_counter() - t0
    manifest = _success_manifest(out_dir, job, metas, n_parts, seconds, stats)
    write_json(success, manifest)
    return BatchResult(out_dir=out_dir, rows=n_rows, parts=n_parts, counts=manifest["counts"],
                       parts_reused=stats["reused"], parts_written=stats["written"],
                       rows_written=stats["rows_written"], seconds=seconds, manifest=manifest)


def _model_identity(model: Any, data: "RecData") -> str:
    ident = {"name": getattr(model, "name", type(model).__name__), "class": f"{type(model).__module__}.{type(model).__qualname__}",
             "params": getattr(model, "params", None), "features": list(getattr(model, "feature_names", []) or []),
             "data_hash": data.data_hash()}
    return hashlib.sha256(json.dumps(ident, sort_keys=True, default=str).encode()).hexdigest()


def _success_manifest(out_dir: Path, job: dict, metas: dict[int, dict], n_parts: int, seconds: float, stats: dict) -> dict:
    counts = {k: 0 for k in ("explained", "cold_start", "skipped", "unknown_user", "unknown_item")}
    parts = []
    for i in range(n_parts):
        m = metas[i]
        for k, v in m["counts"].items():
            counts[k] = counts.get(k, 0) + int(v)
        parts.append({"file": part_name(i), "first_row": m["first_row"], "rows": m["num_rows"],
                      "input_sha256": m["input_sha256"], "sha256": file_sha256(out_dir / part_name(i))})
    rows_out = sum(p["rows"] for p in parts)
    if rows_out != job["rows"]:
        raise WhyrecError(f"{out_dir}: parts hold {rows_out} rows for {job['rows']} input rows; delete the directory and rerun")
    return {
        "job": job["fingerprint"], "format": FORMAT_VERSION, "pairs": job["pairs"], "pairs_sha256": job["pairs_sha256"],
        "model": job["model"], "explainer": job["explainer"], "method": job["method"], "cold_start": job["cold_start"],
        "chunk_rows": job["chunk_rows"], "rows_in": job["rows"], "rows_out": rows_out, "counts": counts,
        "parts": parts, "columns": job["columns"], "last_run": {
            "seconds": round(seconds, 3), "parts_written": stats["written"], "parts_reused": stats["reused"],
            "rows_written": stats["rows_written"],
            "rows_per_s": round(stats["rows_written"] / seconds, 1) if seconds > 0 else None,
        },
    }


def read_batch_output(out_dir: str | os.PathLike, columns: list[str] | None = None) -> "pd.DataFrame":
    """Read a finished explain-batch directory back (refuses an unfinished one)."""
    import pandas as pd
    import pyarrow.parquet as pq

    out_dir = Path(out_dir)
    success = out_dir / SUCCESS_FILE
    if not success.exists():
        raise RunDirError(f"{out_dir}: no {SUCCESS_FILE}; the explain-batch job is unfinished, rerun it to resume")
    manifest = json.loads(success.read_text())
    frames = [pq.read_table(out_dir / p["file"], columns=columns).to_pandas() for p in manifest["parts"]]
    if not frames:
        return pd.DataFrame(columns=columns or manifest["columns"])
    return pd.concat(frames, ignore_index=True)


# -- the command -----------------------------------------------------------------------------
def _parse_opts(opts: tuple[str, ...], flag: str) -> dict:
    import tomllib

    out = {}
    for opt in opts:
        key, sep, raw = opt.partition("=")
        if not sep or not key.strip():
            raise DataError(f"{flag} {opt!r}: expected KEY=VALUE (e.g. {flag} num_cpus=2)")
        try:  # TOML scalars, as in registry.toml: 2, 1.5, true, "auto"
            value = tomllib.loads(f"v = {raw}")["v"]
        except tomllib.TOMLDecodeError:
            value = raw
        out[key.strip()] = value
    return out


def _check_opts(host: Any, kind: str, name: str, params: dict, flag: str) -> None:
    from .errors import RegistryError
    from .registry import check_params

    from .plugins import resolve_factory

    comp = host.get(kind, name, where=f"{flag}: ")
    target = resolve_factory(comp.factory)
    if params and isinstance(target, type) and target.__init__ is object.__init__:
        # object.__init__'s signature reads as "**kwargs": such a component takes no parameters at all
        raise RegistryError(f"{flag} {name}: {flag}-opt: {name!r} takes no parameters, got {', '.join(map(repr, params))}")
    try:
        check_params(comp.factory, name, params, f"{flag}-opt", key_where=f"{flag}-opt ")
    except RegistryError as exc:
        raise RegistryError(f"{flag} {name}: {exc}") from exc


def _create(host: Any, kind: str, name: str, params: dict, flag: str) -> Any:
    comp = host.get(kind, name, where=f"{flag}: ")
    try:
        return comp.create(**params)
    except WhyrecError as exc:
        raise type(exc)(f"{flag} {name}: {exc}") from exc
    except (TypeError, ValueError) as exc:
        raise DataError(f"{flag} {name}: rejected its parameters {params}: {exc}") from exc


@click.command("explain-batch")
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.option("--pairs", "pairs", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Parquet file with one (user, item) pair per row (other columns are kept).")
@click.option("--out", "out", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Output directory of part files; rerun with the same arguments to resume.")
@click.option("--executor", default=None, help="Registered executor: local (built in), ray (whyrec-ray). Default: the run's executor.")
@click.option("--executor-opt", "executor_opts", multiple=True, metavar="KEY=VALUE",
              help="Executor parameter (repeatable), e.g. --executor-opt address=auto --executor-opt num_cpus=4.")
@click.option("--chunk-rows", type=click.IntRange(min=1), default=DEFAULT_CHUNK_ROWS, show_default=True,
              help="Rows per chunk and per part file (bounds memory).")
@click.option("--explainer", "explainer_name", default="tree-shap", show_default=True, help="Registered explainer.")
@click.option("--explainer-opt", "explainer_opts", multiple=True, metavar="KEY=VALUE",
              help="Explainer parameter (repeatable), over the run's registry entry, e.g. --explainer-opt n_reasons=0.")
@click.option("--model", "model_name", default=None, help="Model of the run (default: the first the explainer supports).")
@click.option("--cold-start", type=click.Choice(COLD_START), default="skip", show_default=True,
              help="Pairs with a user or item the dataset does not know: skip (kept, status 'skipped') or explain.")
@click.option("--context", "context", multiple=True, metavar="KEY=VALUE",
              help="A context column the pairs file lacks, the same for every row (repeatable). A context column "
                   "that is neither in the file nor stated is an error.")
def explain_batch_command(run_dir: Path, pairs: Path, out: Path, executor: str | None, executor_opts: tuple[str, ...],
                          chunk_rows: int, explainer_name: str, explainer_opts: tuple[str, ...], model_name: str | None,
                          cold_start: str, context: tuple[str, ...]) -> None:
    """Explain every (user, item) pair of PAIRS with a model of RUN_DIR, in resumable chunks."""
    from .data import parse_context_options
    from .rundir import Run

    stated = parse_context_options(context)
    run = Run(run_dir)
    warning = run.incomplete_warning()
    if warning:
        click.echo(warning, err=True)
    host = run.host
    explainer_params = dict(next((e.get("params", {}) for e in run.spec("explainers") if e.get("use") == explainer_name), {}))
    explainer_params.update(_parse_opts(explainer_opts, "--explainer-opt"))
    if executor is None:
        spec = (run.spec("executor") or [{"use": "local", "params": {}}])[0]
        executor, params = spec["use"], dict(spec.get("params", {}))
    else:
        params = {}
    params.update(_parse_opts(executor_opts, "--executor-opt"))
    # Names and types of every option against the components' signatures before anything runs:
    # `--explainer-opt tolerance=abc` is one line here, not a ValueError deep in a chunk.
    _check_opts(host, "explainers", explainer_name, explainer_params, "--explainer")
    _check_opts(host, "executors", executor, params, "--executor")
    explainer = _create(host, "explainers", explainer_name, explainer_params, "--explainer")
    exe = _create(host, "executors", executor, params, "--executor")

    data = run.load_data()
    names = run.model_names()
    if model_name is None:
        for name in names:
            if explainer.supports(run.load_model(name)):
                model_name = name
                break
        else:
            raise UnsupportedError(f"{run.path}: explainer {explainer_name!r} supports none of the run's models ({', '.join(names) or 'none'}); "
                                   f"pass --explainer with one that does")
    model = run.load_model(model_name)
    stage = next((s for s in run.stages() if s.get("model") == model_name and s.get("model_dir")), None)
    fingerprint = dir_sha256(run.path / stage["model_dir"]) if stage else None

    try:
        res = explain_pairs_batched(model, data, explainer, pairs, out, executor=exe, chunk_rows=chunk_rows,
                                    cold_start=cold_start, explainer_name=explainer_name,
                                    explainer_params=explainer_params, model_name=model_name,
                                    model_fingerprint=fingerprint, context=stated)
    finally:
        close = getattr(exe, "close", None)
        if callable(close):
            close()
    c = res.counts
    click.echo(f"explained {res.rows} pairs with {explainer_name} on {model_name} into {res.out_dir} "
               f"({res.parts} parts: {res.parts_written} written, {res.parts_reused} already done)")
    click.echo(f"  explained {c['explained']}, cold start {c['cold_start']}, skipped {c['skipped']} "
               f"(rows with unknown user {c['unknown_user']}, unknown item {c['unknown_item']})")
    if res.rows_written:
        click.echo(f"  {res.rows_written} rows in {res.seconds:.1f}s ({res.rows_per_s:,.0f} rows/s)")
    if c["skipped"] and c["skipped"] == res.rows:
        click.echo(f"warning: every pair ({res.rows}) was skipped: none names a user and an item of the run's dataset "
                   f"(check that the pairs file holds the dataset's ids, of the same type)", err=True)
    if c["skipped"]:
        click.echo(f"  {c['skipped']} pairs were skipped (status 'skipped'); "
                   + _cold_start_advice(explainer, explainer_name, model, data, res.out_dir, stated))
