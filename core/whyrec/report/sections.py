"""The core sections of report.html, registered as a built-in plugin.

Each render reads only the run directory (manifest.json and the stages' artifacts) and
returns a Section, or None when the run has nothing for it. Artifacts that are missing or
corrupt become "missing" notices naming the file and how to regenerate it; what can be shown
still is. The causal, compression, feedback and explanation-quality sections are generic:
they show any StageResult directory (summary, every table, every figure, embedded HTML), so a
plugin gets a reasonable section without writing a renderer; a plugin that registers a richer
section lists the directories it renders in ``Section.covers`` and the generic one links to it.
"""
from __future__ import annotations

import contextlib
import math
from contextvars import ContextVar
from pathlib import Path
from typing import Any, Iterator

from ..hookspecs import hookimpl
from . import plots
from .artifacts import (
    IMAGE_SUFFIXES, StageDir, files, load_explanation, manifest, read_json, read_table, regen_hint, rel,
    remote_references, run_path, stage_dirs, stage_ok, stage_status, stages_without_dir,
)
from .html import (
    ArtifactError, Section, bullet_list, details, esc, explanation_label, figure_block, figure_to_img, fmt_value,
    iframe_html, kv_table, model_label, notice, round_text, slug, table_html,
)
from .verdicts import LABELS as VERDICT_LABELS
from .verdicts import run_verdicts, verdict

# Run-relative directory -> (section title, anchor) of plugin sections that render it in full.
COVERED: ContextVar[dict[str, tuple[str, str]]] = ContextVar("whyrec_report_covered", default={})

DEFAULT_USERS = 3  # "a handful of users"; `report = { users = N }` in a pipeline changes it
MAX_TABLE_ROWS = 100


@hookimpl
def register_report_sections(register):
    register("overview", render_overview, order=5)
    register("data", render_data, order=10)
    register("models", render_models, order=20)
    register("global-importance", render_global_importance, order=30)
    register("users", render_users, order=40)
    register("why-above", render_why_above, order=45)
    register("explanation-quality", render_quality, order=50)
    register("causal", render_causal, order=60)
    register("compression", render_compression, order=70)
    register("feedback", render_feedback, order=80)
    register("provenance", render_provenance, order=95)


def generic(fn):
    """Mark a render as generic: it runs after the others, so it knows what they cover."""
    fn.whyrec_generic = True
    return fn


# -- building a body while collecting what is missing ------------------------------------
class Body:
    def __init__(self, run: Any) -> None:
        self.run = run
        self.parts: list[str] = []
        self.problems: list[str] = []

    def add(self, *html: str) -> None:
        self.parts.extend(h for h in html if h)

    def missing(self, what: str, hint: str | None = None) -> None:
        self.problems.append(what)
        self.parts.append(notice(f"{what}; {hint or regen_hint(self.run)}."))

    @contextlib.contextmanager
    def guard(self, label: str = "") -> Iterator[None]:
        """Turn an unreadable artifact inside the block into a notice; the section goes on."""
        try:
            yield
        except ArtifactError as exc:
            self.missing(f"{label}{exc}")
        except Exception as exc:  # noqa: BLE001  (a broken artifact must not break the report)
            self.missing(f"{label}cannot be shown ({type(exc).__name__}: {str(exc)[:200]})")

    def section(self, title: str, **kw: Any) -> Section:
        body = "\n".join(self.parts)
        if self.problems:
            what = "; ".join(self.problems)
            return Section.missing(title, f"{what}. To regenerate: {regen_hint(self.run)}, "
                                          f"then `whyrec report {run_path(self.run)}`.", body=body, **kw)
        return Section(title=title, body=body, **kw)


def _p(text: str, cls: str = "") -> str:
    return f'<p class="{cls}">{esc(text)}</p>' if cls else f"<p>{esc(text)}</p>"


def _stage_line(d: StageDir) -> str:
    s = d.stage or {}
    bits = []
    if s.get("component"):
        bits.append(f"component {s['component']}")
    if s.get("status"):
        bits.append(f"status {s['status']}")
    if isinstance(s.get("seconds"), (int, float)):
        bits.append(f"{s['seconds']:.2f} s")
    return _p(" · ".join(bits), "wr-small") if bits else ""


def _check_stage(b: Body, d: StageDir) -> bool:
    """Notices for a failed stage, a missing directory or missing listed files; False to skip."""
    name = (d.stage or {}).get("name") or d.name
    if d.stage is not None and not stage_ok(d.stage):
        err = d.stage.get("error") or "no error recorded"
        b.missing(f"stage {name} {stage_status(d.stage)} ({err}), so its artifacts are incomplete",
                  hint=f"fix the cause and {regen_hint(b.run)}")
        if not d.exists:
            return False
    if not d.exists:
        b.missing(f"directory {rel(b.run, d.path)}/ of stage {name} is missing")
        return False
    gone = d.missing_files()
    if gone:
        b.missing(f"{', '.join(rel(b.run, p) for p in gone)} listed in manifest.json "
                  f"{'is' if len(gone) == 1 else 'are'} missing")
    return True


# -- overview ---------------------------------------------------------------------------
def render_overview(run: Any) -> Section:
    m = manifest(run)
    b = Body(run)
    err = getattr(run, "manifest_error", None)
    if err or not m:
        b.missing(err or "manifest.json is missing or empty, so the pipeline, seed and stages are unknown")
    status = str(m.get("status") or "unknown")
    if status.lower() == "failed":
        failed = [s for s in m.get("stages") or [] if isinstance(s, dict) and not stage_ok(s)]
        why = "; ".join(f"{s.get('name')}: {s.get('error') or 'no error recorded'}" for s in failed)
        if not why and m.get("error"):  # failed between stages
            why = f"a step between stages ({m['error']})"
        b.add(notice(f"this run failed{' at ' + why if why else ''}. Sections below show what was written before.",
                     "warning"))
    elif status.lower() == "running":
        b.add(notice("the run had not finished when this report was built (status running).", "note"))
    b.add(_p(_headline(run, m)))
    info = {"pipeline": m.get("pipeline"), "status": status, "run directory": run_path(run).name,
            "seed": m.get("seed")}
    for key in ("started", "started_at", "created", "finished", "finished_at"):
        if m.get(key):
            info[key.replace("_", " ")] = m[key]
    if m.get("data_hash"):
        info["data hash (sha256)"] = m["data_hash"]
    stages = [dict(s) for s in m.get("stages") or [] if isinstance(s, dict)]
    for s in stages:  # the report stage is still running while it builds this page
        if s.get("kind") == "report" and s.get("status") == "running":
            s["status"] = "this report"
    counted = [s for s in stages if s.get("status") != "this report"]
    if counted:
        ok = sum(stage_ok(s) for s in counted)
        info["stages"] = f"{ok} of {len(counted)} succeeded"
        secs = [s.get("seconds") for s in stages if isinstance(s.get("seconds"), (int, float))]
        if secs:
            info["stage time"] = f"{sum(secs):.1f} s"
    b.add(kv_table({k: v for k, v in info.items() if v is not None}))
    if stages:
        rows = [{"stage": s.get("name"), "component": s.get("component"), "kind": s.get("kind"),
                 "status": s.get("status"), "seconds": s.get("seconds"),
                 "error": (str(s["error"])[:200] if s.get("error") else "")} for s in stages]
        b.add("<h3>Stages</h3>", table_html(rows))
    warns = [str(w) for w in m.get("warnings") or []]
    warns += [f"{s.get('name')}: {w}" for s in stages for w in s.get("warnings") or []]
    if warns:
        b.add(details(f"{len(warns)} warning{'s' if len(warns) != 1 else ''} recorded during the run",
                      bullet_list(warns)))
    return b.section("Run overview")


