"""Privacy of the people in the data: pseudonymous user ids and redacted feature values.

``privacy = { hash_ids = true, salt_env = "WHYREC_SALT", redact_fields = ["user"] }`` in a
pipeline (docs/privacy.md). With ``hash_ids`` the data set is pseudonymised right after it is
loaded, in one place (``protect``): every user id becomes ``u_`` + a keyed hash (HMAC-SHA256
with the secret in the named environment variable), so everything downstream (models,
explanations, the report, explain-batch, MLflow) only ever sees pseudonyms. The featurizer
still reaches the dataset's own tables through an in-memory mapping that is never written;
the run directory holds only a check value of the key, which tells a wrong secret from
changed data. ``redact_fields`` keeps the raw values of those fields' features out of what a
run writes (explanations' feature values, worded reasons); models still use them.
"""
from __future__ import annotations

import hashlib
import hmac
import os
from dataclasses import dataclass, field, replace
from typing import Any

from .errors import RegistryError, RunDirError

KEYS = {"hash_ids": bool, "salt_env": str, "redact_fields": list, "min_peers": int}
MIN_SALT = 16  # characters: a short secret can be guessed by hashing candidate ids
ID_FEATURE = "user_id"  # the feature that carries the user id itself (MovieLens, table's id_features)
WITHHELD = "withheld"


@dataclass(frozen=True)
class Privacy:
    hash_ids: bool = False
    salt_env: str | None = None
    redact_fields: tuple[str, ...] = ()
    key: bytes = field(default=b"", repr=False, compare=False)  # read from the environment, never stored

    @property
    def active(self) -> bool:
        return self.hash_ids or bool(self.redact_fields)

    def pseudonym(self, user: Any) -> str:
        return "u_" + hmac.new(self.key, b"whyrec-user:" + str(user).encode(), hashlib.sha256).hexdigest()[:20]

    def key_check(self) -> str:
        """A value that identifies the key without revealing it (stored in the manifest)."""
        return hmac.new(self.key, b"whyrec-key-check", hashlib.sha256).hexdigest()[:16]

    def manifest(self) -> dict:
        out: dict = {"hash_ids": self.hash_ids, "redact_fields": list(self.redact_fields)}
        if self.hash_ids:
            out.update(salt_env=self.salt_env, key_check=self.key_check())
        return out


def parse(value: Any, where: str) -> dict:
    """Check the ``privacy`` table of a pipeline (types, typos, salt_env when hashing)."""
    from .registry import _did_you_mean

    if not isinstance(value, dict):
        raise RegistryError(f"{where}: expected a table like {{ hash_ids = true, salt_env = \"WHYREC_SALT\" }}, got {type(value).__name__}")
    for k, v in value.items():
        if k not in KEYS:
            raise RegistryError(f"{where}: unknown key {k!r}{_did_you_mean(k, KEYS)} (allowed: {', '.join(KEYS)})")
        if not isinstance(v, KEYS[k]):
            raise RegistryError(f"{where}.{k}: expected {KEYS[k].__name__}, got {type(v).__name__} {v!r}")
    if not all(isinstance(f, str) for f in value.get("redact_fields", [])):
        raise RegistryError(f"{where}.redact_fields: expected a list of field names (strings), e.g. [\"user\"]")
    from .schema import FIELDS  # a closed set: `whyrec validate` can refuse a misspelt field before anything loads

    for f in value.get("redact_fields", []):
        if f not in FIELDS:
            raise RegistryError(f"{where}.redact_fields: {f!r} is not a field{_did_you_mean(f, FIELDS)} (redact_fields "
                                f"takes fields: {', '.join(FIELDS)}; not feature names: every feature of a field is withheld)")
    if "min_peers" in value and (isinstance(value["min_peers"], bool) or value["min_peers"] < 2):
        raise RegistryError(f"{where}.min_peers: {value['min_peers']!r} must be a whole number >= 2 (how many other "
                            "users must back a \"people who ...\" sentence; default 10)")
    if value.get("hash_ids") and not value.get("salt_env"):
        raise RegistryError(f"{where}: hash_ids = true needs salt_env = \"NAME\", the environment variable that holds "
                            "the secret key (it is never written into the run)")
    return dict(value)


def from_settings(settings: dict | None, where: str = "privacy") -> Privacy:
    """The run's privacy, with the key read from the environment (refused if missing or short)."""
    p = dict((settings or {}).get("privacy") or {})
    if not p:
        return Privacy()
    hash_ids = bool(p.get("hash_ids"))
    key = b""
    env = p.get("salt_env")
    if hash_ids:
        secret = os.environ.get(env or "")
        if not secret:
            raise RegistryError(f"{where}: hash_ids = true reads its secret from environment variable {env!r}, which is not "
                                f"set; export {env}=<a secret of at least {MIN_SALT} characters> (keep it out of the run "
                                "directory and of registry.toml)")
        if len(secret) < MIN_SALT:
            raise RegistryError(f"{where}: the secret in {env!r} has {len(secret)} characters; use at least {MIN_SALT} "
                                "(a short one can be found by hashing candidate ids)")
        key = secret.encode()
    return Privacy(hash_ids=hash_ids, salt_env=env, redact_fields=tuple(p.get("redact_fields", [])), key=key)


