"""whyrec-distill: distillation, pruning and quantisation of recommenders, with fidelity reports.

Registers (lazily: nothing heavy is imported until a component is used)
- compressors ``distill``, ``prune``, ``quantize``;
- models ``mlp`` (small torch MLP student), ``tree-student`` (shallow LightGBM / single-tree
  surrogate), ``pruned-torch`` and ``quantized-torch`` (compressed torch-attention models),
  ``pruned-mlp`` and ``quantized-mlp`` (compressed MLP students);
- the command ``whyrec compress RUN --method distill --student mlp``.
"""
from __future__ import annotations

import whyrec
from whyrec.plugins import lazy

__version__ = "0.1.0"


@whyrec.hookimpl
def register_models(register):
    register("mlp", lazy("whyrec_distill.mlp:MLPStudent"),
             description="Small torch MLP over the non-sequence features and ids: a distillation student.",
             provides=["differentiable", "mlp"])
    register("tree-student", lazy("whyrec_distill.tree:TreeStudent"),
             description="Shallow LightGBM (or one decision tree) surrogate: an interpretable distillation student.",
             provides=["tree", "lightgbm", "categorical", "surrogate"])
    register("pruned-torch", lazy("whyrec_distill.compressed_torch:PrunedTorchModel"),
             description="torch-attention model after global magnitude pruning (sparse safetensors).",
             provides=["differentiable", "attention", "sequence", "pruned"])
    register("quantized-torch", lazy("whyrec_distill.compressed_torch:QuantizedTorchModel"),
             description="torch-attention model with dynamic int8 linear layers.",
             provides=["attention", "sequence", "quantized"])
    register("pruned-mlp", lazy("whyrec_distill.compressed:PrunedMLP"),
             description="MLP student after global magnitude pruning (sparse safetensors).",
             provides=["differentiable", "mlp", "pruned"])
    register("quantized-mlp", lazy("whyrec_distill.compressed:QuantizedMLP"),
             description="MLP student with dynamic int8 linear layers.",
             provides=["mlp", "quantized"])


@whyrec.hookimpl
def register_compressors(register):
    register("distill", lazy("whyrec_distill.distill:Distiller"),
             description="Knowledge distillation of any model into an MLP or tree student (score or ranking distillation).")
    register("prune", lazy("whyrec_distill.prune:Pruner"),
             description="Global magnitude pruning of a torch model's linear layers to a target sparsity, with fine-tuning.")
    register("quantize", lazy("whyrec_distill.quantize:Quantizer"),
             description="Dynamic int8 quantisation of a torch model's linear layers.")


@whyrec.hookimpl
def register_commands(cli):
    from .cli import compress_command  # click only; heavy modules load inside the command

    cli.add_command(compress_command, "compress")
