"""report.html of a small end-to-end run, loaded in headless Chromium.

Installs Debian's chromium when missing (a missing browser fails the test, it never skips).
Asserts: no console errors or exceptions, no network request, every image decoded with a
non-zero size, every expected section present and complete, the plugin section present, the
embedded interactive HTML runs, and the table sorter works. Saves a full-page screenshot to
test-artifacts/report.png. Also (issue 15): the size budget, lazy images, contents that stay
visible while scrolling, no table cut off (wide ones scroll in their own container), and the
interactive causal graph working offline (zoom, pan, hover for weight and stability).
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
        wide = pd.DataFrame({f"reasons of method {i}": ["because you liked a film with a rather long title " * 2] * 3
                             for i in range(8)})  # far wider than the page: it must scroll, not be cut off
        return Section("A plugin's own section", body=table_html(df, caption="sortable") + table_html(wide, caption="wide"))

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
        images = page.decoded_images()
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


BUDGET = 4_000_000  # bytes: the default run's report must stay below it (docs/benchmarks.md)


def test_report_layout_size_and_lazy_images(chromium, report):
    size = report.stat().st_size
    assert size <= BUDGET, f"report.html is {size / 1e6:.1f} MB, over the {BUDGET / 1e6:.0f} MB budget"
    with headless.Browser(chromium) as browser:
        page = browser.open(report.resolve().as_uri())
        lazy = page.eval("Array.from(document.images).map((im) => im.getAttribute('loading'))")
        load_ms = page.eval("(() => { const t = performance.getEntriesByType('navigation')[0]; "
                            "return t ? t.loadEventEnd - t.startTime : null; })()")
        nav_style = page.eval("getComputedStyle(document.querySelector('nav.wr-toc')).position")
        # scroll to the end: the contents must still be on screen
        nav_after = page.eval("""(() => { window.scrollTo(0, document.body.scrollHeight);
                const r = document.querySelector('nav.wr-toc').getBoundingClientRect();
                return {top: r.top, bottom: r.bottom, h: window.innerHeight, y: window.scrollY}; })()""")
        clipped = page.eval("""Array.from(document.querySelectorAll('table')).filter((t) => {
                const wrap = t.closest('.wr-table-wrap');
                if (!wrap) return t.scrollWidth > t.parentElement.clientWidth + 1;
                const scrolls = ['auto', 'scroll'].includes(getComputedStyle(wrap).overflowX);
                const r = wrap.getBoundingClientRect();
                return (t.scrollWidth > wrap.clientWidth + 1 && !scrolls) || r.right > window.innerWidth + 1;
            }).map((t) => (t.caption && t.caption.textContent) || t.closest('section').id)""")
        wide = page.eval("""(() => { const t = Array.from(document.querySelectorAll('table'))
                .find((x) => x.caption && x.caption.textContent === 'wide');
                const w = t.closest('.wr-table-wrap'); return {table: t.scrollWidth, wrap: w.clientWidth}; })()""")
        page_overflow = page.eval("document.documentElement.scrollWidth - window.innerWidth")
        errors = page.errors()
    assert errors == [], errors
    assert lazy and all(x == "lazy" for x in lazy), lazy
    assert nav_style == "sticky"
    assert nav_after["y"] > 1000 and 0 <= nav_after["top"] < nav_after["h"], nav_after
    assert clipped == [], f"tables cut off: {clipped}"
    assert wide["table"] > wide["wrap"]  # the wide table really is wider: it scrolls in its container
    assert page_overflow <= 1, "the page itself must not scroll sideways"
    assert load_ms is not None and load_ms < 15_000, load_ms


def test_interactive_causal_graph_works_offline(chromium, tmp_path):
    from whyrec.report import Section, interactive_graph
    from whyrec.report.page import render_page

    edges = [{"source": "price", "target": "discount", "weight": 0.3, "stability": 0.9},
             {"source": "price", "target": "label", "weight": -0.6, "stability": 1.0},
             {"source": "rating", "target": "price", "weight": 0.8, "stability": 0.4},
             {"source": "discount", "target": "label", "weight": 0.2, "stability": 0.7}]
    body = interactive_graph(["rating", "price", "discount", "label"], edges, outcome="label", caption="graph")
    page_html = render_page("graph", "", [("causal", Section("Causal", body=body, anchor="causal"), None)], "")
    path = tmp_path / "graph.html"
    path.write_text(page_html, encoding="utf-8")
    with headless.Browser(chromium) as browser:
        page = browser.open(path.resolve().as_uri())
        ready = page.eval("document.querySelector('.wr-graph').getAttribute('data-ready')")
        before = page.eval("document.querySelector('.wr-graph svg').getAttribute('viewBox')")
        after_zoom = page.eval("""(() => { const s = document.querySelector('.wr-graph svg'), r = s.getBoundingClientRect();
                s.dispatchEvent(new WheelEvent('wheel', {deltaY: -120, clientX: r.left + r.width / 2,
                                                          clientY: r.top + r.height / 2, bubbles: true, cancelable: true}));
                return s.getAttribute('viewBox'); })()""")
        after_pan = page.eval("""(() => { const s = document.querySelector('.wr-graph svg'), r = s.getBoundingClientRect();
                const at = (type, x) => s.dispatchEvent(new PointerEvent(type, {clientX: x, clientY: r.top + 20,
                                                                                  bubbles: true, pointerId: 1}));
                at('pointerdown', r.left + 200); at('pointermove', r.left + 260); at('pointerup', r.left + 260);
                return s.getAttribute('viewBox'); })()""")
        hover = page.eval("""(() => { const e = document.querySelector('.wr-edge[data-from="price"][data-to="label"]');
                const r = e.getBoundingClientRect();
                e.dispatchEvent(new MouseEvent('mouseenter', {clientX: r.left + 2, clientY: r.top + 2}));
                const tip = document.querySelector('.wr-graph-tip');
                return {text: tip.textContent, shown: getComputedStyle(tip).display, lit: e.classList.contains('wr-on')}; })()""")
        requests = page.requests()
        errors = page.errors()
    assert errors == [], errors
    assert [u for u in requests if not u.startswith(("file:", "data:", "about:"))] == []
    assert ready == "1"
    zoomed = [float(x) for x in after_zoom.split()]
    assert zoomed[2] < [float(x) for x in before.split()][2]  # zoomed in: a narrower view box
    assert after_pan.split()[0] != after_zoom.split()[0]  # dragged sideways
    assert hover == {"text": "price → label: weight -0.6, stability 100% of refits", "shown": "block", "lit": True}
