"""SEC: secrets and environments."""

from __future__ import annotations

from collections.abc import Callable

from rfcheck.report.model import Finding

Judge = Callable[[str], Finding]


def test_SEC_01(rfcheck_judge: Judge) -> None:
    rfcheck_judge("SEC-01")


def test_SEC_02(rfcheck_judge: Judge) -> None:
    rfcheck_judge("SEC-02")


def test_SEC_03(rfcheck_judge: Judge) -> None:
    rfcheck_judge("SEC-03")


def test_SEC_04(rfcheck_judge: Judge) -> None:
    rfcheck_judge("SEC-04")


def test_SEC_05(rfcheck_judge: Judge) -> None:
    rfcheck_judge("SEC-05")
