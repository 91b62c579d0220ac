"""A small real HTTP server standing in for an operator's SMS gateway.

The webhook sender (votesvc.sms) posts to it over loopback; the test reads
what arrived, and can make the gateway fail (``status``) as a real one would.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import orjson


@dataclass(frozen=True)
class Delivery:
    body: dict[str, Any]
    raw: bytes
    headers: dict[str, str]


class SmsGateway:
    """Records each POST; answers ``status`` (200 by default)."""

    def __init__(self) -> None:
        self.deliveries: list[Delivery] = []
        self.status = 200
        self._lock = threading.Lock()
        gateway = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with gateway._lock:
                    status = gateway.status
                    if 200 <= status < 300:
                        headers = {k.lower(): v for k, v in self.headers.items()}
                        gateway.deliveries.append(Delivery(orjson.loads(raw), raw, headers))
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/sms"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> SmsGateway:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def last_code(self, phone: str) -> str:
        """The code most recently delivered to ``phone`` (11 digits)."""
        with self._lock:
            for delivery in reversed(self.deliveries):
                if delivery.body["phone"] == "+86" + phone:
                    code: str = delivery.body["code"]
                    return code
        raise AssertionError(f"no code was delivered to {phone}")
