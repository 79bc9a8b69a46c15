"""Safe weight files: safetensors only, never a pickle, written atomically."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from whyrec.atomic import atomic_path
from whyrec.errors import DataError

WEIGHTS = "weights.safetensors"
FIGURE_SUFFIXES = (".png", ".svg", ".pdf")


def _looks_pickled(head: bytes) -> bool:
    # A safetensors file starts with its header length (u64, little endian) and then the
    # JSON header "{...": that first byte may well be 0x80, so only a file that is not
    # safetensors-shaped counts as a pickle (0x80 PROTO) or torch.save zip ("PK").
    if len(head) >= 9 and head[8:9] == b"{":
        return False
    return head[:1] == b"\x80" or head[:2] == b"PK"


def check_not_pickle(path: Path) -> None:
    """Refuse a pickle or a torch.save archive before anything parses it."""
    with open(path, "rb") as fh:
        head = fh.read(9)
    if _looks_pickled(head):
        raise DataError(f"{path}: this is a pickled file; whyrec refuses pickles because loading them can run "
                        "arbitrary code. Re-save the model with whyrec (safetensors weights)")


def save_tensors(tensors: dict, path: Path, metadata: dict[str, str] | None = None) -> Path:
    from safetensors.torch import save_file

    out = {k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}
    meta = dict(metadata or {})
    with atomic_path(path) as tmp:
        for pad in range(4):
            save_file(out, str(tmp), metadata=meta)
            with open(tmp, "rb") as fh:
                head = fh.read(2)
            # Readers that only look at the first bytes (whyrec-torch's check) would take a
            # header length whose low byte is 0x80 (or "PK") for a pickle: pad the header.
            if head[:1] != b"\x80" and head != b"PK":
                break
            meta["_pad"] = " " * (pad + 1)
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


WEIGHT_SUFFIXES = (".safetensors", ".txt")


def weight_bytes(directory: Path) -> int:
    """Bytes of the weight files alone (safetensors, LightGBM's model.txt): the part of a
    model that grows with it, without the JSON metadata every whyrec model carries."""
    return int(sum(p.stat().st_size for p in Path(directory).rglob("*") if p.is_file() and p.suffix in WEIGHT_SUFFIXES))


def model_bytes(directory: Path) -> int:
    """Bytes of a saved model directory, without figures (training-curve plots are not the model)."""
    return int(sum(p.stat().st_size for p in Path(directory).rglob("*")
                   if p.is_file() and p.suffix not in FIGURE_SUFFIXES and p.name != "training_curves.json"))
