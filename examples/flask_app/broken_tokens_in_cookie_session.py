"""BROKEN on purpose (SEC-05 fails): the tokens are kept in Flask's cookie session.

The mistake: the pattern of many Authlib/Flask tutorials,

    token = oauth.requestfinance.authorize_access_token()
    session["token"] = token

Flask's default session is a cookie that is signed, not encrypted: anyone who holds the cookie
(the browser, its extensions, a proxy log, an attacker who stole it) can decode it (base64url,
zlib) and read the access token, the refresh token and the ID token.

Everything else is the correct app (app.py); only start_session() also stores the token dict in
the cookie session. Config: broken_tokens_in_cookie_session.toml.
"""

from flask import session

import app as acme

keep_tokens_server_side = acme.start_session


def start_session(token):
    grant = keep_tokens_server_side(token)
    session["token"] = dict(token)  # the tutorial's session["token"] = token
    return grant


acme.start_session = start_session

if __name__ == "__main__":
    acme.main()
