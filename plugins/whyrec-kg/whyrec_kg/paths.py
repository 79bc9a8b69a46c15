"""Paths between two items through a knowledge graph (the dataset's ``knowledge_graph()`` object).

The graph object is used through its duck-typed interface only (``entity_of(item)``,
``neighbours(entity) -> {other: [(relation, entity_is_head)]}``, ``items_linked(entity)``,
``relation_label(relation)``, ``entity_label(entity)``), so this module imports no dataset code.

Two kinds of path, graph edges taken in either direction:

- direct (1 hop): a fact links the two items' entities ("Aliens is the sequel of Alien");
- shared entity (2 hops): both items have the same relation to one entity ("same director").
  Only the same relation on both sides counts, taken with the same orientation (both items as
  heads, or both as tails), so an actor of one film who directed the other is not "the same
  director". Entities that are facts of more than ``max_entity_items`` linked items (a language,
  a country, a broad genre) connect almost everything and explain nothing; they are skipped.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Fact:
    """One path from a history item to the recommended item."""

    relation: str
    entity: str  # the shared entity, or the recommended item's own entity for a direct link
    hops: int
    items_linked: int  # how many linked items the shared entity is a fact of (1 for a direct link)
    history_is_head: bool  # for a direct link: the fact reads "history item -relation-> item"


def _pick(rels: list[tuple[str, bool]]) -> tuple[str, bool]:
    """Among the relations of one edge, the one that reads from the item (item as head) first."""
    return sorted(rels, key=lambda rh: (not rh[1], rh[0]))[0]


def facts_between(graph: Any, history_item: Any, item: Any, max_entity_items: int | None) -> list[Fact]:
    """Every direct and shared-entity path from ``history_item`` to ``item``, most specific first."""
    eh, et = graph.entity_of(history_item), graph.entity_of(item)
    if eh is None or et is None or eh == et:
        return []
    nh, nt = graph.neighbours(eh), graph.neighbours(et)
    out: list[Fact] = []
    if et in nh:
        rel, h_head = _pick(nh[et])
        out.append(Fact(rel, et, 1, 1, h_head))
    for x in nh.keys() & nt.keys():
        if x in (eh, et):
            continue
        linked = graph.items_linked(x)
        if max_entity_items is not None and linked > max_entity_items:
            continue
        common = set(nh[x]) & set(nt[x])  # (relation, orientation) shared by both items
        if common:
            rel, _ = _pick(list(common))
            out.append(Fact(rel, x, 2, linked, True))
    out.sort(key=lambda f: (f.hops, f.items_linked, f.relation, f.entity))
    return out
