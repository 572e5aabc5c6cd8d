"""TOKEN: reuse the access token, renew it after expiry, rotate refresh tokens, never loop.

One module per concern, each registering its checks when imported: :mod:`.lifetime` (TOKEN-01,
TOKEN-02), :mod:`.refresh` (TOKEN-03, TOKEN-04, TOKEN-08), :mod:`.storms` (TOKEN-05, TOKEN-06,
TOKEN-07); :mod:`.reading` holds what they read of a scenario.
"""

from rfcheck.checks.token import lifetime, refresh, storms

__all__ = ["lifetime", "refresh", "storms"]
