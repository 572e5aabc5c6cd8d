"""BROKEN on purpose (REL-01 fails): any Request Finance error takes the whole app down.

The mistake: a "fail fast" error handler. When Request Finance refuses something (a refresh
token that was revoked, a missing scope, a token endpoint still busy after the retries, an API
error), the handler logs it and exits the process "so that the supervisor restarts it in a clean
state". Every user loses their session, the request that met the error gets no answer at all,
and the app stays down until something restarts it.

Everything else is the correct app (app.py); only register_error_pages() is replaced.
Config: broken_crash_on_error.toml.
"""

import logging
import os

import app as acme


def exit_on_request_finance_error(err: acme.RequestFinanceError) -> None:
    acme.log.critical("Request Finance error: %s; exiting so that the supervisor restarts the app", err)
    logging.shutdown()
    os._exit(1)


def fail_fast_error_pages(flask_app) -> None:
    flask_app.register_error_handler(acme.RequestFinanceError, exit_on_request_finance_error)


acme.register_error_pages = fail_fast_error_pages  # instead of the pages and redirects of app.py

if __name__ == "__main__":
    acme.main()
