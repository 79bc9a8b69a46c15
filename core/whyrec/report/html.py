"""HTML building blocks of report.html: Section, inline images, sortable tables.

Everything here produces self-contained HTML: images are inlined as base64 data URIs and the
only script is the small sorter in ``page.py``; nothing refers to the network.
"""
from __future__ import annotations

import base64
import html
import io
import math
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

from ..errors import RunDirError

STATUSES = ("ok", "missing")


class ArtifactError(RunDirError):
    """A run-directory artifact a section needs is missing or unreadable.

    The message says which file and how to regenerate it; sections catch it and show it.
    """


@dataclass
class Section:
    """One section of report.html.

    title: the heading (also used in the table of contents).
    body: HTML (already escaped: build it with ``esc``, ``table_html``, ``figure_to_img``).
    order: position on the page, ascending; None takes the order given at registration.
    anchor: the element id (``#anchor`` links to it); None takes the registered name.
    status: "ok", or "missing" when an artifact the section needs is missing or corrupt.
        A "missing" section may still carry a body with what could be shown.
    message: for "missing": what is missing and how to regenerate it.
    covers: run-relative stage directories (e.g. "causal/causalnex-bn") this section renders
        in full; the generic stage sections then link to it instead of repeating them.
    """

    title: str
    body: str = ""
    order: int | None = None
    anchor: str | None = None
    status: str = "ok"
    message: str = ""
    covers: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"Section {self.title!r}: status {self.status!r} is not one of {STATUSES}")
        self.covers = tuple(self.covers)

    @classmethod
    def missing(cls, title: str, message: str, body: str = "", **kw: Any) -> "Section":
        return cls(title=title, body=body, status="missing", message=message, **kw)


# -- text -------------------------------------------------------------------------------
def esc(value: Any) -> str:
    """HTML-escape any value (str() first)."""
    return html.escape("" if value is None else str(value), quote=True)


def slug(text: str) -> str:
    s = re.sub(r"[^a-zA-Z0-9_-]+", "-", str(text)).strip("-").lower()
    return s or "section"


def fmt_value(v: Any, digits: int = 3) -> str:
    """A number rounded for people: 3 significant digits (4.292613636363637 -> 4.29), no
    scientific notation between 0.001 and a million, thousands grouped (12 345)."""
    if v is None:
        return "—"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if hasattr(v, "item") and not isinstance(v, (str, bytes)):
        try:
            v = v.item()
        except (ValueError, AttributeError):
            pass
    if isinstance(v, float):
        if math.isnan(v):
            return "—"
        if math.isinf(v):
            return "∞" if v > 0 else "−∞"
        if v != 0 and (abs(v) >= 1e6 or abs(v) < 1e-3):
            return f"{v:.{max(digits - 1, 1)}e}"
        if v == int(v) or abs(v) >= 10 ** (digits - 1):
            return fmt_value(int(round(v)))
        return f"{v:.{digits}g}"
    if isinstance(v, int):
        return f"{v:,}".replace(",", "\u2009") if abs(v) >= 10000 else str(v)
    if isinstance(v, (list, tuple)):
        return ", ".join(fmt_value(x, digits) for x in v)
    if isinstance(v, dict):
        return ", ".join(f"{k}: {fmt_value(x, digits)}" for k, x in v.items())
    return str(v)


_LONG_FLOAT = re.compile(r"(?<![\w.])(-?\d+\.\d{4,})(?![\w.])")


def round_text(text: str, digits: int = 3) -> str:
    """Round the long decimals inside a sentence for people ("p = 0.04312345" -> "p = 0.0431")."""
    return _LONG_FLOAT.sub(lambda m: fmt_value(float(m.group(1)), digits), str(text))


def model_label(name: Any) -> str:
    """The one display name of a model everywhere in the report: a run stores a compressed
    model ``distill:torch-attention`` in the folder ``models/distill__torch-attention``; both
    read ``distill:torch-attention``."""
    return str(name).replace("__", ":")


def explanation_label(dir_name: str, method: str | None = None, model: str | None = None) -> tuple[str, str]:
    """(explainer instance, model) of an ``explanations/<instance>__<model>`` folder. The
    instance is the pipeline's ``name`` for the explainer (two instances of one method keep
    their own names); ``method`` is added in brackets where it differs."""
    name, _, rest = str(dir_name).partition("__")
    inst = name if not method or name == method else f"{name} ({method})"
    return inst, model_label(model if model else rest)


