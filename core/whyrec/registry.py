"""registry.toml: named pipelines of registered components, validated as a whole.

Errors name the file, the pipeline and the key, offer "did you mean" for typos and list what
is registered, so a user fixes the file without reading a traceback (kedro style).
"""
from __future__ import annotations

import difflib
import inspect
import tomllib
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import RegistryError, WhyrecError

# stage key -> component kind (hook registration name)
STAGES = {
    "dataset": "datasets",
    "model": "models",
    "explainers": "explainers",
    "causal": "causal_learners",
    "compressor": "compressors",
    "feedback": "feedback_analyzers",
    "executor": "executors",
}
SINGLE = {"dataset", "executor"}  # stages that take exactly one component
SETTINGS = {"seed": int, "sample_users": int, "top_k": int, "description": str, "eval_users": int}
TABLE_SETTINGS = {"report", "tracking"}  # free-form tables handed to the report / tracking plugins
RESERVED = {"use", "name"}
STAGE_RESERVED = {"explainers": {"models"}, "compressor": {"teacher"}, "feedback": {"logs"}}


@dataclass
class ComponentSpec:
    """One `{ use = ..., ... }` entry of a stage."""

    stage: str
    use: str
    name: str
    params: dict
    where: str  # e.g. "registry.toml: pipelines.movielens.model[1]"
    extra: dict = field(default_factory=dict)  # reserved keys: models, teacher, logs

    @property
    def kind(self) -> str:
        return STAGES[self.stage]


@dataclass
class PipelineSpec:
    name: str
    settings: dict
    stages: dict[str, list[ComponentSpec]]
    where: str

    def stage(self, key: str) -> list[ComponentSpec]:
        return self.stages.get(key, [])

    def require(self, key: str, command: str) -> list[ComponentSpec]:
        specs = self.stage(key)
        if not specs:
            raise RegistryError(f"{self.where}: pipeline {self.name!r} has no {key!r} stage, which `{command}` needs; add one")
        return specs


@dataclass
class Registry:
    path: Path
    raw: dict
    pipelines: dict[str, PipelineSpec]
    default: str | None

    def pipeline(self, name: str | None = None) -> PipelineSpec:
        name = name or self.default or (next(iter(self.pipelines)) if len(self.pipelines) == 1 else None)
        if name is None:
            raise RegistryError(f"{self.path}: no pipeline named and no [defaults] pipeline; add `[defaults] pipeline = \"...\"` or pass a pipeline name")
        if name not in self.pipelines:
            raise RegistryError(f"{self.path}: unknown pipeline {name!r}{_did_you_mean(name, self.pipelines)} (pipelines: {', '.join(sorted(self.pipelines)) or 'none'})")
        return self.pipelines[name]

    def validate(self, host: Any = None, pipelines: list[str] | None = None) -> None:
        """Check every component name and parameter against what plugins registered; raise
        RegistryError with the first problem (and how many more there are)."""
        errors = self.problems(host, pipelines)
        if errors:
            more = f" (and {len(errors) - 1} more problem(s); `whyrec validate` lists them all)" if len(errors) > 1 else ""
            raise RegistryError(errors[0] + more)

    def problems(self, host: Any = None, pipelines: list[str] | None = None) -> list[str]:
        """Every problem ``validate`` would find, one message each."""
        from .plugins import get_host

        host = host or get_host()
        errors: list[str] = []
        for pname in pipelines or sorted(self.pipelines):
            spec = self.pipelines[pname]
            model_names = [c.name for c in spec.stage("model")]
            for key, comps in spec.stages.items():
                for comp in comps:
                    try:
                        check_component(host, comp)
                        if key == "compressor" and comp.extra.get("teacher") is not None and comp.extra["teacher"] not in model_names:
                            raise RegistryError(f"{comp.where}.teacher: {comp.extra['teacher']!r} is not a model of this pipeline{_did_you_mean(comp.extra['teacher'], model_names)} (models: {', '.join(model_names) or 'none'})")
                        for m in comp.extra.get("models") or []:
                            if m not in model_names:
                                raise RegistryError(f"{comp.where}.models: {m!r} is not a model of this pipeline{_did_you_mean(m, model_names)} (models: {', '.join(model_names) or 'none'})")
                        if key == "feedback":
                            check_component(host, comp.extra["logs"])
                        if key == "explainers":
                            _check_explainer_models(host, comp, spec)
                    except WhyrecError as exc:
                        errors.append(str(exc))
            errors += _plugin_problems(host, self.path, pname, spec.settings, spec)
        return errors


