"""Sentences a person reads, in English or Chinese, built from a recommendation's explanations.

``add_text(out, data, lang)`` takes the JSON of ``whyrec explain`` (``explain_user``) and adds
to each recommendation a ``text`` list: one object per sentence, with the sentence and the
numbers it came from (method, unit, feature/field/item, attribution and its share), so every
sentence can be traced back. Sources, in this order:

- knowledge-graph paths (an entry with ``paths``: "Because you watched Alien, which shares a
  director with Aliens"), a path stated only when its score is positive and carries at least
  ``min_share`` of the entry's total |path score|;
- the history counterfactual (an entry whose attributions mark the history positions whose
  removal drops the item out of the top-k with 1): "Had you not watched A and B, ...";
- the attributions of one additive method (the first without a caution): the history item
  with the largest positive attribution, then the fields (user, item, history, cross,
  context) with the largest positive attributions, each stated only when its share of the
  entry's total |attribution| at its level (features, or fields) is at least ``min_share``.

The words live in gettext catalogues (``locale/<lang>/LC_MESSAGES/whyrec.po``, compiled to
``.mo``), one template per domain (video, ecommerce, finance, default) as the message
context; plural forms come from the catalogue's Plural-Forms. docs/sentences.md says how to
add a language. Only the standard library is imported here.
"""
from __future__ import annotations

import gettext
import math
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

from .errors import WhyrecError

LANGS = ("en", "zh")
DOMAINS = ("video", "ecommerce", "finance", "default")
# The smallest share of an entry's total |attribution| a stated reason may carry: the same 5%
# as the torch explainers' REASON_SHARE (docs/torch.md); docs/sentences.md documents it.
SENTENCE_SHARE = 0.05
MAX_SENTENCES = 4
MIN_PEERS = 10  # "people who ..." sentences need at least this many backers (privacy.min_peers)
LOCALE_DIR = Path(__file__).parent / "locale"
DOMAIN_NAME = "whyrec"


# -- message markers: Babel extracts them (docs/sentences.md: -k N_:1c,2 -k NP_:1c,2,3) ------
def N_(context: str, message: str) -> tuple[str, str]:
    """A message with its context, translated when used."""
    return context, message


def NP_(context: str, singular: str, plural: str) -> tuple[str, str, str]:
    """A message with plural forms, translated when used."""
    return context, singular, plural


TITLE = N_("item title", "{title}")  # zh: 《{title}》
AND_LAST = N_("list", "{rest} and {last}")
COMMA = N_("list", "{first}, {second}")
AND_OTHERS = NP_("list", "{rest} and {n} other", "{rest} and {n} others")  # zh: 《A》、《B》、《C》等
LIST_NAMES = 3  # a longer list names its first three and counts the rest (the JSON keeps every item)

