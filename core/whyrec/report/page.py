"""The page around the sections: styles, the table sorter and the table of contents.

The Content-Security-Policy allows inline styles, inline scripts and data: images only, so a
report can never reach the network, even when a plugin's HTML tries to.
"""
from __future__ import annotations

from .html import Section, esc

CSP = ("default-src 'none'; img-src data:; style-src 'unsafe-inline'; "
       "script-src 'unsafe-inline' 'unsafe-eval'; font-src data:; frame-src 'self' about: data:")

STYLE = """
:root { --fg:#1d2327; --muted:#5f6b73; --line:#d8dee3; --bg:#ffffff; --soft:#f5f7f9;
        --ok:#1a7f37; --miss:#b35900; --accent:#2457a6; }
* { box-sizing: border-box; }
body { margin:0; font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;
       color:var(--fg); background:var(--bg); }
header.wr-head { padding:20px 32px 12px; border-bottom:1px solid var(--line); background:var(--soft); }
header.wr-head h1 { margin:0 0 4px; font-size:24px; }
.wr-sub { color:var(--muted); margin:0; }
/* the contents stay visible: a sticky side column on wide screens, a sticky bar on narrow ones */
.wr-layout { display:grid; grid-template-columns:230px minmax(0, 1fr); align-items:start; }
main { min-width:0; max-width:1240px; padding:8px 32px 48px; }
nav.wr-toc { position:sticky; top:0; max-height:100vh; overflow-y:auto; padding:14px 10px 14px 16px;
             border-right:1px solid var(--line); font-size:13.5px; background:var(--bg); }
nav.wr-toc ol { margin:6px 0; padding-left:20px; }
nav.wr-toc li { margin:3px 0; }
nav.wr-toc a { color:var(--accent); text-decoration:none; }
nav.wr-toc a.wr-here { font-weight:600; color:var(--fg); }
section.wr-section, [id] { scroll-margin-top:12px; }
@media (max-width: 900px) {
  .wr-layout { display:block; }
  nav.wr-toc { z-index:10; max-height:none; border-right:none; border-bottom:1px solid var(--line);
               white-space:nowrap; overflow-x:auto; padding:6px 12px; }
  nav.wr-toc ol { display:flex; gap:14px; margin:0; padding:0; list-style:none; }
  section.wr-section, [id] { scroll-margin-top:48px; }
}
.wr-badge { display:inline-block; font-size:11px; padding:0 6px; border-radius:8px; margin-left:6px;
            color:#fff; vertical-align:1px; }
.wr-badge.ok { background:var(--ok); } .wr-badge.missing { background:var(--miss); }
section.wr-section { border-top:2px solid var(--line); margin-top:28px; padding-top:4px; }
section.wr-section h2 { font-size:21px; margin:12px 0 8px; }
h3 { font-size:17px; margin:20px 0 6px; } h4 { font-size:15px; margin:14px 0 4px; }
.wr-missing, .wr-note, .wr-warning { padding:8px 12px; border-radius:5px; margin:8px 0; }
.wr-missing { background:#fff4e5; border-left:4px solid var(--miss); }
.wr-warning { background:#fdecea; border-left:4px solid #b3261e; }
.wr-note { background:#eef4fc; border-left:4px solid var(--accent); }
.wr-small, .wr-source { color:var(--muted); font-size:12.5px; }
.wr-table-wrap { overflow-x:auto; max-width:100%; margin:6px 0 12px; }
.wr-caution { display:inline-block; font-size:11.5px; font-weight:600; color:#8a1c12; background:#fdecea;
              border-radius:4px; padding:0 5px; margin:2px 0; white-space:normal; }
td ul.wr-reasons { min-width:15em; }
.wr-verdict-ok { color:var(--ok); font-weight:600; } .wr-verdict-care { color:var(--miss); font-weight:600; }
.wr-verdict-bad { color:#b3261e; font-weight:600; }
table.wr-table { border-collapse:collapse; font-size:13.5px; }
table.wr-table caption { text-align:left; font-weight:600; padding:2px 0 4px; }
table.wr-table th, table.wr-table td { border-bottom:1px solid var(--line); padding:3px 10px;
            text-align:left; vertical-align:top; }
table.wr-table thead th { background:var(--soft); position:sticky; top:0; white-space:nowrap; }
table.wr-sortable thead th { cursor:pointer; }
table.wr-sortable thead th::after { content:" \\2195"; color:#9aa5ad; font-size:11px; }
table.wr-sortable thead th[aria-sort=ascending]::after { content:" \\25B2"; color:var(--fg); }
table.wr-sortable thead th[aria-sort=descending]::after { content:" \\25BC"; color:var(--fg); }
table.wr-table td.num { text-align:right; font-variant-numeric:tabular-nums; white-space:nowrap; }
table.wr-kv th { font-weight:600; background:none; white-space:nowrap; }
.wr-grid { display:flex; flex-wrap:wrap; gap:14px; align-items:flex-start; }
.wr-grid > * { flex:0 1 calc(50% - 7px); min-width:320px; max-width:100%; }
.wr-grid > .wr-table-wrap { min-width:0; }
figure.wr-figure { margin:8px 0 14px; }
figure.wr-figure figcaption { color:var(--muted); font-size:12.5px; }
img.wr-fig { max-width:100%; height:auto; border:1px solid var(--line); border-radius:4px; }
iframe.wr-embed { width:100%; border:1px solid var(--line); border-radius:4px; }
.wr-user { border:1px solid var(--line); border-radius:6px; padding:4px 16px 10px; margin:14px 0; }
details > summary { cursor:pointer; color:var(--accent); margin:6px 0; }
ul.wr-reasons { margin:2px 0; padding-left:18px; }
code { background:var(--soft); padding:0 3px; border-radius:3px; }
footer { color:var(--muted); font-size:12.5px; border-top:1px solid var(--line); margin-top:36px; padding-top:8px; }
@media print { nav.wr-toc { display:none; } .wr-layout { display:block; } section.wr-section { break-inside:avoid-page; } }
"""

