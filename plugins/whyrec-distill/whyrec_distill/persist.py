"""Safe weight files: safetensors only, never a pickle, written atomically."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from whyrec.atomic import atomic_path
from whyrec.errors import DataError

WEIGHTS = "weights.safetensors"
FIGURE_SUFFIXES = (".png", ".svg", ".pdf")


def check_not_pickle(path: Path) -> None:
    """Refuse a pickle (0x80) or torch.save zip ("PK") before anything parses it."""
    with open(path, "rb") as fh:
        head = fh.read(2)
    if head[:1] == b"\x80" or head == b"PK":
        raise DataError(f"{path}: this is a pickled file; whyrec refuses pickles because loading them can run "
                        "arbitrary code. Re-save the model with whyrec (safetensors weights)")


def save_tensors(tensors: dict, path: Path, metadata: dict[str, str] | None = None) -> Path:
    from safetensors.torch import save_file

    out = {k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}
    with atomic_path(path) as tmp:
        save_file(out, str(tmp), metadata=metadata or {})
    return path


def load_tensors(path: Path) -> dict:
    if not path.exists():
        raise DataError(f"{path}: weights file not found; the model directory is incomplete (re-save the model)")
    check_not_pickle(path)
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        return load_file(str(path), device="cpu")
    except (SafetensorError, OSError, ValueError) as exc:
        raise DataError(f"{path}: not a readable safetensors file ({exc}); re-save the model") from exc


def read_json(path: Path, what: str) -> Any:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError as exc:
        raise DataError(f"{path}: missing; {what}") from exc
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: not valid JSON ({exc}); {what}") from exc


def model_bytes(directory: Path) -> int:
    """Bytes of a saved model directory, without figures (training-curve plots are not the model)."""
    return int(sum(p.stat().st_size for p in Path(directory).rglob("*")
                   if p.is_file() and p.suffix not in FIGURE_SUFFIXES and p.name != "training_curves.json"))