HISTORY_ITEM = {
    "video": N_("video", "Because you watched {item}"),
    "ecommerce": N_("ecommerce", "Because you bought {item}"),
    "finance": N_("finance", "Because you invested in {item}"),
    "default": N_("default", "Because you chose {item}"),
}
# "People like you": other users backing a history item the model credits. Shown only when at
# least ``min_peers`` users (privacy.min_peers, default MIN_PEERS) back it, never naming any.
PEERS = {
    "video": NP_("video", "{n} person who watched {history} also watched {item}",
                 "{n} people who watched {history} also watched {item}"),
    "ecommerce": NP_("ecommerce", "{n} customer who bought {history} also bought {item}",
                     "{n} customers who bought {history} also bought {item}"),
    "finance": NP_("finance", "{n} investor who invested in {history} also invested in {item}",
                   "{n} investors who invested in {history} also invested in {item}"),
    "default": NP_("default", "{n} user who chose {history} also chose {item}",
                   "{n} users who chose {history} also chose {item}"),
}
PATH_SHARED = {
    "video": N_("video", "Because you watched {history}, which shares {relation} with {item}"),
    "ecommerce": N_("ecommerce", "Because you bought {history}, which shares {relation} with {item}"),
    "finance": N_("finance", "Because you invested in {history}, which shares {relation} with {item}"),
    "default": N_("default", "Because you chose {history}, which shares {relation} with {item}"),
}
PATH_LINKED = {
    "video": N_("video", "Because you watched {history}, which is linked to {item} ({relation})"),
    "ecommerce": N_("ecommerce", "Because you bought {history}, which is linked to {item} ({relation})"),
    "finance": N_("finance", "Because you invested in {history}, which is linked to {item} ({relation})"),
    "default": N_("default", "Because you chose {history}, which is linked to {item} ({relation})"),
}
COUNTERFACTUAL = {
    "video": NP_("video", "Had you not watched {items}, {item} would not be in your top recommendations",
                 "Had you not watched these {n} films ({items}), {item} would not be in your top recommendations"),
    "ecommerce": NP_("ecommerce", "Had you not bought {items}, {item} would not be in your top recommendations",
                     "Had you not bought these {n} products ({items}), {item} would not be in your top recommendations"),
    "finance": NP_("finance", "Had you not invested in {items}, {item} would not be in your top recommendations",
                   "Had you not invested in these {n} products ({items}), {item} would not be in your top recommendations"),
    "default": NP_("default", "Had you not chosen {items}, {item} would not be in your top recommendations",
                   "Had you not chosen these {n} items ({items}), {item} would not be in your top recommendations"),
}
FIELD = {
    "video": {
        "user": N_("video", "It suits your profile"),
        "item": N_("video", "Because of the film itself"),
        "history": N_("video", "Because of the films you watched recently"),
        "cross": N_("video", "Because it matches your taste in films"),
        "context": N_("video", "Because of the moment you are watching in"),
    },
    "ecommerce": {
        "user": N_("ecommerce", "It suits your profile"),
        "item": N_("ecommerce", "Because of the product itself"),
        "history": N_("ecommerce", "Because of what you bought recently"),
        "cross": N_("ecommerce", "Because it matches what you usually buy"),
        "context": N_("ecommerce", "Because of the moment you are shopping in"),
    },
    "finance": {
        "user": N_("finance", "It suits your investor profile"),
        "item": N_("finance", "Because of the product itself"),
        "history": N_("finance", "Because of your recent investments"),
        "cross": N_("finance", "Because it matches your investment preferences"),
        "context": N_("finance", "Because of current conditions"),
    },
    "default": {
        "user": N_("default", "It suits your profile"),
        "item": N_("default", "Because of the item itself"),
        "history": N_("default", "Because of what you chose recently"),
        "cross": N_("default", "Because it matches your preferences"),
        "context": N_("default", "Because of the current context"),
    },
}
CATEGORY = {
    "video": N_("video", "Because it is in the {category} genre"),
    "ecommerce": N_("ecommerce", "Because it is in the {category} category"),
    "finance": N_("finance", "Because it is in the {category} category"),
    "default": N_("default", "Because it is in the {category} category"),
}
# Relations of knowledge-graph paths "A -relation-> entity <-relation- B" worded as what A and
# B share; a relation none of these words match is stated with PATH_LINKED and its own label.
RELATIONS = [
    (("director", "directed"), N_("relation", "a director")),
    (("cinematographer", "cinematography"), N_("relation", "a cinematographer")),
    (("production company", "production companies", "studio"), N_("relation", "a production company")),
    (("award nomination",), N_("relation", "an award nomination")),
    (("award",), N_("relation", "an award")),
    (("content rating",), N_("relation", "a content rating")),
    (("subject",), N_("relation", "a subject")),
    (("actor", "actress", "starring", "star", "cast"), N_("relation", "an actor")),
    (("writer", "written", "screenplay", "author"), N_("relation", "a writer")),
    (("producer", "produced"), N_("relation", "a producer")),
    (("composer", "music"), N_("relation", "a composer")),
    (("genre",), N_("relation", "a genre")),
    (("language",), N_("relation", "a language")),
    (("country",), N_("relation", "a country of origin")),
    (("sequel",), N_("relation", "a sequel")),
    (("prequel",), N_("relation", "a prequel")),
    (("series", "franchise"), N_("relation", "a series")),
    (("brand",), N_("relation", "a brand")),
    (("category",), N_("relation", "a category")),
    (("issuer", "manager"), N_("relation", "a manager")),
]
# Category names of one-hot features in a "genre" group (MovieLens's genre_<Key>).
CATEGORIES = (
    N_("genre", "unknown"), N_("genre", "Action"), N_("genre", "Adventure"), N_("genre", "Animation"),
    N_("genre", "Childrens"), N_("genre", "Comedy"), N_("genre", "Crime"), N_("genre", "Documentary"),
    N_("genre", "Drama"), N_("genre", "Fantasy"), N_("genre", "Film-Noir"), N_("genre", "Horror"),
    N_("genre", "Musical"), N_("genre", "Mystery"), N_("genre", "Romance"), N_("genre", "Sci-Fi"),
    N_("genre", "Thriller"), N_("genre", "War"), N_("genre", "Western"),
)  # literal: Babel extracts only literal messages