def _check_explainer_models(host: Any, comp: ComponentSpec, spec: PipelineSpec) -> None:
    """An explainer whose declared needs no model of the pipeline declares would only be found
    useless after training: refuse it now, from the capabilities plugins declare (no import)."""
    need = host.get("explainers", comp.use).requires
    models = [m for m in spec.stage("model") if not comp.extra.get("models") or m.name in comp.extra["models"]]
    if not need or not models:
        return
    known = set(host.names("models"))
    if any(m.use not in known for m in models):  # an unknown model is its own problem, reported once
        return
    declared = {m.name: host.get("models", m.use).provides for m in models}
    if any(not caps for caps in declared.values()):  # a model that declares nothing: supports() decides at run time
        return
    if not any(need <= caps for caps in declared.values()):
        have = "; ".join(f"{n}: {', '.join(sorted(c))}" for n, c in declared.items())
        raise RegistryError(f"{comp.where}: explainer {comp.use!r} supports none of this pipeline's models: it needs a model "
                            f"with {', '.join(sorted(need))} ({have}); remove it or add a model it explains")


def _plugin_problems(host: Any, path: Path, pipeline: str, settings: dict, spec: "PipelineSpec | None" = None) -> list[str]:
    """What plugins' ``validate_pipeline`` hooks find in a pipeline's settings. Each plugin is
    asked on its own (with the arguments it declares, as pluggy would); one whose check itself
    crashes is a warning on stderr, not a problem: a broken plugin must not block every run."""
    import sys

    out: list[str] = []
    caller = getattr(host.pm.hook, "validate_pipeline", None)
    # "where" without the file: the file is named once, in front of each message
    stages = {key: [{"use": c.use, "name": c.name, "params": dict(c.params), "where": c.where.split(": ", 1)[-1]}
                    for c in comps]
              for key, comps in (spec.stages.items() if spec is not None else [])}
    kw = {"pipeline": pipeline, "settings": dict(settings), "stages": stages}
    for impl in reversed(caller.get_hookimpls()) if caller is not None else []:
        try:
            found = impl.function(**{a: kw[a] for a in impl.argnames})
        except Exception as exc:  # noqa: BLE001
            print(f"[whyrec] warning: the validate_pipeline hook of plugin {impl.plugin_name!r} failed: "
                  f"{type(exc).__name__}: {exc}; its settings were not checked", file=sys.stderr, flush=True)
            continue
        out += [f"{path}: {msg}" for msg in found or []]
    return out


