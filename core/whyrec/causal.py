"""CausalGraph: a learned (or true) weighted DAG, saved as JSON."""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .atomic import write_json


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    weight: float = 1.0
    stability: float | None = None  # fraction of bootstrap resamples in which the edge appears


@dataclass
class CausalGraph:
    """Nodes, weighted directed edges, the constraints used and how the graph was learned."""

    nodes: list[str]
    edges: list[Edge] = field(default_factory=list)
    constraints: dict = field(default_factory=dict)
    method: dict = field(default_factory=dict)

    def edge_set(self) -> set[tuple[str, str]]:
        return {(e.source, e.target) for e in self.edges}

    def parents(self, node: str) -> list[str]:
        return [e.source for e in self.edges if e.target == node]

    def shd(self, other: "CausalGraph") -> int:
        """Structural Hamming distance: the node pairs whose edges differ (a missing, an extra or a
        reversed edge counts once; so does a->b against a->b plus b->a)."""
        a, b = self.edge_set(), other.edge_set()
        dist = 0
        for s, t in {tuple(sorted(e)) for e in a | b}:
            if ((s, t) in a, (t, s) in a) != ((s, t) in b, (t, s) in b):
                dist += 1
        return dist

    def is_acyclic(self) -> bool:
        adj: dict[str, list[str]] = {n: [] for n in self.nodes}
        indeg = {n: 0 for n in self.nodes}
        for e in self.edges:
            adj.setdefault(e.source, []).append(e.target)
            indeg[e.target] = indeg.get(e.target, 0) + 1
            indeg.setdefault(e.source, 0)
        queue = [n for n, d in indeg.items() if d == 0]
        seen = 0
        while queue:
            n = queue.pop()
            seen += 1
            for m in adj.get(n, []):
                indeg[m] -= 1
                if indeg[m] == 0:
                    queue.append(m)
        return seen == len(indeg)

    def to_dict(self) -> dict:
        return {"nodes": self.nodes, "edges": [asdict(e) for e in self.edges],
                "constraints": self.constraints, "method": self.method}

    @classmethod
    def from_dict(cls, d: dict) -> "CausalGraph":
        return cls(nodes=list(d["nodes"]), edges=[Edge(**e) for e in d["edges"]],
                   constraints=d.get("constraints", {}), method=d.get("method", {}))

    def save(self, path: str | Path) -> Path:
        return write_json(path, self.to_dict())

    @classmethod
    def load(cls, path: str | Path) -> "CausalGraph":
        return cls.from_dict(json.loads(Path(path).read_text()))

    def to_networkx(self):
        import networkx as nx

        g = nx.DiGraph()
        g.add_nodes_from(self.nodes)
        for e in self.edges:
            g.add_edge(e.source, e.target, weight=e.weight, stability=e.stability)
        return g