# -- catalogues ---------------------------------------------------------------------------------
class Words:
    """One language's catalogue: translate markers, format, join lists."""

    def __init__(self, lang: str) -> None:
        self.lang = check_lang(lang)
        self.t = _translation(self.lang)

    def __call__(self, msg: tuple[str, str], **values: Any) -> str:
        return self.t.pgettext(*msg).format(**values)

    def plural(self, msg: tuple[str, str, str], n: int, **values: Any) -> str:
        return self.t.npgettext(msg[0], msg[1], msg[2], n).format(n=n, **values)

    def title(self, title: str) -> str:
        return self(TITLE, title=title)

    def join(self, parts: list[str], limit: int = LIST_NAMES) -> str:
        if len(parts) <= 1:
            return "".join(parts)
        if len(parts) > limit:
            rest = parts[0]
            for p in parts[1:limit]:
                rest = self(COMMA, first=rest, second=p)
            return self.plural(AND_OTHERS, len(parts) - limit, rest=rest)
        rest = parts[0]
        for p in parts[1:-1]:
            rest = self(COMMA, first=rest, second=p)
        return self(AND_LAST, rest=rest, last=parts[-1])


def check_lang(lang: str) -> str:
    if lang not in LANGS:
        raise WhyrecError(f"language {lang!r} has no sentence catalogue; use one of: {', '.join(LANGS)} "
                          "(docs/sentences.md says how to add one)")
    return lang


@lru_cache(maxsize=None)
def _translation(lang: str) -> gettext.GNUTranslations:
    try:
        return gettext.translation(DOMAIN_NAME, localedir=str(LOCALE_DIR), languages=[lang])
    except OSError as exc:  # a broken install: the compiled catalogue did not ship
        raise WhyrecError(f"{LOCALE_DIR / lang / 'LC_MESSAGES' / (DOMAIN_NAME + '.mo')}: catalogue missing ({exc}); "
                          "reinstall whyrec or compile it (docs/sentences.md)") from exc


# -- domains ------------------------------------------------------------------------------------
def domain_of(name: str | None, params: Mapping[str, Any] | None = None) -> str:
    """The domain a dataset declares (``params["domain"]``: whyrec-datasets sets it, `table`
    takes ``domain = ...``), else "default"."""
    declared = (params or {}).get("domain")
    return str(declared) if declared in DOMAINS else "default"


def data_domain(data: Any) -> str:
    return domain_of(getattr(data, "name", None), getattr(data, "params", None))


# -- the sentences of one recommendation --------------------------------------------------------
def _num(v: Any) -> float | None:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(f) else f


def item_id(v: Any) -> Any:
    """A history feature's value as an item id: 50.0 and "50.0" read as 50."""
    if isinstance(v, str):
        f = _num(v)
        return int(f) if f is not None and f.is_integer() else v
    if isinstance(v, float):
        return None if math.isnan(v) else (int(v) if v.is_integer() else v)
    return v


def _shares(values: Mapping[str, float]) -> tuple[dict[str, float], float]:
    total = sum(abs(v) for v in values.values() if v == v)
    return ({k: (abs(v) / total if total > 0 else 0.0) for k, v in values.items()}, total)


def _primary(entries: list[dict]) -> dict | None:
    """The attribution entry the field and history-item sentences come from: additive first,
    then one without a caution, then one with per-feature attributions (it can name a
    history item), in the order given otherwise."""
    cands = [e for e in entries if "paths" not in e and not _is_counterfactual(e)
             and (e.get("attributions") or e.get("field_attributions"))]
    cands.sort(key=lambda e: (not e.get("additive", True), bool(e.get("caution")), not e.get("attributions")))
    return cands[0] if cands else None


