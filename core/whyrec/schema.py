"""FeatureSchema: every model feature, its kind and the field it belongs to."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Iterable, Literal

FIELDS = ("user", "item", "context", "history", "cross")
Kind = Literal["numeric", "categorical", "sequence"]


@dataclass(frozen=True)
class Feature:
    """One model input column.

    ``field`` is one of FIELDS; ``group`` is an optional finer group inside it (e.g. "genre"),
    used by field-level explainers. ``kind`` "sequence" marks one position of the user's history
    (an item id), read by sequence models.
    """

    name: str
    field: str
    kind: Kind = "numeric"
    group: str | None = None
    description: str = ""
    actionable: bool = False  # the platform can set it (price, discount): causal do-targets

    def __post_init__(self) -> None:
        if self.field not in FIELDS:
            raise ValueError(f"feature {self.name!r}: field {self.field!r} is not one of {FIELDS}")
        if self.kind not in ("numeric", "categorical", "sequence"):
            raise ValueError(f"feature {self.name!r}: kind {self.kind!r} is not numeric, categorical or sequence")


@dataclass
class FeatureSchema:
    """The ordered list of features a dataset provides; models pick the subset they use."""

    features: list[Feature] = field(default_factory=list)

    def __post_init__(self) -> None:
        names = [f.name for f in self.features]
        dup = {n for n in names if names.count(n) > 1}
        if dup:
            raise ValueError(f"duplicate feature names in schema: {sorted(dup)}")
        self._by_name = {f.name: f for f in self.features}

    def __iter__(self):
        return iter(self.features)

    def __len__(self) -> int:
        return len(self.features)

    def __contains__(self, name: object) -> bool:
        return name in self._by_name

    def __getitem__(self, name: str) -> Feature:
        return self._by_name[name]

    @property
    def names(self) -> list[str]:
        return [f.name for f in self.features]

    def select(self, names: Iterable[str]) -> "FeatureSchema":
        return FeatureSchema([self._by_name[n] for n in names])

    def actionable(self) -> list[str]:
        return [f.name for f in self.features if f.actionable]

    def of_kind(self, *kinds: str) -> list[str]:
        return [f.name for f in self.features if f.kind in kinds]

    @property
    def fields(self) -> list[str]:
        """Fields present, in the canonical FIELDS order."""
        present = {f.field for f in self.features}
        return [f for f in FIELDS if f in present]

    def groups(self, level: Literal["field", "group"] = "field") -> dict[str, list[str]]:
        """Map group name -> feature names. level="group" uses the finer ``group`` when set,
        named "<field>:<group>", and the field otherwise."""
        out: dict[str, list[str]] = {}
        for f in self.features:
            key = f.field if level == "field" or not f.group else f"{f.field}:{f.group}"
            out.setdefault(key, []).append(f.name)
        return out

    def to_dict(self) -> list[dict]:
        return [asdict(f) for f in self.features]

    @classmethod
    def from_dict(cls, rows: list[dict]) -> "FeatureSchema":
        return cls([Feature(**r) for r in rows])
