"""whyrec-distill: distillation, pruning and quantisation of recommenders, with fidelity reports.

Registers (lazily: nothing heavy is imported until a component is used)
- compressors ``distill``, ``prune``, ``quantize``, and for a model with the
  ``structured-network`` capability ``prune-structured`` (whole blocks and heads) and
  ``distill-network`` (a small student of the teacher's own family);
- models ``mlp`` (small torch MLP student), ``tree-student`` (shallow LightGBM / single-tree
  surrogate), ``pruned-torch`` and ``quantized-torch`` (any model with the ``torch-network``
  capability, compressed), ``pruned-mlp`` and ``quantized-mlp`` (compressed MLP students);

It imports no other plugin: teachers are told apart by their declared capabilities, and a
torch model is reached through the ``torch-network`` contract (``whyrec.contracts.TorchNetwork``).
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
    # any model with the torch-network capability, compressed: an instance of its own class with
    # its capabilities plus these (whyrec_distill.network); loading goes through its registered name
    register("pruned-torch", lazy("whyrec_distill.network:PrunedNetwork"),
             description="A torch-network model (e.g. torch-attention) after global magnitude pruning (sparse safetensors).",
             provides=["torch-network", "pruned"])
    register("quantized-torch", lazy("whyrec_distill.network:QuantizedNetwork"),
             description="A torch-network model (e.g. torch-attention) with dynamic int8 linear layers.",
             provides=["torch-network", "quantized"])
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
    register("prune-structured", lazy("whyrec_distill.structured:StructuredPruner"),
             description="Structured pruning of a structured-network model (e.g. transformer-seq): whole blocks and "
                         "attention heads removed, least important first, then fine-tuned on the teacher (smaller and faster).")
    register("distill-network", lazy("whyrec_distill.structured:NetworkDistiller"),
             description="Listwise distillation into a small untrained model of the teacher's own family "
                         "(a structured-network model's clone_architecture: fewer blocks, heads, dimensions).")
    register("quantize", lazy("whyrec_distill.quantize:Quantizer"),
             description="Dynamic int8 quantisation of a torch model's linear layers.")


@whyrec.hookimpl
def register_commands(cli):
    from .cli import compress_command  # click only; heavy modules load inside the command

    cli.add_command(compress_command, "compress")
