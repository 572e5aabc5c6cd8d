"""BROKEN on purpose (SEC-03 fails): a failed API call is logged with its request headers.

The mistake: "helpful" error logging. When the API answers an error (the 401 of an expired or
revoked access token, a 403, a 5xx), the app logs the failed request at ERROR level, headers
included, and so writes `Authorization: Bearer <access token>` to its logs, where everyone with
access to the logging system can read and replay it.

Everything else is the correct app (app.py); only RequestFinance.send() is wrapped.
Config: broken_logs_bearer_on_error.toml.
"""

import app as acme


class LogsFailedRequests(acme.RequestFinance):
    def send(self, token, path, organization):
        response = super().send(token, path, organization)
        if not response.ok:
            sent = response.request
            acme.log.error("Request Finance API error %s on %s %s; request headers: %s",
                           response.status_code, sent.method, sent.url, dict(sent.headers))
        return response


acme.RequestFinance = LogsFailedRequests

if __name__ == "__main__":
    acme.main()
