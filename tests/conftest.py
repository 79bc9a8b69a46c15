"""Shared test set-up: quiet progress bars, matplotlib without a screen."""
import os

os.environ.setdefault("WHYREC_PROGRESS", "0")
os.environ.setdefault("MPLBACKEND", "Agg")
