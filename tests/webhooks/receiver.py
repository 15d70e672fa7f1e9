"""A webhook receiver on 127.0.0.1 for tests: it checks each delivery's signature the way docs/webhooks.md tells a
receiver to, written here from that recipe (it imports nothing of ours), and answers what the test scripts.

    receiver = Receiver(statuses=[500, 500]).start()   # 500 twice, then 200
    receiver.secret = added.secret                     # the endpoint's signing secret
    receiver.wait(1)                                   # the deliveries received so far, once there is one
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

TOLERANCE = 300  # seconds, as the documentation's example


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    verified: bool
    status: int

    @property
    def event(self) -> dict[str, Any]:
        parsed: dict[str, Any] = json.loads(self.body)
        return parsed


def verify(secret: str, timestamp: str | None, signature: str | None, body: bytes, now: float) -> bool:
    """The documented recipe: HMAC-SHA256 of "<timestamp>.<raw body>" under the secret, hex, after "v1="; the
    timestamp within five minutes of now."""
    if not timestamp or not signature or not timestamp.isdigit() or abs(now - int(timestamp)) > TOLERANCE:
        return False
    expected = "v1=" + hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, signature)


class Receiver:
    def __init__(self, secret: str = "", statuses: list[int] | None = None, port: int = 0) -> None:
        self.secret = secret
        self.statuses = list(statuses or [])  # answered in turn; 200 once they run out
        self.received: list[Received] = []
        self._port = port
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}/hooks/minpcode"

    def start(self) -> Receiver:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                ok = verify(owner.secret, self.headers.get("X-Minpcode-Timestamp"),
                            self.headers.get("X-Minpcode-Signature"), body, time.time())
                with owner._lock:
                    status = owner.statuses.pop(0) if owner.statuses else (200 if ok else 401)
                    owner.received.append(Received({k.lower(): v for k, v in self.headers.items()}, body, ok, status))
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self._port), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def wait(self, count: int, timeout: float = 30.0) -> list[Received]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if len(self.received) >= count:
                    return list(self.received)
            time.sleep(0.05)
        raise AssertionError(f"{len(self.received)} deliveries received, {count} expected")

    def of(self, event_type: str) -> list[Received]:
        with self._lock:
            return [r for r in self.received if r.event["type"] == event_type]
