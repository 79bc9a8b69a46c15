"""What the three compressors share: checking parameters and teachers, the size warning, and
turning an evaluation into a CompressionReport."""
from __future__ import annotations

import copy
import warnings
from typing import Any

from whyrec.errors import RegistryError, UnsupportedError
from whyrec.results import CompressionReport

from .evaluate import EvalSettings, evaluate

METHODS_FOR = {
    "torch": ["distill", "prune", "quantize"],
    "mlp": ["distill", "prune", "quantize"],
    "tree": ["distill"],
    "other": ["distill"],
}


class StudentLargerWarning(UserWarning):
    """The compressed model is not smaller than its teacher."""


def eval_settings(component: str, eval_users: int, k: int, explain_users: int, explain_k: int, explainer: str,
                  threads: int, repeats: int, seed: int) -> EvalSettings:
    """The evaluation settings every compressor takes, checked (``check_eval_params``) and typed."""
    check_eval_params(component, eval_users, k, explain_users, explain_k, repeats)
    return EvalSettings(eval_users=int(eval_users), k=int(k), explain_users=int(explain_users), explain_k=int(explain_k),
                        explainer=explainer, threads=int(threads), repeats=int(repeats), seed=int(seed))


def check_eval_params(component: str, eval_users: int, k: int, explain_users: int, explain_k: int, repeats: int) -> None:
    for key, val, lo in (("eval_users", eval_users, 0), ("k", k, 1), ("explain_users", explain_users, 0),
                         ("explain_k", explain_k, 0), ("repeats", repeats, 1)):
        if int(val) < lo:
            raise RegistryError(f"compressor {component!r}: {key}={val} must be >= {lo}")


def model_family(model: Any) -> str:
    """From the model's declared capabilities: 'torch' (any model offering "torch-network"),
    'mlp' (this plugin's student), 'tree' (LightGBM and surrogates) or 'other'."""
    caps = set(getattr(model, "capabilities", ()) or ())
    if "torch-network" in caps:
        return "torch"
    if "mlp" in caps:
        return "mlp"
    if "tree" in caps or "lightgbm" in caps:
        return "tree"
    return "other"


def require_torch_teacher(method: str, model: Any, name: str) -> str:
    """prune / quantize need a torch network with nn.Linear layers: say what applies otherwise."""
    fam = model_family(model)
    if getattr(model, "compression", None) and getattr(model, "compression", {}).get("method") == "quantize":
        raise UnsupportedError(f"{method}: model {name!r} is already quantised to int8; {method} it before quantising "
                               "(prune, then quantize), or distill it")
    if fam == "torch":
        from .network import check_network

        check_network(model, f"{method}: teacher {name!r}")
        return fam
    if fam != "mlp" or getattr(model, "net", None) is None:
        kind = {"tree": "a LightGBM tree model", "other": "not a torch network"}.get(fam, fam)
        raise UnsupportedError(
            f"{method}: teacher {name!r} is {kind}, and {method} works on the linear layers of a torch network "
            f"(a model with the 'torch-network' capability, such as torch-attention, or an mlp student); "
            f"methods that apply to {name!r}: {', '.join(METHODS_FOR[fam])} "
            "(e.g. compressor = { use = \"distill\", student = \"mlp\" } or student = \"tree-student\")"
        )
    return fam


def teacher_name(model: Any, ctx: Any) -> str:
    if ctx is not None:
        for n, m in getattr(ctx, "models", {}).items():
            if m is model:
                return n
    return getattr(model, "component_name", None) or getattr(model, "name", type(model).__name__)


def clone_into(cls: type, model: Any) -> Any:
    """A ``cls`` instance sharing ``model``'s data, encoder and parameters, with its own copy of
    the network: the starting point of a pruned or quantised model."""
    obj = cls.__new__(cls)
    obj.__dict__.update(model.__dict__)
    obj.__dict__.pop("component_name", None)  # the copy is a different registered model
    obj.params = dict(model.params)
    obj.net = copy.deepcopy(model.net)
    return obj


def size_warning(summary: dict, label: str = "student") -> list[str]:
    """Warn (and return the message) when the compressed model is not smaller than the teacher
    on disk (bytes compare across model families; parameter counts only within one)."""
    m = summary["models"].get(label, {})
    t = summary["models"]["teacher"]
    msgs = []
    if m.get("bytes") is not None and t.get("bytes") and m["bytes"] >= t["bytes"]:
        msgs.append(f"the {label} {m.get('name')!r} is not smaller than its teacher {t.get('name')!r}: "
                    f"{m['bytes']} bytes against {t['bytes']} ({m['bytes'] / t['bytes']:.2f}x); "
                    "choose a smaller student (fewer hidden units, smaller embeddings, fewer trees)")
    elif m.get("bytes") is None and m.get("parameters") and t.get("parameters") and m["parameters"] >= t["parameters"]:
        # parameters of a tree and of a network are not comparable: only a fallback
        msgs.append(f"the {label} {m.get('name')!r} has at least as many parameters ({m['parameters']}) as its teacher "
                    f"({t['parameters']}); choose a smaller student")
    for msg in msgs:
        warnings.warn(msg, StudentLargerWarning, stacklevel=3)
    return msgs


def build_report(teacher: Any, models: dict, data: Any, settings: EvalSettings, *, method: str, ctx: Any,
                 extra: dict, extra_tables: dict | None = None) -> CompressionReport:
    host = getattr(ctx, "host", None) if ctx is not None else None
    res = evaluate(teacher, models, data, settings, method=method, teacher_name=teacher_name(teacher, ctx), host=host)
    summary = res["summary"]
    summary.update(extra)
    summary["warnings"] = size_warning(summary)
    tables = {**res["tables"], **(extra_tables or {})}
    return CompressionReport(summary=summary, tables=tables, figures=res["figures"], csv_tables=("fidelity", "bar"))
