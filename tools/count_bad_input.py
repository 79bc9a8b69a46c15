"""Count the bad-input cases the tests check, at a git revision (default: the working tree).

A test case is one test function, times the rows of its ``pytest.mark.parametrize`` tables.
It counts as a bad-input case when its body checks a refusal: ``pytest.raises(...)``, the core
tests' ``assert_user_error``, a CLI exit code 1 or 2 (``exit_code``/``returncode``/``code`` == 1 | 2,
``!= 0``), or an HTTP 4xx status. Static (ast), so any revision is counted without running it.

    python tools/count_bad_input.py            # the working tree
    python tools/count_bad_input.py 9289d1c    # a revision
"""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOTS = ("tests", "docs/examples/whyrec-example-plugin/tests")


def _files(rev: str | None) -> dict[str, str]:
    if rev is None:
        return {str(p): p.read_text() for r in ROOTS for p in Path(r).rglob("test_*.py")}
    names = subprocess.run(["git", "ls-tree", "-r", "--name-only", rev, "--", *ROOTS], capture_output=True, text=True,
                           check=True).stdout.split()
    out = {}
    for n in names:
        if Path(n).name.startswith("test_") and n.endswith(".py"):
            out[n] = subprocess.run(["git", "show", f"{rev}:{n}"], capture_output=True, text=True, check=True).stdout
    return out


def _is_refusal(node: ast.AST) -> bool:
    for n in ast.walk(node):
        if isinstance(n, ast.Call):
            f = n.func
            name = f.attr if isinstance(f, ast.Attribute) else getattr(f, "id", "")
            if name in ("raises", "assert_user_error"):
                return True
        if isinstance(n, ast.Compare) and len(n.comparators) == 1:
            left = n.left
            attr = left.attr if isinstance(left, ast.Attribute) else getattr(left, "id", "")
            right = n.comparators[0]
            val = right.value if isinstance(right, ast.Constant) else None
            if attr in ("exit_code", "returncode", "code", "status") and (
                    (isinstance(n.ops[0], ast.Eq) and val in (1, 2, 130)) or (isinstance(n.ops[0], ast.NotEq) and val == 0)):
                return True
            if attr in ("status_code", "status") and isinstance(val, int) and 400 <= val < 500 and isinstance(n.ops[0], ast.Eq):
                return True
    return False


def _cases(fn: ast.FunctionDef) -> int:
    n = 1
    for d in fn.decorator_list:
        if isinstance(d, ast.Call) and getattr(d.func, "attr", "") == "parametrize" and len(d.args) >= 2:
            vals = d.args[1]
            if isinstance(vals, (ast.List, ast.Tuple)):
                n *= max(len(vals.elts), 1)
    return n


def count(rev: str | None = None) -> tuple[int, int]:
    """(bad-input cases, all test cases)."""
    bad = total = 0
    for src in _files(rev).values():
        try:
            tree = ast.parse(src)
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name.startswith("test_"):
                c = _cases(node)
                total += c
                if _is_refusal(node):
                    bad += c
    return bad, total


if __name__ == "__main__":
    rev = sys.argv[1] if len(sys.argv) > 1 else None
    bad, total = count(rev)
    print(f"{rev or 'working tree'}: {bad} bad-input cases in {total} test cases")
