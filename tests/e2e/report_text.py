"""report.html read without a browser: each section's status, HTML and visible text."""
from __future__ import annotations

import html
import re
from dataclasses import dataclass
from pathlib import Path

SECTION = re.compile(r'<section class="wr-section"([^>]*)>(.*?)</section>', re.S)
ATTR = re.compile(r'([\w-]+)="([^"]*)"')


@dataclass
class ReportSection:
    id: str
    name: str
    status: str
    html: str

    @property
    def text(self) -> str:
        """Visible text (no images, no embedded frames), whitespace collapsed."""
        body = re.sub(r"<iframe.*?</iframe>", " ", self.html, flags=re.S)
        body = re.sub(r"<(script|style)\b.*?</\1>", " ", body, flags=re.S)
        body = re.sub(r"<[^>]+>", " ", body)
        return re.sub(r"\s+", " ", html.unescape(body)).strip()

    @property
    def images(self) -> int:
        return len(re.findall(r"<img\b", self.html))

    @property
    def tables(self) -> int:
        return len(re.findall(r"<table\b", self.html))


def sections(report: Path) -> dict[str, ReportSection]:
    out = {}
    for m in SECTION.finditer(report.read_text(encoding="utf-8")):
        attrs = dict(ATTR.findall(m.group(1)))
        s = ReportSection(attrs.get("id", ""), attrs.get("data-section", ""), attrs.get("data-status", ""), m.group(2))
        out[s.name] = s
    return out
