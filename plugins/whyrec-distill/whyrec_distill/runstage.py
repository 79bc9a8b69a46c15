"""Compressing a model of an existing run directory (the ``whyrec compress`` command)."""
from __future__ import annotations

import re
import shutil
import sys
import time
import traceback
import warnings
from pathlib import Path
from typing import Any

from whyrec.errors import RegistryError, RunDirError, WhyrecError
from whyrec.progress import log


def _check_params(host: Any, method: str, params: dict) -> None:
    from whyrec.registry import ComponentSpec, check_component

    spec = ComponentSpec("compressor", method, method, params, f"whyrec compress --method {method}")
    check_component(host, spec)


def compress_run(run_dir: str | Path, *, method: str = "distill", student: str | None = None, teacher: str | None = None,
                 name: str | None = None, params: dict | None = None, overwrite: bool = False, report: bool = True) -> dict:
    """Run compressor ``method`` on model ``teacher`` of the run in ``run_dir``; returns
    {"stage": the manifest record, "summary": the report summary, "text": a short table}."""
    from whyrec.context import PipelineContext
    from whyrec.rundir import Run

    run = Run(run_dir)
    params = dict(params or {})
    if student is not None:
        if method != "distill":
            raise WhyrecError(f"--student applies to --method distill only ({method} keeps the teacher's architecture)")
        params["student"] = student
    host = run.host
    _check_params(host, method, params)
    seed = int(run.manifest.get("seed") or 0)
    params.setdefault("seed", seed)
    try:  # constructors check parameter values (e.g. sparsity in (0, 1)) before anything loads
        comp = host.create("compressors", method, params)
    except TypeError as exc:
        raise RegistryError(f"whyrec compress --method {method}: {exc}") from exc
    names = run.model_names()
    if not names:
        raise RunDirError(f"{run.path}: the run has no fitted model to compress; rerun a pipeline with a model stage")
    teacher = teacher or names[0]
    if teacher not in names:
        raise RunDirError(f"{run.path}: no model {teacher!r} in this run (models: {', '.join(names)}); pass --teacher NAME")
    given = name is not None
    name = name or method
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", name):
        raise WhyrecError(f"--name {name!r}: use letters, digits, '.', '-' and '_' only")

    def holders(n: str) -> list[dict]:  # compressor stages whose report lives in compressors/<n>/
        return [s for s in run.manifest["stages"] if s.get("kind") == "compressor" and s.get("name") == f"compressor:{n}"
                and s.get("status") == "complete"]

    others = [s for s in holders(name) if s.get("teacher") != teacher]
    if others:
        if given:
            raise RunDirError(f"{run.path}: compressors/{name}/ already holds the report of {others[0].get('model')!r}; "
                              f"pick another --name for {method} on {teacher!r}")
        name = re.sub(r"[^A-Za-z0-9_.-]", "-", f"{method}-{teacher}")  # keep the pipeline's stage intact
    stage_name = f"compressor:{name}"
    student_name = f"{name}:{teacher}"
    rel_dir, rel_model = f"compressors/{name}", f"models/{name}__{teacher}"
    existing = [s for s in run.manifest["stages"] if s.get("name") == stage_name and s.get("model") == student_name]
    if existing and not overwrite:
        raise RunDirError(f"{run.path}: the run already has {stage_name!r} for teacher {teacher!r}; pass --overwrite "
                          "to replace it or --name to keep both")

    data = run.load_data()
    model = run.load_model(teacher)
    if hasattr(comp, "check_teacher"):  # refuse an unsuitable teacher before recording a stage
        comp.check_teacher(model, teacher)
    ctx = PipelineContext(pipeline=run.pipeline, run_dir=run.path, seed=seed, settings=run.manifest.get("settings", {}),
                          data=data, models={teacher: model}, host=host)

    out_dir, model_dir = run.path / rel_dir, run.path / rel_model
    for d in (out_dir, model_dir):
        if d.exists():
            shutil.rmtree(d)
    run.manifest["stages"] = [s for s in run.manifest["stages"] if not (s.get("name") == stage_name and s.get("model") == student_name)]
    rec = {"name": stage_name, "kind": "compressor", "component": method, "status": "running", "seconds": None,
           "dir": rel_dir, "artifacts": [], "summary": {}, "error": None, "teacher": teacher, "model": student_name,
           "model_dir": rel_model, "via": "whyrec compress"}
    run.manifest["stages"].append(rec)
    run.manifest.setdefault("spec", {}).setdefault("compressor", []).append(
        {"use": method, "name": name, "params": params, "teacher": teacher})
    run.write_manifest()
    log(f"{stage_name} on {teacher} ...")
    t0 = time.perf_counter()
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            compressed, rep = comp.compress(model, data, ctx)
            paths = rep.save(out_dir)
            compressed.save(model_dir)
        rec["warnings"] = sorted({f"{w.category.__name__}: {w.message}" for w in caught
                                  if not issubclass(w.category, DeprecationWarning)})[:20]
        for w in caught:  # still show the user what went wrong-ish (e.g. a student larger than its teacher)
            if w.category.__name__ == "StudentLargerWarning":
                log(f"warning: {w.message}")
    except BaseException as exc:
        rec.update(status="failed", seconds=round(time.perf_counter() - t0, 3), error=f"{type(exc).__name__}: {exc}", dir=None)
        if not isinstance(exc, WhyrecError):
            rec["traceback"] = traceback.format_exc()
        for d in (out_dir, model_dir):
            shutil.rmtree(d, ignore_errors=True)
        run.write_manifest()
        raise
    files = paths + [p for p in model_dir.rglob("*") if p.is_file()]
    rec.update(status="complete", seconds=round(time.perf_counter() - t0, 3),
               artifacts=sorted(str(p.relative_to(run.path)) for p in files),
               summary=rep.summary, model_component=getattr(compressed, "component_name", None) or compressed.name)
    run.write_manifest()
    if report:
        try:
            from whyrec.report import build_report

            build_report(run)
        except ImportError:  # pragma: no cover - report builder not installed
            pass
    return {"stage": rec, "summary": rep.summary, "text": format_summary(rep.summary, run.path / rel_dir, student_name)}


def format_summary(summary: dict, where: Path, student_name: str) -> str:
    k = summary.get("k", 10)
    cols = [("jaccard@%d" % k, "Jaccard@%d" % k), ("kendall_tau", "Kendall tau"), ("rbo", "RBO"),
            ("teacher_auc", "AUC(teacher labels)"), ("top3_agreement", "top-3 agreement"),
            (f"ndcg@{k}", f"NDCG@{k}"), ("size_ratio", "size ratio"), ("weight_size_ratio", "weights ratio"),
            ("speedup", "speed-up")]
    lines = [f"{summary.get('method')}: {summary.get('teacher')} -> {student_name} ({summary.get('eval_users')} test users, "
             f"explainer {summary.get('explainer')})"]
    head = f"{'model':<10}" + "".join(f"{lab:>20}" for _, lab in cols)
    lines.append(head)
    for role, m in summary.get("models", {}).items():
        cells = []
        for key, _ in cols:
            v = m.get(key)
            cells.append(f"{'-' if v is None else (f'{v:.3f}' if isinstance(v, float) else v):>20}")
        lines.append(f"{role:<10}" + "".join(cells))
    unmet = [c for c, ok in summary.get("bar", {}).items() if ok is False]
    lines.append("bar: " + ("all met" if not unmet else "not met: " + "; ".join(unmet)))
    for w in summary.get("warnings", []):
        lines.append(f"warning: {w}")
    lines.append(f"report: {where}")
    return "\n".join(lines)
