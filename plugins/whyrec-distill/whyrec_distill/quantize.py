"""``quantize``: dynamic int8 quantisation of a torch model's linear layers.

``torch.ao.quantization.quantize_dynamic`` stores every ``nn.Linear`` weight as int8 (one
scale per tensor) and quantises activations on the fly; embeddings stay float unless
``include_embeddings`` (8-bit rows, one float scale and zero point each: recommenders are
mostly embeddings, so only this shrinks them much). The result is a
``quantized-torch`` (or ``quantized-mlp``) model that runs on the CPU.
"""
from __future__ import annotations

from typing import Any, Literal

from whyrec.data import RecData
from whyrec.errors import RegistryError
from whyrec.results import CompressionReport

from .common import build_report, check_eval_params, clone_into, require_torch_teacher, teacher_name
from .evaluate import EvalSettings


class Quantizer:
    """Dynamic int8 quantisation of the linear layers, then the fidelity report."""

    def __init__(
        self,
        dtype: Literal["qint8"] = "qint8",
        include_embeddings: bool = False,
        eval_users: int = 100,
        k: int = 10,
        explain_users: int = 10,
        explain_k: int = 3,
        explainer: str = "auto",
        threads: int = 1,
        repeats: int = 3,
        seed: int = 0,
    ) -> None:
        if dtype != "qint8":
            raise RegistryError(f"compressor 'quantize': dtype={dtype!r}; only 'qint8' dynamic quantisation is supported")
        check_eval_params("quantize", eval_users, k, explain_users, explain_k, repeats)
        self.include_embeddings = bool(include_embeddings)
        self.settings = EvalSettings(eval_users=int(eval_users), k=int(k), explain_users=int(explain_users),
                                     explain_k=int(explain_k), explainer=explainer, threads=int(threads),
                                     repeats=int(repeats), seed=int(seed))

    def check_teacher(self, model: Any, name: str | None = None) -> str:
        """The model family, or UnsupportedError naming the methods that do apply."""
        return require_torch_teacher("quantize", model, name or teacher_name(model, None))

    def compress(self, model: Any, data: RecData, ctx: Any = None) -> tuple[Any, CompressionReport]:
        name = teacher_name(model, ctx)
        fam = self.check_teacher(model, name)
        from .compressed import QuantizedMLP, QuantizedTorchModel

        student = clone_into(QuantizedTorchModel if fam == "torch" else QuantizedMLP, model)
        student.quantize(embeddings=self.include_embeddings)
        report = build_report(model, {"student": student}, data, self.settings, method="quantize", ctx=ctx,
                              extra={"quantization": student.compression,
                                     "roles": {"student": f"{name} with int8 dynamic linear layers"}})
        return student, report
