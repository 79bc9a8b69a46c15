"""Plugin loading and the component catalogue.

Built-in code registers as ordinary plugins; installed plugins come from entry points in the
group "whyrec", loaded one at a time so that one that fails to import is recorded (and shown by
``whyrec plugins``) without breaking the CLI or the others. WHYREC_STRICT_PLUGINS=1 re-raises.
"""
from __future__ import annotations

import difflib
import importlib
import os
import traceback
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any, Callable, Iterable

import pluggy

from . import hookspecs
from .contracts import KINDS
from .errors import PluginError, RegistryError

BUILTINS = ("whyrec.builtins", "whyrec.report.sections")

# Components of first-party plugins, so an unknown name can say which package provides it.
KNOWN_COMPONENTS = {
    "whyrec-datasets": ["table", "movielens-100k", "open-bandit", "sim-ecommerce", "sim-video", "sim-finance"],
    "whyrec-lightgbm": ["lightgbm"],
    "whyrec-shap": ["tree-shap", "exact-field-shapley", "permutation-shap", "kernel-shap"],
    "whyrec-torch": ["torch-attention", "attention-map", "integrated-gradients", "gradient-shap", "grad-cam", "history-counterfactual"],
    "whyrec-causalnex": ["causalnex-bn"],
    "whyrec-distill": ["distill", "prune", "quantize", "mlp", "tree-student", "pruned-torch", "quantized-torch", "pruned-mlp", "quantized-mlp"],
    "whyrec-feedback": ["ab-test", "off-policy", "feedback-log"],
    "whyrec-ray": ["ray"],
    "whyrec-mlflow": [],
}


class lazy:
    """A factory imported on first use: ``register("lightgbm", lazy("whyrec_lightgbm.model:LightGBMModel"))``.

    Plugin packages register through this so that loading plugins (which ``whyrec --help``
    does, to list plugin commands) never imports torch, LightGBM or shap.
    """

    def __init__(self, target: str, description: str = "") -> None:
        self.target = target
        self.__doc__ = description
        self._obj: Any = None
        self.owner = ""  # "model 'x' of plugin 'y'", set when registered: for the error below

    def resolve(self) -> Any:
        if self._obj is None:
            module, _, attr = self.target.partition(":")
            try:
                self._obj = getattr(importlib.import_module(module), attr)
            except (ImportError, AttributeError) as exc:
                # a wrong target or a missing dependency of the plugin: the plugin's problem, named
                raise PluginError(f"{self.owner or 'a component'} cannot be loaded from {self.target!r} "
                                  f"({type(exc).__name__}: {exc}); reinstall the plugin, or fix the target "
                                  "its register hook gives to whyrec.plugins.lazy") from exc
        return self._obj

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.resolve()(*args, **kwargs)

    def __repr__(self) -> str:
        return f"lazy({self.target!r})"


def resolve_factory(factory: Any) -> Any:
    return factory.resolve() if isinstance(factory, lazy) else factory


@dataclass
class Component:
    kind: str
    name: str
    factory: Callable[..., Any]
    plugin: str
    description: str = ""
    # Declared at registration, so the core can match explainers to models without importing
    # either (docs/plugins.md, "Capabilities"): a model ``provides`` the capabilities its
    # instances carry; an explainer ``requires`` model capabilities (all of them) and
    # ``provides`` what it offers beyond explain() (e.g. "top-k-counterfactual").
    requires: frozenset = frozenset()
    provides: frozenset = frozenset()

    def create(self, **params: Any) -> Any:
        obj = self.factory(**params)
        if hasattr(obj, "__dict__") and not getattr(obj, "component_name", None):
            try:
                obj.component_name = self.name
            except AttributeError:
                pass
        return obj


@dataclass
class PluginInfo:
    name: str
    version: str | None = None
    hooks: list[str] = field(default_factory=list)
    components: dict[str, list[str]] = field(default_factory=dict)
    error: str | None = None
    traceback: str | None = None

    def to_dict(self) -> dict:
        return {"name": self.name, "version": self.version, "hooks": self.hooks,
                "components": self.components, "error": self.error}


