"""Knowledge graphs over a dataset's items: triples (head, relation, tail) and item -> entity links.

Two sources:

- MovieLens-100K: ``ml-100k.kg`` (Freebase facts via KB4Rec: ``head_id``, ``relation_id``,
  ``tail_id``) and ``ml-100k.link`` (``item_id`` -> ``entity_id``) from the same pinned recbole
  wheel as the ratings (cache source ``ml-100k-kg``), or next to the GroupLens files of ``path``.
- a ``table`` dataset's own triples file (``kg = "triples.csv"`` with columns head, relation,
  tail), whose items are linked through a link file (``kg_link``: item, entity) or directly
  (the head of every triple is an item id).

Ids the graph cannot place are counted and reported, never dropped in silence: link rows whose
item the dataset does not have, linked entities the triples never mention, and (direct
linking) triples whose head is no item. ``KnowledgeGraph.report`` holds the counts; loading
warns (``DataWarning``) with the count, the file and an example.

A RecData exposes its graph through ``data.knowledge_graph()`` (None when there is none): an
attribute the loaders set, read by explainers with ``getattr(data, "knowledge_graph", None)``,
so no plugin imports this module. The graph loads on the first call, not with the dataset.
"""
from __future__ import annotations

import csv
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd

from whyrec.errors import DataError, DataWarning

from .frames import file_columns, read_table, require_file, show

# Short human labels of the ml-100k (Freebase) relations, by the last part of their name;
# both directions of a relation get the same label ("film.film.directed_by", "film.director.film").
FREEBASE_LABELS = {
    "film.film.actor": "actor", "film.actor.film": "actor",
    "film.film.genre": "genre", "film.film_genre.films_in_this_genre": "genre",
    "film.film.award_nomination": "award nomination", "film.film.award_won": "award",
    "film.film.produced_by": "producer", "film.producer.film": "producer",
    "film.film.written_by": "writer", "film.writer.film": "writer",
    "film.film.language": "language", "film.film.country": "country",
    "film.film.directed_by": "director", "film.director.film": "director",
    "film.film.cinematography": "cinematographer", "film.cinematographer.film": "cinematographer",
    "film.film.production_companies": "production company", "film.production_company.films": "production company",
    "film.film.rating": "content rating", "film.content_rating.film": "content rating",
    "film.film.subjects": "subject", "film.film_subject.films": "subject",
    "film.film.sequel": "sequel", "film.film.prequel": "prequel",
}


# "<verb>_by" relations of one's own triples, named by who does it
AGENTS = {"directed": "director", "written": "writer", "produced": "producer", "composed": "composer",
          "made": "maker", "published": "publisher", "sold": "seller", "managed": "manager", "issued": "issuer"}


def relation_label(relation: str) -> str:
    """A short label for a relation name: the Freebase table above, else its last dotted part
    in words, without a leading "has" ("has_genre" -> "genre") and with "<verb> by" named by
    its agent ("directed_by" -> "director", "made_by" -> "maker", "sold by" -> "seller")."""
    if relation in FREEBASE_LABELS:
        return FREEBASE_LABELS[relation]
    words = str(relation).rsplit(".", 1)[-1].replace("_", " ").replace("-", " ").split()
    if len(words) > 1 and words[0].lower() in ("has", "have", "is"):
        words = words[1:]
    if len(words) == 2 and words[1].lower() == "by" and words[0].lower() in AGENTS:
        words = [AGENTS[words[0].lower()]]
    return " ".join(words) or str(relation)


