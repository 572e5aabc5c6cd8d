"""What every test of this repository shares: pytester, a provider, registered clients, and an
agent that talks to the provider the way an integration would (in process, no network).
The options of every run (strict markers and config, testpaths) are in pyproject.toml.

Fixtures
--------
``signing_key``   one RSA key for the whole session (RSA generation is slow)
``keyset``        a fresh :class:`KeySet` starting with ``signing_key`` (rotation stays local)
``provider``      a fresh :class:`Provider` using ``keyset``
``code_client``   an authorization-code client redirecting to :data:`REDIRECT_URI`
``cc_client``     a client-credentials client
``agent``         an :class:`Agent` over ``provider``: authorize, token, login, api, jwks...
``login``         ``agent.login`` bound to ``code_client``: runs a full login, returns a :class:`Login`
``cc_token``      ``agent.cc_token`` bound to ``cc_client``: returns an access token string
``pkce``          makes a ``(verifier, challenge)`` pair (S256)
``make_provider`` / ``make_agent``  session-scoped factories, for module-scoped setups (hypothesis)
``toml_harness``  ``toml_harness(tables, start=True)``: a :class:`Harness` for the config
                  ``toml(tables)`` written to ``tmp_path / "rfcheck.toml"``; all stopped at teardown
``judge``         a module's :class:`tests.helpers.Judge` (one harness per target), closed at module end

Plain helpers (``Agent``, ``Login``, ``pkce_pair``, ``redirect_params``, ``unverified``,
``basic_header``, ``REDIRECT_URI``, ``alive``, ``gone``, ``pids``, ``toml``, ``Judge``...) live
in ``tests/helpers.py``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from rfcheck.config import load_config
from rfcheck.harness import Harness
from rfcheck.facts import AUTHORIZATION_CODE, CLIENT_CREDENTIALS
from rfcheck.provider.accounts import Client
from rfcheck.provider.app import Provider
from rfcheck.provider.keys import KeySet, SigningKey

if TYPE_CHECKING:
    from tests.helpers import Agent, Judge, Login

# A readiness run (pytest --rfcheck) from a source checkout collects scenarios/ and so loads this
# file too, inside someone else's test session: nothing here may import from tests/ (their own
# "tests" package would clash) until one of these fixtures is used, which only rfcheck's own
# tests do. For the same reason pytester is enabled in pyproject.toml, not here.


# -- fixtures ---------------------------------------------------------------------
@pytest.fixture(scope="session")
def signing_key() -> SigningKey:
    return SigningKey.generate()


@pytest.fixture
def keyset(signing_key: SigningKey) -> KeySet:
    return KeySet(signing_key)


@pytest.fixture(scope="session")
def make_provider(signing_key: SigningKey) -> Callable[[], Provider]:
    """A factory of fresh providers sharing the session's signing key."""
    return lambda: Provider(keys=KeySet(signing_key))


@pytest.fixture(scope="session")
def make_agent() -> Callable[[Provider], Agent]:
    from tests.helpers import Agent

    return Agent


@pytest.fixture
def provider(keyset: KeySet) -> Iterator[Provider]:
    """A fresh provider; the test errors at teardown if the provider hit an internal error (a 500)."""
    provider = Provider(keys=keyset)
    yield provider
    assert provider.errors == [], f"the provider failed internally: {provider.errors!r}"


@pytest.fixture
def code_client(provider: Provider) -> Client:
    from tests.helpers import REDIRECT_URI

    return provider.register_client(AUTHORIZATION_CODE, (REDIRECT_URI,), name="code app")


@pytest.fixture
def cc_client(provider: Provider) -> Client:
    return provider.register_client(CLIENT_CREDENTIALS, name="machine app")


@pytest.fixture
def agent(provider: Provider) -> Iterator[Agent]:
    from tests.helpers import Agent

    agent = Agent(provider)
    yield agent
    agent.http.close()


@pytest.fixture
def login(agent: Agent, code_client: Client) -> Callable[..., Login]:
    """Runs a full code-flow login for ``code_client`` (keyword arguments go to :meth:`Agent.login`)."""
    return lambda **kwargs: agent.login(kwargs.pop("client", code_client), **kwargs)


@pytest.fixture
def cc_token(agent: Agent, cc_client: Client) -> Callable[..., str]:
    return lambda **kwargs: agent.cc_token(cc_client, **kwargs)


@pytest.fixture
def pkce() -> Callable[[], tuple[str, str]]:
    from tests.helpers import pkce_pair

    return pkce_pair


# -- servers, harnesses and judges -------------------------------------------------------
@pytest.fixture
def toml_harness(tmp_path: Path) -> Iterator[Callable[..., Harness]]:
    """``toml_harness(tables, start=True)``: a harness for the config ``toml(tables)`` (started unless
    told); every harness made is stopped at teardown."""
    from tests.helpers import toml

    harnesses: list[Harness] = []

    def make(tables: dict[str, dict[str, Any]], start: bool = True) -> Harness:
        (tmp_path / "rfcheck.toml").write_text(toml(tables))
        harness = Harness(load_config(tmp_path / "rfcheck.toml"))
        harnesses.append(harness)
        if start:
            harness.start()
        return harness

    yield make
    for harness in harnesses:
        harness.stop()


@pytest.fixture(scope="module")
def judge() -> Iterator[Judge]:
    from tests.helpers import Judge

    run = Judge()
    yield run
    run.close()