class PluginHost:
    """A PluginManager plus the components its plugins registered."""

    def __init__(self) -> None:
        self.pm = pluggy.PluginManager("whyrec")
        self.pm.add_hookspecs(hookspecs)
        self.infos: dict[str, PluginInfo] = {}
        self.components: dict[str, dict[str, Component]] = {k: {} for k in KINDS}
        self.sections: dict[str, tuple[Callable, int, str]] = {}
        self._collected = False

    # -- loading --------------------------------------------------------------------------
    def add(self, plugin: Any, name: str, version: str | None = None) -> None:
        """Register a plugin object/module (tests use this with a fresh host). A hook that is
        misspelt, or asks for an argument its spec does not have, raises PluginError and
        leaves the plugin unregistered."""
        try:
            self.pm.register(plugin, name=name)
        except (pluggy.PluginValidationError, ValueError) as exc:
            # pluggy's message spans lines and names the module's repr: one line, the plugin's name
            raise PluginError(f"plugin {name!r}: {' '.join(str(exc).split())} (see docs/plugins.md for the hooks and their arguments)") from exc
        unknown = sorted({hc.name for hc in self.pm.get_hookcallers(plugin) or [] if not hc.has_spec()})
        if unknown:
            self.pm.unregister(plugin)
            hooks = sorted(n for n in dir(hookspecs) if getattr(getattr(hookspecs, n), "whyrec_spec", None) is not None)
            guess = difflib.get_close_matches(unknown[0], hooks, n=1, cutoff=0.6)
            hint = f"; did you mean {guess[0]!r}?" if guess else f" (hooks: {', '.join(hooks)})"
            raise PluginError(f"plugin {name!r} implements unknown hook {unknown[0]!r}{hint} "
                              "(is the hook name misspelt? see docs/plugins.md)")
        self.infos[name] = PluginInfo(name=name, version=version)
        self._collected = False

    def load_builtins(self) -> None:
        from importlib.metadata import version

        v = version("whyrec") if _installed("whyrec") else None
        for mod in BUILTINS:
            self.add(importlib.import_module(mod), name=mod, version=v)

    def load_entry_points(self, group: str = "whyrec") -> None:
        strict = os.environ.get("WHYREC_STRICT_PLUGINS") == "1"
        for ep in sorted(metadata.entry_points(group=group), key=lambda e: e.name):
            if ep.name in self.infos:
                continue
            version = ep.dist.version if ep.dist else None
            try:
                plugin = ep.load()
                self.add(plugin, name=ep.name, version=version)
            except Exception as exc:  # noqa: BLE001  (a broken plugin must not break the others)
                if strict:
                    if isinstance(exc, PluginError):
                        raise
                    raise PluginError(f"plugin {ep.name!r} ({ep.value}) failed to import: {type(exc).__name__}: {exc} "
                                      "(WHYREC_STRICT_PLUGINS=1 makes this fatal; `whyrec plugins` shows the traceback without it)") from exc
                self.infos[ep.name] = PluginInfo(
                    name=ep.name, version=version, error=f"{type(exc).__name__}: {exc}",
                    traceback=traceback.format_exc(),
                )

    def check(self) -> None:
        """Fail on hook implementations that match no spec (a misspelt hook name)."""
        try:
            self.pm.check_pending()
        except pluggy.PluginValidationError as exc:
            raise PluginError(f"{exc} (is the hook name misspelt? see docs/plugins.md for the hooks)") from exc

    # -- the catalogue --------------------------------------------------------------------
    def collect(self) -> None:
        if self._collected:
            return
        for info in self.infos.values():
            info.hooks, info.components = [], {}
        for name, plugin in self.pm.list_name_plugin():
            info = self.infos.setdefault(name, PluginInfo(name=name))
            info.hooks = sorted(
                hc.name for hc in self.pm.get_hookcallers(plugin) or []
            )
        for kind in KINDS:
            self.components[kind] = {}
            caller = getattr(self.pm.hook, f"register_{kind}")
            for impl in reversed(caller.get_hookimpls()):
                impl.function(register=self._registrar(kind, impl.plugin_name))
        self.sections = {}
        for impl in reversed(self.pm.hook.register_report_sections.get_hookimpls()):
            plugin_name = impl.plugin_name

            def reg(name: str, render: Callable, *, order: int = 50, _p: str = plugin_name) -> None:
                self.sections[name] = (render, order, _p)

            try:
                impl.function(register=reg)
            except Exception as exc:  # noqa: BLE001  (a broken report section must not break the catalogue)
                self.infos[plugin_name].error = self.infos[plugin_name].error or f"register_report_sections: {type(exc).__name__}: {exc}"
        self._collected = True

    def _registrar(self, kind: str, plugin_name: str) -> Callable:
        def register(name: str, factory: Callable[..., Any], *, description: str | None = None,
                     requires: Iterable[str] = (), provides: Iterable[str] = ()) -> None:
            if not isinstance(name, str) or not name:
                raise PluginError(f"plugin {plugin_name!r} registered a {kind[:-1]} with an invalid name {name!r}")
            for label, caps in (("requires", requires), ("provides", provides)):
                if isinstance(caps, str) or not all(isinstance(c, str) and c for c in caps):
                    raise PluginError(f"plugin {plugin_name!r}: {kind[:-1].replace('_', ' ')} {name!r}: {label} must be "
                                      f"a list of capability names, got {caps!r}")
            existing = self.components[kind].get(name)
            if existing is not None:
                raise PluginError(
                    f"{kind[:-1].replace('_', ' ')} name {name!r} is registered by two plugins: "
                    f"{existing.plugin!r} and {plugin_name!r}; uninstall one or rename the component"
                )
            if isinstance(factory, lazy) and not factory.owner:
                factory.owner = f"{kind[:-1].replace('_', ' ')} {name!r} of plugin {plugin_name!r}"
            doc = description or (factory.__doc__ or "").strip().splitlines()[0:1]
            desc = doc if isinstance(doc, str) else (doc[0] if doc else "")
            self.components[kind][name] = Component(kind, name, factory, plugin_name, desc,
                                                    frozenset(requires), frozenset(provides))
            self.infos[plugin_name].components.setdefault(kind, []).append(name)

        return register

    def names(self, kind: str) -> list[str]:
        self.collect()
        return sorted(self.components[kind])

    def get(self, kind: str, name: str, where: str = "") -> Component:
        self.collect()
        comps = self.components[kind]
        if name in comps:
            return comps[name]
        raise RegistryError(unknown_component_message(kind, name, sorted(comps), where, self.failed_plugins()))

    def create(self, kind: str, name: str, params: dict | None = None) -> Any:
        return self.get(kind, name).create(**(params or {}))

    def may_support(self, explainer: str, capabilities: Iterable[str]) -> bool:
        """False when explainer ``explainer`` declares model capabilities that ``capabilities``
        lack: it cannot support such a model, and is never built (or its plugin's heavy
        libraries imported) to ask. True otherwise; ``supports(model)`` has the last word."""
        need = self.get("explainers", explainer).requires
        return need <= frozenset(capabilities)

    def providers(self, kind: str, capability: str) -> list[str]:
        """Components of ``kind`` that declare they provide ``capability`` (sorted)."""
        self.collect()
        return sorted(n for n, c in self.components[kind].items() if capability in c.provides)

    def failed_plugins(self) -> dict[str, str]:
        return {n: i.error for n, i in self.infos.items() if i.error}

    def plugin_infos(self) -> list[PluginInfo]:
        self.collect()
        return [self.infos[n] for n in sorted(self.infos)]


