"""`whyrec validate` reads lazy components' signatures from source: the same parameters as
importing them, and no heavy import."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from whyrec.plugins import get_host, lazy
from whyrec.registry import factory_parameters
from whyrec.signature import is_unread, static_parameters

KINDS = ("datasets", "models", "explainers", "causal_learners", "compressors", "feedback_analyzers", "executors")


def test_static_signature_equals_the_imported_one_for_every_installed_component():
    host = get_host()
    read = 0
    for kind in KINDS:
        for name in host.names(kind):
            f = host.get(kind, name).factory
            if not isinstance(f, lazy):
                continue
            st = static_parameters(f.target)
            if st is None:  # cannot be read for certain: validation imports it instead
                continue
            read += 1
            (sp, sh, sv), (rp, rh, rv) = st, factory_parameters(f)
            assert list(sp) == list(rp) and sv == rv, name
            for k in sp:
                assert [sp[k].kind, sp[k].default is sp[k].empty] == [rp[k].kind, rp[k].default is rp[k].empty], (name, k)
                if not is_unread(sp[k].default):
                    assert sp[k].default == rp[k].default, (name, k)
                assert sh.get(k) == rh.get(k), (name, k, sh.get(k), rh.get(k))
    assert read >= 25


def test_unreadable_sources_fall_back(tmp_path, monkeypatch):
    (tmp_path / "sigmod.py").write_text(
        "from dataclasses import dataclass\n"
        "import os\n"
        "@dataclass\nclass D:\n    x: int = 1\n"
        "class Base:\n    def __init__(self, a: int = 2, *, b: 'list[str] | None' = None, **kw):\n        pass\n"
        "class Child(Base):\n    pass\n"
        "class Other(os.PathLike):\n    pass\n"
        "class Odd:\n    def __init__(self, when: 'pd.Timestamp' = 3, n=len('ab')):\n        pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert static_parameters("sigmod:D") is None          # a dataclass builds __init__ at import
    assert static_parameters("sigmod:Other") is None      # inherited from another module
    assert static_parameters("sigmod:Missing") is None
    params, hints, var_kw = static_parameters("sigmod:Child")  # inherited within the module
    assert list(params) == ["a", "b"] and params["a"].default == 2 and var_kw
    assert hints == {"a": int, "b": list[str] | None}
    params, hints, _ = static_parameters("sigmod:Odd")
    assert hints == {} and params["when"].default == 3 and is_unread(params["n"].default)


def test_validate_imports_no_heavy_library():
    reg = Path(__file__).parents[2] / "registry.toml"
    code = ("import sys, json; from whyrec.registry import load_registry; from whyrec.plugins import get_host; "
            f"p = load_registry({str(reg)!r}).problems(get_host()); "
            "print(json.dumps([p, sorted(m for m in ('torch', 'lightgbm', 'shap', 'causalnex', 'sklearn') if m in sys.modules)]))")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout.strip().splitlines()[-1]) == [[], []]