# Click (or Enter on) a header to sort; numbers sort by their data-v value, blanks last.
SCRIPT = """
(function () {
  function cellKey(cell) {
    var v = cell.getAttribute('data-v');
    if (v === null) return {num: false, v: cell.textContent.trim()};
    return {num: true, v: v === '' ? NaN : parseFloat(v)};
  }
  function sortBy(table, col, th) {
    var asc = th.getAttribute('aria-sort') !== 'ascending';
    var heads = table.tHead.rows[0].cells;
    for (var h = 0; h < heads.length; h++) heads[h].removeAttribute('aria-sort');
    th.setAttribute('aria-sort', asc ? 'ascending' : 'descending');
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) {
      var x = cellKey(a.cells[col]), y = cellKey(b.cells[col]);
      if (x.num && y.num) {
        if (isNaN(x.v) || isNaN(y.v)) return isNaN(x.v) - isNaN(y.v);
        return asc ? x.v - y.v : y.v - x.v;
      }
      var r = String(x.v).localeCompare(String(y.v), undefined, {numeric: true});
      return asc ? r : -r;
    });
    rows.forEach(function (r) { body.appendChild(r); });
  }
  // the contents mark the section in view
  if ('IntersectionObserver' in window) {
    var links = {};
    document.querySelectorAll('nav.wr-toc a').forEach(function (a) { links[a.getAttribute('href').slice(1)] = a; });
    var io = new IntersectionObserver(function (entries) {
      entries.forEach(function (e) {
        if (!e.isIntersecting || !links[e.target.id]) return;
        Object.keys(links).forEach(function (k) { links[k].classList.remove('wr-here'); });
        links[e.target.id].classList.add('wr-here');
      });
    }, {rootMargin: '0px 0px -70% 0px'});
    document.querySelectorAll('section.wr-section').forEach(function (s) { io.observe(s); });
  }
  var tables = document.querySelectorAll('table.wr-sortable');
  for (var t = 0; t < tables.length; t++) {
    (function (table) {
      if (!table.tHead || !table.tBodies.length) return;
      var heads = table.tHead.rows[0].cells;
      for (var i = 0; i < heads.length; i++) {
        (function (th, col) {
          th.addEventListener('click', function () { sortBy(table, col, th); });
          th.addEventListener('keydown', function (e) {
            if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); sortBy(table, col, th); }
          });
        })(heads[i], i);
      }
    })(tables[t]);
  }
})();
"""


def render_section(name: str, section: Section, plugin: str | None) -> str:
    parts = [f'<section class="wr-section" id="{esc(section.anchor)}" data-section="{esc(name)}" '
             f'data-status="{esc(section.status)}">',
             f"<h2>{esc(section.title)}</h2>"]
    if section.status == "missing" and section.message:
        parts.append(f'<div class="wr-missing"><strong>Missing:</strong> {esc(section.message)}</div>')
    parts.append(section.body)
    if plugin:
        parts.append(f'<p class="wr-source">Section <code>{esc(name)}</code> from {esc(plugin)}.</p>')
    parts.append("</section>")
    return "\n".join(parts)


def render_page(title: str, subtitle: str, sections: list[tuple[str, Section, str | None]], footer: str) -> str:
    toc = "".join(
        f'<li><a href="#{esc(s.anchor)}">{esc(s.title)}</a>'
        + ('<span class="wr-badge missing">missing</span>' if s.status == "missing" else "")
        + "</li>"
        for _, s, _ in sections
    )
    body = "\n".join(render_section(n, s, p) for n, s, p in sections)
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="{esc(CSP)}">
<meta name="generator" content="whyrec">
<title>{esc(title)}</title>
<style>{STYLE}</style>
</head>
<body>
<header class="wr-head"><h1>{esc(title)}</h1><p class="wr-sub">{subtitle}</p></header>
<div class="wr-layout">
<nav class="wr-toc" aria-label="Contents"><strong>Contents</strong><ol>{toc}</ol></nav>
<main>
{body}
<footer>{footer}</footer>
</main>
</div>
<script>{SCRIPT}</script>
</body>
</html>
"""