def _did_you_mean(name: str, options: Any) -> str:
    close = difflib.get_close_matches(str(name), list(options), n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


def load_registry(path: str | Path = "registry.toml") -> Registry:
    """Read and structurally validate registry.toml (component names are checked by validate())."""
    path = Path(path)
    if not path.exists():
        raise RegistryError(f"{path}: registry file not found; pass --registry FILE or create registry.toml (see docs/registry.md)")
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise RegistryError(f"{path}: not valid TOML ({exc}); fix the syntax at that line") from exc
    except (UnicodeDecodeError, IsADirectoryError) as exc:
        raise RegistryError(f"{path}: cannot be read as a TOML text file ({exc})") from exc
    for key in raw:
        if key not in ("defaults", "pipelines"):
            raise RegistryError(f"{path}: unknown top-level key {key!r}{_did_you_mean(key, ['defaults', 'pipelines'])} (allowed: defaults, pipelines)")
    pipes_raw = raw.get("pipelines", {})
    if not isinstance(pipes_raw, dict) or not pipes_raw:
        raise RegistryError(f"{path}: no [pipelines.<name>] tables; define at least one pipeline")
    pipelines = {name: _parse_pipeline(path, name, body) for name, body in pipes_raw.items()}
    defaults = raw.get("defaults", {})
    if not isinstance(defaults, dict):
        raise RegistryError(f"{path}: [defaults] must be a table")
    for key in defaults:
        if key != "pipeline":
            raise RegistryError(f"{path}: defaults.{key} is not a known key{_did_you_mean(key, ['pipeline'])} (allowed: pipeline)")
    default = defaults.get("pipeline")
    if default is not None:
        if not isinstance(default, str):
            raise RegistryError(f"{path}: defaults.pipeline must be a string, got {type(default).__name__}")
        if default not in pipelines:
            raise RegistryError(f"{path}: defaults.pipeline = {default!r} is not a pipeline{_did_you_mean(default, pipelines)} (pipelines: {', '.join(sorted(pipelines))})")
    return Registry(path=path, raw=raw, pipelines=pipelines, default=default)


def _parse_pipeline(path: Path, name: str, body: Any) -> PipelineSpec:
    where = f"{path}: pipelines.{name}"
    if not isinstance(body, dict):
        raise RegistryError(f"{where} must be a table")
    settings: dict = {}
    stages: dict[str, list[ComponentSpec]] = {}
    allowed = [*STAGES, *SETTINGS, *TABLE_SETTINGS, "privacy"]
    for key, value in body.items():
        if key == "privacy":
            from .privacy import parse

            settings[key] = parse(value, f"{where}.privacy")
        elif key in SETTINGS:
            typ = SETTINGS[key]
            if not isinstance(value, typ) or isinstance(value, bool):
                raise RegistryError(f"{where}.{key}: expected {typ.__name__}, got {type(value).__name__} {value!r}")
            low = 0 if key == "seed" else 1  # a run explains, ranks and evaluates at least one
            if typ is int and value < low:
                raise RegistryError(f"{where}.{key}: must be >= {low}, got {value}")
            settings[key] = value
        elif key in TABLE_SETTINGS:
            if not isinstance(value, dict):
                raise RegistryError(f"{where}.{key}: expected a table, got {type(value).__name__}")
            if key == "report":
                _check_report(value, f"{where}.report")
            settings[key] = value
        elif key in STAGES:
            entries = value if isinstance(value, list) else [value]
            if key in SINGLE and isinstance(value, list):
                if len(value) != 1:
                    raise RegistryError(f"{where}.{key}: takes one component table, got a list of {len(value)}")
            if not entries:
                raise RegistryError(f"{where}.{key}: empty list; remove the key or name a component")
            specs = []
            for i, entry in enumerate(entries):
                loc = f"{where}.{key}" + (f"[{i}]" if isinstance(value, list) else "")
                specs.append(_parse_component(key, entry, loc))
            names = [s.name for s in specs]
            dup = sorted({n for n in names if names.count(n) > 1})
            if dup:
                raise RegistryError(f"{where}.{key}: two entries named {dup[0]!r}; give one a distinct `name = \"...\"`")
            stages[key] = specs
        else:
            raise RegistryError(f"{where}: unknown key {key!r}{_did_you_mean(key, allowed)} (allowed: {', '.join(allowed)})")
    if "dataset" not in stages:
        raise RegistryError(f"{where}: no dataset stage; add `dataset = {{ use = \"...\" }}`")
    for stage in ("explainers",):
        if stage in stages and "model" not in stages:
            raise RegistryError(f"{where}: has {stage} but no model stage to explain; add `model = {{ use = \"...\" }}`")
    if "compressor" in stages and "model" not in stages:
        raise RegistryError(f"{where}: has a compressor but no model stage to compress; add `model = {{ use = \"...\" }}`")
    return PipelineSpec(name=name, settings=settings, stages=stages, where=where)


REPORT_KEYS = {"enabled": "true or false", "users": "a number of users >= 1", "lang": 'a language or a list, e.g. ["en", "zh"]'}


def _check_report(value: dict, where: str) -> None:
    """The report's own settings (docs/report.md): typos and wrong values are refused here,
    not discovered in a finished report."""
    from .sentences import LANGS

    for k, v in value.items():
        if k not in REPORT_KEYS:
            raise RegistryError(f"{where}: unknown key {k!r}{_did_you_mean(k, REPORT_KEYS)} (allowed: {', '.join(REPORT_KEYS)})")
        ok = {"enabled": isinstance(v, bool), "users": isinstance(v, int) and not isinstance(v, bool) and v >= 1,
              "lang": isinstance(v, (str, list)) and all(isinstance(x, str) for x in ([v] if isinstance(v, str) else v))}[k]
        if not ok:
            raise RegistryError(f"{where}.{k}: expected {REPORT_KEYS[k]}, got {v!r}")
    langs = value.get("lang", [])
    for lang in [langs] if isinstance(langs, str) else langs:
        if lang not in LANGS:
            raise RegistryError(f"{where}.lang: no sentence catalogue for language {lang!r}{_did_you_mean(lang, LANGS)} "
                                f"(languages: {', '.join(LANGS)}; docs/sentences.md says how to add one)")


def _parse_component(stage: str, entry: Any, where: str) -> ComponentSpec:
    if not isinstance(entry, dict):
        raise RegistryError(f"{where}: expected a table like {{ use = \"component-name\" }}, got {type(entry).__name__} {entry!r}")
    if "use" not in entry:
        raise RegistryError(f"{where}: missing `use = \"<component>\"` naming a registered component")
    if not isinstance(entry["use"], str):
        raise RegistryError(f"{where}.use: expected a component name (string), got {type(entry['use']).__name__}")
    reserved = STAGE_RESERVED.get(stage, set())
    params = {k: v for k, v in entry.items() if k not in RESERVED | reserved}
    extra = {k: entry[k] for k in reserved if k in entry}
    name = entry.get("name", entry["use"])
    if not isinstance(name, str):
        raise RegistryError(f"{where}.name: expected a string, got {type(name).__name__}")
    if "models" in extra and not (isinstance(extra["models"], list) and all(isinstance(m, str) for m in extra["models"])):
        raise RegistryError(f"{where}.models: expected a list of model names, got {extra['models']!r}")
    if "teacher" in extra and not isinstance(extra["teacher"], str):
        raise RegistryError(f"{where}.teacher: expected a model name (string), got {extra['teacher']!r}")
    if stage == "feedback":
        if "logs" not in extra:
            raise RegistryError(f"{where}: missing `logs = {{ use = \"<dataset>\" }}`, the logged feedback to analyze")
        extra["logs"] = _parse_component("dataset", extra["logs"], f"{where}.logs")
    return ComponentSpec(stage=stage, use=entry["use"], name=name, params=params, where=where, extra=extra)


# -- parameter checking against the factory signature ------------------------------------
def factory_parameters(factory: Any, static: bool = False) -> tuple[dict[str, inspect.Parameter], dict[str, Any], bool]:
    """(parameters, type hints, accepts **kwargs) of a component factory. ``static``: read a
    lazy factory's signature from its source when it can (validation imports no component)."""
    from .plugins import lazy, resolve_factory

    if static and isinstance(factory, lazy) and factory._obj is None:
        from .signature import static_parameters

        found = static_parameters(factory.target)
        if found is not None:
            return found

    target = resolve_factory(factory)
    fn = target.__init__ if inspect.isclass(target) else target
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return {}, {}, True
    params = {n: p for n, p in sig.parameters.items() if n not in ("self", "cls") and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)}
    var_kw = any(p.kind == p.VAR_KEYWORD for p in sig.parameters.values())
    try:
        hints = typing.get_type_hints(fn)
    except Exception:  # noqa: BLE001  (unresolvable annotations: fall back to defaults' types)
        hints = {}
    return params, hints, var_kw