def notice(message: str, kind: str = "missing") -> str:
    """A highlighted box: kind "missing" (what is missing + how to regenerate) or "note"."""
    label = {"missing": "Missing", "note": "Note", "warning": "Caution"}.get(kind, kind.title())
    return f'<div class="wr-{esc(kind)}"><strong>{esc(label)}:</strong> {esc(message)}</div>'


# -- images -----------------------------------------------------------------------------
_MIME = {b"\x89PNG\r\n\x1a\n": "image/png", b"\xff\xd8\xff": "image/jpeg"}


def _check_image(data: bytes, where: str) -> str:
    """Return the MIME type of ``data``, decoding it fully so a truncated file is caught."""
    mime = next((m for sig, m in _MIME.items() if data.startswith(sig)), None)
    if mime is None:
        raise ArtifactError(f"{where}: not a PNG or JPEG image")
    try:
        from PIL import Image  # pillow comes with matplotlib

        with Image.open(io.BytesIO(data)) as im:
            im.load()
            if im.width <= 0 or im.height <= 0:
                raise ArtifactError(f"{where}: image has no pixels")
    except ImportError:  # pragma: no cover - pillow is a matplotlib dependency
        pass
    except ArtifactError:
        raise
    except Exception as exc:  # noqa: BLE001  (PIL raises many types for broken files)
        raise ArtifactError(f"{where}: image cannot be decoded ({type(exc).__name__}: {exc})") from exc
    return mime


def _figure_title(fig: Any) -> str:
    parts = []
    sup = getattr(fig, "_suptitle", None)
    if sup is not None and sup.get_text():
        parts.append(sup.get_text())
    for ax in getattr(fig, "axes", []):
        t = ax.get_title()
        if t:
            parts.append(t)
    return "; ".join(parts)


def figure_to_img(fig_or_path: Any, alt: str | None = None, *, dpi: int = 96, css_class: str = "wr-fig",
                  crop: bool | None = None) -> str:
    """An inline ``<img>`` (base64 data URI) from a matplotlib Figure or a PNG/JPEG/SVG file.

    alt defaults to the figure's titles or the file name. A Figure is closed afterwards; it is
    cropped to what is drawn (``crop``) unless it has a layout engine (cropping draws twice).
    Raises ArtifactError when the file is missing or does not decode.
    """
    if isinstance(fig_or_path, (str, Path)):
        path = Path(fig_or_path)
        if not path.is_file():
            raise ArtifactError(f"{path}: image file is missing")
        data = path.read_bytes()
        if path.suffix.lower() == ".svg":
            if b"<svg" not in data[:4096]:
                raise ArtifactError(f"{path}: not an SVG image")
            mime = "image/svg+xml"
        else:
            mime = _check_image(data, str(path))
            if mime == "image/png" and len(data) > 20_000:  # shown at most ~1,000 px wide: no more pixels than that
                data = _smaller_png(data, max_width=1000)
        alt = alt or path.stem.replace("_", " ")
    elif isinstance(fig_or_path, (bytes, bytearray)):
        data = bytes(fig_or_path)
        mime = _check_image(data, "image bytes")
        alt = alt or "figure"
    else:
        fig = fig_or_path
        if not hasattr(fig, "savefig"):
            raise TypeError(f"figure_to_img takes a matplotlib Figure or an image path, not {type(fig).__name__}")
        alt = alt or _figure_title(fig) or "figure"
        buf = io.BytesIO()
        # a figure with a layout engine is laid out already; cropping would draw it twice
        if crop is None:
            crop = getattr(fig, "get_layout_engine", lambda: None)() is None
        fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight" if crop else None, pad_inches=0.08,
                    facecolor="white")
        data, mime = _smaller_png(buf.getvalue()), "image/png"
        plt = sys.modules.get("matplotlib.pyplot")
        if plt is not None:  # only pyplot figures are tracked by pyplot
            plt.close(fig)
    b64 = base64.b64encode(data).decode("ascii")
    return (f'<img class="{esc(css_class)}" loading="lazy" decoding="async" src="data:{mime};base64,{b64}" '
            f'alt="{esc(alt)}">')


