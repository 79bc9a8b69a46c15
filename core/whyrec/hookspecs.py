"""Hook specifications: everything a whyrec plugin can implement.

A plugin is a module (or object) with functions decorated by ``whyrec.hookimpl`` whose names
and argument names match the specs below. Registration hooks receive a ``register`` callback::

    register(name: str, factory: Callable[..., Component], *, description: str | None = None)

``factory`` is usually a class; the runner calls ``factory(**params)`` with the parameters of
the registry.toml entry that names it. Component names are unique across all plugins.

docs/plugins.md documents every hook; tests/core/test_docs.py fails when they disagree.
"""
from __future__ import annotations

import pluggy

hookspec = pluggy.HookspecMarker("whyrec")
hookimpl = pluggy.HookimplMarker("whyrec")


@hookspec
def register_datasets(register):
    """Register data sources.

    Each factory, called with the registry parameters, returns an object with
    ``load() -> whyrec.RecData``. Called once when plugins are loaded.
    """


@hookspec
def register_models(register):
    """Register recommender models.

    Each factory returns an object following ``whyrec.contracts.Model`` (usually a subclass of
    ``whyrec.BaseModel``): ``fit(data, ctx)``, ``score_features(X)``, ``score(pairs)``,
    ``recommend(user, k)``, ``save(dir)`` and the classmethod ``load(dir, data)`` in a safe
    format (never pickle), and a ``capabilities`` set read by explainers.
    """


@hookspec
def register_explainers(register):
    """Register attribution and visualisation methods.

    Each factory returns an object with ``supports(model) -> bool`` and
    ``explain(model, data, pairs) -> whyrec.Explanation``. The pipeline runs every explainer
    on every model it supports.
    """


@hookspec
def register_causal_learners(register):
    """Register causal structure learners and inference engines.

    Each factory returns an object with ``learn(data) -> CausalGraph``, ``fit(data, graph)``,
    ``intervene(do) -> DataFrame`` and ``run(ctx) -> CausalReport`` (what the pipeline's
    ``causal`` stage calls).
    """


@hookspec
def register_compressors(register):
    """Register model compressors (distillation, pruning, quantisation).

    Each factory returns an object with
    ``compress(model, data, ctx=None) -> (student_model, CompressionReport)``.
    """


@hookspec
def register_feedback_analyzers(register):
    """Register analyzers of logged user feedback (A/B tests, off-policy evaluation).

    Each factory returns an object with ``analyze(events, ctx=None) -> FeedbackReport`` where
    ``events`` is a DataFrame of logged events (user, item, label, position, variant, ...).
    """


@hookspec
def register_executors(register):
    """Register executors: where batch work runs.

    Each factory returns an object with ``map_batches(fn, batches) -> iterator`` yielding
    ``fn(batch)`` for every batch, in order. ``local`` is built in.
    """


@hookspec
def register_commands(cli):
    """Add commands to the ``whyrec`` click group ``cli`` (e.g. ``cli.command()(my_command)``)."""


@hookspec
def register_report_sections(register):
    """Register sections of report.html.

    ``register(name, render, *, order=50)`` where ``render(run) -> whyrec.report.Section | None``
    builds the section from the run directory's artifacts alone (``run`` is a
    ``whyrec.rundir.Run``); return None when the run has nothing for this section. Sections
    appear by ascending ``order``.
    """


@hookspec
def validate_pipeline(pipeline, settings, stages):
    """Check the pipeline settings this plugin reads (e.g. its keys of the ``tracking`` table),
    and its own components' parameters against each other, when the registry is validated
    (``whyrec validate``, and before ``whyrec run`` starts).

    ``pipeline`` is the pipeline's name, ``settings`` its pipeline-level keys and tables,
    ``stages`` every stage's components: ``{stage: [{"use", "name", "params", "where"}]}``
    (``where`` is the registry path to name in a message, e.g. ``pipelines.shop.causal``).
    Parameter names and types are already checked against the component's signature; this is
    for what only the plugin knows (roles that contradict each other). Return a list of
    problems, one line each naming the key and the fix, or None. Must not import heavy
    libraries or reach servers: validation runs before anything else.
    """


@hookspec
def before_run(run):
    """Called once before the first stage of a pipeline run; ``run`` is the ``Run`` being written."""


@hookspec
def after_run(run):
    """Called once after a pipeline run finished (``run.manifest["status"]`` says how)."""


@hookspec
def before_stage(stage, context):
    """Called before each stage. ``stage`` is the stage's name (e.g. "model:lightgbm"),
    ``context`` the ``PipelineContext`` (data, fitted models, run directory, settings)."""


@hookspec
def after_stage(stage, context, artifacts):
    """Called after a stage succeeded; ``artifacts`` lists the files it wrote (absolute paths)."""


@hookspec
def on_stage_error(stage, context, error):
    """Called when a stage raises, before the run is marked failed; ``error`` is the exception."""
