"""report.html: sections of a real small run, bad run directories, plugin sections, helpers."""
from __future__ import annotations

import base64
import html as htmllib
import io
import json
import re
import shutil
import types
from pathlib import Path

import pytest

import whyrec
from whyrec.report import ArtifactError, Section, build_report, figure_to_img, run_repr_html, table_html
from whyrec.report.artifacts import remote_references

import test_report_plugin as kit  # noqa: E402  (tests/core is on sys.path: see conftest.py)

FULL = ["overview", "data", "models", "global-importance", "users", "why-above", "explanation-quality",
        "causal", "compression", "feedback", "provenance"]
REGEN = "rerun `whyrec run report`"


@pytest.fixture(scope="module")
def khost():
    return kit.make_host()


@pytest.fixture(scope="module")
def base_run(tmp_path_factory, khost):
    return kit.run_pipeline(tmp_path_factory.mktemp("report"), host=khost)


SMALL = """
[pipelines.small]
seed = 2
sample_users = 2
top_k = 3
dataset = { use = "toy", n_users = 12 }
model = { use = "linear" }
explainers = { use = "linear-shap" }
"""


@pytest.fixture(scope="module")
def small_run(tmp_path_factory, khost):
    """A run with one model and one explainer: quick to rebuild."""
    tmp = tmp_path_factory.mktemp("small")
    (tmp / "registry.toml").write_text(SMALL)
    return whyrec.run("small", registry=tmp / "registry.toml", out=tmp / "runs", host=khost)


@pytest.fixture
def run_dir(small_run, tmp_path) -> Path:
    """A private copy of the small run, free to damage."""
    dst = tmp_path / small_run.path.name
    shutil.copytree(small_run.path, dst)
    (dst / "report.html").unlink()
    return dst


def parse(report: Path) -> dict[str, dict]:
    """section name -> {status, id, text (tags stripped), html}."""
    page = report.read_text(encoding="utf-8")
    out = {}
    for m in re.finditer(r'<section class="wr-section" id="([^"]+)" data-section="([^"]+)" data-status="([^"]+)">(.*?)</section>',
                         page, re.S):
        body = m.group(4)
        text = htmllib.unescape(re.sub(r"<[^>]+>", " ", re.sub(r'srcdoc="[^"]*"', "", body)))
        out[m.group(2)] = {"id": m.group(1), "status": m.group(3), "html": body, "text": " ".join(text.split())}
    return out


def images(page: str) -> list[tuple[str, bytes]]:
    return [(alt, base64.b64decode(data)) for data, alt in
            re.findall(r'<img class="[^"]*" loading="lazy" decoding="async" src="data:image/png;base64,([^"]+)" alt="([^"]*)">', page)]


def decodes(data: bytes) -> tuple[int, int]:
    from PIL import Image

    with Image.open(io.BytesIO(data)) as im:
        im.load()
        return im.size


# -- a complete run -------------------------------------------------------------------------
def test_runner_writes_a_complete_self_contained_report(base_run):
    report = base_run.path / "report.html"
    page = report.read_text(encoding="utf-8")
    secs = parse(report)
    assert list(secs) == FULL
    assert {n: s["status"] for n, s in secs.items()} == {n: "ok" for n in FULL}
    assert remote_references(page) == []
    assert "<script src" not in page and "<link " not in page  # scripts and styles are inline
    imgs = images(page)
    assert len(imgs) >= 15
    for alt, data in imgs:
        w, h = decodes(data)
        assert w > 0 and h > 0 and alt
    assert not list(base_run.path.rglob("*.tmp"))


