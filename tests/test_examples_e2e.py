"""End to end: ``pytest --rfcheck`` on every example, correct and deliberately broken.

Each run is a subprocess, exactly as a user would type it; the test then reads the JSON report
and asserts the exact status of every requirement, the verdict, pytest's exit status and the
report contract (``../shared/tools/check_report.py``, when present). The broken variants live in
``examples/broken/`` (``acme_broken.py`` says which requirement each one violates and how).

Each variant's expectation is a correct example's dict updated with its deviations, so a variant
that violates more or less than intended fails here. Besides its one violation a variant may show
``skip`` where the violation hides what a requirement needs (no refresh token: nothing to rotate).
Sequential and slow-ish: about 6 s per run, 4 s of it the scenario in which the token endpoint
answers 429/503 with ``Retry-After: 1`` and a correct client waits.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from rfcheck.catalogue import CATALOGUE

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
BROKEN = EXAMPLES / "broken"
CHECK_REPORT = Path(__file__).resolve().parents[2] / "shared/tools/check_report.py"
RUN_TIMEOUT = 120

# The correct authorization code example (examples/httpx_code): everything that applies passes.
CODE_OK = {
    "AUTH-01": "pass", "AUTH-02": "pass", "AUTH-03": "pass", "AUTH-04": "pass",
    "FLOW-01": "pass", "FLOW-02": "pass", "FLOW-03": "pass", "FLOW-04": "pass", "FLOW-05": "pass",
    "FLOW-06": "skip",  # implicit/hybrid only
    "FLOW-07": "pass",
    "CC-01": "skip", "CC-02": "skip", "CC-03": "skip",  # client credentials only
    "SCOPE-01": "pass", "SCOPE-02": "pass", "SCOPE-03": "pass", "SCOPE-04": "pass", "SCOPE-05": "pass",
    "TOKEN-01": "pass", "TOKEN-02": "pass", "TOKEN-03": "pass", "TOKEN-04": "pass", "TOKEN-05": "pass",
    "TOKEN-06": "pass", "TOKEN-07": "pass", "TOKEN-08": "pass",
    "NET-01": "pass", "NET-02": "pass", "NET-03": "pass",
    "ORG-01": "pass", "ORG-02": "pass", "ORG-03": "pass",
    "OIDC-01": "pass", "OIDC-02": "pass", "OIDC-03": "pass", "OIDC-04": "pass", "OIDC-05": "pass",
    "OIDC-06": "pass", "OIDC-07": "pass", "OIDC-08": "pass", "OIDC-09": "pass", "OIDC-10": "pass",
    "SEC-01": "pass",
    "SEC-02": "manual",  # no client IDs in the config
    "SEC-03": "pass", "SEC-04": "pass",
    "SEC-05": "skip",  # no browser: an in-process target
    "REL-01": "skip", "REL-02": "skip",  # no process of its own to watch
    "MAN-01": "manual", "MAN-02": "manual",
    "MAN-03": "skip",  # client credentials only
    "MAN-04": "skip",  # never creates invoices
    "MAN-05": "manual", "MAN-06": "manual",
}

# The correct client credentials example (examples/cc_worker).
CC_OK = {
    "AUTH-01": "pass", "AUTH-02": "pass", "AUTH-03": "pass",
    "AUTH-04": "skip",  # no ID token in this flow
    **{f"FLOW-0{n}": "skip" for n in range(1, 8)},  # authorization code only
    "CC-01": "pass", "CC-02": "pass", "CC-03": "pass",
    "SCOPE-01": "skip", "SCOPE-02": "skip",  # no user
    "SCOPE-03": "skip",  # never lists organizations
    "SCOPE-04": "pass",
    "SCOPE-05": "skip",
    "TOKEN-01": "pass",
    "TOKEN-02": "skip", "TOKEN-03": "skip", "TOKEN-04": "skip", "TOKEN-05": "skip", "TOKEN-06": "skip",
    "TOKEN-07": "pass",
    "TOKEN-08": "skip",  # never a refresh token
    "NET-01": "pass", "NET-02": "pass", "NET-03": "pass",
    "ORG-01": "skip", "ORG-02": "skip", "ORG-03": "skip",  # the app's own account
    **{f"OIDC-{n:02d}": "skip" for n in range(1, 11)},
    "SEC-01": "pass", "SEC-02": "manual", "SEC-03": "pass", "SEC-04": "pass",
    "SEC-05": "skip", "REL-01": "skip", "REL-02": "skip",  # in process: no browser, no process to watch
    "MAN-01": "skip",  # authorization code only
    "MAN-02": "manual", "MAN-03": "manual",
    "MAN-04": "skip",  # never creates invoices
    "MAN-05": "manual", "MAN-06": "manual",
}

# The login never works (the authorization request is refused), so nothing after it is observed.
NO_LOGIN = {
    # FLOW-02: the callback without state comes after a completed login, which never happens
    **{rid: "skip" for rid in ("AUTH-01", "AUTH-02", "AUTH-03", "AUTH-04", "FLOW-02", "FLOW-04", "SCOPE-01", "SCOPE-03",
                               "SCOPE-04", "SCOPE-05", "ORG-01", "ORG-02", "ORG-03", "SEC-04")},
    **{f"TOKEN-0{n}": "skip" for n in range(1, 9)},
    **{f"NET-0{n}": "skip" for n in range(1, 4)},
    **{f"OIDC-{n:02d}": "skip" for n in range(1, 11)},
}
# No refresh token: the refresh rules cannot be observed.
NO_REFRESH = {rid: "skip" for rid in ("TOKEN-02", "TOKEN-03", "TOKEN-04", "TOKEN-06", "TOKEN-07", "TOKEN-08",
                                      "OIDC-10")}

# name -> (config, expected status of every requirement ID)
RUNS: dict[str, tuple[Path, dict[str, str]]] = {
    "httpx_code": (EXAMPLES / "httpx_code", CODE_OK),
    # requests is not intercepted in process: it reaches the mock's loopback URLs, so SEC-04 cannot see
    # requests to other hosts (they would need [target.intercept] proxy = true)
    "requests_code": (EXAMPLES / "requests_code", {**CODE_OK, "SEC-04": "skip"}),
    "cc_worker": (EXAMPLES / "cc_worker", CC_OK),
    "api_key_auth": (BROKEN / "api_key_auth.toml", {**CODE_OK, "AUTH-01": "fail"}),
    "no_pkce": (BROKEN / "no_pkce.toml", {**CODE_OK, "FLOW-03": "warn", "FLOW-07": "skip"}),
    # FLOW-02 needs both defences missing, so FLOW-03 warns too
    "state_not_checked": (BROKEN / "state_not_checked.toml",
                          {**CODE_OK, "FLOW-02": "fail", "FLOW-03": "warn", "FLOW-07": "skip"}),
    "pkce_plain": (BROKEN / "pkce_plain.toml", {**CODE_OK, **NO_LOGIN, "FLOW-07": "fail"}),
    "cc_asks_offline_access": (BROKEN / "cc_asks_offline_access.toml", {**CC_OK, "CC-02": "warn"}),
    # it halts at the first refused token, so it never meets the token endpoint's 429/503
    "cc_token_at_startup_only": (BROKEN / "cc_token_at_startup_only.toml",
                                 {**CC_OK, "CC-03": "fail", "TOKEN-07": "skip"}),
    "no_offline_access": (BROKEN / "no_offline_access.toml", {**CODE_OK, **NO_REFRESH, "SCOPE-01": "fail"}),
    # refreshing before every unit, it never uses the revoked access token
    "refresh_every_unit": (BROKEN / "refresh_every_unit.toml",
                           {**CODE_OK, "TOKEN-01": "fail", "TOKEN-05": "skip"}),
    "keeps_first_refresh_token": (BROKEN / "keeps_first_refresh_token.toml", {**CODE_OK, "TOKEN-03": "fail"}),
    "retries_dead_refresh_token": (BROKEN / "retries_dead_refresh_token.toml", {**CODE_OK, "TOKEN-04": "fail"}),
    "retries_401": (BROKEN / "retries_401.toml", {**CODE_OK, "TOKEN-05": "fail"}),
    # its refresh storm revokes the family and logs users out: the harm level of TOKEN-06 (must)
    "no_refresh_lock": (BROKEN / "no_refresh_lock.toml", {**CODE_OK, "TOKEN-06": "fail"}),
    "no_backoff": (BROKEN / "no_backoff.toml", {**CODE_OK, "TOKEN-07": "warn"}),
    "capitalized_network": (BROKEN / "capitalized_network.toml", {**CODE_OK, "NET-02": "fail"}),
    "hardcoded_test_network": (BROKEN / "hardcoded_test_network.toml", {**CODE_OK, "NET-03": "fail"}),
    "foreign_organization": (BROKEN / "foreign_organization.toml", {**CODE_OK, "ORG-01": "fail"}),
    # it neither lists organizations nor asks for user:read, so the organization rules are not observed
    "personal_account_only": (BROKEN / "personal_account_only.toml",
                              {**CODE_OK, "ORG-02": "warn", "ORG-01": "skip", "ORG-03": "skip",
                               "SCOPE-03": "skip", "SCOPE-05": "skip"}),
    # a missing sub breaks its login by accident (KeyError), a missing iat does not: OIDC-08 warns
    "unverified_id_token": (BROKEN / "unverified_id_token.toml",
                            {**CODE_OK, **{f"OIDC-0{n}": "warn" for n in range(1, 9)}}),
    "secret_in_env": (EXAMPLES / "broken_secret_in_env" / "secret_in_env.toml", {**CODE_OK, "SEC-01": "fail"}),
    "logs_access_token": (BROKEN / "logs_access_token.toml", {**CODE_OK, "SEC-03": "fail"}),
    "token_to_telemetry": (BROKEN / "token_to_telemetry.toml", {**CODE_OK, "SEC-04": "fail"}),
    "man_confirmed": (BROKEN / "man_confirmed.toml",
                      {**CODE_OK, **{f"MAN-0{n}": "pass" for n in (1, 2, 4, 5, 6)}}),
}

# Statuses a check gets wrong today (reported to the check authors). The dicts above stay what
# requirements.md says; a run that deviates from them by exactly these statuses xfails. Once the
# check is fixed the run passes its expectation and this test fails until the entry is removed.
CHECK_PROBLEMS: dict[str, dict[str, str]] = {}


def run_rfcheck(config: Path, report_dir: Path) -> subprocess.CompletedProcess[str]:
    """The user's command; hypothesis' plugin (a dev dependency rfcheck never uses) is blocked
    because importing it takes about a third of each run's start-up."""
    env = {k: v for k, v in os.environ.items() if k != "PYTEST_ADDOPTS"}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "--rfcheck", "--rfcheck-target", str(config),
         "--rfcheck-report", str(report_dir), "-p", "no:cacheprovider", "-p", "no:hypothesispytest", "-q"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=RUN_TIMEOUT)


