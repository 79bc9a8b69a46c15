"""Safe weights on disk: safetensors (or a weights-only torch state_dict), never a pickled module.

``check_not_pickle`` looks at a file's first bytes before anything parses it: a pickle stream
starts with the PROTO opcode 0x80, a ``torch.save`` archive is a zip ("PK"); both can run code
when loaded the old way, so a whyrec model directory holding one is refused outright.
"""
from __future__ import annotations

from pathlib import Path

import torch

from whyrec.atomic import atomic_path
from whyrec.errors import DataError

WEIGHTS = "weights.safetensors"


def check_not_pickle(path: Path) -> None:
    with open(path, "rb") as fh:
        head = fh.read(9)
    # safetensors: an 8-byte little-endian header length, then the JSON header. The length's
    # first byte may be 0x80 (a 896-byte header), the pickle opcode, so recognise it first.
    if len(head) == 9 and head[8:9] == b"{" and int.from_bytes(head[:8], "little") < 100_000_000:
        return
    if head[:1] == b"\x80" or head[:2] == b"PK":
        kind = "a Python pickle" if head[:1] == b"\x80" else "a torch.save (zip/pickle) archive"
        raise DataError(
            f"{path}: this file is {kind}; whyrec refuses pickled model files because loading them "
            "can run arbitrary code. Save weights with safetensors (TorchAttentionModel.save writes "
            f"{WEIGHTS}) and load that instead"
        )


def compact(t: torch.Tensor) -> torch.Tensor:
    """``t`` as float16 when that is lossless (every value survives the round trip: a network
    whose weights were rounded to half precision, e.g. ``distill-network``'s ``storage =
    "float16"``), else ``t``. Loading copies it back into the float32 parameter exactly."""
    if t.dtype != torch.float32 or t.numel() == 0:
        return t
    h = t.to(torch.float16)
    return h if bool(torch.isfinite(h).all()) and torch.equal(h.to(torch.float32), t) else t


def save_state(state: dict[str, torch.Tensor], path: Path, metadata: dict[str, str] | None = None) -> Path:
    from safetensors.torch import save_file

    tensors = {k: compact(v.detach().to("cpu").contiguous()) for k, v in state.items()}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=metadata or {})
    return path


def load_state(path: Path) -> dict[str, torch.Tensor]:
    """Read a state_dict from safetensors; refuses pickles before parsing anything."""
    if not path.exists():
        raise DataError(f"{path}: weights file not found; the model directory is incomplete (re-save the model)")
    check_not_pickle(path)
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        state = load_file(str(path), device="cpu")
    except (SafetensorError, OSError, ValueError) as exc:
        raise DataError(f"{path}: not a readable safetensors file ({exc}); re-save the model") from exc
    # float16 on disk is a lossless copy of a float32 tensor (``compact``): back to what was saved
    return {k: v.to(torch.float32) if v.dtype == torch.float16 else v for k, v in state.items()}


def state_mismatch(expected: dict[str, torch.Tensor], got: dict[str, torch.Tensor]) -> list[str]:
    """Human-readable differences between two state_dicts (keys and shapes)."""
    out = []
    missing = sorted(set(expected) - set(got))
    extra = sorted(set(got) - set(expected))
    if missing:
        out.append(f"missing tensors {missing}")
    if extra:
        out.append(f"unexpected tensors {extra}")
    for k in sorted(set(expected) & set(got)):
        if tuple(expected[k].shape) != tuple(got[k].shape):
            out.append(f"{k}: shape {tuple(got[k].shape)} in the file, {tuple(expected[k].shape)} expected")
    return out
