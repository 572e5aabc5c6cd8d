"""MAN: things a person must confirm."""

from __future__ import annotations

from collections.abc import Callable

from rfcheck.report.model import Finding

Judge = Callable[[str], Finding]


def test_MAN_01(rfcheck_judge: Judge) -> None:
    rfcheck_judge("MAN-01")


def test_MAN_02(rfcheck_judge: Judge) -> None:
    rfcheck_judge("MAN-02")


def test_MAN_03(rfcheck_judge: Judge) -> None:
    rfcheck_judge("MAN-03")


def test_MAN_04(rfcheck_judge: Judge) -> None:
    rfcheck_judge("MAN-04")


def test_MAN_05(rfcheck_judge: Judge) -> None:
    rfcheck_judge("MAN-05")


def test_MAN_06(rfcheck_judge: Judge) -> None:
    rfcheck_judge("MAN-06")
