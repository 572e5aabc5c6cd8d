"""NET: the X-Network header."""

from __future__ import annotations

from collections.abc import Callable

from rfcheck.report.model import Finding

Judge = Callable[[str], Finding]


def test_NET_01(rfcheck_judge: Judge) -> None:
    rfcheck_judge("NET-01")


def test_NET_02(rfcheck_judge: Judge) -> None:
    rfcheck_judge("NET-02")


def test_NET_03(rfcheck_judge: Judge) -> None:
    rfcheck_judge("NET-03")
