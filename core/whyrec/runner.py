"""The pipeline runner: validates the whole pipeline, builds every component, then runs the
stages in order into a run directory, calling the lifecycle hooks around each stage."""
from __future__ import annotations

import os
import platform
import random
import shutil
import sys
import time
import traceback
import warnings
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from . import __version__
from .context import PipelineContext
from .errors import RegistryError, StageError, UnsupportedError, WhyrecError, WhyrecWarning
from .progress import log
from .rundir import writer_identity
from .registry import ComponentSpec, PipelineSpec, Registry, load_registry, resolved_params
from .rundir import Run


def run(
    pipeline: str | None = None,
    registry: str | Path | Registry = "registry.toml",
    out: str | Path = "runs",
    seed: int | None = None,
    host: Any = None,
    overrides: dict | None = None,
) -> Run:
    """Run a pipeline of ``registry`` and return the finished ``Run``.

    Raises WhyrecError for anything the user can fix; the run directory then holds a manifest
    marked failed (and the artifacts of the stages that completed, never a half-written one).
    """
    from .plugins import get_host

    host = host or get_host()
    reg = registry if isinstance(registry, Registry) else load_registry(registry)
    spec = reg.pipeline(pipeline)
    reg.validate(host, pipelines=[spec.name])
    settings = {"seed": 0, "sample_users": 20, "top_k": 10, "eval_users": 200, **spec.settings, **(overrides or {})}
    if seed is not None:
        settings["seed"] = seed
    from .privacy import from_settings

    privacy = from_settings(settings, where=f"{spec.where}.privacy")  # a missing secret stops the run before any stage
    components = _build_components(host, spec, settings["seed"], Path(reg.path).resolve().parent)

    run_dir = _new_run_dir(Path(out), spec.name)
    manifest = {
        "whyrec_version": __version__,
        "pipeline": spec.name,
        "registry": str(reg.path),
        "status": "running",
        "writer": writer_identity(),  # a reader can tell a live run from one whose process was killed
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "finished": None,
        "seed": settings["seed"],
        "settings": settings,
        "python": platform.python_version(),
        "plugins": [{"name": i.name, "version": i.version, "error": i.error} for i in host.plugin_infos()],
        "spec": {key: [_spec_entry(c, obj) for c, obj in comps] for key, comps in components.items()},
        "data_hash": None,
        "dataset": None,
        "privacy": privacy.manifest() if privacy.active else None,
        "metrics": {},
        "stages": [],
        "warnings": [],
    }
    run_obj = Run.create(manifest, run_dir)
    run_obj.manifest = manifest  # one dict: the runner updates it, write_manifest() persists it
    run_obj._host = host
    ctx = PipelineContext(pipeline=spec.name, run_dir=run_dir, seed=settings["seed"], settings=settings, host=host,
                          spec=manifest["spec"], privacy=privacy)
    _seed_everything(settings["seed"])
    hook = host.pm.hook
    _call_hook(run_obj, "before_run", hook.before_run, run=run_obj)
    try:
        _run_stages(run_obj, ctx, components)
        manifest["status"] = "complete"  # the report reads the finished manifest
        if settings.get("report", {}).get("enabled", True):
            _stage(run_obj, ctx, "report", "report", "html", lambda d: _build_report(run_obj))
    except BaseException as exc:
        manifest["status"] = "failed"
        # stage failures are also on their stage; this covers the steps between stages too
        # (building the pairs to explain, say), which would otherwise leave no reason
        manifest["error"] = f"{type(exc).__name__}: {exc}"
        raise
    finally:
        manifest["finished"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
        run_obj.write_manifest()
        _call_hook(run_obj, "after_run", hook.after_run, run=run_obj)
        run_obj.write_manifest()
    return run_obj


# -- building ------------------------------------------------------------------------------
def _build_components(host: Any, spec: PipelineSpec, seed: int, base: Path | None = None) -> dict[str, list[tuple[ComponentSpec, Any]]]:
    """Instantiate every component before anything runs: constructors validate parameters.
    ``base``: the registry file's folder, against which relative path parameters resolve."""
    out: dict[str, list[tuple[ComponentSpec, Any]]] = {}
    for key, comps in spec.stages.items():
        built = []
        for c in comps:
            built.append((c, _create(host, c, seed, base)))
            if key == "feedback":
                c.extra["logs_obj"] = _create(host, c.extra["logs"], seed, base)
        out[key] = built
    if "executor" not in out:
        local = ComponentSpec("executor", "local", "local", {}, f"{spec.where}.executor")
        out["executor"] = [(local, host.create("executors", "local"))]
    return out


def _create(host: Any, c: ComponentSpec, seed: int, base: Path | None = None) -> Any:
    from .registry import factory_parameters, path_parameters

    comp = host.get(c.kind, c.use, where=f"{c.where}.use: ")
    params = dict(c.params)
    names, _, _ = factory_parameters(comp.factory)
    if "seed" in names and "seed" not in params:
        params["seed"] = seed  # one pipeline seed makes every seeded component reproducible
    if base is not None:  # a relative path means "next to registry.toml", wherever whyrec runs; recorded absolute
        for key in path_parameters(comp.factory):
            value = params.get(key)
            if isinstance(value, str) and value and not Path(value).expanduser().is_absolute():
                params[key] = str(base / value)
    c.params = params
    try:
        return comp.create(**params)
    except WhyrecError as exc:
        raise RegistryError(f"{c.where}: {exc}") from exc
    except (TypeError, ValueError) as exc:
        raise RegistryError(f"{c.where}: {c.use!r} rejected its parameters: {exc}") from exc


def _spec_entry(c: ComponentSpec, obj: Any) -> dict:
    from .registry import factory_parameters  # noqa: F401

    entry = {"use": c.use, "name": c.name, "params": _jsonable(resolved_params(type(obj), c.params))}
    for k, v in c.extra.items():
        if k == "logs":
            entry["logs"] = {"use": v.use, "params": _jsonable(v.params)}
        elif k != "logs_obj":
            entry[k] = v
    return entry


def _jsonable(d: dict) -> dict:
    import json

    out = {}
    for k, v in d.items():
        try:
            json.dumps(v)
            out[k] = v
        except TypeError:
            out[k] = repr(v)
    return out


def _new_run_dir(out: Path, pipeline: str) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    path = out / f"{pipeline}-{stamp}"
    n = 2
    while path.exists():
        path = out / f"{pipeline}-{stamp}-{n}"
        n += 1
    return path


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    os.environ.setdefault("PYTHONHASHSEED", str(seed))
    import numpy as np

    np.random.seed(seed % (2**32))
    if "torch" in sys.modules:
        sys.modules["torch"].manual_seed(seed)


# -- running -------------------------------------------------------------------------------
def _run_stages(run_obj: Run, ctx: PipelineContext, components: dict) -> None:
    (dspec, dataset), = components["dataset"]
    spec_where = dspec.where.rsplit(".", 1)[0]
    (_, ctx.executor), = components["executor"]

    def load_data(d: Path) -> list[Path]:
        from .atomic import write_json

        from .privacy import protect

        ctx.data = protect(dataset.load(), ctx.privacy, where=f"{spec_where}.privacy")  # the one place ids are pseudonymised
        summary = ctx.data.summary()
        run_obj.manifest["data_hash"] = summary["data_hash"]
        run_obj.manifest["dataset"] = summary
        return [write_json(d / "summary.json", summary)]

    _stage(run_obj, ctx, "dataset", "dataset", dspec.use, load_data, dir_name="dataset")

    for mspec, model in components.get("model", []):
        _stage(run_obj, ctx, f"model:{mspec.name}", "model", mspec.use,
               lambda d, m=model, s=mspec: _fit_model(run_obj, ctx, s, m, d),
               dir_name=f"models/{mspec.name}", extra={"model": mspec.name, "model_component": mspec.use, "model_dir": f"models/{mspec.name}"})

    if components.get("explainers"):
        _run_explainers(run_obj, ctx, components["explainers"])

    for cspec, learner in components.get("causal", []):
        _stage(run_obj, ctx, f"causal:{cspec.name}", "causal", cspec.use,
               lambda d, l=learner: _save_result(l.run(ctx), d), dir_name=f"causal/{cspec.name}")

    for cspec, comp in components.get("compressor", []):
        teacher = cspec.extra.get("teacher") or next(iter(ctx.models), None)
        student_name = f"{cspec.name}:{teacher}"
        _stage(run_obj, ctx, f"compressor:{cspec.name}", "compressor", cspec.use,
               lambda d, c=comp, t=teacher, n=student_name: _compress(run_obj, ctx, c, t, n, d),
               dir_name=f"compressors/{cspec.name}",
               extra={"teacher": teacher, "model": student_name, "model_dir": f"models/{cspec.name}__{teacher}"})

    for fspec, analyzer in components.get("feedback", []):
        logs = fspec.extra["logs_obj"]
        _stage(run_obj, ctx, f"feedback:{fspec.name}", "feedback", fspec.use,
               lambda d, a=analyzer, lg=logs: _save_result(a.analyze(_logged(lg, ctx), ctx), d),
               dir_name=f"feedback/{fspec.name}")


def _logged(logs: Any, ctx: PipelineContext) -> Any:
    """A feedback stage's logged events, their user ids pseudonymised like the run's data."""
    from .data import USER

    events = logs.load().interactions
    priv = ctx.privacy
    if priv.hash_ids and USER in events.columns:
        events = events.copy()
        events[USER] = [priv.pseudonym(u) if u == u else u for u in events[USER]]
    return events


def _stage(run_obj: Run, ctx: PipelineContext, name: str, kind: str, component: str, fn, dir_name: str | None = None, extra: dict | None = None) -> Any:
    hook = ctx.host.pm.hook
    rec = {"name": name, "kind": kind, "component": component, "status": "running", "seconds": None,
           "dir": dir_name, "artifacts": [], "summary": {}, "error": None, **(extra or {})}
    run_obj.manifest["stages"].append(rec)
    run_obj.write_manifest()
    stage_dir = run_obj.path / dir_name if dir_name else run_obj.path
    if dir_name:
        stage_dir.mkdir(parents=True, exist_ok=True)
    _call_hook(run_obj, "before_stage", hook.before_stage, stage=name, context=ctx)
    log(f"{name} ...")
    t0 = time.perf_counter()
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            result = fn(stage_dir)
        # libraries' deprecation notices (matplotlib, shap) are their authors' business, not a warning about this run
        rec["warnings"] = sorted({f"{w.category.__name__}: {w.message}" for w in caught
                                  if not issubclass(w.category, (DeprecationWarning, PendingDeprecationWarning))})[:20]
        # whyrec's own warnings (duplicate rows, unknown graph ids, ...) are about the user's input: say them now too
        for msg in dict.fromkeys(str(w.message) for w in caught if issubclass(w.category, WhyrecWarning)):
            log(f"warning: {msg}")
    except BaseException as exc:
        rec.update(status="failed", seconds=round(time.perf_counter() - t0, 3), error=f"{type(exc).__name__}: {exc}")
        if dir_name:  # whatever the stage wrote is incomplete: do not leave it looking done
            shutil.rmtree(stage_dir, ignore_errors=True)
            rec["dir"] = None
        if not isinstance(exc, WhyrecError):
            rec["traceback"] = traceback.format_exc()
        run_obj.write_manifest()
        _call_hook(run_obj, "on_stage_error", hook.on_stage_error, stage=name, context=ctx, error=exc)
        if isinstance(exc, Exception) and not isinstance(exc, WhyrecError):
            plugin = _plugin_of(ctx.host, component)
            raise StageError(f"stage {name} failed: {type(exc).__name__}: {exc} (component {component!r}"
                             f"{f' of plugin {plugin!r}' if plugin else ''}; the run {run_obj.path} is marked failed, "
                             "its manifest.json holds the traceback; --debug prints it)") from exc
        raise
    paths = [Path(p) for p in (result if isinstance(result, list) else [])]
    rec.update(status="complete", seconds=round(time.perf_counter() - t0, 3),
               artifacts=sorted(str(p.relative_to(run_obj.path)) for p in paths if p.is_relative_to(run_obj.path)))
    summ = stage_dir / "summary.json" if dir_name else None
    if summ is not None and summ.exists():
        import json

        rec["summary"] = json.loads(summ.read_text())
    run_obj.write_manifest()
    _call_hook(run_obj, "after_stage", hook.after_stage, stage=name, context=ctx, artifacts=[run_obj.path / a for a in rec["artifacts"]])
    log(f"{name} done in {rec['seconds']:.1f}s")
    return result


def _call_hook(run_obj: Run, name: str, caller, **kw: Any) -> None:
    """Lifecycle hooks watch the run; one that fails is recorded, never loses the run. Each
    plugin's implementation is called on its own, so one failing does not skip the others'."""
    for impl in reversed(caller.get_hookimpls()):  # pluggy's order: last registered first
        if getattr(impl, "hookwrapper", False) or getattr(impl, "wrapper", False):
            # called one by one here, a wrapper would only build a generator and do nothing: say so
            msg = f"{name} hook of plugin {impl.plugin_name!r} is a hook wrapper, which lifecycle hooks do not support; it was not called"
            run_obj.manifest.setdefault("warnings", []).append(msg)
            log(f"warning: {msg}")
            continue
        try:
            impl.function(**{a: kw[a] for a in impl.argnames})
        except Exception as exc:  # noqa: BLE001
            msg = f"{name} hook of plugin {impl.plugin_name!r} failed: {type(exc).__name__}: {exc}"
            run_obj.manifest.setdefault("warnings", []).append(msg)
            log(f"warning: {msg}")


def _plugin_of(host: Any, component: str) -> str | None:
    """The plugin that registered a component name (for messages)."""
    for comps in getattr(host, "components", {}).values():
        if component in comps:
            return comps[component].plugin
    return None


def _all_files(d: Path) -> list[Path]:
    return [p for p in d.rglob("*") if p.is_file() and not p.name.endswith(".tmp")]


def _fit_model(run_obj: Run, ctx: PipelineContext, spec: ComponentSpec, model: Any, d: Path) -> list[Path]:
    train_info = model.fit(ctx.data, ctx) or {}
    metrics = model.evaluate(ctx.data, max_users=ctx.settings.get("eval_users"), seed=ctx.seed) if hasattr(model, "evaluate") else {}
    ctx.models[spec.name] = model
    ctx.metrics[spec.name] = {**metrics, "train": train_info}
    run_obj.manifest["metrics"][spec.name] = ctx.metrics[spec.name]
    model.save(d)
    from .atomic import write_json

    write_json(d / "summary.json", {"kind": "model", "metrics": metrics, "train": train_info})
    return _all_files(d)


def _run_explainers(run_obj: Run, ctx: PipelineContext, explainers: list) -> None:
    import pandas as pd

    from .atomic import write_figure, write_parquet
    from .privacy import redact_explanation

    users = ctx.sample_users()
    k = int(ctx.settings.get("top_k", 10))
    recs: dict[str, Any] = {}
    for mname, model in ctx.models.items():
        rows = [model.recommend(u, min(k, len(ctx.data.candidates(u)))) for u in ctx.progress(users, desc=f"top-{k} for {mname}")]
        recs[mname] = pd.concat(rows, ignore_index=True)
        recs[mname]["title"] = [ctx.data.item_title(i) for i in recs[mname]["item"]]
        write_parquet(run_obj.path / "explanations" / f"recommendations__{mname}.parquet", recs[mname])
    for espec, explainer in explainers:
        wanted = espec.extra.get("models") or list(ctx.models)
        ran = False
        for mname in wanted:
            model = ctx.models[mname]
            if not explainer.supports(model):
                if espec.extra.get("models"):
                    others = [e.name for e, x in explainers if x.supports(model)]
                    raise UnsupportedError(f"{espec.where}: explainer {espec.use!r} does not support model {mname!r}; of this pipeline's explainers, these do: {', '.join(others) or 'none'}")
                continue
            ran = True

            def explain(d: Path, x=explainer, m=model, mn=mname, inst=espec.name) -> list[Path]:
                try:  # the explainer learns the name the pipeline gives it (two instances of one method)
                    x.instance_name = inst
                except AttributeError:
                    pass
                expl = x.explain(m, ctx.data, recs[mn])
                expl.model = mn
                stage = run_obj.manifest["stages"][-1]  # this stage's record: its summary is the explanation's
                stage.update(instance=inst, method=expl.method, summary=_plain_json(expl.summary or {}))
                ctx.explanations.append(expl)
                redact_explanation(expl, ctx.privacy)  # before anything is written or plotted
                paths = expl.save(d)
                if hasattr(x, "figures"):
                    for fname, fig in (x.figures(expl, ctx.data) or {}).items():
                        paths.append(write_figure(d / f"{fname}.png", fig))
                if hasattr(x, "quality"):
                    q = x.quality(m, ctx.data, expl, ctx)
                    if q is not None:
                        paths += q.save(d / "quality")
                return paths

            _stage(run_obj, ctx, f"explainer:{espec.name}@{mname}", "explainer", espec.use, explain,
                   dir_name=f"explanations/{espec.name}__{mname}", extra={"model": None, "explained_model": mname})
        if not ran:
            supported = {m: [e.name for e, x in explainers if x.supports(mod)] for m, mod in ctx.models.items()}
            msg = f"explainer {espec.use!r} supports none of the models {list(ctx.models)}; explainers that do: {supported}"
            run_obj.manifest["warnings"].append(msg)
            log(f"warning: {msg}")
    for s in run_obj.manifest["stages"]:
        if s["kind"] == "explainer":
            s.pop("model", None)


def _plain_json(d: dict) -> dict:
    """``d`` as plain JSON (numpy scalars as numbers, anything else as its str)."""
    import json

    return json.loads(json.dumps(d, default=lambda o: o.item() if hasattr(o, "item") else str(o)))


def _save_result(result: Any, d: Path) -> list[Path]:
    return result.save(d)


def _compress(run_obj: Run, ctx: PipelineContext, comp: Any, teacher: str, student_name: str, d: Path) -> list[Path]:
    if teacher not in ctx.models:
        raise RegistryError(f"compressor teacher {teacher!r} is not a fitted model of this run (models: {', '.join(ctx.models)})")
    student, report = comp.compress(ctx.models[teacher], ctx.data, ctx)
    ctx.models[student_name] = student
    ctx.results[f"compressor:{student_name}"] = report
    mdir = run_obj.path / "models" / student_name.replace(":", "__")
    student.save(mdir)
    stage = run_obj.manifest["stages"][-1]
    stage["model_component"] = getattr(student, "component_name", None) or student.name
    return report.save(d) + _all_files(mdir)


def _build_report(run_obj: Run) -> list[Path]:
    try:
        from .report import build_report
    except ImportError:
        return []
    run_obj.write_manifest()
    return [build_report(run_obj)]
