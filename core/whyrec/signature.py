"""A lazy component's parameters read from its source, without importing it.

`whyrec validate` checks every registry entry's parameter names and types against the
component's signature. Importing the component to ask would import its libraries (torch,
LightGBM: seconds) before anything runs, so for ``lazy("module:Class")`` factories the
``__init__`` signature is read from the module's source with ``ast``: names, literal
defaults, and annotations evaluated against ``typing`` and the builtins. Anything this cannot
read for certain (a dataclass, an ``__init__`` inherited from another module, a decorator)
returns None and the caller imports the component as before. A test checks that the static
reading equals ``inspect.signature`` for every installed component.
"""
from __future__ import annotations

import ast
import builtins
import importlib.util
import inspect
import typing
from pathlib import Path
from typing import Any

_UNREAD = object()  # a default that is not a literal: present (the parameter is optional), value unknown


def static_parameters(target: str) -> "tuple[dict[str, inspect.Parameter], dict[str, Any], bool] | None":
    """(parameters, type hints, accepts **kwargs) of ``module:Class`` (or a function), or None."""
    module, _, attr = target.partition(":")
    if not module or not attr or "." in attr:
        return None
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.origin or not spec.origin.endswith(".py"):
        return None
    try:
        tree = ast.parse(Path(spec.origin).read_text(encoding="utf-8"))
    except (OSError, SyntaxError, UnicodeDecodeError):
        return None
    top = {n.name: n for n in tree.body if isinstance(n, (ast.ClassDef, ast.FunctionDef))}
    fn = _init_of(top.get(attr), top)
    if fn is None:
        return None
    return _read(fn, skip_first=isinstance(top.get(attr), ast.ClassDef))


def _init_of(node: Any, top: dict, depth: int = 0) -> "ast.FunctionDef | None":
    if isinstance(node, ast.FunctionDef):
        return None if node.decorator_list else node
    if not isinstance(node, ast.ClassDef) or node.decorator_list or depth > 5:
        return None  # dataclasses and other decorated classes build their __init__ at import
    for item in node.body:
        if isinstance(item, ast.FunctionDef) and item.name == "__init__":
            return None if item.decorator_list else item
    # inherited: only from a plain class of the same module with a single base
    if len(node.bases) == 1 and isinstance(node.bases[0], ast.Name) and node.bases[0].id in top:
        return _init_of(top[node.bases[0].id], top, depth + 1)
    return None


def _read(fn: ast.FunctionDef, skip_first: bool) -> "tuple[dict[str, inspect.Parameter], dict[str, Any], bool]":
    a = fn.args
    positional = a.posonlyargs + a.args
    if skip_first and positional:
        positional = positional[1:]
    defaults = [None] * (len(positional) - len(a.defaults)) + list(a.defaults)
    params: dict[str, inspect.Parameter] = {}
    hints: dict[str, Any] = {}
    items = [(p, d, inspect.Parameter.POSITIONAL_OR_KEYWORD) for p, d in zip(positional, defaults)]
    items += [(p, d, inspect.Parameter.KEYWORD_ONLY) for p, d in zip(a.kwonlyargs, a.kw_defaults)]
    for arg, default, kind in items:
        value = inspect.Parameter.empty if default is None else _literal(default)
        params[arg.arg] = inspect.Parameter(arg.arg, kind, default=value)
        if arg.annotation is not None:
            hint = _annotation(arg.annotation)
            if hint is not None:
                hints[arg.arg] = hint
    return params, hints, a.kwarg is not None


def _literal(node: ast.AST) -> Any:
    try:
        return ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return _UNREAD


_BUILTIN_TYPES = ("int", "float", "str", "bool", "bytes", "list", "dict", "tuple", "set", "frozenset", "object", "type")
_NAMES = {**{n: getattr(typing, n) for n in typing.__all__}, **{n: getattr(builtins, n) for n in _BUILTIN_TYPES},
          "Path": Path}


def _annotation(node: ast.AST) -> Any:
    text = node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else ast.unparse(node)
    try:
        return eval(text, {"__builtins__": {}}, dict(_NAMES))  # noqa: S307  (typing names and builtin types only)
    except Exception:  # noqa: BLE001  (pd.DataFrame and other module names: no hint, as get_type_hints would fail)
        return None


def is_unread(value: Any) -> bool:
    return value is _UNREAD