def deviations(report: dict[str, Any], expected: dict[str, str]) -> dict[str, str]:
    """ID -> the status seen, for every requirement whose status is not the expected one."""
    seen = {r["id"]: r["status"] for r in report["requirements"]}
    return {rid: seen.get(rid, "(missing)") for rid in {*expected, *seen} if seen.get(rid) != expected.get(rid)}


def explain(report: dict[str, Any], wrong: dict[str, str], expected: dict[str, str]) -> str:
    reasons = {r["id"]: r.get("reason", "") for r in report["requirements"]}
    return "\n".join(f"{rid}: expected {expected.get(rid)}, got {status}: {reasons.get(rid, '')}"
                     for rid, status in sorted(wrong.items()))


@pytest.mark.parametrize("name", RUNS)
def test_example_statuses(name: str, tmp_path: Path) -> None:
    config, expected = RUNS[name]
    done = run_rfcheck(config, tmp_path)
    report_file = tmp_path / "rfcheck-report.json"
    assert report_file.is_file(), f"no report (exit {done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    report = json.loads(report_file.read_text(encoding="utf-8"))

    ready = "fail" not in expected.values()  # only a must can fail; should shortfalls warn
    assert report["verdict"] == ("ready" if ready else "not-ready"), explain(report, deviations(report, expected),
                                                                            expected)
    assert done.returncode == (0 if ready else 1), done.stdout[-3000:]
    if CHECK_REPORT.is_file():
        contract = subprocess.run([sys.executable, str(CHECK_REPORT), str(report_file)],
                                  capture_output=True, text=True, timeout=60)
        assert contract.returncode == 0, contract.stdout

    wrong = deviations(report, expected)
    known = CHECK_PROBLEMS.get(name)
    if known is not None:
        assert wrong, f"{name}: the check problem {known} is fixed: remove it from CHECK_PROBLEMS"
        assert wrong == known, explain(report, wrong, expected)
        pytest.xfail(f"known check problem: {explain(report, wrong, expected)}")
    assert not wrong, explain(report, wrong, expected)


def test_every_variant_is_run() -> None:
    """Each config in examples/broken/ (and the SEC-01 variant's own folder) has its expectations here."""
    configs = {*BROKEN.glob("*.toml"), *(EXAMPLES / "broken_secret_in_env").glob("*.toml")}
    assert configs == {config for config, _ in RUNS.values() if config.suffix == ".toml"}


def test_expectations_list_every_requirement() -> None:
    ids = [entry.id for entry in CATALOGUE]
    assert list(CODE_OK) == ids and list(CC_OK) == ids
    assert all(list(expected) == ids for _, expected in RUNS.values())
