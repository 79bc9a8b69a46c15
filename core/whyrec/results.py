"""Stage results: what causal learners, compressors and feedback analyzers hand back.

A StageResult is saved into the stage's directory by the runner: ``summary.json`` (also copied
into the manifest), one Parquet file per table (plus CSV where ``csv_tables`` names it), one
PNG per figure and any raw files. The report builds its sections from these files alone.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .atomic import write_bytes, write_figure, write_json, write_parquet


@dataclass
class StageResult:
    summary: dict = field(default_factory=dict)
    tables: dict[str, Any] = field(default_factory=dict)  # name -> pandas DataFrame
    figures: dict[str, Any] = field(default_factory=dict)  # name -> matplotlib Figure
    files: dict[str, bytes | str] = field(default_factory=dict)  # file name -> content
    csv_tables: tuple[str, ...] = ()
    kind: str = "result"

    def save(self, directory: str | Path) -> list[Path]:
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        out = []
        for name, df in self.tables.items():
            out.append(write_parquet(d / f"{name}.parquet", df))
            if name in self.csv_tables:
                out.append(write_bytes(d / f"{name}.csv", df.to_csv(index=False).encode()))
        for name, fig in self.figures.items():
            out.append(write_figure(d / f"{name}.png", fig))
        for name, content in self.files.items():
            out.append(write_bytes(d / name, content.encode() if isinstance(content, str) else content))
        out.append(write_json(d / "summary.json", {"kind": self.kind, **self.summary}))
        return out


@dataclass
class CausalReport(StageResult):
    kind: str = "causal"


@dataclass
class CompressionReport(StageResult):
    kind: str = "compression"


@dataclass
class FeedbackReport(StageResult):
    kind: str = "feedback"
