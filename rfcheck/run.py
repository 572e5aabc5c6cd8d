"""The state of one ``pytest --rfcheck`` session: the harness, the findings, the reports."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from rfcheck.catalogue import requirement
from rfcheck.config import TargetConfig
from rfcheck.harness import Harness, PythonFactory
from rfcheck.report import write_all
from rfcheck.report.model import Finding, RunResult, ScenarioRecord, build
from rfcheck.scenarios import ScenarioResult

OUTPUT_TAIL = 4000


def _outcome_reason(result: ScenarioResult) -> str:
    if result.crash is None:
        return result.reason
    return f"the target went down after {result.crash.after}: {result.crash.detail}; the steps after it did not run"


class RfcheckWarning(UserWarning):
    """A ``should`` requirement that the target falls short of."""


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

    def start_harness(self, python_factory: PythonFactory | None) -> Harness:
        if self.harness is None:
            self.harness = Harness(self.target, python_factory)
            self.harness.start()
        return self.harness

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
        return RunResult(target, dict(self.findings), scenarios, datetime.now(timezone.utc), notes)

    def _scenario_records(self) -> list[ScenarioRecord]:
        if self.harness is None:
            return []
        journal = self.harness.provider.journal
        return [ScenarioRecord(r.name, "crashed" if r.crash else r.outcome, journal.redact(_outcome_reason(r)),
                               [journal.describe(e) for e in r.exchanges],
                               journal.redact(r.output[-OUTPUT_TAIL:]), [journal.redact(n) for n in r.notes])
                for r in self.harness.results.values()]

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        try:
            report = build(self.result())
            self.verdict, self.not_judged = report["verdict"], report["not_judged"]
            self.notes = report["notes"]
            self.report_paths = write_all(report, self.report_dir)
        except Exception as err:  # the run's outcome must still be visible
            self.report_error = f"rfcheck could not write the report: {type(err).__name__}: {err}"
        finally:
            self.close()

    def pytest_terminal_summary(self, terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
        write = terminalreporter.write_line
        terminalreporter.section("rfcheck readiness")
        if self.report_error:
            write(self.report_error, red=True)
            return
        write(f"verdict: {self.verdict} ({self.target.name}, {self.target.flow}, network {self.target.network})",
              bold=True, red=self.verdict == "not-ready", yellow=self.verdict == "incomplete",
              green=self.verdict == "ready")
        for note in self.notes:  # what limits the judgement: a clock that could not move, an unknown runtime
            write(f"  note: {note}", yellow=True)
        if self.not_judged:
            write(f"  not judged in this run ({len(self.not_judged)}): {', '.join(self.not_judged)}", yellow=True)
        for finding in self.findings.values():
            if finding.status in ("fail", "warn"):
                title = requirement(finding.id).title
                write(f"  {finding.status.upper():4} {finding.id} {title}: {finding.reason}")
        for path in self.report_paths:
            write(f"report: {path}")