def _is_counterfactual(e: dict) -> bool:
    a = e.get("attributions") or {}
    return "counterfactual" in str(e.get("method", "")) and not e.get("additive", True) and \
        all(v in (0.0, 1.0) for v in a.values())


def rec_sentences(rec: dict, words: Words, domain: str, *, sequence: Iterable[str] = (), categories: Mapping[str, str] | None = None,
                  values: Mapping[str, Any] | None = None, title: Callable[[Any], str | None] | None = None,
                  min_share: float = SENTENCE_SHARE, peers: Callable[[Any, Any], int] | None = None,
                  min_peers: int = 10) -> list[dict]:
    """The sentences of one recommendation (an item of ``explain_user(...)["recommendations"]``).

    sequence: the history-position features (kind "sequence": their value is an item id);
    categories: one-hot features of a category group, feature -> category name (genre_Drama -> Drama);
    values: the pair's feature values; title: item id -> title (None: not known, not stated);
    peers: (history item, item) -> how many other users liked both (a "people who ..." sentence
    backs the credited history item only when at least ``min_peers`` do).
    """
    domain = domain if domain in DOMAINS else "default"
    values = values or {}
    title = title or (lambda it: None)
    sequence = list(sequence)
    categories = categories or {}
    item_words = words.title(str(rec.get("title", rec.get("item"))))
    out: list[dict] = []
    stated_items: set = set()
    entries = rec.get("explanations", [])

    # 1. knowledge-graph paths
    for e in entries:
        paths = [p for p in (e.get("paths") or []) if _num(p.get("score")) is not None]
        if not paths:
            continue
        shares, _ = _shares({str(i): float(p["score"]) for i, p in enumerate(paths)})
        order = sorted(range(len(paths)), key=lambda i: -float(paths[i]["score"]))
        for i in order[:2]:
            p, s = paths[i], shares[str(i)]
            if float(p["score"]) <= 0 or s < min_share:
                continue
            hist = words.title(str(p.get("history_title") or title(p.get("history_item")) or p.get("history_item")))
            label = str(p.get("relation_label") or p.get("relation") or "")
            rel = _relation(str(p.get("relation", "")) + " " + label)
            if p.get("hops", 2) == 1:  # a direct link (a sequel): nothing is shared, the two are linked
                text = words(PATH_LINKED[domain], history=hist, relation=words(rel) if rel else label, item=item_words)
            elif rel is not None:
                text = words(PATH_SHARED[domain], history=hist, relation=words(rel), item=item_words)
            else:
                text = words(PATH_LINKED[domain], history=hist, relation=label, item=item_words)
            out.append({"text": text, "kind": "kg-path", "method": e.get("method"), "unit": "path",
                        "history_item": p.get("history_item"), "relation": p.get("relation"), "entity": p.get("entity"),
                        "attribution": float(p["score"]), "share": s, "scoring": p.get("scoring")})
            stated_items.add(item_id(p.get("history_item")))

    # 2. the history counterfactual
    for e in entries:
        if not _is_counterfactual(e):
            continue
        removed = [f for f, v in e["attributions"].items() if v == 1.0]
        items = [item_id(values.get(f)) for f in removed]
        names = [title(it) for it in items]
        if not removed or any(n is None for n in names):
            continue  # nothing removed (cold start, not found), or an item we cannot name
        share = 1.0 / len(removed)  # the removed set as a whole drops the item; each item its part
        if share < min_share:
            continue
        text = words.plural(COUNTERFACTUAL[domain], len(removed), items=words.join([words.title(n) for n in names]), item=item_words)
        out.append({"text": text, "kind": "counterfactual", "method": e.get("method"), "unit": "feature",
                    "features": removed, "items": items, "attribution": [1.0] * len(removed), "share": share})
        stated_items.update(items)

    # 3. one attribution method: the strongest history item, then the strongest fields
    e = _primary(entries)
    if e is not None:
        attr = {k: float(v) for k, v in (e.get("attributions") or {}).items() if v == v}
        fattr = {k: float(v) for k, v in (e.get("field_attributions") or {}).items() if v == v}
        fshare, _ = _shares(attr)
        covered: set[str] = set()
        seq = [f for f in sequence if attr.get(f, 0.0) > 0 and fshare[f] >= min_share]
        if seq:
            f = max(seq, key=lambda k: attr[k])
            it = item_id(values.get(f))
            name = title(it) if it is not None else None
            if name is not None:
                covered.add("history")
                if it not in stated_items:
                    out.append({"text": words(HISTORY_ITEM[domain], item=words.title(name)), "kind": "history-item",
                                "method": e.get("method"), "unit": "feature", "feature": f, "item": it,
                                "attribution": attr[f], "share": fshare[f]})
                n = peers(it, rec.get("item")) if peers is not None else 0
                if n >= max(int(min_peers), 1):  # k-anonymous: fewer backers would point at people
                    out.append({"text": words.plural(PEERS[domain], n, history=words.title(name), item=item_words),
                                "kind": "peers", "method": e.get("method"), "unit": "feature", "feature": f,
                                "item": it, "users": int(n), "min_users": int(min_peers),
                                "attribution": attr[f], "share": fshare[f]})
        cats = [f for f in categories if attr.get(f, 0.0) > 0 and fshare[f] >= min_share and (_num(values.get(f)) or 0) > 0]
        if cats:
            f = max(cats, key=lambda k: attr[k])
            covered.add("item")
            out.append({"text": words(CATEGORY[domain], category=words(("genre", categories[f]))), "kind": "category",
                        "method": e.get("method"), "unit": "feature", "feature": f, "value": _num(values.get(f)),
                        "attribution": attr[f], "share": fshare[f]})
        gshare, _ = _shares(fattr)
        for g in sorted(fattr, key=lambda k: -fattr[k]):
            field = g.partition(":")[0]
            if fattr[g] <= 0 or gshare[g] < min_share or field in covered or field not in FIELD[domain]:
                continue
            covered.add(field)
            out.append({"text": words(FIELD[domain][field]), "kind": "field", "method": e.get("method"), "unit": "field",
                        "field": g, "attribution": fattr[g], "share": gshare[g]})
    cautions = {x.get("method"): x.get("caution") for x in entries}
    for s in out:  # a sentence from a method judged unfaithful on this model says so, as its reasons do
        if cautions.get(s["method"]):
            s["caution"] = cautions[s["method"]]
    return out[:MAX_SENTENCES]


