"""The optional ``lime`` dependency: imported where it is used, one line naming the extra when missing
(docs/plugins.md, "Optional heavy dependencies")."""
from __future__ import annotations

import importlib
from types import ModuleType

from whyrec.errors import UnsupportedError

DISTRIBUTION = "whyrec-lime"


def require(module: str, extra: str = "lime", feature: str = "explainer 'lime'") -> ModuleType:
    """``import module``, or one line: what needs it and ``pip install '<dist>[<extra>]'``."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise UnsupportedError(f"{feature} needs {module.split('.')[0]}, which is not installed; "
                               f"install the extra: pip install '{DISTRIBUTION}[{extra}]'") from None