@dataclass
class KnowledgeGraph:
    """Triples over string entity ids, the entity of each linked item, and what was not placed.

    triples: DataFrame with string columns ``head``, ``relation``, ``tail``.
    item_entity: item id (as the dataset stores it) -> entity id.
    entity_labels: entity id -> a readable name, where the source has one (items get their title).
    report: counts (triples, entities, relations, linked_items and the unknown ids) and the files.
    """

    triples: pd.DataFrame
    item_entity: dict
    source: str
    report: dict = field(default_factory=dict)
    entity_labels: dict = field(default_factory=dict)
    _adj: dict | None = field(default=None, init=False, repr=False)
    _entity_item: dict | None = field(default=None, init=False, repr=False)
    _items_of: dict | None = field(default=None, init=False, repr=False)

    # -- lookups ---------------------------------------------------------------------------
    def entity_of(self, item: Any) -> str | None:
        return self.item_entity.get(item)

    def item_of(self, entity: str) -> Any | None:
        if self._entity_item is None:
            self._entity_item = {e: i for i, e in self.item_entity.items()}
        return self._entity_item.get(entity)

    def relation_label(self, relation: str) -> str:
        return relation_label(relation)

    def entity_label(self, entity: str) -> str:
        return str(self.entity_labels.get(entity, entity))

    def neighbours(self, entity: str) -> dict[str, list[tuple[str, bool]]]:
        """``{other entity: [(relation, entity_is_head), ...]}``: every fact that mentions ``entity``."""
        return self._adjacency().get(entity, {})

    def items_linked(self, entity: str) -> int:
        """How many linked items the entity is a fact of (its degree among items): a director of
        3 films is a more specific reason than a language of 1,000."""
        if self._items_of is None:
            linked = set(self.item_entity.values())
            self._items_of = {e: sum(1 for o in nb if o in linked) for e, nb in self._adjacency().items()}
        return self._items_of.get(entity, 0)

    def _adjacency(self) -> dict:
        if self._adj is None:
            adj: dict[str, dict[str, list]] = {}
            for h, r, t in zip(self.triples["head"].to_numpy(), self.triples["relation"].to_numpy(),
                               self.triples["tail"].to_numpy()):
                adj.setdefault(h, {}).setdefault(t, []).append((r, True))
                adj.setdefault(t, {}).setdefault(h, []).append((r, False))
            self._adj = adj
        return self._adj

    def summary(self) -> dict:
        return {"source": self.source, **self.report}


def _warn_unknown(report: dict, source: str) -> None:
    """One warning per kind of id the graph could not place (the counts stay in ``report``)."""
    for key, what in (("unknown_link_items", "link rows name items the dataset does not have"),
                      ("linked_entities_without_facts", "linked entities appear in no triple"),
                      ("unknown_heads", "triples have a head that is no item of the dataset (direct linking)")):
        n = report.get(key, 0)
        if n:
            eg = report.get(f"{key}_example")
            warnings.warn(f"knowledge graph {source}: {n:,} {what} (e.g. {eg}); they give no path", DataWarning,
                          stacklevel=3)


def _clean(df: pd.DataFrame, cols: list[str], source: str) -> pd.DataFrame:
    missing = df[cols].isna()
    df = df[cols].copy()
    for c in cols:  # ids read as floats (5.0) name the same item as 5
        col = df[c]
        if pd.api.types.is_float_dtype(col) and not missing[c].any() and (col % 1 == 0).all():
            df[c] = col.astype(np.int64)
    df = df.astype(str)
    bad = (missing | df.apply(lambda c: c.str.strip() == "")).any(axis=1)
    if bad.any():
        raise DataError(f"{source}: {int(bad.sum()):,} rows have an empty {'/'.join(cols)} value "
                        f"(first at row {int(np.flatnonzero(bad.to_numpy())[0]) + 1}); fill or remove them")
    return df


def _item_lookup(items: pd.Index) -> dict[str, Any]:
    """str(id) -> id as stored: files hold text, a dataset may hold integers."""
    return {str(i): i for i in items}


def _link(triples: pd.DataFrame, link: pd.DataFrame, items: pd.Index, source: str, link_source: str,
          titles: pd.Series | None) -> KnowledgeGraph:
    """A graph whose items are linked to entities by a (item, entity) table."""
    lookup = _item_lookup(items)
    link = link.drop_duplicates()
    known = link["item"].map(lookup)
    report: dict[str, Any] = {}
    unknown = known.isna().to_numpy()
    report["unknown_link_items"] = int(unknown.sum())
    if unknown.any():
        report["unknown_link_items_example"] = show(link["item"].to_numpy()[unknown][0])
    ok = link[~unknown]
    dup = ok["item"].duplicated()
    if dup.any():
        raise DataError(f"{link_source}: item {show(ok.loc[dup, 'item'].iloc[0])} is linked to more than one entity; "
                        f"link each item to one entity")
    mentioned = set(triples["head"]).union(triples["tail"])
    has = ok["entity"].isin(mentioned).to_numpy()
    report["linked_entities_without_facts"] = int((~has).sum())
    if (~has).any():
        report["linked_entities_without_facts_example"] = show(ok["entity"].to_numpy()[~has][0])
    item_entity = {lookup[i]: e for i, e in zip(ok["item"].to_numpy()[has], ok["entity"].to_numpy()[has])}
    return _finish(triples, item_entity, f"{source} + {link_source}", report, titles)


def _direct(triples: pd.DataFrame, items: pd.Index, source: str, titles: pd.Series | None) -> KnowledgeGraph:
    """A graph whose triples name items directly: every head is an item id, a tail may be one."""
    lookup = _item_lookup(items)
    head_item = triples["head"].isin(lookup.keys()).to_numpy()
    report: dict[str, Any] = {"unknown_heads": int((~head_item).sum())}
    if (~head_item).any():
        report["unknown_heads_example"] = show(triples["head"].to_numpy()[~head_item][0])
    kept = triples[head_item]
    ids = set(kept["head"]).union(e for e in kept["tail"] if e in lookup)
    return _finish(kept.reset_index(drop=True), {lookup[e]: e for e in ids}, source, report, titles)


