"""BROKEN on purpose (SEC-05 fails): the invoices page shows the user's tokens.

The mistake: a "debug panel" left in the page, rendering the user's token dict as JSON (access
token, refresh token, expiry). Whatever reaches the browser can be read by any script on the page
(XSS), browser extensions, caches and screenshots; the refresh token gives lasting access to the
user's Request Finance account. Tokens must stay on the server (backend for frontend).

Everything else is the correct app (app.py); only the /invoices view is wrapped.
Config: broken_tokens_in_page.toml.
"""

import json

from markupsafe import escape

import app as acme

flask_app = acme.create_app()
show_invoices = flask_app.view_functions["invoices"]


def invoices_with_debug_panel():
    response = flask_app.make_response(show_invoices())
    grant = acme.current_grant()
    if grant is not None and response.status_code == 200:
        token = {"access_token": grant.access_token, "token_type": "Bearer",
                 "refresh_token": grant.refresh_token, "expires_at": int(grant.expires_at)}
        panel = f"<details><summary>debug</summary><pre>{escape(json.dumps(token, indent=2))}</pre></details>"
        response.set_data(response.get_data(as_text=True).replace("</body>", panel + "</body>"))
    return response


flask_app.view_functions["invoices"] = invoices_with_debug_panel

if __name__ == "__main__":
    acme.main(flask_app)
