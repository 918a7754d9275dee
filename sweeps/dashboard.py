"""``make dashboard``: optuna-dashboard over every study, answering only to loopback names.

    python -m sweeps.dashboard [--port 8080] [--storage URL]

optuna-dashboard accepts any ``Host`` header, so a web page the user visits could reach it
through DNS rebinding (its own name resolved to 127.0.0.1) and read or delete studies. Served
here behind a check that refuses, with 403, every request whose ``Host`` is not a loopback
name; the storage is opened as every sweep opens it (a torn journal repaired first).
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Callable, Iterable
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, make_server

from sweeps import storage
from sweeps.space import SweepError

LOOPBACK = ("127.0.0.1", "localhost", "[::1]")


def host_name(header: str) -> str:
    """``Host`` without its port: ``127.0.0.1:8080`` -> ``127.0.0.1``, ``[::1]:80`` -> ``[::1]``."""
    return header.rsplit(":", 1)[0] if header.count(":") == 1 or "]:" in header else header


def loopback_only(app: Callable) -> Callable:
    """The WSGI app, for requests addressed to a loopback name only."""

    def guarded(environ: dict[str, Any], start_response: Callable) -> Iterable[bytes]:
        if host_name(environ.get("HTTP_HOST", "")).lower() not in LOOPBACK:
            start_response("403 Forbidden", [("Content-Type", "text/plain")])
            return [b"optuna-dashboard answers only to 127.0.0.1, localhost and [::1]\n"]
        return app(environ, start_response)

    return guarded


class QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # one line per request is noise
        pass


def main(argv: list[str] | None = None) -> int:
    import optuna_dashboard

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--storage", default=None, help="default: the project's journal")
    args = parser.parse_args(argv)
    url = args.storage or storage.default(None)
    try:
        app = loopback_only(optuna_dashboard.wsgi(storage.open_storage(storage.check(url))))
    except SweepError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    server = make_server("127.0.0.1", args.port, app, handler_class=QuietHandler)
    print(f"optuna-dashboard: http://127.0.0.1:{server.server_port}/dashboard", flush=True)
    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C ends it quietly
        server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
