"""report.html of a small end-to-end run, loaded in headless Chromium.

Installs Debian's chromium when missing (a missing browser fails the test, it never skips).
Asserts: no console errors or exceptions, no network request, every image decoded with a
non-zero size, every expected section present and complete, the plugin section present, the
embedded interactive HTML runs, and the table sorter works. Saves a full-page screenshot to
test-artifacts/report.png.
"""
from __future__ import annotations

import sys
import types
from pathlib import Path

import pytest

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "core"))

import headless  # noqa: E402

ARTIFACTS = HERE.parent.parent / "test-artifacts"
EXPECTED = ["overview", "data", "models", "global-importance", "users", "why-above", "explanation-quality",
            "causal", "compression", "feedback", "reportkit-note", "provenance"]

pytestmark = [pytest.mark.browser, pytest.mark.timeout(900)]


@pytest.fixture(scope="module")
def chromium() -> str:
    try:
        import websocket  # noqa: F401  (websocket-client, from the test extra)
    except ImportError:
        pytest.fail("the browser test needs websocket-client: pip install -e '.[test]'", pytrace=False)
    try:
        return headless.ensure_chromium()
    except RuntimeError as exc:
        pytest.fail(f"the browser test needs Chromium: {exc}", pytrace=False)


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> Path:
    import test_report_plugin as kit

    from whyrec.report import Section, table_html

    def render(run):
        import pandas as pd

        df = pd.DataFrame({"b": [3.0, 1.0, 2.0, 10.0], "label": ["c", "a", "b", "d"]})
        return Section("A plugin's own section", body=table_html(df, caption="sortable"))

    def register_report_sections(register):
        register("reportkit-note", render, order=90)

    extra = types.SimpleNamespace(register_report_sections=__import__("whyrec").hookimpl(register_report_sections))
    host = kit.make_host()
    host.add(extra, "reportkit-note")
    run = kit.run_pipeline(tmp_path_factory.mktemp("browser"), host=host)
    return run.path / "report.html"


def test_report_in_headless_chromium(chromium, report):
    with headless.Browser(chromium) as browser:
        page = browser.open(report.resolve().as_uri())
        images = page.eval("""Promise.all(Array.from(document.images).map(
                (im) => im.decode().then(() => null, () => null).then(() =>
                    ({alt: im.alt, w: im.naturalWidth, h: im.naturalHeight, complete: im.complete}))))""",
                           await_promise=True)
        sections = page.eval("""Array.from(document.querySelectorAll('section.wr-section')).map(
                (s) => ({name: s.dataset.section, id: s.id, status: s.dataset.status,
                         title: s.querySelector('h2').textContent}))""")
        toc = page.eval("Array.from(document.querySelectorAll('nav.wr-toc a')).map((a) => a.getAttribute('href'))")
        # the sorter: click the numeric header twice (ascending, then descending)
        sorted_up = page.eval("""(() => { const t = document.querySelector('#reportkit-note table.wr-sortable');
                t.tHead.rows[0].cells[0].click();
                return Array.from(t.tBodies[0].rows).map((r) => r.cells[0].textContent); })()""")
        sorted_down = page.eval("""(() => { const t = document.querySelector('#reportkit-note table.wr-sortable');
                t.tHead.rows[0].cells[0].click();
                return Array.from(t.tBodies[0].rows).map((r) => r.cells[1].textContent); })()""")
        frames = page.eval("document.querySelectorAll('iframe.wr-embed').length")
        browser.drain(1.5)  # let the embedded frame run its script
        in_frame = page.frame_eval("document.getElementById('n') && document.getElementById('n').textContent")
        shot = page.screenshot(ARTIFACTS / "report.png")
        errors = page.errors()
        requests = page.requests()

    assert errors == [], errors
    remote = [u for u in requests if not u.startswith(("file:", "data:", "about:"))]
    assert remote == [], f"the report must not touch the network: {remote}"
    assert len(images) >= 15, images
    bad = [im for im in images if not (im["complete"] and im["w"] > 0 and im["h"] > 0)]
    assert bad == [], f"images that did not decode: {bad}"
    assert all(im["alt"] for im in images), "every image needs alt text"
    names = [s["name"] for s in sections]
    assert names == EXPECTED, names
    assert [s["status"] for s in sections] == ["ok"] * len(EXPECTED), sections
    assert toc == [f"#{s['id']}" for s in sections]
    assert sorted_up == ["1", "2", "3", "10"]  # numeric, not text, order
    assert sorted_down == ["d", "c", "b", "a"]
    assert frames == 1  # the causal stage's interactive graph.html, embedded ...
    assert in_frame == ["edges: 2"]  # ... and its script ran
    assert shot.stat().st_size > 50_000
