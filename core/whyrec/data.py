"""RecData: interactions, user and item tables, the feature schema and how to build features."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

from .errors import DataError
from .schema import FeatureSchema

if TYPE_CHECKING:  # pandas stays out of `import whyrec`
    import numpy as np
    import pandas as pd

# Standard column names of interaction tables; datasets rename their columns to these.
USER, ITEM, LABEL, RATING, TIMESTAMP = "user", "item", "label", "rating", "timestamp"
POSITION, PROPENSITY, VARIANT = "position", "propensity", "variant"

Featurizer = Callable[["RecData", "pd.DataFrame"], "pd.DataFrame"]


@dataclass
class RecData:
    """Everything a pipeline knows about users, items and their interactions.

    interactions: every observed event (columns USER, ITEM, LABEL, optional RATING, TIMESTAMP,
        POSITION, PROPENSITY, VARIANT), one row per event.
    users / items: feature tables indexed by user / item id (items may carry a ``title``).
    schema: the model features ``features(pairs)`` returns and their fields.
    train / test: labelled (user, item, label) pairs for fitting and evaluation, sampled
        negatives included; every test interaction of a user is later than their train ones.
    featurizer: builds the feature matrix for arbitrary (user, item) pairs; the default joins
        the user and item tables. Datasets with history or cross features pass their own.
    describer: ``describer(feature, value, row)`` turns a feature value into words for reasons
        ("genre Comedy matches 7 of your last 10 films"); ``row`` is the pair's whole feature
        row (a pandas Series) so a reason can combine features. Return None for the default.
    history_deriver: ``history_deriver(X)`` returns feature rows ``X`` with the features the
        dataset derives from the history (counts, genre shares, matches with the candidate)
        recomputed from the rows' own ``sequence`` features; positions set to NaN are items
        taken out of the history. Lets a counterfactual "had you not watched A" change every
        feature A fed, not only the sequence. None: the dataset cannot (edits hold them fixed).
    truth: ground truth for simulators (true DAG, interventional effects, contributions).
    """

    name: str
    interactions: "pd.DataFrame"
    users: "pd.DataFrame"
    items: "pd.DataFrame"
    schema: FeatureSchema
    train: "pd.DataFrame | None" = None
    test: "pd.DataFrame | None" = None
    featurizer: Featurizer | None = None
    describer: Callable[[str, Any, Any], str | None] | None = None
    history_deriver: Callable[["pd.DataFrame"], "pd.DataFrame"] | None = None
    truth: dict | None = None
    params: dict = field(default_factory=dict)
    description: str = ""
    history_length: int = 0
    # pseudonymised data (whyrec.privacy): maps an id as the user knows it to the stored pseudonym
    user_alias: Callable[[Any], Any] | None = None
    # ``knowledge_graph()`` returns the dataset's item knowledge graph (whyrec-datasets' kg
    # module; read by kg-paths); None: the dataset has none. A field, so copies keep it.
    knowledge_graph: Callable[[], Any] | None = None
    # caches, never constructor arguments: dataclasses.replace(data, interactions=...) starts afresh
    _history: dict | None = field(default=None, init=False, repr=False)
    _hash: str | None = field(default=None, init=False, repr=False)
    _latest: "pd.DataFrame | None" = field(default=None, init=False, repr=False)

    # -- features -----------------------------------------------------------------------
    @property
    def context_names(self) -> list[str]:
        """Context (interaction-level) features: they travel with each row, not with its ids."""
        return [f.name for f in self.schema if f.field == "context"]

    def features(self, rows: "pd.DataFrame") -> "pd.DataFrame":
        """Feature matrix (columns = schema.names, row i = ``rows`` row i): the one way every
        consumer turns (user, item, context) rows into model inputs.

        ``rows`` are whole rows: USER, ITEM and every context column the schema declares
        (train/test/logged rows carry them; ``with_context`` states them for new pairs).
        A row without its context is refused, never featurized with the context missing:
        selecting ``rows[[USER, ITEM]]`` first would silently drop what drives the outcome.
        """
        import pandas as pd

        for col in (USER, ITEM):
            if col not in rows.columns:
                raise DataError(f"pairs table has no {col!r} column (columns: {list(rows.columns)})")
        lacking = [c for c in self.context_names if c not in rows.columns]
        if lacking:
            raise DataError(
                f"dataset {self.name!r}: rows to featurize lack context column(s) {lacking}; pass whole rows "
                f"(train, test and logged rows keep them) or state the context for new pairs "
                f"(Python: data.with_context(pairs, {{{lacking[0]!r}: ...}}); CLI: --context {lacking[0]}=VALUE)")
        if self.featurizer is not None:
            out = self.featurizer(self, rows)
        else:
            u = self.users.reindex(rows[USER].to_numpy())
            i = self.items.reindex(rows[ITEM].to_numpy())
            cols = {}
            for f in self.schema:
                if f.field == "context":  # the row's own value, never looked up by id
                    cols[f.name] = rows[f.name].to_numpy()
                    continue
                src = u if f.field == "user" else i
                if f.name in src.columns:
                    cols[f.name] = src[f.name].to_numpy()
            out = pd.DataFrame(cols)
        missing = [n for n in self.schema.names if n not in out.columns]
        if missing:
            raise DataError(f"dataset {self.name!r}: featurizer did not produce features {missing}")
        out = out[self.schema.names]
        out.index = rows.index
        return out

    def with_context(self, pairs: "pd.DataFrame", context: "dict[str, Any] | None" = None) -> "pd.DataFrame":
        """``pairs`` with every context column present, and where each value came from.

        A column the pairs already hold is kept (the pair's own context: a test or logged row,
        a pairs file). A missing one takes the explicit ``context`` value when given (values as
        a user types them: "1", "ios"), otherwise the documented default: the user's latest
        logged context (the context columns of their most recent interaction), and for a user
        with no logged interaction the most frequent value (categorical) or median (numeric)
        of the training rows. ``out.attrs["context"]`` says, per column, which source was used
        ("pair", "explicit", "user-latest", "typical"); explanations report it.
        """
        import numpy as np
        import pandas as pd

        stated = self.context_values(context)
        out = pairs.copy()
        sources: dict[str, str] = {}
        for c in self.context_names:
            if c in pairs.columns:
                sources[c] = "pair"
            elif c in stated:
                out[c] = stated[c]
                sources[c] = "explicit"
            else:
                latest = self._latest_context()
                have = pairs[USER].isin(latest.index).to_numpy()
                col = latest[c].reindex(pairs[USER].to_numpy()).to_numpy()
                if not have.all():  # no logged context for these users: the typical value
                    col = np.where(have, col, self._typical_context(c))
                out[c] = pd.Series(col, index=pairs.index)
                if c in self.interactions.columns and isinstance(self.interactions[c].dtype, pd.CategoricalDtype):
                    out[c] = out[c].astype(self.interactions[c].dtype)
                sources[c] = "user-latest" if have.all() else ("typical" if not have.any() else "user-latest/typical")
        out.attrs["context"] = sources
        return out

    def context_values(self, context: "dict[str, Any] | None") -> dict:
        """Stated context values (``--context key=value``) checked and typed against their
        columns: an unknown name gets "did you mean", a value a number for a numeric column or
        one seen in the logs for a categorical one. Returns ``{column: typed value}``."""
        names = self.context_names
        unknown = [k for k in (context or {}) if k not in names]
        if unknown:
            import difflib

            k = unknown[0]
            close = difflib.get_close_matches(k, names, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise DataError(f"--context {k}: dataset {self.name!r} has no context feature {k!r}; {hint}"
                            f"its context features are {names or 'none'}")
        return {k: self._context_value(k, v) for k, v in (context or {}).items()}

    def user_pairs(self, user: Any, items: Any, context: "dict[str, Any] | None" = None) -> "pd.DataFrame":
        """Rows (user, item, context) for one user and several items, ready for ``features``:
        the context is ``context`` where given, else the user's latest (see ``with_context``)."""
        import numpy as np
        import pandas as pd

        items = np.asarray(items)
        pairs = pd.DataFrame({USER: np.repeat(user, len(items)), ITEM: items})
        return self.with_context(pairs, context) if self.context_names else pairs

    def context_of(self, row: Any) -> dict:
        """The context values of one row (a Series or mapping): ``{column: value}`` for the
        context columns it holds; what ``user_pairs`` needs to score other items alike."""
        return {c: row[c] for c in self.context_names if c in row}

    def _context_value(self, name: str, value: Any) -> Any:
        """An explicit context value in the column's type; refused if it cannot be one."""
        import pandas as pd

        f = self.schema[name]
        ref = self.interactions[name] if name in self.interactions.columns else None
        if f.kind == "numeric":
            try:
                return float(value)
            except (TypeError, ValueError):
                raise DataError(f"--context {name}={value}: {name!r} is numeric; give a number") from None
        if ref is not None:
            cats = (list(ref.cat.categories) if isinstance(ref.dtype, pd.CategoricalDtype) else list(pd.unique(ref.dropna())))
            for c in cats:
                if c == value or str(c) == str(value):
                    return c
            shown = ", ".join(repr(c) for c in cats[:10]) + (" ..." if len(cats) > 10 else "")
            raise DataError(f"--context {name}={value}: {value!r} is not a value of {name!r} in the data ({shown})")
        return value

    def _latest_context(self) -> "pd.DataFrame":
        """Per user, the context columns of their most recent logged interaction (an empty
        table, so every user gets the typical value, when the logs hold no context)."""
        if self._latest is None:
            import pandas as pd

            inter = self.interactions
            if USER in inter.columns and all(c in inter.columns for c in self.context_names):
                src = inter.sort_values(TIMESTAMP, kind="stable") if TIMESTAMP in inter.columns else inter
                self._latest = src.groupby(USER, sort=False, observed=True)[self.context_names].last()
            else:
                self._latest = pd.DataFrame(columns=self.context_names, index=pd.Index([], name=USER))
        return self._latest

    def _typical_context(self, name: str) -> Any:
        import numpy as np

        src = self.train if self.train is not None and name in self.train.columns else self.interactions
        if name not in src.columns:
            raise DataError(f"dataset {self.name!r}: context feature {name!r} has no logged values to default to; "
                            f"state it (--context {name}=VALUE)")
        col = src[name].dropna()
        if not len(col):
            raise DataError(f"dataset {self.name!r}: context feature {name!r} has no values in the training rows; "
                            f"state it (--context {name}=VALUE) or drop it from context_features")
        if self.schema[name].kind == "numeric":
            return float(np.median(col.to_numpy(float)))
        return col.mode().iloc[0]

    def rederive_history(self, X: "pd.DataFrame") -> "pd.DataFrame":
        """``X`` with its history-derived features rebuilt from its sequence features (see
        ``history_deriver``); the rows and every other column are unchanged."""
        if self.history_deriver is None:
            from .errors import UnsupportedError

            raise UnsupportedError(f"dataset {self.name!r} cannot rebuild history features for an edited history "
                                   "(it sets no history_deriver); hold them fixed instead")
        out = self.history_deriver(X)
        if list(out.columns) != list(X.columns) or len(out) != len(X):
            raise DataError(f"dataset {self.name!r}: history_deriver changed the rows or columns of the feature matrix")
        return out

    def describe_feature(self, name: str, value: Any, row: Any = None) -> str:
        if self.describer is not None:
            text = self.describer(name, value, row)
            if text:
                return text
        return f"{name} = {value}"

    # -- users and items ----------------------------------------------------------------
    @property
    def user_ids(self) -> "np.ndarray":
        return self.users.index.to_numpy()

    @property
    def item_ids(self) -> "np.ndarray":
        return self.items.index.to_numpy()

    def item_title(self, item: Any) -> str:
        if "title" in self.items.columns and item in self.items.index:
            return str(self.items.at[item, "title"])
        return str(item)

    def check_user(self, user: Any) -> Any:
        """Return the user id as stored (accepts "12" for 12, and the original id of a
        pseudonymised user); DataError if unknown."""
        if self.user_alias is not None and user not in self.users.index:
            alias = self.user_alias(user)
            if alias in self.users.index:
                return alias
        return _lookup_id(self.users.index, user, "user", self.name)

    def check_item(self, item: Any, label: str = "") -> Any:
        """Return the item id as stored (accepts "50" for 50); DataError if unknown.
        ``label`` names the item's role in the message (e.g. "A" in "item A 999")."""
        return _lookup_id(self.items.index, item, f"item {label}".strip(), self.name)

    def _positives(self) -> "pd.DataFrame":
        src = self.train if self.train is not None else self.interactions
        return src[src[LABEL] > 0] if LABEL in src.columns else src

    def history(self, user: Any) -> list:
        """Items the user interacted with positively in training, oldest first."""
        if self._history is None:
            pos = self._positives()
            if TIMESTAMP in pos.columns:
                pos = pos.sort_values([USER, TIMESTAMP], kind="stable")
            self._history = {u: g.tolist() for u, g in pos.groupby(USER, sort=False)[ITEM]}
        return self._history.get(user, [])

    def seen(self, user: Any) -> set:
        src = self.train if self.train is not None else self.interactions
        if not hasattr(self, "_seen_cache"):
            self._seen_cache = {u: set(g) for u, g in src.groupby(USER, sort=False)[ITEM]}
        return self._seen_cache.get(user, set())

    def candidates(self, user: Any) -> "np.ndarray":
        """Items the user has not interacted with in training: what `recommend` ranks."""
        import numpy as np

        seen = self.seen(user)
        items = self.item_ids
        if not seen:
            return items
        return items[~np.isin(items, np.fromiter(seen, dtype=items.dtype, count=len(seen)))]

    # -- identity -----------------------------------------------------------------------
    def data_hash(self) -> str:
        """sha256 over the interactions, user and item tables: identifies the input data."""
        if self._hash is None:
            import pandas as pd

            h = hashlib.sha256()
            for df in (self.interactions, self.users, self.items):
                h.update(pd.util.hash_pandas_object(df, index=True).to_numpy().tobytes())
            self._hash = h.hexdigest()
        return self._hash

    def summary(self) -> dict:
        inter = self.interactions
        pos = float(inter[LABEL].mean()) if LABEL in inter.columns and len(inter) else None
        return {
            "name": self.name,
            "description": self.description,
            "rows": int(len(inter)),
            "users": int(len(self.users)),
            "items": int(len(self.items)),
            "positive_rate": pos,
            "train_rows": None if self.train is None else int(len(self.train)),
            "test_rows": None if self.test is None else int(len(self.test)),
            "fields": self.schema.fields,
            "features": self.schema.to_dict(),
            "data_hash": self.data_hash(),
            "domain": self.params.get("domain", "default"),  # the words of explanation sentences
        }


def parse_context_options(items: "tuple[str, ...] | list[str]") -> dict[str, str]:
    """``--context key=value`` options as a dict; values stay text until ``with_context`` types
    them against the column (a number for a numeric column, a known category otherwise)."""
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = str(item).partition("=")
        if not sep or not key.strip():
            raise DataError(f"--context {item!r}: expected KEY=VALUE (e.g. --context device=ios)")
        if key.strip() in out:
            raise DataError(f"--context {key.strip()}: given twice; state each context column once")
        out[key.strip()] = value.strip()
    return out


def _lookup_id(idx: Any, value: Any, what: str, dataset: str) -> Any:
    """An id as the index stores it: ids typed on a command line arrive as strings."""
    if value in idx:
        return value
    try:
        conv = type(idx[0])(value) if len(idx) else value
    except (TypeError, ValueError):
        conv = value
    if conv in idx:
        return conv
    kind = what.split()[0]
    raise DataError(f"{what} {value!r} is not in dataset {dataset!r} ({len(idx)} {kind}s, e.g. {list(idx[:3])})")
