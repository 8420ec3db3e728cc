"""A tiny WSGI app, the way a team's service sits on Heroku: it binds $PORT and prints
one log line per request on stdout (the platform turns it into an `app[web.N]` line).

Run it behind simctl's router: `simctl up` in this directory (see simctl.yaml).
"""

import os
import time
from socketserver import ThreadingMixIn
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

DYNO = os.environ.get("DYNO", "web.1")


def app(environ, start_response):
    started = time.monotonic()
    body = f"hello from {DYNO}\n".encode()
    start_response("200 OK", [("Content-Type", "text/plain"),
                              ("Content-Length", str(len(body)))])
    took = (time.monotonic() - started) * 1000
    request_id = environ.get("HTTP_X_REQUEST_ID", "-")
    # One line per request on stdout; flush, as stdout is a pipe, not a terminal.
    print(f'at=info method={environ["REQUEST_METHOD"]} path="{environ["PATH_INFO"]}" '
          f"status=200 duration={took:.0f}ms request_id={request_id}", flush=True)
    return [body]


class ThreadingServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class QuietHandler(WSGIRequestHandler):
    def log_message(self, format, *args):  # the app prints its own line
        pass


if __name__ == "__main__":
    port = int(os.environ["PORT"])
    server = make_server(os.environ.get("HOST", "127.0.0.1"), port, app,
                         server_class=ThreadingServer, handler_class=QuietHandler)
    print(f"listening on port {port}", flush=True)
    server.serve_forever()
