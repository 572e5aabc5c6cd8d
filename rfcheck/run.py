"""The state of one ``pytest --rfcheck`` session: the harness, the findings, the reports."""

from __future__ import annotations

import os
import re
import time
import warnings
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from rfcheck.catalogue import requirement
from rfcheck.config import TargetConfig
from rfcheck.explore import Explored, as_finding, explored_report, write_replays
from rfcheck.harness import Harness, PythonFactory
from rfcheck.report import PARTIAL, full_report_kept, is_partial, write_all
from rfcheck.report.model import Finding, RunResult, ScenarioRecord, build
from rfcheck.scenarios import ScenarioResult

OUTPUT_TAIL = 4000
REPLAY_FOLDERS = {"rfcheck-report": "rfcheck-explore", PARTIAL: "rfcheck-explore-partial"}  # by report stem
REPORTED_EXCHANGES = 1000  # a scenario's exchanges in the report: the first and the last half of these


def _outcome_reason(result: ScenarioResult) -> str:
    if result.crash is None:
        return result.reason
    return f"the target went down after {result.crash.after}: {result.crash.detail}; the steps after it did not run"


class RfcheckWarning(UserWarning):
    """A ``should`` requirement that the target falls short of."""


_TARGET_TABLE = re.compile(r"\s*\[\s*(tool\s*\.\s*rfcheck\s*\.\s*)?target\s*\]")


def target_line(config_file: Path) -> int:
    """The line of ``[target]`` (``[tool.rfcheck.target]`` in pyproject.toml) in the target config; 1 when
    there is none (``target = {...}`` inline) or the file cannot be read any more."""
    try:
        lines = config_file.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return 1
    return next((number for number, line in enumerate(lines, 1) if _TARGET_TABLE.match(line)), 1)


def warn_at_config(message: str, target: TargetConfig) -> None:
    """A should shortfall as a warning of the user's target config, where pytest's warnings summary shows it:
    the config's file and ``[target]`` line, not the line of rfcheck that decided it."""
    warnings.warn_explicit(RfcheckWarning(message), RfcheckWarning, str(target.file), target_line(target.file))


