"""OIDC: ID token validation."""

from __future__ import annotations

from collections.abc import Callable

from rfcheck.report.model import Finding

Judge = Callable[[str], Finding]


def test_OIDC_01(rfcheck_judge: Judge) -> None:
    rfcheck_judge("OIDC-01")


def test_OIDC_02(rfcheck_judge: Judge) -> None:
    rfcheck_judge("OIDC-02")


def test_OIDC_03(rfcheck_judge: Judge) -> None:
    rfcheck_judge("OIDC-03")


def test_OIDC_04(rfcheck_judge: Judge) -> None:
    rfcheck_judge("OIDC-04")


def test_OIDC_05(rfcheck_judge: Judge) -> None:
    rfcheck_judge("OIDC-05")


def test_OIDC_06(rfcheck_judge: Judge) -> None:
    rfcheck_judge("OIDC-06")


def test_OIDC_07(rfcheck_judge: Judge) -> None:
    rfcheck_judge("OIDC-07")


def test_OIDC_08(rfcheck_judge: Judge) -> None:
    rfcheck_judge("OIDC-08")


def test_OIDC_09(rfcheck_judge: Judge) -> None:
    rfcheck_judge("OIDC-09")


def test_OIDC_10(rfcheck_judge: Judge) -> None:
    rfcheck_judge("OIDC-10")
