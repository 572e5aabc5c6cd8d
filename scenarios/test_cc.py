"""CC: the client credentials flow."""

from __future__ import annotations

from collections.abc import Callable

from rfcheck.report.model import Finding

Judge = Callable[[str], Finding]


def test_CC_01(rfcheck_judge: Judge) -> None:
    rfcheck_judge("CC-01")


def test_CC_02(rfcheck_judge: Judge) -> None:
    rfcheck_judge("CC-02")


def test_CC_03(rfcheck_judge: Judge) -> None:
    rfcheck_judge("CC-03")
