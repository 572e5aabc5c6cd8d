"""ORG: organizations."""

from __future__ import annotations

from collections.abc import Callable

from rfcheck.report.model import Finding

Judge = Callable[[str], Finding]


def test_ORG_01(rfcheck_judge: Judge) -> None:
    rfcheck_judge("ORG-01")


def test_ORG_02(rfcheck_judge: Judge) -> None:
    rfcheck_judge("ORG-02")


def test_ORG_03(rfcheck_judge: Judge) -> None:
    rfcheck_judge("ORG-03")