def _headline(run: Any, m: dict) -> str:
    """One plain-language sentence about what the run did."""
    bits = []
    ds = (m.get("dataset") or {}) if isinstance(m.get("dataset"), dict) else {}
    summary = ds.get("summary") if isinstance(ds.get("summary"), dict) else ds
    if summary.get("name") or summary.get("rows"):
        bits.append(f"loaded {summary.get('name') or 'the data'}"
                    + (f" ({fmt_value(summary.get('rows'))} interactions)" if summary.get("rows") else ""))
    metrics = m.get("metrics") if isinstance(m.get("metrics"), dict) else {}
    if metrics:
        best = None
        aucs = {k: v.get("auc") for k, v in metrics.items() if isinstance(v, dict) and isinstance(v.get("auc"), (int, float))}
        if aucs:
            name = max(aucs, key=aucs.get)
            best = f" (best AUC {aucs[name]:.3f}: {name})"
        bits.append(f"trained {len(metrics)} model{'s' if len(metrics) != 1 else ''}{best or ''}")
    n_expl = len([d for d in stage_dirs(run, "explanations") if d.exists])
    if n_expl:
        bits.append(f"produced {n_expl} explanation set{'s' if n_expl != 1 else ''}")
    for group, label in (("causal", "causal analysis"), ("compressors", "compression"), ("feedback", "feedback analysis")):
        n = len(stage_dirs(run, group))
        if n:
            bits.append(f"ran {n} {label}{' stages' if n > 1 else ''}")
    pipe = m.get("pipeline") or "this pipeline"
    if not bits:
        return f"Pipeline {pipe}: no stage output was found in this run directory."
    return f"Pipeline {pipe} " + ", ".join(bits[:-1]) + (" and " if len(bits) > 1 else "") + bits[-1] + "."


# -- data -------------------------------------------------------------------------------
def render_data(run: Any) -> Section | None:
    m = manifest(run)
    b = Body(run)
    path = run_path(run) / "dataset" / "summary.json"
    summary = None
    if path.exists():
        with b.guard():
            summary = read_json(run, path)
    ds = m.get("dataset") if isinstance(m.get("dataset"), dict) else {}
    if summary is None:
        fallback = ds.get("summary") if isinstance(ds.get("summary"), dict) else (ds if "rows" in ds else None)
        if fallback:
            summary = fallback
            if not path.exists():
                b.missing(f"{rel(run, path)} is missing (the figures below come from the copy in manifest.json)")
        elif not path.exists():
            if not ds and not any(str(s.get("kind")) == "dataset" for s in m.get("stages") or [] if isinstance(s, dict)):
                return None
            b.missing(f"{rel(run, path)} is missing")
    if isinstance(summary, dict):
        pos = summary.get("positive_rate")
        info = {
            "dataset": summary.get("name"), "description": summary.get("description"),
            "interactions (rows)": summary.get("rows"), "users": summary.get("users"), "items": summary.get("items"),
            "positive rate": f"{100 * pos:.1f} %" if isinstance(pos, (int, float)) and not math.isnan(pos) else None,
            "training pairs": summary.get("train_rows"), "test pairs": summary.get("test_rows"),
            "fields": summary.get("fields"), "data hash (sha256)": summary.get("data_hash") or m.get("data_hash"),
        }
        spec = (m.get("spec") or {}).get("dataset") if isinstance(m.get("spec"), dict) else None
        if isinstance(spec, list) and spec and isinstance(spec[0], dict):
            info["loaded with"] = f"{spec[0].get('use')} " + ", ".join(
                f"{k}={fmt_value(v)}" for k, v in (spec[0].get("params") or {}).items())
        b.add(kv_table({k: v for k, v in info.items() if v not in (None, "", [])}))
        feats = summary.get("features")
        if isinstance(feats, list) and feats and all(isinstance(f, dict) for f in feats):
            import pandas as pd

            fdf = pd.DataFrame(feats)
            if "field" in fdf.columns:
                per = fdf.groupby("field", sort=False).agg(
                    features=("name", "size"), examples=("name", lambda s: ", ".join(list(s)[:6]) + (" …" if len(s) > 6 else "")))
                b.add("<h3>Features per field</h3>", table_html(per.reset_index()))
            cols = [c for c in ("name", "field", "kind", "group", "description", "actionable") if c in fdf.columns]
            b.add(details(f"All {len(fdf)} features", table_html(fdf[cols], max_rows=500)))
    return b.section("Data")