def test_sections_show_the_runs_figures(base_run):
    secs = parse(base_run.path / "report.html")
    m = base_run.manifest
    over = secs["overview"]["text"]
    assert "Pipeline report loaded toy (288 interactions), trained 2 models" in over
    assert f"{len(m['stages'])} of {len(m['stages'])} succeeded" not in over  # the report stage is running
    assert f"{len(m['stages']) - 1} of {len(m['stages']) - 1} succeeded" in over
    data = secs["data"]["text"]
    summary = json.loads((base_run.path / "dataset" / "summary.json").read_text())
    assert f"users {summary['users']}" in data and f"items {summary['items']}" in data
    assert f"positive rate {100 * summary['positive_rate']:.1f} %" in data
    models = secs["models"]
    for name, metrics in m["metrics"].items():
        assert re.search(rf"{name} {metrics['auc']:.3g} ", models["text"])
    assert "Training curve: linear" in models["html"]  # plotted from training_curve.json
    gi = secs["global-importance"]
    assert "linear-shap on linear" in gi["text"] and "max additivity error" in gi["text"]
    assert "Mean |attribution| per feature" in gi["html"] and "Attribution per pair" in gi["html"]
    users = secs["users"]
    assert users["text"].count("top 4") == 2 * 2  # report = { users = 2 } x two models
    assert "because you liked" in users["text"] and "users liked" in users["text"]
    assert "Attention over user" in users["html"] and "Why each item scored as it did" in users["html"]
    why = secs["why-above"]["text"]
    assert "gap of" in why and "per-feature differences sum to" in why
    assert "deletion_auc" in secs["explanation-quality"]["text"]
    causal = secs["causal"]
    assert "effects (2 rows" in causal["text"] and "srcdoc=" in causal["html"]
    assert "jaccard@5" in secs["compression"]["text"]
    assert "p_value" in secs["feedback"]["text"] and "arms (2 rows" in secs["feedback"]["text"]
    prov = secs["provenance"]["text"]
    assert "reportkit" in prov and "toyplugin" in prov and m["data_hash"] in prov


def test_why_above_gap_equals_the_score_difference(base_run):
    expl = whyrec.Explanation.load(base_run.path / "explanations" / "linear-shap__linear")
    text = parse(base_run.path / "report.html")["why-above"]["text"]
    # items show as "item 7" or, with titles, "Some Title (7)"
    m = re.search(r"user (\S+), #1 (?:item (\S+)|[^()]*\((\S+)\)) above #4 (?:item (\S+)|[^()]*\((\S+)\))", text)
    user, a, b = m.group(1), m.group(2) or m.group(3), m.group(4) or m.group(5)
    p = expl.pairs
    sa = p[(p["user"].astype(str) == user) & (p["item"].astype(str) == a)]["output_value"].iloc[0]
    sb = p[(p["user"].astype(str) == user) & (p["item"].astype(str) == b)]["output_value"].iloc[0]
    assert f"a gap of {sa - sb:+.3g}" in text
    assert f"differences sum to {sa - sb:+.3g}" in text  # additive, same base value


# -- bad run directories: the report builds and says what is missing -------------------------------
@pytest.fixture(scope="module")
def damaged(base_run, khost, tmp_path_factory) -> dict[str, dict]:
    """One copy of the run with one artifact damaged per stage (each touches another section)."""
    d = tmp_path_factory.mktemp("damaged") / base_run.path.name
    shutil.copytree(base_run.path, d)
    (d / "report.html").unlink()
    (d / "explanations" / "linear-shap__linear" / "attributions.parquet").unlink()  # missing
    (d / "causal" / "effect-table" / "summary.json").write_text("{not json")  # corrupted
    png = d / "explanations" / "linear-shap__linear" / "quality" / "deletion_curve.png"
    png.write_bytes(png.read_bytes()[:200])  # truncated
    shutil.rmtree(d / "models" / "popularity")  # a whole stage directory gone
    (d / "dataset" / "summary.json").unlink()
    report = build_report(d, host=khost)
    return {"sections": parse(report), "page": report.read_text()}


def test_missing_attributions_file(damaged):
    secs = damaged["sections"]
    gi = secs["global-importance"]
    assert gi["status"] == "missing"
    assert "explanations/linear-shap__linear/attributions.parquet listed in manifest.json is missing" in gi["text"]
    assert REGEN in gi["text"]
    assert "popularity-reason on popularity" in gi["text"]  # the other explanations still show
    for name in ("users", "why-above"):  # the sections that read the same explanation say so too
        assert secs[name]["status"] == "missing" and "linear-shap__linear/attributions.parquet" in secs[name]["text"]
    assert "popularity: top 4" in secs["users"]["text"]
    assert secs["feedback"]["status"] == "ok" and secs["compression"]["status"] == "ok"


def test_corrupted_causal_summary(damaged):
    causal = damaged["sections"]["causal"]
    assert causal["status"] == "missing"
    assert "causal/effect-table/summary.json is corrupted (JSONDecodeError" in causal["text"]
    assert REGEN in causal["text"]
    assert "effects (2 rows" in causal["text"]  # what is intact is still shown


