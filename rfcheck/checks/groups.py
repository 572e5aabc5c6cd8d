"""Every catalogue group's checks, registered: :func:`load_all` imports the group modules, which
import the registry (:mod:`rfcheck.checks`); the registry never imports them."""

from __future__ import annotations

import importlib

from rfcheck.checks import CHECKS, Check

GROUP_MODULES = ("auth", "flow", "cc", "scope", "token", "net", "org", "oidc", "sec", "rel", "man")


def load_all() -> dict[str, Check]:
    """Import every group module so that their checks register."""
    for name in GROUP_MODULES:
        importlib.import_module(f"rfcheck.checks.{name}")
    return CHECKS