# -- models -----------------------------------------------------------------------------
def render_models(run: Any) -> Section | None:
    import pandas as pd

    m = manifest(run)
    b = Body(run)
    metrics = m.get("metrics") if isinstance(m.get("metrics"), dict) else {}
    dirs = stage_dirs(run, "models")
    orphans = stages_without_dir(run, "models", dirs)
    if not metrics and not dirs and not orphans:
        return None
    if metrics:
        df = metrics_frame(metrics)
        b.add("<h3>Metrics on the test split</h3>",
              _p("Each model scored on the same held-out interactions: AUC on the labelled test pairs, NDCG@10 and "
                 "HR@10 ranking every unseen item for the evaluated users (higher is better).", "wr-small"),
              table_html(df.reset_index()))
        b.add(_ndcg_note_models(run, df))
        train = {k: _flatten(v["train"])[0] for k, v in metrics.items()
                 if isinstance(v, dict) and isinstance(v.get("train"), dict) and v["train"]}
        if train:
            tdf = pd.DataFrame(train).T
            tdf.index.name = "model"
            b.add(details("Training information", table_html(tdf.reset_index())))
        unit = [c for c in df.columns if c != "eval_users" and pd.to_numeric(df[c], errors="coerce").between(0, 1).all()]
        if unit and len(df):
            with b.guard("metrics chart: "):
                fig = plots.grouped_bars(df[unit].apply(pd.to_numeric, errors="coerce"),
                                         "Models side by side", "score (0 to 1)")
                b.add(figure_block(figure_to_img(fig)))
    elif dirs:
        b.add(notice("manifest.json has no model metrics (the evaluation did not run or was not recorded).", "note"))
    rows, figs = [], []
    for d in dirs:
        if not _check_stage(b, d):
            continue
        with b.guard():
            meta = read_json(run, d.path / "model.json")
            params = meta.get("params") or {}
            rows.append({"model": model_label(d.name), "component": meta.get("model"),
                         "features": len(meta.get("feature_names") or []),
                         "parameters": ", ".join(f"{k}={fmt_value(v)}" for k, v in params.items()) or "defaults"})
        curve = d.path / "training_curve.json"
        if curve.exists() and not (d.path / "training_curve.png").exists():
            with b.guard():
                figs.append(figure_block(figure_to_img(_curve_figure(run, curve, model_label(d.name))),
                                         f"training curve of {model_label(d.name)}"))
        for img in files(d.path, IMAGE_SUFFIXES):
            with b.guard():
                figs.append(figure_block(figure_to_img(img, alt=f"{model_label(d.name)}: {img.stem.replace('_', ' ')}"),
                                         f"{model_label(d.name)}: {img.name}"))
    for stage in orphans:
        b.missing(f"model stage {stage.get('name')} has no directory under models/")
    if rows:
        b.add("<h3>Saved models</h3>", table_html(rows))
    if figs:
        b.add("<h3>Training</h3>", '<div class="wr-grid">' + "".join(figs) + "</div>")
    return b.section("Models")


def metrics_frame(metrics: dict):
    """Models as rows, scalar metrics as columns (nested values such as training info left out)."""
    import pandas as pd

    rows = {k: {m: x for m, x in v.items() if not isinstance(x, (dict, list))}
            for k, v in metrics.items() if isinstance(v, dict)}
    df = pd.DataFrame(rows).T
    df.index = [model_label(i) for i in df.index]
    df.index.name = "model"
    return df


def _other_ndcg(run: Any) -> list[dict]:
    """NDCG figures computed elsewhere in the run (compression summaries), with their user counts."""
    out = []
    for d in stage_dirs(run, "compressors"):
        try:
            s = read_json(run, d.path / "summary.json")
        except ArtifactError:
            continue
        if not isinstance(s, dict) or not isinstance(s.get("models"), dict):
            continue
        for role, m in s["models"].items():
            if isinstance(m, dict) and isinstance(m.get("ndcg@10"), (int, float)):
                out.append({"section": "compression", "dir": d.name, "role": role, "model": model_label(m.get("name", role)),
                            "ndcg": float(m["ndcg@10"]), "users": s.get("eval_users")})
    return out


def _ndcg_note_models(run: Any, df) -> str:
    """Cross-reference NDCG figures that other sections compute on other user counts."""
    users = sorted({int(u) for u in df.get("eval_users", []) if isinstance(u, (int, float)) and not _isnan(u)})
    if "eval_users" in df.columns and len(users) > 1:
        per = ", ".join(f"{i}: {fmt_value(u)}" for i, u in df["eval_users"].items())
        first = _p(f"NDCG@10 and HR@10 were computed on different numbers of evaluated users ({per}); compare them "
                   "with care.", "wr-note")
    else:
        first = ""
    here = users[0] if len(users) == 1 else None
    others = [o for o in _other_ndcg(run) if o["users"] != here and o["users"] is not None]
    if not others:
        return first
    items = "; ".join(f"{o['model']} ({o['role']}) {fmt_value(o['ndcg'])} on {fmt_value(o['users'])} users"
                      for o in others[:4])
    return first + (f'<p class="wr-note"><strong>Note:</strong> these figures use {fmt_value(here) if here else "the"} '
                    f'evaluated users; <a href="#compression">Compression fidelity</a> recomputes NDCG@10 on its own sample '
                    f"({esc(items)}), so the two do not compare directly.</p>")


def _ndcg_note_compression(run: Any, d: StageDir) -> str:
    m = manifest(run).get("metrics") if isinstance(manifest(run).get("metrics"), dict) else {}
    mine = [o for o in _other_ndcg(run) if o["dir"] == d.name]
    if not mine or not m:
        return ""
    bits = []
    for o in mine:
        mm = m.get(o["model"]) or m.get(o["model"].replace(":", "__"))
        if isinstance(mm, dict) and isinstance(mm.get("ndcg@10"), (int, float)) and mm.get("eval_users") != o["users"]:
            bits.append(f"{o['model']}: {fmt_value(o['ndcg'])} here on {fmt_value(o['users'])} users, "
                        f"{fmt_value(float(mm['ndcg@10']))} in Models on {fmt_value(mm.get('eval_users'))} users")
    if not bits:
        return ""
    return (f'<p class="wr-note"><strong>Note:</strong> NDCG@10 here is computed on another user sample than in '
            f'<a href="#models">Models</a> ({esc("; ".join(bits))}).</p>')


def _curve_figure(run: Any, path: Path, name: str):
    import pandas as pd

    data = read_json(run, path)
    if isinstance(data, dict) and "history" in data and isinstance(data["history"], (list, dict)):
        data = data["history"]
    df = pd.DataFrame(data)
    df = df.apply(pd.to_numeric, errors="coerce").dropna(axis=1, how="all")
    if df.empty:
        raise ArtifactError(f"{rel(run, path)} has no numeric series")
    x = next((c for c in ("epoch", "iteration", "step") if c in df.columns), None)
    return plots.curves(df, x, f"Training curve: {name}", "loss / metric")


# -- explanations -----------------------------------------------------------------------
def _unit(expl: Any) -> str:
    """The units of an explanation's attributions, as the explanation states them:
    ``summary["attribution_units"]`` (e.g. "attention weight (sums to 1)"), else, for an
    additive method, the model output's units (``summary["output_units"]``, e.g. log-odds).
    Never a default that claims model-output units the method does not promise."""
    s, p = expl.summary or {}, expl.params or {}
    if s.get("attribution_units"):
        return str(s["attribution_units"])
    out = s.get("output_units") or p.get("output") or s.get("output")
    if expl.additive and out:
        return f"model output, {out}"
    if expl.additive:
        return "model output units"
    return f"{expl.method}'s own units (not stated)"


def _name(d: StageDir, expl: Any) -> tuple[str, str]:
    """(explainer instance as the pipeline names it, model display name)."""
    return explanation_label(d.name, expl.method, getattr(expl, "model", None))


