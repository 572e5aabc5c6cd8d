"""The self-contained HTML report: ``rfcheck-report.html``.

One file with inline CSS and inline SVG: no script, no fetch of any kind (the page's
Content-Security-Policy forbids them too). The template is rendered by Jinja2 with
autoescaping on; the sequence diagrams are SVG built here, every text in them escaped.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup, escape

from rfcheck.catalogue import GROUP_TITLES, GROUPS
from rfcheck.report.files import write_atomically

__all__ = ["FILENAME", "LANES", "render_html", "sequence_svg", "write_html"]

FILENAME = "rfcheck-report.html"
# Lifelines left to right: rfcheck's browser talks to the target and the authorization
# server; the target talks to both Request Finance hosts and, wrongly, to other hosts.
LANES = ("browser", "target", "auth", "api", "other")
LANE_TITLES = {
    "browser": "browser (rfcheck)", "target": "target", "auth": "auth (mock)",
    "api": "api (mock)", "other": "other hosts",
}
_LANE_GAP = 190
_MARGIN = 110
_HEAD = 56
_ROW = 42
_LABEL_CHARS = 64
_NOTE_CHARS = 110

_ENV = Environment(
    loader=PackageLoader("rfcheck.report", "templates"),
    autoescape=True,
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


def write_html(report: dict[str, Any], folder: Path, filename: str = FILENAME) -> Path:
    """Write the HTML report into ``folder``; return the file's path."""
    path = Path(folder) / filename
    write_atomically(path, render_html(report))
    return path


def render_html(report: dict[str, Any]) -> str:
    """The report as one self-contained HTML page."""
    template = _ENV.get_template("report.html.j2")
    scenarios = [(scenario, sequence_svg(scenario["exchanges"])) for scenario in report["scenarios"]]
    return template.render(
        report=report, groups=_groups(report["requirements"]), scenarios=scenarios,
        group_titles=GROUP_TITLES, must_failures=_must_failures(report),
    )


def _groups(entries: list[dict[str, Any]]) -> list[tuple[str, list[dict[str, Any]]]]:
    by_group: dict[str, list[dict[str, Any]]] = {}
    for entry in entries:
        by_group.setdefault(str(entry["id"]).split("-")[0], []).append(entry)
    order = [g for g in GROUPS if g in by_group] + sorted(set(by_group) - set(GROUPS))
    return [(group, by_group[group]) for group in order]


def _must_failures(report: dict[str, Any]) -> int:
    return sum(r["level"] == "must" and r["status"] == "fail" for r in report["requirements"])


def sequence_svg(exchanges: list[dict[str, Any]]) -> Markup:
    """The exchanges as an SVG sequence diagram, one arrow per exchange; grows in height."""
    width = 2 * _MARGIN + _LANE_GAP * (len(LANES) - 1)
    height = _HEAD + max(len(exchanges), 1) * _ROW + _HEAD
    parts = [f'<svg class="seq" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" role="img" aria-label="sequence diagram">']
    parts += _lifelines(height)
    parts += [_arrow(row, _HEAD + 24 + i * _ROW) for i, row in enumerate(exchanges)]
    if not exchanges:
        parts.append(f'<text class="note" x="{width // 2}" y="{_HEAD + 24}" text-anchor="middle">'
                     "no exchanges recorded</text>")
    parts.append("</svg>")
    return Markup("\n".join(parts))


def _lane_x(lane: object) -> int:
    lane = "target" if lane in ("app", "attacker") else lane  # the web app is the target; the attacker its user
    index = LANES.index(str(lane)) if lane in LANES else LANES.index("other")
    return _MARGIN + index * _LANE_GAP


def _lifelines(height: int) -> list[str]:
    parts = []
    for lane in LANES:
        x = _lane_x(lane)
        parts.append(f'<line class="life" x1="{x}" y1="{_HEAD - 16}" x2="{x}" y2="{height - _HEAD + 16}"/>')
        for top in (8, height - _HEAD + 16):
            parts.append(f'<rect class="lane" x="{x - 80}" y="{top}" width="160" height="32" rx="4"/>'
                         f'<text class="lane" x="{x}" y="{top + 21}" text-anchor="middle">'
                         f"{escape(LANE_TITLES[lane])}</text>")
    return parts


def _arrow(row: dict[str, Any], y: int) -> str:
    x1, x2 = _lane_x(row.get("from")), _lane_x(row.get("to"))
    label = f"{row.get('n', '?')}. {row.get('method', '')} {row.get('path', '')} → {row.get('status') or '—'}"
    note = str(row.get("note") or "")
    # a call within one lane is labelled to the right of its loop
    mid, anchor = ((x1 + x2) // 2, "middle") if x1 != x2 else (x1 + 40, "start")
    title = escape(label) + (escape("\n" + note) if note else "")
    return (
        f'<g class="ex {_status_class(row.get("status"))}"><title>{title}</title>{_shaft(x1, x2, y)}'
        f'<text class="label" x="{mid}" y="{y - 6}" text-anchor="{anchor}">{escape(_clip(label, _LABEL_CHARS))}'
        f'</text><text class="note" x="{mid}" y="{y + 15}" text-anchor="{anchor}">'
        f"{escape(_clip(note, _NOTE_CHARS))}</text></g>"
    )


def _shaft(x1: int, x2: int, y: int) -> str:
    if x1 == x2:  # a call within one lane: a small loop back to the lifeline
        return (f'<polyline points="{x1},{y - 4} {x1 + 30},{y - 4} {x1 + 30},{y + 4} {x1 + 6},{y + 4}"/>'
                f'<polygon points="{x1},{y + 4} {x1 + 8},{y} {x1 + 8},{y + 8}"/>')
    tip = x2 - 2 if x2 > x1 else x2 + 2
    back = tip - 9 if x2 > x1 else tip + 9
    return (f'<line x1="{x1}" y1="{y}" x2="{back}" y2="{y}"/>'
            f'<polygon points="{tip},{y} {back},{y - 5} {back},{y + 5}"/>')


def _status_class(status: object) -> str:
    code = status if isinstance(status, int) else 0
    return f"st-{code // 100}xx" if 200 <= code < 600 else "st-none"


def _clip(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