class RfcheckSession:
    """Registered as a pytest plugin under ``--rfcheck``; writes the reports at the end."""

    def __init__(self, target: TargetConfig, report_dir: Path) -> None:
        self.target = target
        self.report_dir = report_dir
        self.findings: dict[str, Finding] = {}
        self.harness: Harness | None = None
        self.report_paths: list[Path] = []
        self.report_error = ""
        self.verdict = ""
        self.not_judged: list[str] = []
        self.notes: list[str] = []
        self.markdown = ""
        self.explored: Explored | None = None
        self.progress: Callable[[str], None] | None = None  # one line per scenario, to the terminal
        self.jobs: int | None = None  # --rfcheck-jobs
        self.began = time.time()  # wall clock: compared with the report files' modification times
        self.overwrote = ""  # another run wrote into the report folder while this one ran
        self.stopped = ""  # what stopped the run before its end (SIGTERM, Ctrl-C)
        self.partial_note = ""  # where a partial run's reports went
        self.undriven: tuple[str, str, list[str]] | None = None  # Harness.not_driven at the end of the run
        self.scenario_seconds: float | None = None  # the scenarios run before the first requirement: how long
        self.replay_note = ""  # the replay files of an earlier exploration that this one's replaced
        # a selection (-k) that leaves out requirements: the scenarios it runs; the requirements that read every
        # scenario judge these only (None: every scenario of the run)
        self.selected_scenarios: tuple[str, ...] | None = None

    def start_harness(self, python_factory: PythonFactory | None) -> Harness:
        if self.harness is None:
            self.harness = Harness(self.target, python_factory, self.jobs)
            self.harness.on_scenario = self._scenario_done
            self.harness.start()
        return self.harness

    def _scenario_done(self, result: ScenarioResult, seconds: float) -> None:
        """A progress line, so that a long run of a web app shows where it is."""
        if self.progress is not None:
            outcome = "crashed" if result.crash else result.outcome
            self.progress(f"rfcheck: scenario {result.name} {outcome} in {seconds:.1f} s")

    def pytest_keyboard_interrupt(self, excinfo: pytest.ExceptionInfo[BaseException]) -> None:
        message = str(excinfo.value).removeprefix("rfcheck: ")
        self.stopped = message if message.startswith("stopped by") else "stopped by Ctrl-C"

    def record(self, finding: Finding) -> None:
        self.findings[finding.id] = finding

    def close(self) -> None:
        if self.harness is not None:
            self.harness.stop()
            self.harness = None

    # -- reports -----------------------------------------------------------------
    def result(self) -> RunResult:
        target = {"name": self.target.name, "kind": self.target.kind, "flow": self.target.flow,
                  "network": self.target.network}
        scenarios = self._scenario_records()
        notes = self.harness.notes if self.harness is not None else [
            "no requirement was judged: the mock never started"]
        if self.stopped and self.harness is not None:
            running = [f"scenario {name} at step {step!r}, {seconds:.0f} s after it began"
                       for name, step, seconds, _ in self.harness.in_flight()]
            notes = [f"the run was {self.stopped}" + (f" while {'; '.join(running)}" if running else "")
                     + ": what it had not judged is not judged", *notes]
        explored, findings = None, dict(self.findings)
        if self.explored is not None and self.harness is not None:
            explored = explored_report(self.explored, self.harness.redact)
            for found in self.explored.findings.values():  # a broken requirement fails, like the catalogue's
                changed = as_finding(found, findings.get(found.finding.id))
                if changed is not None:
                    findings[changed.id] = changed
        return RunResult(target, findings, scenarios, datetime.now(timezone.utc), notes, explored,
                         not_run=f"not judged: the run was {self.stopped} before this requirement was judged"
                         if self.stopped else "")

    def _scenario_records(self) -> list[ScenarioRecord]:
        if self.harness is None:
            return []
        journal, redact = self.harness.provider.journal, self.harness.redact  # one redaction for the run
        records = []
        for r in self.harness.ordered_results():
            kept, notes = _reported(r.exchanges), [redact(n) for n in r.notes]
            if len(kept) < len(r.exchanges):
                notes.append(f"the report lists {len(kept):,} of the scenario's {len(r.exchanges):,} exchanges (the "
                             f"first and the last {REPORTED_EXCHANGES // 2:,}); the checks read them all")
            steps = [{"kind": e.kind, "label": e.label, "after": e.first, "offset": e.offset, "detail": redact(e.detail)}
                     for e in r.events if e.kind in ("travel", "fault")]  # the HTML's markers in the diagrams
            records.append(ScenarioRecord(r.name, "crashed" if r.crash else r.outcome, redact(_outcome_reason(r)),
                                          [journal.describe(e) for e in kept], redact(r.output[-OUTPUT_TAIL:]),
                                          notes, steps))
        if self.stopped:  # the scenarios it stopped: what they had done, and where they were
            for name, step, seconds, exchanges in self.harness.in_flight():
                records.append(ScenarioRecord(
                    name, "error", f"the run was {self.stopped} while this scenario was at step {step!r}, "
                    f"{seconds:.0f} s after it began", [journal.describe(e) for e in _reported(exchanges)]))
        return records

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        try:
            report = build(self.result())
            self.verdict, self.not_judged = report["verdict"], report["not_judged"]
            self.notes = report["notes"]
            self.overwrote = _written_since(self.report_dir, self.began)
            kept = full_report_kept(self.report_dir) if is_partial(report) else ""
            if kept:  # a -k run never replaces the last full report: it goes beside it
                self.partial_note = (f"a partial run: its reports are beside the full report of {kept} "
                                     f"(rfcheck-report.json in {self.report_dir}), which is kept")
            stem = PARTIAL if kept else "rfcheck-report"
            self._write_replays(report, stem)
            self.report_paths = write_all(report, self.report_dir, stem)
            self._github_step_summary()
        except Exception as err:  # the run's outcome must still be visible
            self.report_error = (f"rfcheck could not write the report into {self.report_dir}: "
                                 f"{type(err).__name__}: {err}")
        finally:
            self.undriven = self.harness.not_driven() if self.harness is not None else None
            self.close()
        if (self.report_error or self.undriven) and session.exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED  # a run that could not say, or judge, fails

    def _write_replays(self, report: dict[str, Any], stem: str) -> None:
        """The exploration's replay files, in a folder of their own beside the reports they belong to (a
        partial run's beside its partial reports), each named in the report's finding as ``path``."""
        if self.explored is None or "explored" not in report:
            return
        folder = self.report_dir / REPLAY_FOLDERS[stem]
        removed = write_replays(self.explored, folder)
        if removed:
            self.replay_note = (f"removed {len(removed)} replay file(s) that an earlier exploration wrote into "
                                f"{folder} ({', '.join(p.name for p in removed[:5])}{' …' if len(removed) > 5 else ''})"
                                ": the folder holds this exploration's findings only")
        findings = {entry["id"]: entry for entry in report["explored"]["findings"]}
        for found in self.explored.findings.values():
            if found.path is not None and found.finding.id in findings:
                findings[found.finding.id]["path"] = found.path.relative_to(self.report_dir).as_posix()

    def pytest_terminal_summary(self, terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
        write = terminalreporter.write_line
        terminalreporter.section("rfcheck readiness")
        if not self.verdict:  # the report could not even be built
            write(self.report_error, red=True)
            return
        if self.undriven is not None:  # once, first: what the app did, in its own words
            scenario, why, error = self.undriven
            write("rfcheck could not drive the target, so what it needs is not judged and the run fails:", red=True)
            write(f"  {why}", red=True)
            for n, line in enumerate(error):
                write(("  the app's error: " if n == 0 else " " * 19) + line, red=True)
            where = next((p for p in self.report_paths if p.suffix == ".json"), None)
            write(f"  its whole output: scenario {scenario}'s \"output\" in {where}" if where else
                  f"  its whole output: scenario {scenario} in the report", red=True)
        write(f"verdict: {self.verdict} ({self.target.name}, {self.target.flow}, network {self.target.network})",
              bold=True, red=self.verdict == "not-ready", yellow=self.verdict == "incomplete",
              green=self.verdict == "ready")
        for note in self.notes:  # what limits the judgement: a clock that could not move, an unknown runtime
            write(f"  note: {note}", yellow=True)
        if self.not_judged:
            write(f"  not judged in this run ({len(self.not_judged)}): {', '.join(self.not_judged)}", yellow=True)
        if self.explored is not None:
            self._write_explored(write, self.explored)
        for finding in self.findings.values():
            if finding.status in ("fail", "warn"):
                title = requirement(finding.id).title
                write(f"  {finding.status.upper():4} {finding.id} {title}: {finding.reason}")
            elif not finding.judged and self.undriven is None:  # observed too little (a clock that stood still)
                write(f"  NOT JUDGED {finding.id} {requirement(finding.id).title}: {finding.reason}", yellow=True)
        for path in self.report_paths:
            write(f"report: {path}")
        if self.partial_note:
            write(f"  note: {self.partial_note}", yellow=True)
        if self.overwrote:
            write(f"  note: {self.overwrote}", yellow=True)
        if self.report_error:
            write(self.report_error, red=True)
        if os.environ.get("GITHUB_ACTIONS") == "true":
            for line in github_annotations(self.findings.values(), self.target.file):
                write(line)

    def _write_explored(self, write: Callable[..., None], explored: Explored) -> None:
        found = ", ".join(explored.findings) or "no requirement broken"
        replays = f", {explored.replays} replays while shrinking," if explored.replays else ""
        write(f"  explored: {explored.examples} sequences{replays} in {explored.seconds} s (seed {explored.seed}): "
              f"{found}", red=bool(explored.findings))
        for finding in explored.findings.values():
            if finding.path is not None:
                write(f"    {finding.finding.id} replays with {finding.path} (list it in [target] scenarios)")
        if self.replay_note:
            write(f"  note: {self.replay_note}", yellow=True)

    def _github_step_summary(self) -> None:
        """On GitHub Actions, the Markdown report goes to the job's summary page too."""
        summary = os.environ.get("GITHUB_STEP_SUMMARY")
        markdown = next((p for p in self.report_paths if p.suffix == ".md"), None)
        if summary and markdown is not None:
            with open(summary, "a", encoding="utf-8") as out:
                out.write(markdown.read_text(encoding="utf-8") + "\n")


MAX_SHOWN = 5  # evidence items in the terminal; the report has them all
MAX_DETAIL = 300  # characters of each (a crash's output tail is in the report)


def requirement_message(finding: Finding) -> str:
    """A requirement's block in the terminal: its finding, five pieces of evidence at most, the fix."""
    entry = requirement(finding.id)
    lines = [f"{finding.id} ({finding.level or entry.level}) {finding.status}: {finding.reason}"]
    for item in finding.evidence[:MAX_SHOWN]:
        where = f"{item.scenario} #{item.exchange}" if item.exchange is not None else item.scenario
        detail = " ".join(item.detail.split())
        detail = detail if len(detail) <= MAX_DETAIL else detail[:MAX_DETAIL] + "…"
        lines.append(f"  [{where}] {item.request}: {detail}" if item.request else f"  [{where}] {detail}")
    if len(finding.evidence) > MAX_SHOWN:
        lines.append(f"  … {len(finding.evidence) - MAX_SHOWN} more in the report")
    if finding.status in ("fail", "warn"):
        lines.append(f"  fix: {entry.remediation}")
    return "\n".join(lines)


def _reported(exchanges: list[Any]) -> list[Any]:
    if len(exchanges) <= REPORTED_EXCHANGES:
        return exchanges
    half = REPORTED_EXCHANGES // 2
    return exchanges[:half] + exchanges[-half:]


def _written_since(folder: Path, began: float) -> str:
    """What to say when another run wrote reports into ``folder`` after this one began ("" if none did)."""
    json_file = folder / "rfcheck-report.json"
    try:
        written = json_file.stat().st_mtime
    except OSError:
        return ""
    if written < began:
        return ""
    at = datetime.fromtimestamp(written, timezone.utc).strftime("%H:%M:%S UTC")
    return (f"another rfcheck run wrote its reports into {folder} at {at}, while this one ran: this run's "
            "reports replace them (give each run its own --rfcheck-report folder to keep both)")


def _escape(text: str, property_value: bool = False) -> str:
    """GitHub workflow command escaping (data: %, CR, LF; property values also : and ,)."""
    text = text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    return text.replace(":", "%3A").replace(",", "%2C") if property_value else text


def github_annotations(findings: Any, config_file: Path) -> list[str]:
    """``::error``/``::warning`` workflow commands for each fail and warn, on the target config."""
    lines = []
    for finding in findings:
        if finding.status not in ("fail", "warn"):
            continue
        entry = requirement(finding.id)
        command = "error" if finding.status == "fail" else "warning"
        title = _escape(f"{finding.id} ({finding.level or entry.level}) {entry.title}", property_value=True)
        lines.append(f"::{command} file={_escape(str(config_file), property_value=True)},title={title}::"
                     f"{_escape(f'{finding.reason} Fix: {entry.remediation}')}")
    return lines
