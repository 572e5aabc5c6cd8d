"""The facts of the real Request Finance that rfcheck reproduces and judges against.

One module that the mock (:mod:`rfcheck.provider`), the checks and the scenario runner all
read, so that what the mock does and what the checks expect cannot drift apart
(each with the source the catalogue cites).
"""

from __future__ import annotations

# OAuth flows (client kinds): a client is registered for one of them
AUTHORIZATION_CODE = "authorization_code"
CLIENT_CREDENTIALS = "client_credentials"
FLOWS = (AUTHORIZATION_CODE, CLIENT_CREDENTIALS)

# the audience every token request names, and the scopes a client may ask for
AUDIENCE = "accounts"
KNOWN_SCOPES = ("openid", "profile", "email", "offline_access", "user:read")

# what /authorize accepts as response_type (implicit and hybrid need a nonce)
RESPONSE_TYPES = frozenset({"code", "token", "id_token", "id_token token", "code id_token",
                            "code token", "code id_token token"})

# lifetimes, in seconds
ACCESS_TOKEN_LIFETIME = 86_400  # 24 h, Request Finance's documented lifetime
ID_TOKEN_LIFETIME = 36_000  # Auth0's default of 10 h

# the real hosts
AUTH_HOST = "https://auth.request.finance"
API_HOST = "https://api.request.finance"
NETWORKS = ("test", "live")  # X-Network
