"""BROKEN on purpose (REL-02 and TOKEN-07 warn): no error handling around the token refresh.

The mistake: the refresh is written for the happy path. When the token endpoint answers 429 or
503 there is no retry and no Retry-After: the error propagates out of the view and Flask answers
the user with a 500 Internal Server Error. Worse, a 429 is taken for "the session is broken": the
user's tokens are thrown away, so their next request sends them to log in again although their
refresh token was still good.

Everything else is the correct app (app.py); only RequestFinance.refresh() is replaced (compare
it with app.py: no token_request() around the call, no handler for the outage).
Config: broken_error_500_on_503.toml.
"""

from authlib.integrations.flask_client import OAuthError

import app as acme


class RefreshWithoutErrorHandling(acme.RequestFinance):
    def refresh(self, grant: acme.Grant, stale: str) -> str:
        with grant.lock:
            if grant.ended:
                raise acme.LoginRequired("session ended")
            if grant.access_token != stale:
                return grant.access_token
            if not grant.refresh_token:
                self.end(grant, "no refresh token")
            acme.log.info("refreshing the access token of user %s", grant.sub)
            try:
                token = self.client.fetch_access_token(grant_type="refresh_token",
                                                       refresh_token=grant.refresh_token)
            except acme.TokenEndpointBusy as busy:
                if busy.status == 429:  # "rate limited: something is wrong with this session, log out"
                    grant.ended = True
                    grant.access_token, grant.refresh_token = "", None
                raise  # nothing handles it: Flask answers 500
            except OAuthError as err:
                self.end(grant, f"refresh refused ({err.error})")
            self.check_same_user(grant, token)
            grant.update(token)
            return grant.access_token


acme.RequestFinance = RefreshWithoutErrorHandling

if __name__ == "__main__":
    acme.main()
