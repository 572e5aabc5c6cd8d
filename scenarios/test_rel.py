"""REL: resilience to Request Finance's errors."""

from __future__ import annotations

from collections.abc import Callable

from rfcheck.report.model import Finding

Judge = Callable[[str], Finding]


def test_REL_01(rfcheck_judge: Judge) -> None:
    rfcheck_judge("REL-01")


def test_REL_02(rfcheck_judge: Judge) -> None:
    rfcheck_judge("REL-02")