def _relation(text: str) -> tuple[str, str] | None:
    low = text.lower().replace("_", " ").replace(".", " ")
    tokens = set(low.split())
    for keys, msg in RELATIONS:
        if any(k in tokens or k in low for k in keys):
            return msg
    return None


# -- the JSON of `whyrec explain` ---------------------------------------------------------------
def schema_parts(schema: Any) -> tuple[list[str], dict[str, str]]:
    """The sequence features and the one-hot category features (group "genre") of a schema."""
    seq, cats = [], {}
    for f in schema or []:
        if f.kind == "sequence":
            seq.append(f.name)
        elif f.group == "genre" and f.name.startswith("genre_"):
            cats[f.name] = f.name[len("genre_"):].replace("_", "-")
    return seq, cats


def co_likers(data: Any, user: Any) -> Callable[[Any, Any], int]:
    """(a, b) -> how many users other than ``user`` liked both items in training (positives)."""
    import pandas as pd

    from .data import ITEM, LABEL, USER

    src = data.train if data.train is not None else data.interactions
    pos = src[src[LABEL] > 0] if LABEL in src.columns else src
    cache = {}

    def likers(it: Any) -> set:
        if it not in cache:
            cache[it] = set(pos.loc[pos[ITEM] == it, USER].tolist()) - {user}
        return cache[it]

    def both(a: Any, b: Any) -> int:
        if a is None or b is None or pd.isna(a) or pd.isna(b):
            return 0
        return len(likers(a) & likers(b))
    return both