def unknown_component_message(kind: str, name: str, registered: list[str], where: str, failed: dict[str, str]) -> str:
    label = kind[:-1].replace("_", " ")
    msg = f"{where}unknown {label} {name!r}"
    close = difflib.get_close_matches(name, registered, n=1, cutoff=0.6)
    if close:
        msg += f"; did you mean {close[0]!r}?"
    for package, names in KNOWN_COMPONENTS.items():
        if name in names:
            broken = failed.get(package) or failed.get(package.removeprefix("whyrec-"))
            if broken:
                msg += f"; it is provided by {package}, which failed to load ({broken})"
            else:
                msg += f"; it is provided by the plugin {package}: pip install -e plugins/{package}"
            break
    msg += f" (registered {label}s: {', '.join(registered) or 'none'})"
    if failed and "failed to load" not in msg:  # the plugin that provides it may be one that is broken
        msg += "; plugin(s) that failed to load: " + ", ".join(f"{n} ({e})" for n, e in sorted(failed.items())) + " (see `whyrec plugins`)"
    return msg


def _installed(dist: str) -> bool:
    try:
        metadata.version(dist)
        return True
    except metadata.PackageNotFoundError:
        return False


_host: PluginHost | None = None


def get_host(fresh: bool = False) -> PluginHost:
    """The process-wide PluginHost with built-ins and every installed plugin loaded."""
    global _host
    if _host is None or fresh:
        host = PluginHost()
        host.load_builtins()
        # WHYREC_PLUGINS=mod1,mod2 adds plugin modules by import path (platforms, tests).
        for mod in filter(None, os.environ.get("WHYREC_PLUGINS", "").split(",")):
            try:
                host.add(importlib.import_module(mod.strip()), name=mod.strip())
            except Exception as exc:  # noqa: BLE001  (recorded like a broken entry point)
                if os.environ.get("WHYREC_STRICT_PLUGINS") == "1":
                    raise
                host.infos[mod.strip()] = PluginInfo(name=mod.strip(), error=f"{type(exc).__name__}: {exc}", traceback=traceback.format_exc())
        host.load_entry_points()
        host.check()
        _host = host
    return _host
