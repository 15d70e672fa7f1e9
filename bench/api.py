"""The HTTP API under load: concurrent requests for codes that already exist, on a loopback port.

    .venv/bin/python bench/api.py [--codes 50] [--requests 5000] [--concurrency 32]

``minpcode``'s real server (``create_app``, uvicorn, sandbox upstreams, a fresh data dir) runs in a
child process so the client does not share its interpreter. The bench first makes ``--codes`` B
codes through ``POST /api/weapp/qrcode``, then sends ``--requests`` requests for those same codes
from ``--concurrency`` connections and prints requests per second with p50/p99 latency for:

- ``POST /api/weapp/qrcode`` answered by reuse (auth, validation, reuse lookup, audit row; no
  upstream call), and
- ``GET /codes/{id}.png`` (the image bytes), and the same with ``If-None-Match`` (304).

The load comes from a bare asyncio HTTP/1.1 keep-alive client in this process (httpx only sets up);
on a small machine client and server share the CPUs, so the figures are a floor for the server.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import sys
import tempfile
import time
from pathlib import Path
from typing import cast
from urllib.parse import urlsplit

import httpx

KEY = "bench-2b7e151628aed2a6abf7"


def _serve(port: int, data_dir: str) -> None:
    import uvicorn
    from pydantic import SecretStr

    from bot.config import Settings
    from bot.server import create_app

    settings = Settings(_env_file=None, minpcode_sandbox=True, minpcode_data_dir=Path(data_dir),
                        minpcode_public_url=f"http://127.0.0.1:{port}", minpcode_api_keys=SecretStr(f"bench:{KEY}"))
    uvicorn.run(create_app(settings), host="127.0.0.1", port=port, log_level="warning", access_log=False)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def wait_ready(url: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient(trust_env=False) as client:
        while True:
            try:
                if (await client.get(f"{url}/healthz")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit("the server did not start")
            await asyncio.sleep(0.1)


class _Answers(asyncio.Protocol):
    """Reads HTTP/1.1 answers off one socket as they arrive (a status line, headers, Content-Length body)."""

    def __init__(self) -> None:
        self.buffer = b""
        self.waiting: asyncio.Future[int] | None = None
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is one without subclassing it

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0 or self.waiting is None:
            return
        head = self.buffer[:end].lower() + b"\r\n"
        at = head.find(b"\r\ncontent-length:")
        length = int(head[at + 17:head.find(b"\r\n", at + 2)]) if at >= 0 else 0
        if len(self.buffer) < end + 4 + length:
            return
        status = int(self.buffer[9:12])
        self.buffer = self.buffer[end + 4 + length:]
        waiting, self.waiting = self.waiting, None
        waiting.set_result(status)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.waiting is not None and not self.waiting.done():
            self.waiting.set_exception(exc or ConnectionError("closed before the answer"))


class Connection:
    """One keep-alive HTTP/1.1 connection with just enough client to time the server, not the client:
    a bare asyncio protocol (httpx's per-request overhead, or even asyncio streams', would otherwise take
    CPU the server shares on a small machine)."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.protocol: _Answers | None = None

    async def open(self) -> Connection:
        if self.protocol is None:
            _, self.protocol = await asyncio.get_running_loop().create_connection(_Answers, self.host, self.port)
        return self

    async def request(self, raw: bytes) -> int:
        """Send one request and wait for its answer's status (the body is read and dropped)."""
        await self.open()
        assert self.protocol is not None and self.protocol.transport is not None
        answer: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self.protocol.waiting = answer
        self.protocol.transport.write(raw)
        return await answer

    async def close(self) -> None:
        if self.protocol is not None and self.protocol.transport is not None:
            self.protocol.transport.close()


def http_request(method: str, target: str, host: str, headers: dict[str, str] | None = None,
                 body: bytes = b"") -> bytes:
    lines = [f"{method} {target} HTTP/1.1", f"Host: {host}", f"Content-Length: {len(body)}"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def load(label: str, url: str, total: int, concurrency: int, requests: list[bytes], expect: int) -> None:
    parts = urlsplit(url)
    latencies: list[float] = []
    failures = 0
    counter = iter(range(total))

    async def worker() -> None:
        nonlocal failures
        connection = Connection(parts.hostname or "127.0.0.1", parts.port or 80)
        try:
            for i in counter:
                started = time.perf_counter()
                status = await connection.request(requests[i % len(requests)])
                latencies.append(time.perf_counter() - started)
                failures += status != expect
        finally:
            await connection.close()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    print(f"{label:<44} {total / elapsed:8.0f} req/s   p50 {percentile(latencies, 0.50) * 1000:6.1f} ms   "
          f"p99 {percentile(latencies, 0.99) * 1000:6.1f} ms"
          + (f"   {failures} unexpected" if failures else ""))


async def bench(url: str, codes: int, requests: int, concurrency: int) -> None:
    headers = {"Authorization": f"Bearer {KEY}"}
    bodies = [{"path": "/pages/product/detail", "scene": f"product_id={n}"} for n in range(codes)]
    async with httpx.AsyncClient(trust_env=False, timeout=60) as client:
        started = time.perf_counter()
        made = [(await client.post(f"{url}/api/weapp/qrcode", json=b, headers=headers)).json() for b in bodies]
        elapsed = time.perf_counter() - started
        assert all(m["code"] == 0 and not m["reused"] for m in made), made[:3]
        images = [m["data"] for m in made]
        etags = [(await client.get(i)).headers["etag"] for i in images]
    print(f"made {codes} B codes (one at a time, sandbox upstream) in {elapsed:.2f} s "
          f"({elapsed / codes * 1000:.1f} ms each)")
    print(f"{requests} requests per line, {concurrency} concurrent connections")

    host = urlsplit(url).netloc
    auth = {**headers, "Content-Type": "application/json"}
    posts = [http_request("POST", "/api/weapp/qrcode", host, auth, json.dumps(b).encode()) for b in bodies]
    gets = [http_request("GET", urlsplit(i).path, host) for i in images]
    conditional = [http_request("GET", urlsplit(i).path, host, {"If-None-Match": e}) for i, e in zip(images, etags, strict=True)]
    await load("POST /api/weapp/qrcode (existing code)", url, requests, concurrency, posts, 200)
    await load("GET /codes/{id}.png", url, requests, concurrency, gets, 200)
    await load("GET /codes/{id}.png If-None-Match (304)", url, requests, concurrency, conditional, 304)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--codes", type=int, default=50)
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()

    from bot.sandbox.server import free_port

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory() as data_dir:
        server = multiprocessing.get_context("spawn").Process(target=_serve, args=(port, data_dir), daemon=True)
        server.start()
        try:
            asyncio.run(wait_ready(url))
            print(f"minpcode serve (sandbox) on {url}, Python {sys.version.split()[0]}")
            asyncio.run(bench(url, args.codes, args.requests, args.concurrency))
        finally:
            server.terminate()
            server.join(10)


if __name__ == "__main__":
    main()
