"""The load test's SMS gateway: receives votesvc's webhook, hands the codes to locust.

    python -m loadtest.sms_webhook --port 18190     # VOTESVC_SMS_WEBHOOK_SECRET in the environment

``POST /sms`` takes votesvc's webhook call (``VOTESVC_SMS_SENDER=webhook:
http://127.0.0.1:PORT/sms``), checks its signature with the secret both share
(``votesvc.sms.verify_signature``; a bad one answers ``401``) and keeps the code
for the phone. ``GET /code/<11 digits>`` answers that phone's latest code
(``404`` when none came), which is how a locust verified voter "reads its SMS".
Loopback only; it runs until SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from votesvc.sms import verify_signature

__all__ = ["CodeBook", "main", "serve"]


class CodeBook:
    """The latest code per phone (11 digits), and how many calls were refused."""

    def __init__(self, secret: bytes) -> None:
        self.secret = secret
        self.codes: dict[str, str] = {}
        self.refused = 0
        self.lock = threading.Lock()


def serve(book: CodeBook, port: int) -> ThreadingHTTPServer:
    """A server on 127.0.0.1:``port`` (0: any free port) writing into ``book``; not started."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            stamp = self.headers.get("X-Votesvc-Timestamp", "")
            signature = self.headers.get("X-Votesvc-Signature", "")
            if self.path != "/sms" or not verify_signature(book.secret, stamp, raw, signature):
                with book.lock:
                    book.refused += 1
                self._reply(401, b"")
                return
            message = json.loads(raw)
            phone = str(message["phone"]).removeprefix("+86")
            with book.lock:
                book.codes[phone] = str(message["code"])
            self._reply(204, b"")

        def do_GET(self) -> None:
            phone = self.path.removeprefix("/code/")
            with book.lock:
                code = book.codes.get(phone) if self.path.startswith("/code/") else None
            if code is None:
                self._reply(404, b"")
            else:
                self._reply(200, code.encode())

        def _reply(self, status: int, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # no line per code: they are secrets, however fake

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    return server


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    secret = os.environ.get("VOTESVC_SMS_WEBHOOK_SECRET", "")
    if not secret:
        print("sms_webhook: VOTESVC_SMS_WEBHOOK_SECRET must be set", file=sys.stderr)
        return 2
    book = CodeBook(secret.encode())
    server = serve(book, args.port)
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    thread = threading.Thread(target=server.serve_forever, name="sms-webhook", daemon=True)
    thread.start()
    stop.wait()
    server.shutdown()
    server.server_close()
    print(f"sms_webhook: {len(book.codes)} phones got codes, {book.refused} calls refused")
    return 0


if __name__ == "__main__":
    sys.exit(main())
