"""Exploration (``--rfcheck-explore=N``): collected only when asked for, after the catalogue.

hypothesis drives fresh instances of the target through sequences of Request Finance
behaviours and judges the catalogue's invariants after every step (rfcheck.explore); a
sequence that breaks a requirement is shrunk to the shortest one and reported with a
scenario file that replays it.
"""

from rfcheck.plugin import Explorer


def test_explore(rfcheck_explore: Explorer) -> None:
    rfcheck_explore()