def for_run(manifest: dict, where: str) -> Privacy:
    """The privacy a finished run was made with; refuses a secret that is not the run's."""
    stored = manifest.get("privacy") or {}
    if not stored:
        return Privacy()
    priv = from_settings({"privacy": {k: v for k, v in stored.items() if k in KEYS}}, where=f"{where}: privacy")
    if priv.hash_ids and priv.key_check() != stored.get("key_check"):
        raise RunDirError(f"{where}: the secret in environment variable {priv.salt_env!r} is not the one this run "
                          "pseudonymised its user ids with; set the run's secret")
    return priv


def check_fields(priv: Privacy, data: Any, where: str) -> None:
    from .registry import _did_you_mean

    fields = set(data.schema.fields)
    for f in priv.redact_fields:
        if f not in fields:
            raise RegistryError(f"{where}: redact_fields names {f!r}, which is not a field of dataset {data.name!r}"
                                f"{_did_you_mean(f, fields)} (fields: {', '.join(sorted(fields))})")


def protect(data: Any, priv: Privacy, where: str = "privacy") -> Any:
    """``data`` as the rest of the run may see it: user ids pseudonymised (hash_ids) and the
    values of redacted fields kept out of worded reasons. The identity when privacy is off."""
    if not priv.active:
        return data
    check_fields(priv, data, where)
    redacted = {f.name for f in data.schema if f.field in priv.redact_fields}
    describer = _redacting_describer(data.describer, redacted, data.schema) if redacted else data.describer
    params = dict(data.params, redacted_features=sorted(redacted)) if redacted else data.params
    if not priv.hash_ids:
        return replace(data, describer=describer, params=params)
    import pandas as pd

    from .data import USER

    raw_ids = data.users.index
    fake = pd.Index([priv.pseudonym(u) for u in raw_ids], name=raw_ids.name)
    if fake.has_duplicates:  # pragma: no cover - 80-bit hashes of distinct ids
        raise RegistryError(f"{where}: two user ids got the same pseudonym; report this")
    to_fake = pd.Series(fake.to_numpy(), index=raw_ids)
    to_raw = pd.Series(raw_ids.to_numpy(), index=fake)

    def fwd(s: "pd.Series") -> "pd.Series":
        return s.map(to_fake).fillna(s.astype(object)) if len(s) else s.astype(object)

    def back(s: "pd.Series") -> "pd.Series":
        out = s.map(to_raw)
        return out.where(out.notna(), s) if len(s) else s

    def frame(df: "pd.DataFrame | None") -> "pd.DataFrame | None":
        if df is None or USER not in df.columns:
            return df
        df = df.copy()
        df[USER] = fwd(df[USER]).to_numpy()
        return df

    def id_feature(X: "pd.DataFrame", mapping: "pd.Series") -> "pd.DataFrame":
        if ID_FEATURE not in X.columns:
            return X
        X = X.copy()
        col = X[ID_FEATURE]
        if isinstance(col.dtype, pd.CategoricalDtype):
            cats = col.cat.categories
            X[ID_FEATURE] = col.cat.rename_categories(list(pd.Series(cats).map(mapping).fillna(pd.Series(cats)).to_numpy()))
        else:
            X[ID_FEATURE] = col.map(mapping).where(col.map(mapping).notna(), col)
        return X

    inner = data.featurizer

    def featurizer(_: Any, rows: "pd.DataFrame") -> "pd.DataFrame":
        raw_rows = rows.copy()
        raw_rows[USER] = back(rows[USER]).to_numpy()
        X = inner(data, raw_rows) if inner is not None else data.features(raw_rows)
        return id_feature(X, to_fake)

    deriver = None
    if data.history_deriver is not None:
        def deriver(X: "pd.DataFrame") -> "pd.DataFrame":
            return id_feature(data.history_deriver(id_feature(X, to_raw)), to_fake)

    def alias(user: Any) -> Any:  # the id as the person knows it ("5" or 5) -> its pseudonym
        for u in (user, *_numeric_forms(user)):
            if u in to_fake.index:
                return to_fake[u]
        return priv.pseudonym(user)  # an unknown id is hashed too: nothing written may hold it

    return replace(data, users=data.users.set_axis(fake), user_alias=alias, interactions=frame(data.interactions), train=frame(data.train),
                  test=frame(data.test), featurizer=featurizer, history_deriver=deriver, describer=describer,
                  params=_scrub(params, set(map(str, raw_ids))))


def _numeric_forms(v: Any) -> list:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return []
    return [int(f)] if f.is_integer() else [f]


def _redacting_describer(inner: Any, redacted: set[str], schema: Any):
    def describe(name: str, value: Any, row: Any = None) -> str | None:
        if name in redacted:
            f = schema[name]
            return f"{f.description or name} ({f.field}; value {WITHHELD})"
        return inner(name, value, row) if inner is not None else None
    return describe


def _scrub(params: dict, raw: set[str]) -> dict:
    """Dataset parameters written into the run (split reports) may list user ids: drop those."""
    def clean(v: Any) -> Any:
        if isinstance(v, dict):
            return {k: clean(x) for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            kept = [clean(x) for x in v if not (isinstance(x, (str, int)) and str(x) in raw)]
            return kept
        return v
    return clean(params)


def redact_explanation(expl: Any, priv: Privacy) -> Any:
    """An explanation as it may be written: redacted fields' raw feature values removed."""
    if not priv.redact_fields or expl.feature_values is None:
        return expl
    hide = [c for c in expl.feature_values.columns if c in expl.schema and expl.schema[c].field in priv.redact_fields]
    if hide:  # the columns stay (plots and tables index them), their values do not
        fv = expl.feature_values.copy()
        for c in hide:
            fv[c] = WITHHELD
        expl.feature_values = fv
    return expl
