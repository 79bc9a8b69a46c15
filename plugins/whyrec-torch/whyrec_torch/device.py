"""Device choice: "auto" takes CUDA when present, CPU otherwise; "cuda" without CUDA is an error."""
from __future__ import annotations

import torch

from whyrec.errors import UnsupportedError

DEVICES = ("auto", "cpu", "cuda")


def resolve_device(device: str, who: str = "torch-attention") -> torch.device:
    """The torch device for a ``device`` parameter ("auto", "cpu", "cuda" or "cuda:N")."""
    if not isinstance(device, str) or not (device in DEVICES or device.startswith("cuda:")):
        raise UnsupportedError(f"{who}: device={device!r} is not one of 'auto', 'cpu', 'cuda', 'cuda:N'")
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise UnsupportedError(
                f"{who}: device={device!r} was requested but CUDA is not available "
                f"(torch {torch.__version__}, torch.cuda.is_available() is False); "
                "use device='auto' (CUDA when present, CPU otherwise) or device='cpu'"
            )
        idx = torch.device(device).index or 0
        if idx >= torch.cuda.device_count():
            raise UnsupportedError(f"{who}: device={device!r} but only {torch.cuda.device_count()} CUDA device(s) exist")
    return torch.device(device)