def _summary_html(expl: Any) -> str:
    """An explanation's own ``summary`` (docs/plugins.md: shown in the report and the manifest)."""
    s = {k: v for k, v in (expl.summary or {}).items() if k not in ("attribution_units", "output_units")}
    if not s:
        return ""
    flat, tabs = _flatten(s)
    flat = {k: (round_text(v) if isinstance(v, str) else v) for k, v in flat.items()}
    out = kv_table(flat, caption=f"Summary from {expl.method}") if flat else ""
    import pandas as pd

    for name, rows in tabs.items():
        out += table_html(pd.DataFrame(rows), caption=name, max_rows=20)
    return out


def _explanations(run: Any, b: Body | None = None) -> list[tuple[StageDir, Any]]:
    """Every readable explanation (unreadable ones become notices in ``b`` when given)."""
    out = []
    for d in stage_dirs(run, "explanations"):
        if b is not None and not _check_stage(b, d):
            continue
        if b is None:
            if not d.exists:
                continue
            try:
                out.append((d, _with_ranks(run, load_explanation(run, d.path))))
            except Exception:  # noqa: BLE001  (the global section reports it)
                continue
            continue
        with b.guard():
            out.append((d, _with_ranks(run, load_explanation(run, d.path))))
    return out


def _with_ranks(run: Any, expl: Any) -> Any:
    """Give the pairs a rank column: from the explainer, else the runner's recommendations
    file (explanations/recommendations__<model>.parquet), else by score within each user."""
    import copy

    if "rank" in expl.pairs.columns and "title" in expl.pairs.columns:
        return expl
    pairs = expl.pairs.copy()
    rec = run_path(run) / "explanations" / f"recommendations__{expl.model}.parquet"
    ranks = None
    if rec.exists():
        try:
            r = read_table(run, rec)
            cols = [c for c in ("rank", "title") if c in r.columns and c not in pairs.columns]
            key = pairs[["user", "item"]].astype(str)
            r = r[["user", "item", *cols]].astype({"user": str, "item": str}).drop_duplicates(["user", "item"])
            merged = key.merge(r, on=["user", "item"], how="left")
            if "title" in cols:
                pairs["title"] = merged["title"].to_numpy()
            if "rank" in cols:
                ranks = merged["rank"].to_numpy()
        except Exception:  # noqa: BLE001  (fall back to ranking by score)
            ranks = None
    if "rank" in pairs.columns:
        ranks = pairs["rank"].to_numpy()
    if ranks is None or all(_isnan(x) for x in ranks):
        score = "output_value" if "output_value" in pairs.columns else ("score" if "score" in pairs.columns else None)
        ranks = None if score is None else \
            pairs.groupby(pairs["user"].astype(str))[score].rank(ascending=False, method="first").to_numpy()
    if ranks is not None:
        pairs["rank"] = ranks
    out = copy.copy(expl)  # the loaded explanation is cached: leave it as saved
    out.pairs = pairs
    return out


def _has_expl_stage(run: Any) -> bool:
    return bool(stage_dirs(run, "explanations"))


def render_global_importance(run: Any) -> Section | None:
    import pandas as pd

    dirs = stage_dirs(run, "explanations")
    orphans = stages_without_dir(run, "explanations", dirs)
    if not dirs and not orphans:
        return None
    b = Body(run)
    b.add(_p("Which features drive the model's scores over all explained recommendations: the bar is the "
             "mean absolute attribution, the strip plot shows every explained pair (red = high feature value, "
             "blue = low; right of zero raises the score).", "wr-small"))
    for stage in orphans:
        b.missing(f"explainer stage {stage.get('name')} has no directory under explanations/")
    for d, expl in sorted(_explanations(run, b), key=_display_order):
        unit = _unit(expl)
        inst, mlabel = _name(d, expl)
        b.add(f'<h3 id="expl-{esc(slug(d.name))}">{esc(inst)} on {esc(mlabel)}</h3>')
        meta = [f"{len(expl.pairs)} explained pairs", f"{expl.pairs['user'].nunique()} users"]
        err = expl.max_additivity_error
        if err is not None:
            meta.append(f"max additivity error {err:.2e}")
        elif not expl.additive:
            meta.append("not additive")
        if expl.params:
            meta.append("parameters: " + ", ".join(f"{k}={_clip(fmt_value(v), 60)}" for k, v in expl.params.items()))
        b.add(_p(" · ".join(meta), "wr-small"))
        b.add(_summary_html(expl))
        figs = []
        with b.guard(f"{rel(run, d.path)}: "):
            if expl.attributions is not None and expl.attributions.shape[1]:
                attr = expl.attributions.apply(pd.to_numeric, errors="coerce")
                figs.append(figure_block(figure_to_img(plots.importance_bar(
                    attr.abs().mean(), f"Mean |attribution| per feature\n{inst} on {mlabel}",
                    f"mean |attribution| over {len(attr)} pairs ({unit})"))))
                figs.append(figure_block(figure_to_img(plots.beeswarm(
                    attr, expl.feature_values, f"Attribution per pair\n{inst} on {mlabel}",
                    f"attribution ({unit})"))))
            if expl.field_attributions is not None and expl.field_attributions.shape[1]:
                fa = expl.field_attributions.apply(pd.to_numeric, errors="coerce")
                if _constant(fa):  # e.g. attention weights sum to 1 in every pair: a bar says nothing
                    b.add(_p(f"Per field, {inst} gives the same total in every pair "
                             f"({', '.join(f'{k} {fmt_value(float(v))}' for k, v in fa.iloc[0].items())}; {unit}), "
                             "so no field chart is drawn.", "wr-small"))
                else:
                    figs.append(figure_block(figure_to_img(plots.importance_bar(
                        fa.abs().mean(), f"Mean |attribution| per field\n{inst} on {mlabel}",
                        f"mean |attribution| over {len(fa)} pairs ({unit})", ylabel="field"))))
                    if expl.attributions is None:
                        figs.append(figure_block(figure_to_img(plots.beeswarm(
                            fa, None, f"Field attribution per pair\n{inst} on {mlabel}",
                            f"attribution ({unit})", ylabel="field"))))
        if figs:
            b.add('<div class="wr-grid">' + "".join(figs) + "</div>")
        own = []
        for img in files(d.path, IMAGE_SUFFIXES):
            with b.guard():
                own.append(figure_block(figure_to_img(img, alt=f"{expl.method} on {expl.model}: {img.stem.replace('_', ' ')}"),
                                        f"{img.name} (from the explainer)"))
        if own:  # the explainer's own plots (e.g. shap's), folded: the figures above are the common view
            b.add(details(f"{len(own)} figure{'s' if len(own) != 1 else ''} from {expl.method}",
                          '<div class="wr-grid">' + "".join(own) + "</div>"))
        if expl.extras:
            extra = "".join(table_html(pd.DataFrame(t), caption=f"{name} ({len(t)} rows)", max_rows=20)
                            for name, t in expl.extras.items())
            b.add(details(f"Extra tables from {expl.method}: {', '.join(expl.extras)}", extra))
    return b.section("Global feature importance")


