"""Progress bars for long stages (tqdm on stderr; silent when WHYREC_PROGRESS=0)."""
from __future__ import annotations

import os
from typing import Any, Iterable


def progress(iterable: Iterable[Any] | None = None, desc: str = "", total: int | None = None, unit: str = "it", **kw: Any):
    from tqdm.auto import tqdm

    disable = os.environ.get("WHYREC_PROGRESS", "1") == "0"
    return tqdm(iterable, desc=desc, total=total, unit=unit, disable=disable, leave=False, dynamic_ncols=True, **kw)
