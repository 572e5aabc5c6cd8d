"""BROKEN on purpose (FLOW-02 fails, FLOW-03 warns): no state, no PKCE, any code accepted.

The mistake: the authorization URL is built by hand, without `state` (and without a `nonce`),
and without PKCE; the callback exchanges whatever code arrives, even when this browser started
no login. An attacker can then log a victim into the attacker's Request Finance account (login
CSRF) or inject a stolen code (RFC 9700 §4.5, §4.7): the integration would read and write the
attacker's invoices on the victim's behalf.

Everything else is the correct app (app.py); only the /login and /callback views are replaced
(compare them with app.py, which uses Authlib's authorize_redirect()/authorize_access_token()).
Config: broken_no_state.toml.
"""

from urllib.parse import urlencode

from authlib.integrations.flask_client import OAuthError
from flask import redirect, request, session, url_for
from joserfc.errors import JoseError

import app as acme

flask_app = acme.create_app()
rf: acme.RequestFinance = flask_app.extensions["request_finance"]


def login():
    params = {"response_type": "code", "client_id": rf.settings.client_id,
              "redirect_uri": rf.settings.redirect_uri, "scope": acme.SCOPES, "audience": acme.AUDIENCE}
    if session.get("consent_needed"):
        params["prompt"] = "consent"
    authorization_endpoint = rf.client.load_server_metadata()["authorization_endpoint"]
    return redirect(f"{authorization_endpoint}?{urlencode(params)}")


def callback():
    code = request.args.get("code")
    if not code:
        return acme.error_page(400, f"Login failed ({request.args.get('error', 'no code')}).")
    try:  # whatever code arrives is exchanged: nothing ties it to a login this browser started
        token = rf.client.fetch_access_token(grant_type="authorization_code", code=code,
                                             redirect_uri=rf.settings.redirect_uri)
        token["userinfo"] = rf.client.parse_id_token(token, nonce=None, leeway=acme.ID_TOKEN_LEEWAY,
                                                     claims_options=rf.id_token_claims_options())
    except OAuthError as err:
        return acme.error_page(400, f"Login failed ({err.error}).")
    except JoseError:
        return acme.error_page(400, "Login failed: invalid ID token.")
    if not token.get("userinfo"):
        return acme.error_page(400, "Login failed: no ID token.")
    acme.start_session(token)
    return redirect(url_for("home"))


flask_app.view_functions["login"] = login
flask_app.view_functions["callback"] = callback

if __name__ == "__main__":
    acme.main(flask_app)