def _smaller_png(data: bytes, max_width: int | None = None) -> bytes:
    """The same plot as a 256-colour PNG when that is smaller (a plot has few colours; this
    roughly halves the report's size), no wider than ``max_width`` pixels. Unchanged without
    Pillow or when it is not smaller."""
    try:
        from PIL import Image

        with Image.open(io.BytesIO(data)) as im:
            rgb = im.convert("RGB")
            if max_width and rgb.width > max_width:
                rgb = rgb.resize((max_width, max(1, round(rgb.height * max_width / rgb.width))), Image.Resampling.LANCZOS)
            q = rgb.quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
            out = io.BytesIO()
            q.save(out, format="PNG", optimize=True)
        small = out.getvalue()
        return small if len(small) < len(data) else data
    except Exception:  # noqa: BLE001  (size is an optimisation: keep the original)
        return data


def figure_block(img_html: str, caption: str | None = None) -> str:
    cap = f"<figcaption>{esc(caption)}</figcaption>" if caption else ""
    return f'<figure class="wr-figure">{img_html}{cap}</figure>'


# -- tables -----------------------------------------------------------------------------
def _sort_key(v: Any) -> str | None:
    """The numeric sort key of a cell (data-v), or None for text cells."""
    if isinstance(v, bool):
        return str(int(v))
    if isinstance(v, (int, float)) or (hasattr(v, "dtype") and getattr(v.dtype, "kind", "") in "iuf"):
        try:
            f = float(v)
        except (TypeError, ValueError):
            return None
        return "" if math.isnan(f) else repr(f)
    return None


def table_html(df: Any, *, caption: str | None = None, max_rows: int = 200, index: bool = False,
               digits: int = 3, sortable: bool = True, css_class: str = "") -> str:
    """A readable HTML table of a DataFrame (or a dict of name -> value, or a list of dicts).

    Numbers get 3 significant digits and align right; clicking a header sorts the column
    (numerically when the cells are numbers) when ``sortable``. Long tables show their first
    ``max_rows`` rows and say so.
    """
    import pandas as pd

    if isinstance(df, dict):
        df = pd.DataFrame({"key": list(df), "value": list(df.values())})
    elif isinstance(df, (list, tuple)):
        df = pd.DataFrame(list(df))
    if index:
        df = df.reset_index()
    n = len(df)
    shown = df.head(max_rows) if max_rows and n > max_rows else df
    classes = " ".join(c for c in ("wr-table", "wr-sortable" if sortable else "", css_class) if c)
    out = [f'<div class="wr-table-wrap"><table class="{classes}">']
    if caption:
        out.append(f"<caption>{esc(caption)}</caption>")
    heads = "".join(
        f'<th scope="col"{" tabindex=0" if sortable else ""}>{esc(c)}</th>' for c in shown.columns
    )
    out.append(f"<thead><tr>{heads}</tr></thead><tbody>")
    cols = [shown[c].tolist() for c in shown.columns]
    for r in range(len(shown)):
        cells = []
        for col in cols:
            v = col[r]
            key = _sort_key(v)
            if key is None:
                cells.append(f"<td>{esc(fmt_value(v, digits))}</td>")
            else:
                cells.append(f'<td class="num" data-v="{key}">{esc(fmt_value(v, digits))}</td>')
        out.append("<tr>" + "".join(cells) + "</tr>")
    out.append("</tbody></table>")
    if len(shown) < n:
        out.append(f'<p class="wr-small">Showing the first {len(shown)} of {n} rows.</p>')
    out.append("</div>")
    return "".join(out)


def kv_table(items: dict, caption: str | None = None) -> str:
    """A two-column key/value table (not sortable: its order is meaningful)."""
    rows = "".join(f"<tr><th scope=\"row\">{esc(k)}</th><td>{esc(fmt_value(v))}</td></tr>" for k, v in items.items())
    cap = f"<caption>{esc(caption)}</caption>" if caption else ""
    return f'<div class="wr-table-wrap"><table class="wr-table wr-kv">{cap}<tbody>{rows}</tbody></table></div>'


def bullet_list(lines: Iterable[str]) -> str:
    items = "".join(f"<li>{esc(x)}</li>" for x in lines)
    return f"<ul>{items}</ul>" if items else ""


def iframe_html(content: str, title: str, height: int = 520) -> str:
    """Embed a whole HTML document (e.g. an interactive graph) with ``srcdoc``, sandboxed."""
    return (f'<iframe class="wr-embed" title="{esc(title)}" sandbox="allow-scripts" '
            f'style="height:{int(height)}px" srcdoc="{esc(content)}"></iframe>')


def details(summary: str, body: str, open_: bool = False) -> str:
    return f"<details{' open' if open_ else ''}><summary>{esc(summary)}</summary>{body}</details>"
