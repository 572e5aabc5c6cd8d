"""NET: the X-Network header."""

from rfcheck.suite import requirement_tests

globals().update(requirement_tests(__file__))  # a test per requirement of the group, in catalogue order