def path_parameters(factory: Any) -> list[str]:
    """Parameters annotated as paths (``pathlib.Path``, alone or in a union such as
    ``Path | str | None``): the runner resolves their relative values against the registry
    file's folder and records them absolute in the run."""
    import pathlib

    _, hints, _ = factory_parameters(factory, static=True)

    def is_path(t: Any) -> bool:
        return t is pathlib.Path or any(is_path(a) for a in typing.get_args(t))

    return [k for k, t in hints.items() if is_path(t)]


def resolved_params(factory: Any, given: dict) -> dict:
    """The parameters a component runs with: its defaults updated by the registry's values."""
    params, _, _ = factory_parameters(factory)
    out = {n: p.default for n, p in params.items() if p.default is not inspect.Parameter.empty}
    out.update(given)
    return out


def check_component(host: Any, comp: ComponentSpec) -> None:
    component = host.get(comp.kind, comp.use, where=f"{comp.where}.use: ")
    check_params(component.factory, comp.use, comp.params, comp.where)


def check_params(factory: Any, use: str, given: dict, where: str, key_where: str | None = None) -> None:
    """Names and types of ``given`` against the factory's signature (its parameter schema).
    Messages name a parameter as ``<where>.<key>``, or ``<key_where><key>`` when given (a CLI
    option such as ``-p n_rows``)."""
    from .signature import is_unread

    params, hints, var_kw = factory_parameters(factory, static=True)
    for key, value in given.items():
        if key not in params:
            if var_kw:
                continue
            raise RegistryError(
                f"{where}: {use!r} has no parameter {key!r}{_did_you_mean(key, params)} "
                f"(parameters: {', '.join(params) or 'none'})"
            )
        expected = hints.get(key)
        if expected is None:
            default = params[key].default
            expected = type(default) if default not in (inspect.Parameter.empty, None) and not is_unread(default) else None
        if expected is not None and not _type_ok(value, expected):
            at = f"{key_where}{key}" if key_where is not None else f"{where}.{key}"
            raise RegistryError(f"{at}: expected {_type_name(expected)}, got {type(value).__name__} {value!r}")
    missing = [n for n, p in params.items() if p.default is inspect.Parameter.empty and n not in given]
    if missing:
        raise RegistryError(f"{where}: {use!r} needs parameter(s) {', '.join(missing)}")


def _type_ok(value: Any, expected: Any) -> bool:
    origin = typing.get_origin(expected)
    if expected is Any:
        return True
    if origin is typing.Union or str(origin) == "<class 'types.UnionType'>":
        return any(_type_ok(value, a) for a in typing.get_args(expected))
    if origin is typing.Literal:
        return value in typing.get_args(expected)
    if expected is type(None):
        return value is None
    if origin in (list, tuple):
        return isinstance(value, (list, tuple)) and all(_type_ok(v, (typing.get_args(expected) or (Any,))[0]) for v in value)
    if origin is dict:
        return isinstance(value, dict)
    if expected is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if expected is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if isinstance(expected, type):
        return isinstance(value, expected)
    return True


def _type_name(expected: Any) -> str:
    if typing.get_origin(expected) is typing.Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(expected))
    return getattr(expected, "__name__", None) or str(expected).replace("typing.", "")
