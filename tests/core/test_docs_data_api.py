"""docs/data-api.md documents every public attribute and method of RecData, FeatureSchema,
Feature and BaseModel with its exact signature (datasette style, as test_docs.py does for hooks).

Headings `### Class.method(args)` (methods and class methods), `### Class.prop` (properties) and
`### Class(args)` (constructors); attribute tables with rows `| `Class.attr` | ...`.
"""
from __future__ import annotations

import dataclasses
import inspect
import re
from pathlib import Path

from whyrec import data as data_module
from whyrec.contracts import BaseModel, Model
from whyrec.data import RecData
from whyrec.schema import Feature, FeatureSchema

DOC = Path(__file__).parents[2] / "docs" / "data-api.md"
CLASSES = {c.__name__: c for c in (RecData, FeatureSchema, Feature, BaseModel)}
# What a BaseModel subclass implements: documented on BaseModel, with the signature of the
# contract that defines it.
SUBCLASS_HOOKS = {"fit": Model.fit, "score_features": Model.score_features,
                  "_save_weights": BaseModel._save_weights, "_load_weights": BaseModel._load_weights}
HEADING = re.compile(r"^### (\w+)(?:\.(\w+))?(\(.*\))?$", re.M)
ATTR_ROW = re.compile(r"^\| `(\w+)\.(\w+)` \|", re.M)


def _params(sig: inspect.Signature, drop_first: bool) -> str:
    ps = list(sig.parameters.values())[1 if drop_first else 0:]
    ps = [p.replace(annotation=inspect.Parameter.empty) for p in ps]
    return str(sig.replace(parameters=ps, return_annotation=inspect.Signature.empty))


def _constructor(cls: type) -> str:
    if dataclasses.is_dataclass(cls):  # public fields, defaults as written (a factory's value)
        parts = []
        for f in dataclasses.fields(cls):
            if f.name.startswith("_") or not f.init:
                continue
            if f.default is not dataclasses.MISSING:
                parts.append(f"{f.name}={f.default!r}")
            elif f.default_factory is not dataclasses.MISSING:
                parts.append(f"{f.name}={f.default_factory()!r}")
            else:
                parts.append(f.name)
        return f"({', '.join(parts)})"
    return _params(inspect.signature(cls.__init__), drop_first=True)


def code_entries() -> tuple[dict[str, str], set[str]]:
    """{"Class.member": "(args)" or "" for a property, "Class": "(args)"}, and the attributes."""
    sigs: dict[str, str] = {}
    attrs: set[str] = set()
    for cname, cls in CLASSES.items():
        sigs[cname] = _constructor(cls)
        fields = {f.name for f in dataclasses.fields(cls)} if dataclasses.is_dataclass(cls) else set()
        for name in dir(cls):
            if name.startswith("_"):
                continue
            raw = inspect.getattr_static(cls, name)
            if name in fields:
                attrs.add(f"{cname}.{name}")
            elif isinstance(raw, property):
                sigs[f"{cname}.{name}"] = ""
            elif isinstance(raw, classmethod):
                sigs[f"{cname}.{name}"] = _params(inspect.signature(getattr(cls, name)), drop_first=False)
            elif inspect.isfunction(raw):
                sigs[f"{cname}.{name}"] = _params(inspect.signature(raw), drop_first=True)
            else:  # class attributes (BaseModel.name, .capabilities)
                attrs.add(f"{cname}.{name}")
        attrs |= {f"{cname}.{f}" for f in fields if not f.startswith("_")}
    # BaseModel's instance attributes, as a fresh instance has them
    attrs |= {f"BaseModel.{a}" for a in vars(BaseModel()) if not a.startswith("_")}
    for name, fn in SUBCLASS_HOOKS.items():
        sigs[f"BaseModel.{name}"] = _params(inspect.signature(fn), drop_first=True)
    return sigs, attrs


def doc_entries(path: Path = DOC) -> tuple[dict[str, str], set[str]]:
    text = path.read_text()
    sigs = {}
    for m in HEADING.finditer(text):
        cls, member, args = m.groups()
        if cls not in CLASSES:
            continue
        key = f"{cls}.{member}" if member else cls
        assert key not in sigs, f"docs/data-api.md documents {key} twice"
        sigs[key] = args or ""
    attrs = {f"{c}.{a}" for c, a in ATTR_ROW.findall(text) if c in CLASSES}
    return sigs, attrs


def test_every_method_and_property_is_documented_with_its_signature():
    code, _ = code_entries()
    docs, _ = doc_entries()
    assert len(code) >= 40  # the four classes were found
    missing = sorted(set(code) - set(docs))
    stale = sorted(set(docs) - set(code))
    assert not missing, f"docs/data-api.md lacks {missing}"
    assert not stale, f"docs/data-api.md documents what the code no longer has: {stale}"
    for key, sig in code.items():
        kind = "a property (no parentheses)" if sig == "" else "a method"
        assert docs[key] == sig, f"docs/data-api.md shows {key}{docs[key]}, code has {key}{sig} ({kind})"


def test_every_attribute_is_in_an_attribute_table():
    _, code = code_entries()
    _, docs = doc_entries()
    assert {"RecData.interactions", "Feature.field", "BaseModel.feature_names", "BaseModel.capabilities"} <= code
    assert sorted(code - docs) == [], "attributes missing from docs/data-api.md"
    assert sorted(docs - code) == [], "docs/data-api.md lists attributes the code no longer has"


def test_the_standard_column_names_are_documented_with_their_values():
    text = DOC.read_text()
    names = [n for n in vars(data_module) if n.isupper() and isinstance(getattr(data_module, n), str)]
    assert {"USER", "ITEM", "LABEL", "TIMESTAMP"} <= set(names)
    for n in names:
        assert f"| `{n}` | `\"{getattr(data_module, n)}\"` |" in text, n


def test_the_checker_sees_a_drifted_signature(tmp_path):
    """The check compares what it should: a renamed argument or a dropped default is caught."""
    text = DOC.read_text()
    assert "### RecData.with_context(pairs, context=None)" in text
    for wrong in ("### RecData.with_context(pairs, ctx=None)", "### RecData.with_context(pairs, context)"):
        bad = tmp_path / "data-api.md"
        bad.write_text(text.replace("### RecData.with_context(pairs, context=None)", wrong))
        docs, _ = doc_entries(bad)
        code, _ = code_entries()
        assert docs["RecData.with_context"] != code["RecData.with_context"]
    bad.write_text(text.replace("### RecData.context_names\n", "### RecData.context_names()\n"))
    assert doc_entries(bad)[0]["RecData.context_names"] != code["RecData.context_names"] == ""  # a property is no call
    bad.write_text(text.replace("### RecData.seen(user)\n", ""))
    assert "RecData.seen" not in doc_entries(bad)[0]


def test_the_guides_link_the_data_api():
    root = DOC.parents[1]
    for guide in ("docs/plugins.md", "docs/datasets.md", "docs/index.md"):
        assert "(data-api.md)" in (root / guide).read_text(), guide
