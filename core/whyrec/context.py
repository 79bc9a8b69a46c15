"""PipelineContext: what a running pipeline hands to each stage and lifecycle hook."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable

from .privacy import Privacy
from .progress import progress

if TYPE_CHECKING:
    from .data import RecData
    from .explanation import Explanation
    from .plugins import PluginHost
    from .results import StageResult


@dataclass
class PipelineContext:
    """State shared by the stages of one run.

    settings: the pipeline-level keys of registry.toml (``seed``, ``sample_users``, ``top_k``).
    models: fitted models by name (compressed students are added as "<compressor>:<teacher>").
    metrics: per model, its evaluation metrics.
    explanations: every Explanation the explainers stage produced.
    results: StageResults of causal / compressor / feedback stages, by stage name.
    """

    pipeline: str
    run_dir: Path
    seed: int = 0
    settings: dict = field(default_factory=dict)
    data: "RecData | None" = None
    models: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, dict] = field(default_factory=dict)
    explanations: list["Explanation"] = field(default_factory=list)
    results: dict[str, "StageResult"] = field(default_factory=dict)
    executor: Any = None
    host: "PluginHost | None" = None
    spec: dict = field(default_factory=dict)
    privacy: Privacy = field(default_factory=Privacy)  # pseudonymous ids / redacted fields (whyrec.privacy)

    def stage_dir(self, name: str) -> Path:
        d = self.run_dir / name.replace(":", "__").replace("@", "__")
        d.mkdir(parents=True, exist_ok=True)
        return d

    def progress(self, iterable: Iterable[Any] | None = None, desc: str = "", total: int | None = None, **kw: Any):
        return progress(iterable, desc=desc, total=total, **kw)

    def sample_users(self, n: int | None = None) -> list:
        """The users whose recommendations are explained (seeded, test users first)."""
        import numpy as np

        from .data import USER

        n = n or int(self.settings.get("sample_users", 20))
        data = self.data
        pool = data.test[USER].unique() if data.test is not None and len(data.test) else data.user_ids
        pool = np.sort(pool)
        if len(pool) > n:
            pool = np.sort(np.random.default_rng(self.seed).choice(pool, n, replace=False))
        return list(pool)

    def explanations_for(self, model: str) -> list["Explanation"]:
        return [e for e in self.explanations if e.model == model]
