"""Explanation: attributions for a set of explained (user, item) pairs.

Saved as Parquet in long format with a JSON sidecar (explanation.json); never pickled.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .atomic import write_json, write_parquet
from .errors import RunDirError
from .schema import FeatureSchema

if TYPE_CHECKING:
    import pandas as pd


# The keys of ``Explanation.row``; a ``details`` name may not reuse one.
ROW_KEYS = frozenset({"method", "model", "output_value", "base_value", "attributions", "field_attributions",
                      "additivity_error", "reasons"})


@dataclass
class Explanation:
    """Attributions of one method for one model over the rows of ``pairs``.

    pairs: one row per explained pair, columns user, item, optional rank, ``output_value`` (the
        model output being explained, e.g. the margin), ``base_value`` and ``additivity_error``
        (|base + sum(attributions) - output|, NaN where the method promises no additivity).
    attributions: per-feature attributions, one row per pair (same index), columns = features.
        None for methods that only attribute to fields.
    field_attributions: one column per field (or finer group); summed from ``attributions``
        by the schema when not given.
    feature_values: the feature values explained (for reasons and beeswarm plots).
    extras: method-specific tables (e.g. attention weights over history positions), long format
        with a ``pair`` column indexing ``pairs``.
    reasons: per pair, short sentences in words.
    details: per-pair structured details, by name: ``details[name][i]`` is a JSON-able list of
        dicts for pair i (e.g. ``"paths"`` of kg-paths); ``row(i)`` carries each under its name,
        and they are saved as ``details.json``.
    """

    method: str
    model: str
    pairs: "pd.DataFrame"
    schema: FeatureSchema
    attributions: "pd.DataFrame | None" = None
    field_attributions: "pd.DataFrame | None" = None
    feature_values: "pd.DataFrame | None" = None
    params: dict = field(default_factory=dict)
    additive: bool = True
    extras: dict = field(default_factory=dict)
    reasons: list[list[str]] | None = None
    summary: dict = field(default_factory=dict)
    details: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        import numpy as np

        self.pairs = self.pairs.reset_index(drop=True)
        n = len(self.pairs)
        for name, per_pair in self.details.items():
            if name in ROW_KEYS:
                raise ValueError(f"details {name!r} clashes with a key of row(); name it otherwise")
            if len(per_pair) != n:
                raise ValueError(f"details {name!r} has {len(per_pair)} entries for {n} pairs")
        for name in ("attributions", "field_attributions", "feature_values"):
            df = getattr(self, name)
            if df is not None:
                if len(df) != n:
                    raise ValueError(f"{name} has {len(df)} rows for {n} pairs")
                setattr(self, name, df.reset_index(drop=True))
        if self.field_attributions is None and self.attributions is not None:
            groups = self.schema.select([c for c in self.attributions.columns if c in self.schema]).groups()
            import pandas as pd

            self.field_attributions = pd.DataFrame(
                {g: self.attributions[cols].sum(axis=1) for g, cols in groups.items()}, index=self.attributions.index
            )
        if "additivity_error" not in self.pairs.columns:
            if self.additive and {"output_value", "base_value"} <= set(self.pairs.columns):
                attr = self.attributions if self.attributions is not None else self.field_attributions
                total = attr.to_numpy(dtype=float).sum(axis=1)
                self.pairs["additivity_error"] = np.abs(
                    self.pairs["base_value"].to_numpy(float) + total - self.pairs["output_value"].to_numpy(float)
                )
            else:
                self.pairs["additivity_error"] = np.nan

    # -- queries ------------------------------------------------------------------------
    @property
    def max_additivity_error(self) -> float | None:
        import numpy as np

        err = self.pairs["additivity_error"].to_numpy(float)
        return None if np.all(np.isnan(err)) else float(np.nanmax(err))

    def row(self, i: int) -> dict:
        """The explanation of pair ``i`` in the CLI's JSON contract."""
        import math

        p = self.pairs.iloc[i]
        err = float(p["additivity_error"])
        out = {
            "method": self.method,
            "model": self.model,
            "output_value": float(p["output_value"]) if "output_value" in p else None,
            "base_value": float(p["base_value"]) if "base_value" in p else None,
            "attributions": {} if self.attributions is None else {k: float(v) for k, v in self.attributions.iloc[i].items()},
            "field_attributions": {} if self.field_attributions is None else {k: float(v) for k, v in self.field_attributions.iloc[i].items()},
            "additivity_error": None if math.isnan(err) else err,
            "reasons": [] if self.reasons is None else list(self.reasons[i]),
        }
        for name, per_pair in self.details.items():
            out[name] = list(per_pair[i])
        return out

    def find(self, user: Any, item: Any) -> int | None:
        m = (self.pairs["user"] == user) & (self.pairs["item"] == item)
        idx = m.to_numpy().nonzero()[0]
        return int(idx[0]) if len(idx) else None

    def difference(self, i: int, j: int) -> "pd.Series":
        """Rank-aware explanation: per-feature attribution of pair i minus pair j.

        For additive methods the sum equals output(i) - output(j) - (base(i) - base(j))."""
        attr = self.attributions if self.attributions is not None else self.field_attributions
        return (attr.iloc[i] - attr.iloc[j]).sort_values(key=abs, ascending=False)

    # -- persistence --------------------------------------------------------------------
    def save(self, directory: str | Path) -> list[Path]:
        import pandas as pd

        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        written = [write_parquet(d / "pairs.parquet", self.pairs)]
        if self.attributions is not None:
            long = self.attributions.rename_axis("pair").reset_index().melt(id_vars="pair", var_name="feature", value_name="attribution")
            long["field"] = [self.schema[f].field if f in self.schema else "" for f in long["feature"]]
            if self.feature_values is not None:
                vals = self.feature_values.rename_axis("pair").reset_index().melt(id_vars="pair", var_name="feature", value_name="value")
                vals["value"] = vals["value"].astype(str)
                long = long.merge(vals, on=["pair", "feature"], how="left")
            written.append(write_parquet(d / "attributions.parquet", long))
        if self.field_attributions is not None:
            fl = self.field_attributions.rename_axis("pair").reset_index().melt(id_vars="pair", var_name="field", value_name="attribution")
            written.append(write_parquet(d / "field_attributions.parquet", fl))
        for name, table in self.extras.items():
            written.append(write_parquet(d / f"extra_{name}.parquet", pd.DataFrame(table)))
        if self.details:
            written.append(write_json(d / "details.json", self.details))
        meta = {
            "method": self.method,
            "model": self.model,
            "params": self.params,
            "additive": self.additive,
            "n_pairs": len(self.pairs),
            "max_additivity_error": self.max_additivity_error,
            "features": None if self.attributions is None else list(self.attributions.columns),
            "fields": None if self.field_attributions is None else list(self.field_attributions.columns),
            "feature_value_columns": None if self.feature_values is None else list(self.feature_values.columns),
            "schema": self.schema.to_dict(),
            "extras": sorted(self.extras),
            "details": sorted(self.details),
            "reasons": self.reasons,
            "summary": self.summary,
        }
        written.append(write_json(d / "explanation.json", meta))
        return written

    @classmethod
    def load(cls, directory: str | Path) -> "Explanation":
        import pandas as pd

        d = Path(directory)
        side = d / "explanation.json"
        if not side.exists():
            raise RunDirError(f"{d}: no explanation.json; rerun the pipeline's explainers stage")
        try:
            meta = json.loads(side.read_text())
            pairs = pd.read_parquet(d / "pairs.parquet")
            attr = vals = fattr = None
            if meta["features"] is not None:
                long = pd.read_parquet(d / "attributions.parquet")
                attr = long.pivot(index="pair", columns="feature", values="attribution")[meta["features"]]
                attr.columns.name = None
                if "value" in long.columns:
                    vals = long.pivot(index="pair", columns="feature", values="value")[meta["features"]]
                    vals.columns.name = None
            if meta["fields"] is not None:
                fl = pd.read_parquet(d / "field_attributions.parquet")
                fattr = fl.pivot(index="pair", columns="field", values="attribution").reindex(range(len(pairs)))[meta["fields"]]
                fattr.columns.name = None
            extras = {n: pd.read_parquet(d / f"extra_{n}.parquet") for n in meta.get("extras", [])}
            details = json.loads((d / "details.json").read_text()) if meta.get("details") else {}
        except (OSError, KeyError, ValueError) as exc:
            raise RunDirError(f"{d}: explanation artifacts are missing or corrupted ({exc}); rerun the explainers stage") from exc
        return cls(
            method=meta["method"], model=meta["model"], pairs=pairs, schema=FeatureSchema.from_dict(meta["schema"]),
            attributions=attr, field_attributions=fattr, feature_values=vals, params=meta["params"],
            additive=meta["additive"], extras=extras, reasons=meta.get("reasons"), summary=meta.get("summary", {}),
            details=details,
        )

    def _repr_html_(self) -> str:
        head = f"<b>{self.method}</b> on <b>{self.model}</b>: {len(self.pairs)} pairs"
        err = self.max_additivity_error
        if err is not None:
            head += f", max additivity error {err:.2e}"
        table = self.field_attributions if self.field_attributions is not None else self.attributions
        # prefixed: fields named user and item would clash with the pairs' columns
        shown = self.pairs if table is None else self.pairs.join(table.add_prefix("attribution: "))
        body = shown.head(20).to_html(float_format=lambda v: f"{v:.4f}", index=False)
        return f"<div>{head}{body}</div>"
