"""MAN checks: manual with what to confirm, pass with a confirmation; MAN-04 only when invoices are created."""

from __future__ import annotations

from pathlib import Path

import pytest

from rfcheck.checks import CHECKS
from rfcheck.scenarios import ScenarioResult
from tests.test_checks_oidc import Options, judge_all
from tests.test_checks_sec import context, exchange, run

ALWAYS = ["MAN-01", "MAN-02", "MAN-03", "MAN-05", "MAN-06"]


def invoice_runs(*created: bool, outcome: str = "completed") -> dict[str, ScenarioResult]:
    """baseline and expiry results; each ``True`` adds a POST /invoices to that scenario."""
    results = {}
    for name, creates in zip(("baseline", "expiry"), created):
        calls = [exchange(1, "https://api.request.finance/invoices", "api")] if creates else []
        results[name] = ScenarioResult(name, outcome, exchanges=calls)
    return results


@pytest.mark.parametrize("rid", ALWAYS)
def test_manual_says_what_to_confirm(tmp_path: Path, rid: str) -> None:
    finding = run(rid, context(tmp_path))
    assert finding.status == "manual"
    assert finding.reason.startswith("Confirm ") and f"Record it as {rid} under [target.confirm]" in finding.reason


@pytest.mark.parametrize("rid", ALWAYS + ["MAN-04"])
def test_a_recorded_confirmation_passes(tmp_path: Path, rid: str) -> None:
    ctx = context(tmp_path, invoice_runs(False, False), confirm={rid: "done by ops on 2026-11-02"})
    finding = run(rid, ctx)
    assert finding.status == "pass" and "done by ops on 2026-11-02" in finding.reason


def test_man_04_reads_baseline_and_expiry() -> None:
    assert CHECKS["MAN-04"].scenarios == ("baseline", "expiry")


def test_man_04_is_manual_when_invoices_are_created(tmp_path: Path) -> None:
    assert run("MAN-04", context(tmp_path, invoice_runs(False, True))).status == "manual"
    assert judge_all(tmp_path, ["MAN-04"], Options(create_invoices=True))["MAN-04"].status == "manual"


def test_man_04_skips_when_no_invoice_is_created(tmp_path: Path) -> None:
    finding = run("MAN-04", context(tmp_path, invoice_runs(False, False)))
    assert finding.status == "skip" and "not seen creating invoices" in finding.reason
    assert judge_all(tmp_path, ["MAN-04"])["MAN-04"].status == "skip"


def test_man_04_stays_manual_when_the_scenarios_did_not_run(tmp_path: Path) -> None:
    assert run("MAN-04", context(tmp_path, invoice_runs(False, False, outcome="error"))).status == "manual"