def test_truncated_figure(damaged):
    q = damaged["sections"]["explanation-quality"]
    assert q["status"] == "missing"
    assert "explanations/linear-shap__linear/quality/deletion_curve.png: image cannot be decoded" in q["text"]
    assert "deletion_auc" in q["text"]
    for _, data in images(damaged["page"]):  # no broken image reaches the page
        decodes(data)


def test_missing_model_directory(damaged):
    models = damaged["sections"]["models"]
    assert models["status"] == "missing"
    assert "directory models/popularity/ of stage model:popularity is missing" in models["text"]
    assert re.search(r"popularity 0\.\d+", models["text"])  # its metrics, from the manifest, still shown


def test_missing_dataset_summary_falls_back_to_manifest(damaged):
    data = damaged["sections"]["data"]
    assert data["status"] == "missing"
    assert "dataset/summary.json is missing (the figures below come from the copy in manifest.json)" in data["text"]
    assert REGEN in data["text"]
    assert "users 24" in data["text"]  # numbers from the manifest's copy


def test_corrupted_manifest(run_dir, khost):
    (run_dir / "manifest.json").write_text('{"pipeline": "small", "stag')
    secs = parse(build_report(run_dir, host=khost))
    assert secs["overview"]["status"] == "missing"
    assert "manifest.json is corrupted (Unterminated string" in secs["overview"]["text"]
    assert secs["global-importance"]["status"] == "ok"  # read from the directories on disk
    assert "linear-shap on linear" in secs["global-importance"]["text"]
    assert secs["data"]["status"] == "ok"


def test_failed_stage(tmp_path, khost):
    class Broken:
        def run(self, ctx):
            raise RuntimeError("NOTEARS did not converge")

    plugin = types.SimpleNamespace(register_causal_learners=whyrec.hookimpl(lambda register: register("broken", Broken)))
    host = kit.make_host()
    host.add(plugin, "broken")
    reg = tmp_path / "r.toml"
    reg.write_text('[pipelines.p]\ndataset = { use = "toy" }\nmodel = { use = "linear" }\ncausal = { use = "broken" }\n')
    from whyrec.errors import StageError

    with pytest.raises(StageError, match="stage causal:broken failed: RuntimeError: NOTEARS did not converge"):
        whyrec.run("p", registry=reg, out=tmp_path / "runs", host=host)
    (run_dir,) = (tmp_path / "runs").iterdir()
    secs = parse(build_report(run_dir, host=host))
    assert "this run failed at causal:broken: RuntimeError: NOTEARS did not converge" in secs["overview"]["text"]
    causal = secs["causal"]
    assert causal["status"] == "missing"
    assert "stage causal:broken failed (RuntimeError: NOTEARS did not converge), so it wrote nothing" in causal["text"]
    assert "fix the cause and rerun `whyrec run p`" in causal["text"]
    assert secs["models"]["status"] == "ok"


# -- plugin sections: one build with every kind of plugin section ------------------------------
def _plugin(**hooks) -> types.SimpleNamespace:
    return types.SimpleNamespace(**{k: whyrec.hookimpl(v) for k, v in hooks.items()})


def _boom(run):
    raise KeyError("effects_table")


def _rich(run):
    import pandas as pd

    d = run.path / "causal" / "effect-table"
    return Section("Causal effects, richly", body=table_html(pd.read_parquet(d / "effects.parquet")),
                   covers=("causal/effect-table",), anchor="rich-causal")


def _broken_hook(register):
    raise ImportError("No module named 'whyrec_x.report'")


@pytest.fixture(scope="module")
def with_plugins(base_run, tmp_path_factory) -> dict[str, dict]:
    d = tmp_path_factory.mktemp("plugins") / base_run.path.name
    shutil.copytree(base_run.path, d)
    shutil.copytree(d / "causal" / "effect-table", d / "causal" / "second")  # not covered by "rich"
    host = kit.make_host()
    host.add(_plugin(register_report_sections=lambda register: (
        register("mine", _boom, order=65), register("wrong", lambda run: "<p>x</p>"),
        register("none", lambda run: None), register("rich", _rich, order=61))), "mine-plugin")
    host.add(_plugin(register_report_sections=_broken_hook), "whyrec-x")
    return parse(build_report(d, host=host))


