"""docs/plugins.md documents every hook with its exact signature (datasette style)."""
from __future__ import annotations

import inspect
import re
from pathlib import Path

from whyrec import hookspecs

DOC = Path(__file__).parents[2] / "docs" / "plugins.md"


def spec_signatures() -> dict[str, str]:
    out = {}
    for name, fn in vars(hookspecs).items():
        if callable(fn) and hasattr(fn, "whyrec_spec"):
            out[name] = f"{name}({', '.join(inspect.signature(fn).parameters)})"
    return out


def doc_signatures() -> dict[str, str]:
    return {m.group(1): m.group(0)[4:] for m in re.finditer(r"^### (\w+)\(([^)]*)\)$", DOC.read_text(), re.M)}


def test_every_hook_is_documented_with_its_signature():
    specs, docs = spec_signatures(), doc_signatures()
    assert specs, "no hook specs found"
    assert sorted(specs) == sorted(docs), "hooks added or removed without updating docs/plugins.md"
    for name, sig in specs.items():
        assert docs[name] == sig, f"docs/plugins.md shows {docs[name]!r}, code has {sig!r}"


def test_every_hookspec_has_a_docstring():
    for name in spec_signatures():
        assert (getattr(hookspecs, name).__doc__ or "").strip(), name
