"""A WSGI app that answers with the pid of the worker that served the request, the wall clock it
read three ways and its monotonic clock; run under gunicorn to see that every worker follows
rfcheck's clock."""

import datetime
import json
import os
import time


def app(environ, start_response):
    body = json.dumps({"pid": os.getpid(), "time": time.time(),
                       "datetime": datetime.datetime.now(datetime.timezone.utc).timestamp(),
                       "gmtime": time.mktime(time.gmtime()) - time.mktime(time.gmtime(0)),
                       "monotonic": time.monotonic(), "perf_counter": time.perf_counter()}).encode()
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body))),
                              ("Connection", "close")])
    return [body]
