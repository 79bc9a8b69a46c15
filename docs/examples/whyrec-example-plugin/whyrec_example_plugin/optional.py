"""Optional heavy dependencies: an extra in pyproject.toml, and one line naming it when missing.

The convention (docs/plugins.md, "Optional heavy dependencies"): the plugin works without the
extra; the feature that needs it imports it through ``require`` where it is used (never at
module level), so a missing package is one ``UnsupportedError`` line that names the extra to
install, which the CLI prints without a traceback.
"""
from __future__ import annotations

import importlib
from types import ModuleType

from whyrec.errors import UnsupportedError

DISTRIBUTION = "whyrec-example-plugin"


def require(module: str, extra: str, feature: str) -> ModuleType:
    """``import module``, or one line: what needs it and ``pip install '<dist>[<extra>]'``."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise UnsupportedError(f"{feature} needs {module.split('.')[0]}, which is not installed; "
                               f"install the extra: pip install '{DISTRIBUTION}[{extra}]'") from None
