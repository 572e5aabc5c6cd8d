"""Fixtures for an integration's own tests, with or without ``--rfcheck``: a fresh mock Request Finance
per test, reached in process by httpx (``rfcheck_provider``) or over loopback sockets by any HTTP
client (``rfcheck_server``), and the helpers that log in at it as a user would."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from rfcheck import testing
from rfcheck.facts import AUTHORIZATION_CODE
from rfcheck.journal import Journal
from rfcheck.provider.accounts import Client
from rfcheck.provider.app import Provider
from rfcheck.provider.clock import Clock
from rfcheck.testing import DEFAULT_REDIRECT_URI, Tokens, following
from rfcheck.transport.inprocess import InProcessTransport
from rfcheck.transport.server import LoopbackMock

__all__ = ["rfcheck_client", "rfcheck_clock", "rfcheck_consent", "rfcheck_journal", "rfcheck_login",
           "rfcheck_provider", "rfcheck_server", "rfcheck_tls"]


@pytest.fixture
def rfcheck_provider() -> Iterator[Provider]:
    """A fresh mock Request Finance, with httpx calls to its hosts routed to it for the test."""
    provider = Provider()
    with InProcessTransport(provider):
        yield provider
    if provider.errors:  # raised here, in the test's teardown, not lost in a 500 the app may have swallowed
        first = provider.errors[0]
        raise AssertionError(f"the mock hit {len(provider.errors)} internal error(s) while serving this test; the "
                             f"first: {type(first).__name__}: {first} (its request was answered 500; please report "
                             "it)") from first


@pytest.fixture
def rfcheck_tls() -> bool:
    """Whether ``rfcheck_server`` serves https (from a CA made for the test, ``rfcheck_server.ca_file``).
    Override it in a conftest (or parametrize it indirectly) for a client that refuses plain http."""
    return False


@pytest.fixture
def rfcheck_server(rfcheck_provider: Provider, rfcheck_tls: bool) -> Iterator[testing.MockServer]:
    """The test's mock on 127.0.0.1 ports, for clients on any HTTP library (requests, Authlib,
    requests-oauthlib, a subprocess): ``issuer``, ``api_url``, ``url_for(path)``, ``ca_file``."""
    with LoopbackMock(rfcheck_provider, tls=rfcheck_tls) as mock:
        yield testing.MockServer(mock)


@pytest.fixture
def rfcheck_journal(rfcheck_provider: Provider) -> Journal:
    """Every exchange the test's mock saw."""
    return rfcheck_provider.journal


@pytest.fixture
def rfcheck_clock(rfcheck_provider: Provider) -> Iterator[Clock]:
    """The mock's clock: ``rfcheck_clock.travel(86_400)`` expires every token it issued, and moves the
    test's own ``time.time()`` and ``datetime.now()`` (freezegun) with it."""
    with following(rfcheck_provider.clock) as clock:
        yield clock


@pytest.fixture
def rfcheck_client(rfcheck_provider: Provider) -> Callable[..., Client]:
    """``rfcheck_client(flow="authorization_code", redirect_uris=("http://localhost:8000/callback",))``:
    a client registered at the mock (``client_id``, ``client_secret``, ``redirect_uris``)."""

    def register(flow: str = AUTHORIZATION_CODE, redirect_uris: tuple[str, ...] = (DEFAULT_REDIRECT_URI,),
                 name: str = "integration under test") -> Client:
        return rfcheck_provider.register_client(flow, redirect_uris if flow == AUTHORIZATION_CODE else (), name)

    return register


@pytest.fixture
def rfcheck_login(rfcheck_provider: Provider) -> Callable[..., Tokens]:
    """``rfcheck_login(client, scopes=..., redirect_uri=None)``: the whole authorization code flow, as a
    correct app runs it (PKCE S256, state, nonce, audience): the :class:`rfcheck.testing.Tokens`."""
    return lambda client, **options: testing.login(rfcheck_provider, client, **options)


@pytest.fixture
def rfcheck_consent(rfcheck_provider: Provider) -> Callable[[str], str]:
    """``rfcheck_consent(authorization_url)``: the user visits your app's authorization URL (on the real
    host, or on ``rfcheck_server.issuer``) and consents; returns the callback URL (with ``code`` and
    ``state``) to hand to your app's callback handler."""
    return lambda url: testing.consent_as_user(rfcheck_provider, url)