def test_a_failing_plugin_section_is_contained(with_plugins):
    secs = with_plugins
    assert secs["mine"]["status"] == "missing"
    assert "section 'mine' (from plugin mine-plugin) could not be built from the run's artifacts: KeyError" in secs["mine"]["text"]
    assert REGEN in secs["mine"]["text"]
    assert list(secs).index("mine") == list(secs).index("compression") - 1  # order 65: between 61 and 70
    assert secs["wrong"]["status"] == "missing" and "returned str, not a Section" in secs["wrong"]["text"]
    assert "none" not in secs


def test_a_broken_section_hook_does_not_lose_the_report(with_plugins):
    secs = with_plugins
    assert secs["whyrec-x-sections"]["status"] == "missing"
    assert "plugin whyrec-x failed to register its report sections (ImportError" in secs["whyrec-x-sections"]["text"]
    assert all(secs[n]["status"] == "ok" for n in FULL)


def test_a_plugin_section_covering_a_stage_replaces_the_generic_view(with_plugins):
    secs = with_plugins
    assert secs["rich"]["status"] == "ok" and "effect_per_sd" in secs["rich"]["text"]
    causal = secs["causal"]
    assert 'Shown in <a href="#rich-causal">Causal effects, richly</a>' in causal["html"]
    assert causal["text"].count("effect_per_sd") == 1  # the uncovered copy only


def test_a_generic_section_whose_stages_are_all_covered_is_left_out(small_run, tmp_path, khost):
    d = tmp_path / small_run.path.name
    shutil.copytree(small_run.path, d)

    def render(run):
        return Section("Quality, richly", body="<p>curves</p>", covers=("explanations/linear-shap__linear/quality",))

    host = kit.make_host()
    host.add(_plugin(register_report_sections=lambda register: register("rich-quality", render)), "rq")
    secs = parse(build_report(d, host=host))
    assert "rich-quality" in secs and "explanation-quality" not in secs


def test_html_that_loads_from_the_network_is_linked_not_embedded(base_run, tmp_path, khost):
    from whyrec.report.sections import Body, result_dir_html

    d = tmp_path / "causal" / "x"
    shutil.copytree(base_run.path / "causal" / "effect-table", d)
    (d / "pyvis.html").write_text('<html><head><script src="https://cdn.example.org/vis.js"></script></head>'
                                  '<body><a href="https://x.org">x</a></body></html>')
    b = Body(types.SimpleNamespace(path=tmp_path, manifest={"pipeline": "p"}))
    result_dir_html(b.run, b, d)
    out = "".join(b.parts)
    assert "pyvis.html loads 1 file(s) from the network (https://cdn.example.org/vis.js" in htmllib.unescape(out)
    assert out.count("<iframe") == 1  # graph.html only
    assert '<a href="causal/x/pyvis.html">' in out
    assert b.problems == []


# -- the CLI and Jupyter --------------------------------------------------------------------
def test_cli_rebuilds_the_report(run_dir):
    from core_helpers import whyrec_cli

    r = whyrec_cli("report", str(run_dir))
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == f"report: {(run_dir / 'report.html').resolve()}"
    secs = parse(run_dir / "report.html")
    core = ["overview", "data", "models", "global-importance", "users", "why-above", "explanation-quality", "provenance"]
    assert [n for n in secs if n in FULL] == core  # (installed plugins may add their own sections)
    assert all(secs[n]["status"] == "ok" for n in core)


def test_cli_report_with_incomplete_sections_says_so_and_exits_non_zero(run_dir, tmp_path):
    import shutil

    from core_helpers import whyrec_cli

    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    for p in (copy / "explanations").glob("*/pairs.parquet"):
        p.write_bytes(b"not parquet")  # a corrupt artifact: its sections cannot be drawn
    r = whyrec_cli("report", str(copy))
    assert r.returncode == 1, r.stderr
    assert r.stdout.strip() == f"report: {(copy / 'report.html').resolve()}"  # still written, with what it has
    (line,) = [ln for ln in r.stderr.splitlines() if ln.startswith("warning: ")]
    assert "section(s) incomplete (" in line and line.endswith("each says in the report how to regenerate it")
    n = int(line.split("warning: ")[1].split(" ")[0])
    assert n >= 1 and sum(1 for s in parse(copy / "report.html").values() if s["status"] == "missing") == n


