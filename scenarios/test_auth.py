"""AUTH: how the integration authenticates."""

from __future__ import annotations

from collections.abc import Callable

from rfcheck.report.model import Finding

Judge = Callable[[str], Finding]


def test_AUTH_01(rfcheck_judge: Judge) -> None:
    rfcheck_judge("AUTH-01")


def test_AUTH_02(rfcheck_judge: Judge) -> None:
    rfcheck_judge("AUTH-02")


def test_AUTH_03(rfcheck_judge: Judge) -> None:
    rfcheck_judge("AUTH-03")


def test_AUTH_04(rfcheck_judge: Judge) -> None:
    rfcheck_judge("AUTH-04")
