"""MAN: what a person must confirm (Going Live, Organizations).

No test can see these; each is ``manual`` with what to confirm, or ``pass`` with the note a
person recorded under ``[target.confirm]``. MAN-04 matters only for integrations seen
creating invoices (``POST /invoices``).
"""

from __future__ import annotations

from rfcheck.catalogue import requirement
from rfcheck.checks import Context, check
from rfcheck.checks.outcome import Outcome, manual, passed, skipped
from rfcheck.checks.queries import api_calls, completed, names

INVOICE_SCENARIOS = ("baseline", "expiry")


def confirm_or_manual(ctx: Context, requirement_id: str) -> Outcome:
    """``pass`` quoting the recorded confirmation, else ``manual`` saying what to confirm (the ID names the
    confirmation's key and the remediation, not the finding: the registry binds that)."""
    note = ctx.config.confirm.get(requirement_id)
    if note:
        return passed(f"confirmed in {ctx.config.file.name} [target.confirm]: {note}")
    return manual(f"{requirement(requirement_id).remediation} Record it as {requirement_id} under "
                  "[target.confirm].")


@check("MAN-01")
def dedicated_account(ctx: Context) -> Outcome:
    return confirm_or_manual(ctx, "MAN-01")


@check("MAN-02")
def apps_access_requested(ctx: Context) -> Outcome:
    return confirm_or_manual(ctx, "MAN-02")


@check("MAN-03")
def client_credentials_activated(ctx: Context) -> Outcome:
    return confirm_or_manual(ctx, "MAN-03")


@check("MAN-04", INVOICE_SCENARIOS)
def client_id_shared_for_emails(ctx: Context) -> Outcome:
    if ctx.config.confirm.get("MAN-04"):
        return confirm_or_manual(ctx, "MAN-04")
    results = completed(ctx.results.values())
    creates = [e for r in results for e in api_calls(r)
               if e.method == "POST" and e.path.rstrip("/") == "/invoices"]
    if creates or len(results) < len(ctx.results):
        return confirm_or_manual(ctx, "MAN-04")  # seen, or could not be ruled out
    return skipped(f"the integration was not seen creating invoices (no POST /invoices in "
                   f"{names(results)})")


@check("MAN-05")
def secrets_in_secret_manager(ctx: Context) -> Outcome:
    return confirm_or_manual(ctx, "MAN-05")


@check("MAN-06")
def organizations_handling_decided(ctx: Context) -> Outcome:
    return confirm_or_manual(ctx, "MAN-06")
