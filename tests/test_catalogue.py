"""Tests for rfcheck.catalogue: the catalogue mirrors requirements.md exactly."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from rfcheck.catalogue import CATALOGUE, GROUP_TITLES, GROUPS, requirement

REQUIREMENTS_MD = Path(__file__).resolve().parents[2] / "shared/design/requirements.md"
CODE, CC = "authorization_code", "client_credentials"


def design_table() -> str:
    if not REQUIREMENTS_MD.is_file():
        pytest.skip(f"{REQUIREMENTS_MD} is not here (the design folder sits beside the repository)")
    return REQUIREMENTS_MD.read_text(encoding="utf-8")


def test_ids_equal_the_design_catalogue_in_order() -> None:
    # the same regex as shared/tools/check_report.py
    expected = re.findall(r"^\| ([A-Z]+-\d\d) \|", design_table(), flags=re.M)
    assert [req.id for req in CATALOGUE] == expected


def test_levels_match_the_design_table() -> None:
    rows = re.findall(r"^\| ([A-Z]+-\d\d) \| ([a-z/]+) \|", design_table(), flags=re.M)
    for rid, level in rows:
        req = requirement(rid)
        if level == "must/should":
            assert (req.front_channel_level, req.level, req.harm_level) == ("must", "should", None), rid
        elif level == "should/must":  # should, must when the shortfall cost users their session
            assert (req.level, req.harm_level, req.front_channel_level) == ("should", "must", None), rid
        else:
            assert (req.level, req.front_channel_level, req.harm_level) == (level, None, None), rid
    manual = [req.id for req in CATALOGUE if req.level == "manual"]
    assert manual == [f"MAN-{n:02d}" for n in range(1, 7)]


def test_every_id_once_and_groups_in_order() -> None:
    ids = [req.id for req in CATALOGUE]
    assert len(ids) == len(set(ids))
    assert all(req.group == req.id.split("-")[0] for req in CATALOGUE)
    groups_in_order = list(dict.fromkeys(req.group for req in CATALOGUE))
    assert tuple(groups_in_order) == GROUPS
    assert set(GROUP_TITLES) == set(GROUPS)


@pytest.mark.parametrize("req", CATALOGUE, ids=lambda r: r.id)
def test_every_requirement_is_complete(req) -> None:
    assert req.level in ("must", "should", "manual")
    assert req.title and "\n" not in req.title and len(req.title) <= 90
    assert req.observed and req.source
    assert req.remediation.endswith(")."), req.remediation  # ends by citing its source
    assert req.applies_to and req.applies_to <= {CODE, CC}


@pytest.mark.parametrize("rid, flows", [
    ("AUTH-01", {CODE, CC}), ("FLOW-01", {CODE}), ("FLOW-07", {CODE}), ("CC-01", {CC}), ("CC-03", {CC}),
    ("SCOPE-01", {CODE}), ("SCOPE-02", {CODE, CC}), ("SCOPE-05", {CODE}), ("TOKEN-01", {CODE, CC}),
    ("TOKEN-02", {CODE}), ("TOKEN-06", {CODE}), ("TOKEN-07", {CODE, CC}), ("OIDC-01", {CODE}),
    ("OIDC-10", {CODE}), ("MAN-01", {CODE}), ("MAN-02", {CODE, CC}), ("MAN-03", {CC}), ("SEC-04", {CODE, CC}),
])
def test_flows_each_requirement_applies_to(rid: str, flows: set[str]) -> None:
    assert requirement(rid).applies_to == frozenset(flows)


def test_remediation_cites_its_source() -> None:
    for req in CATALOGUE:
        assert req.source.split(";")[0].split(",")[0] in req.remediation, req.id


def test_unknown_id_names_close_ones() -> None:
    with pytest.raises(KeyError, match="NET-01"):
        requirement("NET-1")
    with pytest.raises(KeyError, match="no requirement 'XYZ-99'"):
        requirement("XYZ-99")


def test_requirements_are_immutable() -> None:
    with pytest.raises(AttributeError):
        requirement("NET-01").level = "should"  # type: ignore[misc]
