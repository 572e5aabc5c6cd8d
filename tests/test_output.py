"""A target's output kept within bounds, and searched for issued secrets as it streams (SEC-03)."""

from __future__ import annotations

import secrets

from rfcheck.journal import Secrets
from rfcheck.targets import output as output_module
from rfcheck.targets.output import Output


def known(*values: str) -> Secrets:
    kept = Secrets()
    for value in values:
        kept.add(value)
    return kept


def test_a_short_output_is_kept_whole() -> None:
    out = Output()
    out.write("one\ntwo\nthr")
    out.write("ee")
    out.close()
    assert out.text() == "one\ntwo\nthree"
    assert out.tail(2) == ["two", "three"] and out.tail(5, since=2) == ["three"]


def test_a_flood_keeps_a_head_and_a_tail_and_counts_what_it_left_out() -> None:
    out = Output()
    line = "x" * 99
    for _ in range(20):
        out.write((line + "\n") * 10_000)  # 20 MB in all
    out.close()
    text = out.text()
    assert len(text) < output_module.HEAD_CHARS + output_module.TAIL_CHARS + 1000
    assert "lines (" in text and "of output left out here" in text
    dropped = 200_000 - len(text.splitlines()) + 1
    assert f"{dropped:,} lines" in text


def test_a_secret_in_the_middle_of_a_flood_is_kept() -> None:
    token = secrets.token_urlsafe(32)
    out = Output(known(token).held_in)
    out.write("noise\n" * 200_000)
    out.write(f"refreshing with refresh_token={token} now\n")
    out.write("noise\n" * 200_000)
    out.close()
    text = out.text()
    assert len(text) < 400_000
    assert f"refresh_token={token} now" in text


def test_a_secret_in_a_5_mb_line_without_newline_is_found_even_across_reads() -> None:
    token = "eyJhbGciOiJSUzI1NiJ9." + secrets.token_urlsafe(200) + "." + secrets.token_urlsafe(64)
    out = Output(known(token).held_in)
    line = "a " * 1_250_000 + f"Authorization: Bearer {token} " + "b " * 1_250_000
    for start in range(0, len(line), 65_536):  # as a pipe gives it: the token cut in two by a read
        out.write(line[start:start + 65_536])
    out.close()
    text = out.text()
    assert token in text
    assert len(text) < output_module.MAX_LINE + 2000
    assert "more characters of this line left out" in text


def test_a_take_starts_the_next_scenario_afresh() -> None:
    out = Output()
    out.write("first scenario\n")
    assert out.take() == "first scenario"
    out.write("second\n")
    assert out.text() == "second" and out.lines == 1
