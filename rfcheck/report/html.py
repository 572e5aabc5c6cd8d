"""The self-contained HTML report: ``rfcheck-report.html``.

One file with inline CSS, inline SVG and one small inline script, no fetch of any kind: the page's
Content-Security-Policy allows only that script, by its hash. The template is rendered by Jinja2
with autoescaping on; the sequence diagrams are SVG built here, every text in them escaped.

What a reviewer reads first comes first: the verdict, why the target could not be driven (when it
could not), what to fix (must failures, then should shortfalls, each with its evidence and
remediation), then the checklist, then the scenarios, collapsed, behind an index. Evidence links to
its exchange: each arrow of a diagram has an id (``s-<scenario>-x<n>``), highlighted when it is the
page's target.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from markupsafe import Markup, escape

from rfcheck.catalogue import GROUP_TITLES, GROUPS
from rfcheck.report.files import write_atomically
from rfcheck.report.model import NOT_DRIVEN_NOTE, NOT_DRIVEN_REASON, Marker, NotDriven, duration, markers, \
    not_driven, problems, shared_notes

if TYPE_CHECKING:
    from jinja2 import Environment

__all__ = ["FILENAME", "LANES", "SCRIPT", "render_html", "sequence_svg", "write_html"]

FILENAME = "rfcheck-report.html"
# Lifelines left to right: rfcheck's browser talks to the target and the authorization server; the
# target talks to both Request Finance hosts and, wrongly, to other hosts.
LANES = ("browser", "target", "auth", "api", "other")
LANE_TITLES = {
    "browser": "browser (rfcheck)", "target": "target", "auth": "auth (mock)",
    "api": "api (mock)", "other": "other hosts",
}
_LANE_GAP = 190
_MARGIN = 110
_WIDTH = 2 * _MARGIN + _LANE_GAP * (len(LANES) - 1)
_PAD = 6  # no text comes closer than this to the diagram's edges
_HEAD = 56
_ROW = 42
_MARK_ROW = 30
_LABEL_CHARS = 64
_NOTE_CHARS = 150
# Widths of one character, a little above a monospace font's advance (0.6 em), so that a text placed
# by them never reaches past the edge: labels are 11.5 px, notes and markers 10.5 px.
_CHAR = {"label": 11.5 * 0.62, "note": 10.5 * 0.62}
_SUMMARY_EVIDENCE = 5  # evidence items per requirement in "What to fix"; the checklist holds them all

# Opens the <details> around the page's target (a linked exchange inside a collapsed scenario) and
# brings it into view, on load and on every link to it: browsers that reveal a fragment inside a
# closed <details> do it anyway, the others need this.
SCRIPT = """
(function () {
  function reveal() {
    var target = location.hash && document.getElementById(decodeURIComponent(location.hash.slice(1)));
    if (!target) return;
    for (var node = target; node; node = node.parentElement) {
      if (node.tagName === "DETAILS") node.open = true;
    }
    target.scrollIntoView({block: target.tagName === "DETAILS" ? "start" : "center"});
  }
  window.addEventListener("hashchange", reveal);
  document.addEventListener("click", function (event) {
    var link = event.target.closest && event.target.closest("a[href^='#']");
    if (link && link.getAttribute("href") === location.hash) reveal();
  });
  reveal();
})();
"""
_SCRIPT_HASH = base64.b64encode(hashlib.sha256(SCRIPT.encode("utf-8")).digest()).decode("ascii")


@functools.cache
def _environment() -> Environment:
    """Jinja2 is imported with its first use, when a report is written (~20 ms, and its modules are not there for
    freezegun to go through at every in-process scenario's start)."""
    from jinja2 import Environment, PackageLoader, StrictUndefined

    return Environment(loader=PackageLoader("rfcheck.report", "templates"), autoescape=True,
                       undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)


def write_html(report: dict[str, Any], folder: Path, filename: str = FILENAME) -> Path:
    """Write the HTML report into ``folder``; return the file's path."""
    path = Path(folder) / filename
    write_atomically(path, render_html(report))
    return path


def render_html(report: dict[str, Any]) -> str:
    """The report as one self-contained HTML page."""
    anchors = _anchors(report["scenarios"])
    links = _Links(anchors, {s["name"]: {x.get("n") for x in s["exchanges"]} for s in report["scenarios"]})
    blocked, found, shared = not_driven(report), problems(report), shared_notes(report["scenarios"])
    return _environment().get_template("report.html.j2").render(
        report=report, groups=_groups(report["requirements"]), group_titles=GROUP_TITLES,
        must_failures=len(found.must), problems=found, undriven=blocked,
        undriven_in=_undriven_scenario(report, blocked), run_notes=_run_notes(report, blocked),
        scenarios=[_scenario_view(s, anchors[s["name"]], report, {note for note, _ in shared})
                   for s in report["scenarios"]],
        shared_notes=shared, href=links.href, scenario_href=links.scenario,
        not_driven_reason=NOT_DRIVEN_REASON, script=Markup(SCRIPT), script_hash=_SCRIPT_HASH,
        summary_evidence=_SUMMARY_EVIDENCE, replay_href=_replay_href,
    )


# -- the page's parts -------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Links:
    """Where a piece of evidence links to: its exchange's arrow when the report lists that exchange,
    else its scenario; nothing when the report has no such scenario."""

    anchors: dict[str, str]
    listed: dict[str, set[Any]]

    def href(self, evidence: dict[str, Any]) -> str:
        anchor = self.anchors.get(str(evidence.get("scenario")))
        if anchor is None:
            return ""
        n = evidence.get("exchange")
        return f"#{anchor}-x{n}" if n is not None and n in self.listed[str(evidence["scenario"])] else f"#{anchor}"

    def scenario(self, name: str) -> str:
        anchor = self.anchors.get(name)
        return f"#{anchor}" if anchor else ""


def _anchors(scenarios: list[dict[str, Any]]) -> dict[str, str]:
    """An id per scenario, ``s-<name>``, made of characters safe in a URL fragment, each distinct."""
    anchors: dict[str, str] = {}
    for index, scenario in enumerate(scenarios):
        anchor = "s-" + (re.sub(r"[^A-Za-z0-9_.-]+", "-", str(scenario["name"])).strip("-") or "scenario")
        anchors.setdefault(str(scenario["name"]), anchor if anchor not in anchors.values() else f"{anchor}-{index}")
    return anchors


def _scenario_view(scenario: dict[str, Any], anchor: str, report: dict[str, Any], shared: set[str]) -> dict[str, Any]:
    """What the page shows of a scenario; ``shared`` are the notes shown once for all scenarios."""
    found = markers(scenario)
    cited = [r["id"] for r in report["requirements"] if r["status"] in ("fail", "warn", "accepted")
             and any(e.get("scenario") == scenario["name"] for e in r["evidence"])]
    return {
        "s": scenario, "anchor": anchor, "cited": cited,
        "own_notes": [n for n in scenario.get("notes", []) if n not in shared],
        "happened": _happened(found),
        "svg": sequence_svg(scenario["exchanges"], found, anchor),
    }


def _happened(found: list[Marker]) -> list[str]:
    """A scenario's travels and faults in a few words, for its summary line."""
    travels = [m for m in found if m.kind == "travel"]
    said = [f"clock +{duration(sum(m.seconds for m in travels))}"
            + (f" in {len(travels)} travels" if len(travels) > 1 else "")] if travels else []
    return said + [m.label for m in found if m.kind == "fault"]


def _replay_href(path: str) -> str:
    """A link to an explored finding's replay file when its path is a plain one below this report's folder
    (what rfcheck writes); "" for anything else, shown as text."""
    plain = re.fullmatch(r"[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*", path) and ".." not in path.split("/")
    return path if plain else ""


def _groups(entries: list[dict[str, Any]]) -> list[tuple[str, list[dict[str, Any]]]]:
    by_group: dict[str, list[dict[str, Any]]] = {}
    for entry in entries:
        by_group.setdefault(str(entry["id"]).split("-")[0], []).append(entry)
    order = [g for g in GROUPS if g in by_group] + sorted(set(by_group) - set(GROUPS))
    return [(group, by_group[group]) for group in order]


def _run_notes(report: dict[str, Any], blocked: NotDriven | None) -> list[str]:
    """The run's notes; the not-driven one is the block at the top of the page instead."""
    notes = [str(n) for n in report.get("notes", [])]
    return [n for n in notes if not n.startswith(NOT_DRIVEN_NOTE)] if blocked else notes


def _undriven_scenario(report: dict[str, Any], blocked: NotDriven | None) -> dict[str, Any]:
    """The scenario that showed the target could not be driven: its last exchanges are what rfcheck did."""
    name = blocked.scenario if blocked is not None else None
    scenario = next((s for s in report["scenarios"] if s["name"] == name), None)
    return {"exchanges": scenario["exchanges"][-3:], "output": bool(scenario.get("output"))} if scenario else \
        {"exchanges": [], "output": False}


# -- sequence diagrams ------------------------------------------------------------------------------
def sequence_svg(exchanges: list[dict[str, Any]], marks: Sequence[Marker] = (), anchor: str = "") -> Markup:
    """The exchanges as an SVG sequence diagram, one arrow per exchange, with ``marks`` (clock travels,
    faults) as bands across it; grows in height. With ``anchor``, each arrow has the id
    ``<anchor>-x<n>``."""
    rows, y = [], _HEAD + 24
    for kind, item in _merged(exchanges, marks):
        if kind == "marker":
            rows.append(_marker(item, y - 10))
            y += _MARK_ROW
        else:
            rows.append(_arrow(item, y, f"{anchor}-x{item.get('n')}" if anchor else ""))
            y += _ROW
    height = y - 24 + _HEAD + (_ROW if not exchanges else 0)
    parts = [f'<svg class="seq" width="{_WIDTH}" height="{height}" viewBox="0 0 {_WIDTH} {height}" role="img" '
             'aria-label="sequence diagram">', *_lifelines(height), *rows]
    if not exchanges:
        parts.append(f'<text class="note" x="{_WIDTH // 2}" y="{y}" text-anchor="middle">no exchanges recorded</text>')
    parts.append("</svg>")
    return Markup("\n".join(parts))


def _merged(exchanges: list[dict[str, Any]], marks: Sequence[Marker]) -> list[tuple[str, Any]]:
    """Exchanges and markers in the order they happened: a marker before the first exchange after it."""
    pending = sorted(marks, key=lambda m: m.after)
    rows: list[tuple[str, Any]] = []
    for row in exchanges:
        n = row["n"] if isinstance(row.get("n"), int) else 0
        while pending and pending[0].after < n:
            rows.append(("marker", pending.pop(0)))
        rows.append(("exchange", row))
    return rows + [("marker", m) for m in pending]


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


def _arrow(row: dict[str, Any], y: int, element_id: str) -> str:
    x1, x2 = _lane_x(row.get("from")), _lane_x(row.get("to"))
    label = f"{row.get('n', '?')}. {row.get('method', '')} {row.get('path', '')} → {row.get('status') or '—'}"
    note = str(row.get("note") or "")
    title = escape(f"{_one_line(label)}\n{_one_line(note)}".strip())
    where = _label_place(x1, x2)
    ident = f' id="{escape(element_id)}"' if element_id else ""
    return (f'<g class="ex {_status_class(row.get("status"))}"{ident}><title>{title}</title>'
            f'<rect class="hl" x="2" y="{y - 22}" width="{_WIDTH - 4}" height="40" rx="4"/>{_shaft(x1, x2, y)}'
            f'{_text("label", label, _LABEL_CHARS, where, y - 6)}{_text("note", note, _NOTE_CHARS, where, y + 15)}</g>')


def _marker(mark: Marker, y: int) -> str:
    title = escape(f"{mark.label}\n{mark.detail}".strip())
    return (f'<g class="mark {escape(mark.kind)}"><title>{title}</title>'
            f'<rect class="band" x="2" y="{y - 10}" width="{_WIDTH - 4}" height="20" rx="3"/>'
            f'{_text("note", mark.label, _NOTE_CHARS, (_WIDTH // 2, "middle"), y + 4)}</g>')


def _label_place(x1: int, x2: int) -> tuple[int, str]:
    """Where an arrow's texts go: centred over it; a call within one lane beside its loop, on the side
    with room."""
    if x1 != x2:
        return (x1 + x2) // 2, "middle"
    return (x1 + 40, "start") if x1 < _WIDTH // 2 else (x1 - 12, "end")


def _text(cls: str, text: str, limit: int, where: tuple[int, str], y: int) -> str:
    """A text elided at its end to fit, placed so that it stays inside the diagram whatever its length."""
    per_char = _CHAR[cls]
    shown = _elide(_one_line(text), min(limit, int((_WIDTH - 2 * _PAD) / per_char)))
    width = _columns(shown) * per_char
    x, anchor = where
    left = {"middle": x - width / 2, "start": x, "end": x - width}[anchor]
    left = max(_PAD, min(left, _WIDTH - _PAD - width))
    return f'<text class="{cls}" x="{left:.0f}" y="{y}">{escape(shown)}</text>'


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


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _elide(text: str, limit: int) -> str:
    """``text`` cut at its end to ``limit`` columns, ``…`` marking the cut (the tooltip holds it whole)."""
    if _columns(text) <= limit:
        return text
    kept, used = [], 0
    for char in text:
        used += _columns(char)
        if used > limit - 1:
            break
        kept.append(char)
    return "".join(kept) + "…"


def _columns(text: str) -> int:
    """Columns ``text`` takes in a monospace font: wide (East Asian) characters take two."""
    if text.isascii():  # no ASCII character is wide: nearly every label and URL of a diagram
        return len(text)
    return sum(2 if unicodedata.east_asian_width(char) in "WF" else 1 for char in text)