def test_cli_report_open_hands_the_file_to_the_browser(run_dir, tmp_path):
    """--open starts the user's BROWSER command (what Python's webbrowser honours) with the
    report's file:// URI; a recording script stands in for the browser."""
    import sys

    from core_helpers import whyrec_cli

    seen = tmp_path / "opened.txt"
    recorder = tmp_path / "browser.py"
    recorder.write_text(f"import sys; open({str(seen)!r}, 'w').write(sys.argv[1])\n")
    r = whyrec_cli("report", str(run_dir), "--open", env={"BROWSER": f"{sys.executable} {recorder} %s"})
    assert r.returncode == 0, r.stderr
    assert seen.read_text() == (run_dir / "report.html").resolve().as_uri()
    assert "no browser" not in r.stderr


def test_cli_report_open_without_a_browser_says_where_the_file_is(run_dir, monkeypatch):
    import webbrowser

    from click.testing import CliRunner

    from whyrec.cli import cli

    monkeypatch.setattr(webbrowser, "open", lambda url: False)
    r = CliRunner().invoke(cli, ["report", str(run_dir), "--open"])
    assert r.exit_code == 0
    path = (run_dir / "report.html").resolve()
    assert f"no browser could be started here; open {path} on a machine with one" in r.stderr


def test_run_html_repr(base_run):
    out = base_run._repr_html_()
    assert out == run_repr_html(base_run)
    assert "report-" in out and "model:linear" in out and "causal:effect-table" in out
    assert re.search(r"linear</td><td[^>]*>0\.\d+", out)  # metrics row
    assert f'href="{(base_run.path / "report.html").as_uri()}"' in out
    assert "<script" not in out and "<img" not in out


# -- helpers -------------------------------------------------------------------------------------
def test_table_html_escapes_sorts_and_truncates():
    import pandas as pd

    df = pd.DataFrame({"name": ["<script>alert(1)</script>", "b"], "x": [0.123456, float("nan")], "n": [3, 12000]})
    out = table_html(df)
    assert "<script>" not in out and "&lt;script&gt;" in out
    assert '<td class="num" data-v="0.123456">0.123</td>' in out
    assert '<td class="num" data-v="">—</td>' in out
    assert 'class="wr-table wr-sortable"' in out and "<th scope=\"col\" tabindex=0>x</th>" in out
    long = table_html(pd.DataFrame({"a": range(250)}), max_rows=100)
    assert long.count("<tr>") == 101 and "Showing the first 100 of 250 rows." in long


def test_figure_to_img(tmp_path):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(2, 1))
    ax = fig.add_subplot()
    ax.plot([0, 1], [0, 1])
    ax.set_title("a <b> line")
    tag = figure_to_img(fig)
    assert 'alt="a &lt;b&gt; line"' in tag
    ((alt, data),) = images(tag)
    w, h = decodes(data)
    assert 120 <= w <= 260 and 60 <= h <= 160  # about 2 x 1 inches at 96 dpi, cropped to what is drawn
    png = tmp_path / "deletion_curve.png"
    png.write_bytes(data)
    assert 'alt="deletion curve"' in figure_to_img(png)
    with pytest.raises(ArtifactError, match="nope.png: image file is missing"):
        figure_to_img(tmp_path / "nope.png")
    png.write_bytes(b"GIF89a....")
    with pytest.raises(ArtifactError, match="not a PNG or JPEG"):
        figure_to_img(png)


def test_section_contract():
    with pytest.raises(ValueError, match="status 'broken'"):
        Section("x", status="broken")
    s = Section.missing("Causal", "causal/x/summary.json is missing")
    assert s.status == "missing" and s.order is None and s.anchor is None


def test_json_outputs_are_strict_json():
    """NaN and infinities become null: manifests and `--format json` parse in any JSON reader."""
    import json as _json

    import numpy as np

    from whyrec.atomic import to_json

    text = to_json({"a": float("nan"), "b": [np.float64("inf"), 1.5, np.array([np.nan, 2.0])], "c": np.float32(0.5),
                    "d": {"e": -float("inf")}, "when": __import__("datetime").date(2026, 1, 2)}, fallback=str)
    assert "NaN" not in text and "Infinity" not in text
    assert _json.loads(text) == {"a": None, "b": [None, 1.5, [None, 2.0]], "c": 0.5, "d": {"e": None}, "when": "2026-01-02"}
    with pytest.raises(TypeError):
        to_json({"when": __import__("datetime").date(2026, 1, 2)})  # no fallback: unknown types are an error