def _constant(df) -> bool:
    import numpy as np

    a = df.to_numpy(float)
    return len(a) > 1 and bool(np.all(np.isclose(a, a[:1], rtol=1e-6, atol=1e-9, equal_nan=True)))


def _display_order(item) -> tuple:
    """By model; attribution methods before those that only add tables or figures."""
    d, e = item
    return (e.model, e.attributions is None and e.field_attributions is None, d.name)


def _primary(expls: list[tuple[StageDir, Any]]):
    """The explanation to draw waterfalls from: additive per-feature first, smallest error."""
    def key(item):
        e = item[1]
        err = e.max_additivity_error
        return (e.attributions is None, not e.additive, math.inf if err is None else err, item[0].name)

    usable = [x for x in expls if x[1].attributions is not None or x[1].field_attributions is not None]
    return sorted(usable, key=key)[0] if usable else None


def _by_model(expls):
    out: dict[str, list] = {}
    for d, e in expls:
        out.setdefault(model_label(e.model), []).append((d, e))
    return dict(sorted(out.items()))


def _item_label(pairs, i: int, with_rank: bool = True) -> str:
    # column by column: a row Series of mixed types would turn item 16 into 16.0
    item = pairs["item"].iloc[i]
    title = pairs["title"].iloc[i] if "title" in pairs.columns else None
    rank = pairs["rank"].iloc[i] if "rank" in pairs.columns and with_rank else None
    head = f"#{int(rank)} " if rank is not None and not _isnan(rank) else ""
    return f"{head}{title} ({item})" if title is not None and str(title) != "nan" else f"{head}item {item}"


def _short_value(v: Any) -> str:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return _clip(str(v), 16)
    return str(int(f)) if f.is_integer() and abs(f) < 1e9 else f"{f:.4g}"


