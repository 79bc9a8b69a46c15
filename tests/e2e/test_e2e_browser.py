"""report.html of the real e2e run, loaded in headless Chromium (tests/browser/headless.py).

As in tests/browser: Chromium is installed with apt-get when missing, and a browser that cannot
be had fails the test (it never skips). Asserts: no console error or exception, no network
request, every image decoded with a non-zero size and alt text, every section rendered with
visible content and status ok, the table of contents pointing at them, the embedded
interactive causal graph running with the learned graph's edges, and a full-page screenshot
(test-artifacts/e2e-report.png).
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

import headless
from test_e2e_pipeline import SECTIONS

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(900)]


@pytest.fixture(scope="module")
def chromium():
    try:
        import websocket  # noqa: F401  (websocket-client, from the test extra)
    except ImportError:
        pytest.fail("the browser test needs websocket-client: pip install -e '.[test]'", pytrace=False)
    try:
        path = headless.ensure_chromium()
    except RuntimeError as exc:
        pytest.fail(f"the browser test needs Chromium: {exc}", pytrace=False)
    # Chromium >= 111 refuses a DevTools websocket that sends an Origin header (websocket-client
    # does) unless --remote-allow-origins is given; headless.FLAGS lacks it (HTTP 403 on connect).
    flags = headless.FLAGS
    if not any(f.startswith("--remote-allow-origins") for f in flags):
        headless.FLAGS = [*flags, "--remote-allow-origins=*"]
    yield path
    headless.FLAGS = flags


def test_real_report_in_headless_chromium(chromium, e2e):
    report = e2e.path / "report.html"
    with headless.Browser(chromium) as browser:
        page = browser.open(report.resolve().as_uri())
        images = page.decoded_images()
        rendered = page.eval("""Array.from(document.querySelectorAll('section.wr-section')).map((s) => ({
                name: s.dataset.section, id: s.id, status: s.dataset.status,
                title: (s.querySelector('h2') || {}).textContent || '',
                text: s.textContent.replace(/\\s+/g, ' ').trim().length,
                height: s.getBoundingClientRect().height,
                images: s.querySelectorAll('img').length, tables: s.querySelectorAll('table').length,
                missing: s.querySelectorAll('.wr-missing').length}))""")
        toc = page.eval("Array.from(document.querySelectorAll('nav.wr-toc a')).map((a) => a.getAttribute('href'))")
        frames = page.eval("document.querySelectorAll('iframe.wr-embed').length")
        page.eval("document.querySelectorAll('details').forEach((d) => { d.open = true; })")  # folded frames load too
        browser.drain(2.0)
        in_frame = page.frame_eval("(typeof edges !== 'undefined' && edges.length !== undefined) ? "
                                   "{edges: edges.length, nodes: nodes.length} : null")
        shot = page.screenshot(ARTIFACTS / "e2e-report.png")
        errors = page.errors()
        requests = page.requests()

    assert errors == [], errors
    remote = [u for u in requests if not u.startswith(("file:", "data:", "about:"))]
    assert remote == [], remote
    assert images and all(im["complete"] and im["w"] > 0 and im["h"] > 0 for im in images), \
        [im for im in images if not (im["w"] and im["h"])]
    assert all(im["alt"] for im in images), "every image needs alt text"
    assert [s["name"] for s in rendered] == SECTIONS
    for s in rendered:
        assert s["status"] == "ok" and s["missing"] == 0, s
        assert s["title"].strip() and s["text"] > 200 and s["height"] > 100, s
        assert s["images"] + s["tables"] > 0, s
    assert toc == [f"#{s['id']}" for s in rendered]
    graph = json.loads((e2e.path / "causal" / "causalnex-bn" / "graph.json").read_text())
    assert frames >= 1
    assert {"edges": len(graph["edges"]), "nodes": len(graph["nodes"])} in in_frame, in_frame
    assert shot.stat().st_size > 100_000
