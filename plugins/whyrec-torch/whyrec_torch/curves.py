"""Training curves: JSON and a PNG in the run directory, TensorBoard events when installed."""
from __future__ import annotations

import importlib.util
from pathlib import Path

from whyrec.atomic import write_figure, write_json


def tensorboard_available() -> bool:
    return importlib.util.find_spec("tensorboard") is not None


class CurveLogger:
    """Collects per-epoch metrics; ``flush`` writes them where the run keeps them."""

    def __init__(self, directory: Path | None, tensorboard: bool | None = None) -> None:
        self.directory = Path(directory) if directory is not None else None
        self.rows: list[dict] = []
        self.writer = None
        use_tb = tensorboard_available() if tensorboard is None else tensorboard
        if self.directory is not None and use_tb and tensorboard_available():
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(log_dir=str(self.directory / "tensorboard"))

    def log(self, row: dict) -> None:
        self.rows.append(row)
        if self.writer is not None:
            for k, v in row.items():
                if k != "epoch" and isinstance(v, (int, float)):
                    self.writer.add_scalar(k, v, row["epoch"])

    def flush(self) -> list[Path]:
        if self.writer is not None:
            self.writer.flush()
            self.writer.close()
            self.writer = None
        if self.directory is None or not self.rows:
            return []
        return [write_json(self.directory / "training_curves.json", self.rows),
                write_figure(self.directory / "training_curves.png", plot_curves(self.rows))]


def plot_curves(rows: list[dict]):
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    epochs = [r["epoch"] for r in rows]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9, 3.2))
    ax1.plot(epochs, [r["train_loss"] for r in rows], marker="o", label="train")
    if rows and "val_loss" in rows[0]:
        ax1.plot(epochs, [r["val_loss"] for r in rows], marker="o", label="validation")
    ax1.set_xlabel("epoch")
    ax1.set_ylabel("BCE loss")
    ax1.legend()
    ax1.set_title("loss")
    if rows and "val_auc" in rows[0]:
        ax2.plot(epochs, [r["val_auc"] for r in rows], marker="o", color="tab:green")
        ax2.set_ylabel("AUC")
        ax2.set_title("validation AUC")
    else:
        ax2.plot(epochs, [r["seconds"] for r in rows], marker="o", color="tab:gray")
        ax2.set_ylabel("seconds")
        ax2.set_title("epoch time")
    ax2.set_xlabel("epoch")
    fig.tight_layout()
    return fig