def _finish(triples: pd.DataFrame, item_entity: dict, source: str, report: dict,
            titles: pd.Series | None) -> KnowledgeGraph:
    report.update(triples=int(len(triples)), relations=int(triples["relation"].nunique()),
                  entities=int(len(set(triples["head"]).union(triples["tail"]))), linked_items=len(item_entity))
    labels = {}
    if titles is not None:
        labels = {e: str(titles.get(i)) for i, e in item_entity.items() if isinstance(titles.get(i), str)}
    g = KnowledgeGraph(triples.reset_index(drop=True), item_entity, source, report, labels)
    _warn_unknown(report, source)
    return g


# -- MovieLens-100K -------------------------------------------------------------------------
KG_FILES = ["ml-100k.kg", "ml-100k.link"]


def read_atomic(path: Path, what: str, names: dict[str, str]) -> pd.DataFrame:
    """A RecBole atomic file (tab separated, ``name:type`` headers) with columns renamed by ``names``."""
    p = require_file(path, what)
    df = pd.read_csv(p, sep="\t", quoting=csv.QUOTE_NONE, dtype=str, keep_default_na=False)
    df.columns = [c.split(":")[0] for c in df.columns]
    missing = [c for c in names if c not in df.columns]
    if missing:
        raise DataError(f"{p}: no column {missing[0]!r} (columns: {list(df.columns)}); is this a RecBole {what} file?")
    return _clean(df.rename(columns=names), list(names.values()), str(p))


def movielens_graph(folder: Path | None, items: pd.DataFrame) -> KnowledgeGraph:
    """The ml-100k graph from ``folder`` (holding ml-100k.kg/.link), else the verified cache."""
    from . import cache

    where = folder if folder is not None else cache.ensure("ml-100k-kg", KG_FILES)
    triples = read_atomic(where / "ml-100k.kg", "knowledge graph", {"head_id": "head", "relation_id": "relation",
                                                                   "tail_id": "tail"})
    link = read_atomic(where / "ml-100k.link", "item link", {"item_id": "item", "entity_id": "entity"})
    titles = items["title"] if "title" in items.columns else None
    return _link(triples, link, items.index, str(where / "ml-100k.kg"), str(where / "ml-100k.link"), titles)


# -- a table's own triples --------------------------------------------------------------------
def _read_kg_table(path: str | Path, cols: list[str], what: str, key: str) -> pd.DataFrame:
    p = require_file(path, what)
    have = file_columns(p)
    missing = [c for c in cols if c not in have]
    if missing:
        raise DataError(f"{what} file {p}: no column {missing[0]!r}; {key} needs columns {', '.join(cols)} "
                        f"(its columns: {', '.join(map(str, have[:20]))})")
    return _clean(read_table(p, cols, what), cols, f"{what} file {p}")


def table_graph(kg: str | Path, items: pd.DataFrame, link: str | Path | None = None) -> KnowledgeGraph:
    """A ``table`` dataset's triples file (Parquet/CSV: head, relation, tail), linked by ``link``
    (item, entity) or directly (a head is an item id)."""
    triples = _read_kg_table(kg, ["head", "relation", "tail"], "knowledge graph", "kg (a triples file)")
    titles = items["title"] if "title" in items.columns else None
    if link is None:
        return _direct(triples, items.index, str(kg), titles)
    lk = _read_kg_table(link, ["item", "entity"], "knowledge graph link", "kg_link")
    return _link(triples, lk, items.index, str(kg), str(link), titles)


class GraphAccessor:
    """``data.knowledge_graph()``: loads the graph on the first call and keeps it. Picklable
    (a module-level loader in a ``functools.partial``), so the data can travel to workers."""

    def __init__(self, load: Callable[[], KnowledgeGraph] | None = None, graph: KnowledgeGraph | None = None) -> None:
        self._load = load
        self._graph = graph

    def __call__(self) -> KnowledgeGraph | None:
        if self._graph is None and self._load is not None:
            self._graph = self._load()
        return self._graph


def attach(data: Any, load: Callable[[], KnowledgeGraph] | None = None, graph: KnowledgeGraph | None = None) -> Any:
    """Give ``data`` (a RecData) its ``knowledge_graph()`` accessor: a graph read already, or a
    loader called on first use. Returns ``data``."""
    data.knowledge_graph = GraphAccessor(load, graph)
    return data
