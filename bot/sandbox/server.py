"""Run any ASGI app on a real loopback port in a background thread (tests, benches, sandbox serve)."""

from __future__ import annotations

import socket
import threading
import time
from typing import Any

import uvicorn


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ServerThread:
    """``with ServerThread(app) as server: server.url`` — uvicorn on 127.0.0.1, stopped on exit."""

    def __init__(self, app: Any, port: int | None = None, **config: Any) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config.setdefault("log_level", "warning")
        config.setdefault("lifespan", "auto")
        self._server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, **config))
        self._thread = threading.Thread(target=self._server.run, daemon=True)

    def start(self) -> ServerThread:
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"server on port {self.port} did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)

    def __enter__(self) -> ServerThread:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