def _clip(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def _isnan(v: Any) -> bool:
    try:
        return math.isnan(float(v))
    except (TypeError, ValueError):
        return False


def _user_rows(expl, user) -> list[int]:
    idx = (expl.pairs["user"].astype(str) == str(user)).to_numpy().nonzero()[0].tolist()
    if "rank" in expl.pairs.columns:
        idx.sort(key=lambda i: float(expl.pairs["rank"].iloc[i]))
    return idx


def _auto_reasons(expl, i: int, n: int = 3) -> list[str]:
    attr = expl.attributions if expl.attributions is not None else expl.field_attributions
    row = attr.iloc[i].astype(float).sort_values(key=abs, ascending=False)
    out = []
    for feat, v in row.head(n).items():
        val = None
        if expl.feature_values is not None and feat in expl.feature_values.columns:
            val = expl.feature_values[feat].iloc[i]
        what = f"{feat} = {val}" if val is not None and str(val) != "nan" else str(feat)
        out.append(f"{what} {'raises' if v >= 0 else 'lowers'} the score by {abs(v):.3g}")
    return out


_WEIGHT = ("attention", "weight", "attn", "value", "score")
_POSITION = ("position", "history_position", "hist_pos", "pos")
_HIST_ITEM = ("history_title", "history_item", "hist_item", "title")


def _attention_table(expl):
    """The extras table holding attention weights over history, if any (name, DataFrame, cols)."""
    for name, t in expl.extras.items():
        if "pair" not in t.columns:
            continue
        w = next((c for c in _WEIGHT if c in t.columns), None)
        pos = next((c for c in _POSITION if c in t.columns), None)
        if w and pos and ("attention" in name.lower() or "attention" in expl.method.lower() or w in ("attention", "attn")):
            return name, t, w, pos
    return None


def render_users(run: Any) -> Section | None:
    if not _has_expl_stage(run):
        return None
    b = Body(run)
    expls = _explanations(run, b)
    if not expls:
        if not b.problems:
            b.missing("no explanation could be read")
        return b.section("Why these recommendations: a few users")
    opts = (manifest(run).get("settings") or {}).get("report") or {}
    n_users = int(opts.get("users") or DEFAULT_USERS) if isinstance(opts, dict) else DEFAULT_USERS
    users: list = []
    for _, e in expls:
        for u in e.pairs["user"].tolist():
            if u not in users:
                users.append(u)
    users = users[:n_users]
    b.add(_p(f"The top recommendations of {len(users)} of the explained users, the reasons in words, a "
             "waterfall per recommended item (from the base value, each feature pushes the score up in red or "
             "down in blue) and, where the model attends over the user's history, which past items it looked at.",
             "wr-small"))
    models = _by_model(expls)
    verdicts = run_verdicts(run_path(run))
    words = _sentence_words(run, opts if isinstance(opts, dict) else {})
    for user in users:
        b.add(f'<div class="wr-user" id="user-{esc(slug(str(user)))}"><h3>User {esc(user)}</h3>')
        for model, mex in models.items():
            prim = _primary(mex)
            base_expl = prim[1] if prim else mex[0][1]
            rows = _user_rows(base_expl, user)
            if not rows:
                continue
            b.add(f"<h4>{esc(model)}: top {len(rows)}</h4>")
            with b.guard(f"user {user}, {model}: "):
                b.add(_topk_table(base_expl, rows, mex, verdicts, prim[0] if prim else mex[0][0], words))
            if prim is not None:
                with b.guard(f"user {user}, {model} waterfalls: "):
                    e = prim[1]
                    attr = e.attributions if e.attributions is not None else e.field_attributions
                    panels = []
                    for i in rows[:10]:
                        base = float(e.pairs["base_value"].iloc[i]) if "base_value" in e.pairs.columns else 0.0
                        out = float(e.pairs["output_value"].iloc[i]) if "output_value" in e.pairs.columns else None
                        contrib = attr.iloc[i].astype(float)
                        if e.feature_values is not None and e.attributions is not None:
                            vals = e.feature_values.iloc[i]
                            contrib.index = [f"{f} = {_short_value(vals.get(f))}" if f in vals.index and str(vals.get(f)) != "nan"
                                             else f for f in contrib.index]
                        panels.append({"label": _item_label(e.pairs, i), "base": 0.0 if _isnan(base) else base,
                                       "contrib": contrib, "output": out})
                    fig = plots.waterfall_grid(panels, f"Why each item scored as it did: {_name(prim[0], e)[0]} on {model}, "
                                                       f"user {user}", f"contribution ({_unit(e)})")
                    b.add(figure_block(figure_to_img(fig, crop=True), f"Waterfalls from {_name(prim[0], e)[0]} "
                                       f"({'additive' if e.additive else 'not additive'}); top 7 features, the rest summed."))
            for d, e in mex:
                att = _attention_table(e)
                if att is None:
                    continue
                with b.guard(f"user {user}, attention ({e.method}): "):
                    b.add(_attention_block(e, att, user, model))
        b.add("</div>")
    return b.section("Why these recommendations: a few users")


def _caution(verdicts: dict, d: StageDir) -> str | None:
    return next((v.caution for v in verdicts.get(d.name, []) if v.caution), None)


def _sentence_words(run: Any, opts: dict) -> tuple[list, str]:
    """The catalogues of the report's sentences (settings ``report = { lang = ["en", "zh"] }``;
    English by default) and the dataset's domain (docs/sentences.md)."""
    from .. import sentences

    langs = opts.get("lang") or ["en"]
    langs = [langs] if isinstance(langs, str) else list(langs)
    summary = manifest(run).get("dataset") or {}
    return [sentences.Words(lang) for lang in langs], sentences.domain_of(summary.get("name"), summary)


def _topk_table(base_expl, rows: list[int], mex, verdicts: dict | None = None, base_dir: StageDir | None = None,
                words: tuple[list, str] | None = None) -> str:
    """The user's top-k with every explainer's reasons; a method judged unfaithful on this
    model carries that caution in its header and next to each of its reasons; then the
    sentences a person reads (docs/sentences.md), one column per language."""
    verdicts = verdicts or {}
    pairs = base_expl.pairs
    cols = ["rank", "item", "score"]
    head = "".join(f"<th>{esc(c)}</th>" for c in cols)
    reason_sources = [(d, e) for d, e in mex if e.reasons]
    auto = not reason_sources
    cautions = {}
    for d, e in reason_sources:
        c = _caution(verdicts, d)
        cautions[d.name] = c
        badge = (f'<br><span class="wr-caution" title="{esc(c)}">caution: unfaithful on this model '
                 f'(<a href="#explanation-quality">why</a>)</span>') if c else ""
        head += f"<th>reasons ({esc(_name(d, e)[0])}){badge}</th>"
    if auto:
        label = _name(base_dir, base_expl)[0] if base_dir is not None else base_expl.method
        head += f"<th>largest contributions ({esc(label)})</th>"
    langs, domain = words or ([], "default")
    from ..sentences import item_id, saved_sentences, title_map

    named = [(_name(d, e)[0], e, cautions.get(d.name, _caution(verdicts, d))) for d, e in mex]
    titles = title_map(e for _, e, _ in named) if langs else {}
    head += "".join(f"<th>in words ({esc(w.lang)})</th>" for w in langs)
    body = []
    score_col = "output_value" if "output_value" in pairs.columns else ("score" if "score" in pairs.columns else None)
    for i in rows:
        rank = pairs["rank"].iloc[i] if "rank" in pairs.columns else None
        score = pairs[score_col].iloc[i] if score_col else None
        cells = [f'<td class="num">{esc(fmt_value(rank))}</td>',
                 f"<td>{esc(_item_label(pairs, i, with_rank=False))}</td>",
                 f'<td class="num">{esc(fmt_value(score))}</td>']
        for d, e in reason_sources:
            j = e.find(pairs["user"].iloc[i], pairs["item"].iloc[i])
            lines = e.reasons[j] if j is not None and j < len(e.reasons) else []
            c = cautions.get(d.name)
            mark = f'<span class="wr-caution" title="{esc(c)}">caution: {esc(c)}</span>' if c and lines else ""
            cells.append("<td>" + mark + ('<ul class="wr-reasons">' + "".join(f"<li>{esc(round_text(x))}</li>" for x in lines)
                                          + "</ul>" if lines else "—") + "</td>")
        if auto:
            lines = _auto_reasons(base_expl, i) if (base_expl.attributions is not None or base_expl.field_attributions is not None) else []
            cells.append('<td><ul class="wr-reasons">' + "".join(f"<li>{esc(x)}</li>" for x in lines) + "</ul></td>")
        for w in langs:
            said = saved_sentences(pairs["user"].iloc[i], pairs["item"].iloc[i],
                                   titles.get(str(item_id(pairs["item"].iloc[i])), str(pairs["item"].iloc[i])), named, w, domain, titles)
            cells.append("<td>" + ('<ul class="wr-reasons">' + "".join(f'<li title="{esc(_said_from(x))}">{esc(x["text"])}</li>' for x in said)
                                   + "</ul>" if said else "—") + "</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return (f'<div class="wr-table-wrap"><table class="wr-table"><thead><tr>{head}</tr></thead>'
            f"<tbody>{''.join(body)}</tbody></table></div>")


def _said_from(s: dict) -> str:
    """Where a sentence came from (its hover text): method, unit and numbers."""
    what = s.get("feature") or s.get("field") or s.get("relation") or ", ".join(s.get("features", []))
    return f"{s['method']}: {what}, share {s['share']:.0%} of the attribution"


def _attention_block(expl, att, user, model: str) -> str:
    name, t, w, pos = att
    rows = _user_rows(expl, user)
    sub = t[t["pair"].isin(rows)]
    if sub.empty:
        return ""
    label_col = next((c for c in _HIST_ITEM if c in sub.columns and c != pos), None)
    mat = sub.pivot_table(index="pair", columns=pos, values=w, aggfunc="sum")
    mat = mat.reindex([r for r in rows if r in mat.index])
    mat.index = [_item_label(expl.pairs, r) for r in mat.index]
    xlabel = f"history {pos} (0 = most recent)" if pos != "item" else "history item"
    if label_col is not None:
        names = sub.drop_duplicates(pos).set_index(pos)[label_col].astype(str)
        mat.columns = [f"{c}: {names.get(c, '')}"[:24] for c in mat.columns]
    fig = plots.heatmap(mat, f"Attention over user {user}'s history ({expl.method}, {model_label(model)})", xlabel,
                        "recommended item", "attention weight")
    return figure_block(figure_to_img(fig), f"From the {name} table of {expl.method}: "
                                            "each row sums the attention the item paid to each past item.")


def render_why_above(run: Any) -> Section | None:
    if not _has_expl_stage(run):
        return None
    b = Body(run)
    expls = _explanations(run, b)
    found = False
    for model, mex in _by_model(expls).items():
        prim = _primary(mex)
        if prim is None:
            continue
        d, e = prim
        users = e.pairs["user"].drop_duplicates().tolist()
        user = next((u for u in users if len(_user_rows(e, u)) >= 2), None)
        if user is None:
            continue
        rows = _user_rows(e, user)
        i, j = rows[0], rows[-1]
        with b.guard(f"{model}: "):
            diff = e.difference(i, j).astype(float)
            a, bb = _item_label(e.pairs, i), _item_label(e.pairs, j)
            out_i = e.pairs["output_value"].iloc[i] if "output_value" in e.pairs.columns else math.nan
            out_j = e.pairs["output_value"].iloc[j] if "output_value" in e.pairs.columns else math.nan
            gap = float(out_i) - float(out_j)
            top = diff.head(3)
            words = ", ".join(f"{k} ({v:+.3g})" for k, v in top.items())
            b.add(f"<h3>{esc(model)}: user {esc(user)}, {esc(a)} above {esc(bb)}</h3>")
            caution = _caution(run_verdicts(run_path(run)), d)
            if caution:
                b.add(notice(f"{_name(d, e)[0]} is {caution}", "warning"))
            text = (f"{a} scores {fmt_value(float(out_i))} and {bb} scores {fmt_value(float(out_j))}: a gap of "
                    f"{gap:+.3g} ({_unit(e)}). ")
            if e.additive:
                base_gap = 0.0
                if "base_value" in e.pairs.columns:
                    base_gap = float(e.pairs["base_value"].iloc[i]) - float(e.pairs["base_value"].iloc[j])
                text += (f"With {e.method} (additive), the per-feature differences sum to {diff.sum():+.3g}"
                         + (f" plus a base-value difference of {base_gap:+.3g}" if abs(base_gap) > 1e-12 else "")
                         + f". Largest: {words}.")
            else:
                text += f"{e.method} is not additive, so the differences below rank features but need not sum to the gap. Largest: {words}."
            b.add(_p(text))
            fig = plots.difference_bar(diff, f"Why {a[:40]} ranks above {bb[:40]}\n{_name(d, e)[0]} on {model}, user {user}",
                                       f"attribution of A minus attribution of B ({_unit(e)})")
            import pandas as pd

            tab = pd.DataFrame({"feature": diff.index, "A minus B": diff.to_numpy()})
            if e.feature_values is not None:
                tab["value for A"] = [e.feature_values[f].iloc[i] if f in e.feature_values.columns else "" for f in diff.index]
                tab["value for B"] = [e.feature_values[f].iloc[j] if f in e.feature_values.columns else "" for f in diff.index]
            b.add('<div class="wr-grid">' + figure_block(figure_to_img(fig)) + table_html(tab.head(15)) + "</div>")
            found = True
    if not found and not b.problems:
        return None
    b.parts.insert(0, _p("A rank-aware explanation: the score gap between two recommendations of the same user "
                         "is the difference of their additive explanations (`whyrec explain RUN --why-above A B` "
                         "does this for any pair).", "wr-small"))
    return b.section("Why A ranks above B")


# -- generic StageResult directories ------------------------------------------------------
def _flatten(d: dict, prefix: str = "") -> tuple[dict, dict]:
    """Scalars as "a.b" keys; lists of dicts (tables) returned separately."""
    flat, tables = {}, {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and v and all(isinstance(x, dict) for x in v.values()) and len(v) > 1:
            tables[key] = [{"": name, **x} for name, x in v.items()]
        elif isinstance(v, dict):
            f, t = _flatten(v, key + ".")
            flat.update(f)
            tables.update(t)
        elif isinstance(v, list) and v and all(isinstance(x, dict) for x in v):
            tables[key] = v
        else:
            flat[key] = v
    return flat, tables


def result_dir_html(run: Any, b: Body, directory: Path, heading: str | None = None) -> None:
    """Render one StageResult directory into ``b``: summary, tables, figures, HTML, other files."""
    import pandas as pd

    if heading:
        b.add(heading)
    summary_path = directory / "summary.json"
    if summary_path.exists() or not list(directory.glob("*")):
        with b.guard():
            summary = read_json(run, summary_path)
            if not isinstance(summary, dict):
                raise ArtifactError(f"{rel(run, summary_path)} is corrupted (not a JSON object)")
            flat, tabs = _flatten({k: v for k, v in summary.items() if k != "kind"})
            if flat:
                b.add(kv_table(flat, caption="Summary"))
            for name, rows in tabs.items():
                b.add(table_html(pd.DataFrame(rows), caption=name, max_rows=MAX_TABLE_ROWS))
    tables = files(directory, (".parquet", ".csv"))
    stems = {p.stem for p in tables if p.suffix == ".parquet"}
    for t in tables:
        if t.suffix == ".csv" and t.stem in stems:
            continue
        with b.guard():
            df = read_table(run, t)
            b.add(table_html(df, caption=f"{t.stem.replace('_', ' ')} ({len(df)} rows, {t.name})", max_rows=MAX_TABLE_ROWS))
    figs = []
    for img in files(directory, IMAGE_SUFFIXES):
        with b.guard():
            figs.append(figure_block(figure_to_img(img, alt=img.stem.replace("_", " ")), img.name))
    if figs:
        b.add('<div class="wr-grid">' + "".join(figs) + "</div>")
    for page in files(directory, (".html", ".htm")):
        with b.guard():
            try:
                text = page.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                raise ArtifactError(f"{rel(run, page)} is unreadable ({exc})") from exc
            remote = remote_references(text)
            if remote:
                b.add(notice(f"{page.name} loads {len(remote)} file(s) from the network ({remote[0]} …), so it is not "
                             "embedded in this offline report; open it from the run directory.", "note"),
                      f'<p><a href="{esc(rel(run, page))}">{esc(page.name)}</a></p>')
            else:
                b.add(f"<h4>{esc(page.stem.replace('_', ' '))} (interactive)</h4>", iframe_html(text, page.stem))
    others = [p for p in sorted(directory.iterdir()) if p.is_file() and not p.name.startswith(".")
              and p.suffix.lower() not in (".parquet", ".csv", ".html", ".htm", *IMAGE_SUFFIXES) and p.name != "summary.json"]
    if others:
        links = ", ".join(f'<a href="{esc(rel(run, p))}">{esc(p.name)}</a>' for p in others)
        b.add(f'<p class="wr-small">Other files: {links}</p>')


def _covered_note(run: Any, d: StageDir) -> str | None:
    hit = COVERED.get().get(rel(run, d.path))
    if hit is None:
        return None
    title, anchor = hit
    return f'<p class="wr-note">Shown in <a href="#{esc(anchor)}">{esc(title)}</a>.</p>'


def _group_section(run: Any, group: str, title: str, intro: str) -> Section | None:
    dirs = stage_dirs(run, group)
    orphans = stages_without_dir(run, group, dirs)
    if not dirs and not orphans:
        return None
    if not orphans and all(_covered_note(run, d) for d in dirs):
        return None  # plugin sections show all of it
    b = Body(run)
    b.add(_p(intro, "wr-small"))
    for stage in orphans:
        if not stage_ok(stage):
            b.missing(f"stage {stage.get('name')} {stage_status(stage)} ({stage.get('error') or 'no error recorded'}), "
                      "so it wrote nothing", hint=f"fix the cause and {regen_hint(run)}")
        else:
            b.missing(f"stage {stage.get('name')} has no directory under {group}/")
    for d in dirs:
        b.add(f'<h3 id="{esc(slug(group + "-" + d.name))}">{esc(model_label(d.name))}</h3>', _stage_line(d))
        note = _covered_note(run, d)
        if note:
            b.add(note)
            continue
        if not _check_stage(b, d):
            continue
        if group == "compressors":
            b.add(_ndcg_note_compression(run, d))
        result_dir_html(run, b, d.path)
    return b.section(title)


@generic
def render_causal(run: Any) -> Section | None:
    return _group_section(run, "causal", "Causal analysis",
                          "What drives clicks causally: the learned graph, do-intervention effects and how they compare "
                          "with the attributions.")


@generic
def render_compression(run: Any) -> Section | None:
    return _group_section(run, "compressors", "Compression fidelity",
                          "Smaller models against their teacher: fidelity of the recommendations and of the explanations, "
                          "size and speed.")


@generic
def render_feedback(run: Any) -> Section | None:
    return _group_section(run, "feedback", "User feedback: A/B tests and off-policy evaluation",
                          "What logged user feedback says about the recommendation and explanation strategies.")


@generic
def render_quality(run: Any) -> Section | None:
    """A verdict per method (trust it / use with care / unfaithful on this model), one small
    table and one plot; every check's detail folded away below."""
    import pandas as pd

    dirs = [d for d in stage_dirs(run, "explanations") if (d.path / "quality").is_dir()]
    if not dirs or all(_covered_note(run, StageDir("quality", d.path / "quality")) for d in dirs):
        return None  # a plugin's section shows all of it
    b = Body(run)
    b.add(_p("How far to trust each explanation: do the features it ranks first move the score more than random "
             "ones (deletion/insertion against random order), is it stable across seeds, does it pass the "
             "shuffled-label sanity check and, for attention, does it agree with leave-one-out effects?", "wr-small"))
    rows, gains, folded = [], {}, []
    for d in dirs:
        q = d.path / "quality"
        s = None
        with b.guard():
            s = read_json(run, q / "summary.json")
        if not isinstance(s, dict):
            continue
        inst, mlabel = explanation_label(d.name, s.get("method"), s.get("model"))
        v = verdict(s)
        note = _covered_note(run, StageDir("quality", q))
        where = ""
        if note:
            hit = COVERED.get().get(rel(run, q))
            where = f' (<a href="#{esc(hit[1])}">{esc(hit[0])}</a>)' if hit else ""
        row = {"method": inst, "model": mlabel,
               "verdict": VERDICT_LABELS.get(v.level, v.level) if v else "no verdict",
               "why": v.text if v else "the check states no verdict"}
        if v:
            row.update(v.numbers)
        rows.append((row, v, where))
        if v and ("deletion gain over random" in v.numbers or "insertion gain over random" in v.numbers):
            gains[f"{inst} on {mlabel}"] = {k: v.numbers.get(k) for k in ("deletion gain over random", "insertion gain over random")}
        if not note:
            sub = Body(run)
            result_dir_html(run, sub, q)
            b.problems.extend(sub.problems)
            folded.append(details(f"All checks of {inst} on {mlabel}", "\n".join(sub.parts)))
        else:
            folded.append(f'<p class="wr-small">{esc(inst)} on {esc(mlabel)}: shown in full in{where}.</p>')
    if not rows:
        return b.section("Explanation quality")
    lines = []
    for row, v, where in rows:
        cls = {"ok": "wr-verdict-ok", "care": "wr-verdict-care", "unfaithful": "wr-verdict-bad"}.get(v.level if v else "", "")
        lines.append(f'<li><strong>{esc(row["method"])}</strong> on {esc(row["model"])}: '
                     f'<span class="{cls}">{esc(row["verdict"])}</span>. {esc(round_text(row["why"]))}{where}</li>')
    b.add(f'<ul class="wr-verdicts">{"".join(lines)}</ul>')
    cols = ["method", "model", "verdict"]
    table = pd.DataFrame([r for r, _, _ in rows])
    keep = cols + [c for c in table.columns if c not in cols + ["why"]]
    figs = ""
    if gains:
        with b.guard("quality chart: "):
            g = pd.DataFrame(gains).T.apply(pd.to_numeric, errors="coerce").dropna(axis=1, how="all")
            fig = plots.gain_bars(g, "How much better than random order?",
                                  "gain over random order (share of the rank range; > 0 is better)")
            figs = figure_block(figure_to_img(fig), "Deletion: removing the top-ranked features first should drop the "
                                                    "item faster than random order; insertion: adding them first should "
                                                    "raise it faster. Bars near or below 0: the ranking is no better than chance.")
    b.add('<div class="wr-grid">' + table_html(table[keep], caption="Verdict per method") + figs + "</div>")
    b.add(details(f"Detail of every check ({len(folded)} method{'s' if len(folded) != 1 else ''})", "".join(folded)))
    return b.section("Explanation quality")


# -- provenance -------------------------------------------------------------------------
def render_provenance(run: Any) -> Section:
    m = manifest(run)
    b = Body(run)
    plugins = m.get("plugins")
    if isinstance(plugins, dict):
        plugins = [{"name": k, "version": v} for k, v in plugins.items()]
    if isinstance(plugins, list) and plugins:
        rows = [p if isinstance(p, dict) else {"name": p} for p in plugins]
        b.add("<h3>Plugins and versions</h3>", table_html(rows))
    elif m:
        b.add(notice("manifest.json lists no plugins.", "note"))
    info = {"pipeline": m.get("pipeline"), "seed": m.get("seed"), "data hash (sha256)": m.get("data_hash")}
    for k, v in m.items():
        if k not in ("pipeline", "seed", "data_hash", "plugins", "stages", "metrics", "dataset", "settings", "timings",
                     "status") and not isinstance(v, (dict, list)):
            info[k.replace("_", " ")] = v
    b.add("<h3>Run</h3>", kv_table({k: v for k, v in info.items() if v is not None}))
    settings = m.get("settings")
    if isinstance(settings, dict) and settings:
        flat, _ = _flatten(settings)
        b.add("<h3>Settings</h3>", kv_table(flat))
    timings = m.get("timings")
    if isinstance(timings, dict) and timings:
        flat, _ = _flatten(timings)
        b.add("<h3>Timings</h3>", kv_table({k: (f"{v:.3f} s" if isinstance(v, (int, float)) else v) for k, v in flat.items()}))
    stages = [s for s in m.get("stages") or [] if isinstance(s, dict) and isinstance(s.get("seconds"), (int, float))]
    if stages:
        with b.guard("timings chart: "):
            fig = plots.timings_bar([str(s.get("name")) for s in stages], [float(s["seconds"]) for s in stages],
                                    "Time per stage")
            b.add(figure_block(figure_to_img(fig)))
    return b.section("Provenance")