def add_text(out: dict, data: Any, lang: str = "en", *, domain: str | None = None, min_share: float = SENTENCE_SHARE,
             min_peers: int = MIN_PEERS) -> dict:
    """Add ``text`` (a list of sentences with their numbers) to each recommendation of
    ``out`` (the JSON of ``explain_user``) and ``sentences`` (language, domain, thresholds)
    to ``out``; returns ``out``. ``data`` is the run's RecData (titles, feature values,
    co-likers for "people who ..." sentences, shown when at least ``min_peers`` users back one)."""
    words = Words(lang)
    domain = domain or data_domain(data)
    seq, cats = schema_parts(getattr(data, "schema", None))
    values = _feature_values(out, data) if (seq or cats) else {}

    def title(it: Any) -> str | None:
        if it is None:
            return None
        try:
            return data.item_title(data.check_item(it))
        except WhyrecError:
            return None

    peers = co_likers(data, out.get("user"))
    for rec in out.get("recommendations", []):
        rec["text"] = rec_sentences(rec, words, domain, sequence=seq, categories=cats, values=values.get(rec["item"], {}),
                                    title=title, min_share=min_share, peers=peers, min_peers=min_peers)
    out["sentences"] = {"lang": lang, "domain": domain, "min_share": min_share, "min_peers": min_peers}
    return out


def _feature_values(out: dict, data: Any) -> dict:
    """Feature values of each recommended pair (item -> {feature: value}) in the context
    the explanation used; {} where the data cannot rebuild them."""
    recs = out.get("recommendations", [])
    if not recs:
        return {}
    try:
        ctx = (out.get("context") or {}).get("values") or None
        pairs = data.user_pairs(out["user"], [r["item"] for r in recs], ctx)
        X = data.features(pairs)
    except (WhyrecError, KeyError, ValueError, TypeError):
        return {}
    cols = list(X.columns)
    rows = X.to_numpy(dtype=object)
    return {r["item"]: dict(zip(cols, rows[i])) for i, r in enumerate(recs)}


def text_lines(out: dict) -> list[str]:
    """The sentences of ``out`` (after ``add_text``) for the text output of `whyrec explain`."""
    meta = out.get("sentences") or {}
    lines = [f"In words ({meta.get('lang', '?')}, reasons carrying at least {meta.get('min_share', SENTENCE_SHARE):.0%} "
             "of their method's attribution):"]
    for rec in out.get("recommendations", []):
        texts = [s["text"] for s in rec.get("text", [])]
        lines.append(f"{rec['rank']:>3}. {rec['title']}: " + ("; ".join(texts) if texts else "-"))
    return lines


# -- the report: the same sentences from a run's saved explanations -----------------------------
def title_map(expls: Iterable[Any]) -> dict[str, str]:
    """Item id (as text) -> title, from what the explanations saved: the explained pairs and
    any extras table with history items and their titles."""
    out: dict[str, str] = {}
    for e in expls:
        tables = [e.pairs] + list(getattr(e, "extras", {}).values())
        for t in tables:
            for id_col, title_col in (("item", "title"), ("history_item", "history_title")):
                if id_col in t.columns and title_col in t.columns:
                    for k, v in zip(t[id_col].tolist(), t[title_col].tolist()):
                        if v is not None and str(v) != "nan":
                            out.setdefault(str(item_id(k)), str(v))
    return out


def saved_sentences(user: Any, item: Any, title: str, expls: list[tuple[str, Any, str | None]], words: Words, domain: str,
                    titles: Mapping[str, str] | None = None, min_share: float = SENTENCE_SHARE) -> list[dict]:
    """``rec_sentences`` for a pair of a run's saved explanations: ``expls`` holds (instance
    name, Explanation, caution) per method; feature values are those the explanations saved."""
    entries, values = [], {}
    for name, e, caution in expls:
        j = e.find(user, item)
        if j is None:
            continue
        row = e.row(j)
        row.update(method=name, additive=bool(e.additive), caution=caution)
        entries.append(row)
        if e.feature_values is not None:
            values.update(e.feature_values.iloc[j].to_dict())
    seq, cats = schema_parts(_full_schema(expls))
    titles = titles if titles is not None else title_map(e for _, e, _ in expls)
    rec = {"item": item, "title": title, "explanations": entries}
    return rec_sentences(rec, words, domain, sequence=seq, categories=cats, values=values,
                         title=lambda it: None if it is None else titles.get(str(it)), min_share=min_share)


def _full_schema(expls: list[tuple[str, Any, str | None]]) -> list:
    seen, out = set(), []
    for _, e, _ in expls:
        for f in e.schema:
            if f.name not in seen:
                seen.add(f.name)
                out.append(f)
    return out
