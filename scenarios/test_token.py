"""TOKEN: token reuse, expiry and refresh."""

from __future__ import annotations

from collections.abc import Callable

from rfcheck.report.model import Finding

Judge = Callable[[str], Finding]


def test_TOKEN_01(rfcheck_judge: Judge) -> None:
    rfcheck_judge("TOKEN-01")


def test_TOKEN_02(rfcheck_judge: Judge) -> None:
    rfcheck_judge("TOKEN-02")


def test_TOKEN_03(rfcheck_judge: Judge) -> None:
    rfcheck_judge("TOKEN-03")


def test_TOKEN_04(rfcheck_judge: Judge) -> None:
    rfcheck_judge("TOKEN-04")


def test_TOKEN_05(rfcheck_judge: Judge) -> None:
    rfcheck_judge("TOKEN-05")


def test_TOKEN_06(rfcheck_judge: Judge) -> None:
    rfcheck_judge("TOKEN-06")


def test_TOKEN_07(rfcheck_judge: Judge) -> None:
    rfcheck_judge("TOKEN-07")


def test_TOKEN_08(rfcheck_judge: Judge) -> None:
    rfcheck_judge("TOKEN-08")
