"""rfcheck: Going Live readiness checks for Request Finance OAuth integrations.

The public API is what an integration needs to be driven by rfcheck: the
:class:`Environment` it is configured with and the :class:`Target` protocol it
implements. Everything else in the package is private.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

__version__ = "0.1.0"
__all__ = ["Environment", "Target", "__version__"]


@dataclass(frozen=True)
class Environment:
    """What an integration under test is configured with.

    The same values as the ``{placeholders}`` of the target config: the mock's
    authorization server (``issuer``, no trailing slash) and API base URLs, the
    client credentials rfcheck issued for this run, and the network to send in
    ``X-Network``.
    """

    issuer: str
    api_url: str
    client_id: str
    client_secret: str
    audience: str
    redirect_uri: str
    network: str
    scopes: tuple[str, ...] = ()
    ca_file: str = ""


@runtime_checkable
class Target(Protocol):
    """An integration, as rfcheck drives it.

    ``start_login`` and ``finish_login`` are needed for the authorization code
    flow only; ``exercise`` performs one unit of representative API work.
    """

    def start_login(self) -> str:
        """Return the authorization URL the app would send its user to."""
        ...

    def finish_login(self, callback_url: str) -> None:
        """Handle the user's return to the redirect URI; raise to refuse the login."""
        ...

    def exercise(self) -> None:
        """Do one unit of API work; may raise when the app gives up."""
        ...
