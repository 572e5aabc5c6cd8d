"""FLOW: the authorization request and code exchange."""

from __future__ import annotations

from collections.abc import Callable

from rfcheck.report.model import Finding

Judge = Callable[[str], Finding]


def test_FLOW_01(rfcheck_judge: Judge) -> None:
    rfcheck_judge("FLOW-01")


def test_FLOW_02(rfcheck_judge: Judge) -> None:
    rfcheck_judge("FLOW-02")


def test_FLOW_03(rfcheck_judge: Judge) -> None:
    rfcheck_judge("FLOW-03")


def test_FLOW_04(rfcheck_judge: Judge) -> None:
    rfcheck_judge("FLOW-04")


def test_FLOW_05(rfcheck_judge: Judge) -> None:
    rfcheck_judge("FLOW-05")


def test_FLOW_06(rfcheck_judge: Judge) -> None:
    rfcheck_judge("FLOW-06")


def test_FLOW_07(rfcheck_judge: Judge) -> None:
    rfcheck_judge("FLOW-07")
