"""SCOPE: scopes."""

from __future__ import annotations

from collections.abc import Callable

from rfcheck.report.model import Finding

Judge = Callable[[str], Finding]


def test_SCOPE_01(rfcheck_judge: Judge) -> None:
    rfcheck_judge("SCOPE-01")


def test_SCOPE_02(rfcheck_judge: Judge) -> None:
    rfcheck_judge("SCOPE-02")


def test_SCOPE_03(rfcheck_judge: Judge) -> None:
    rfcheck_judge("SCOPE-03")


def test_SCOPE_04(rfcheck_judge: Judge) -> None:
    rfcheck_judge("SCOPE-04")


def test_SCOPE_05(rfcheck_judge: Judge) -> None:
    rfcheck_judge("SCOPE-05")
