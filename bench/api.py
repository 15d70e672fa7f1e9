"""The HTTP API under load: concurrent requests for codes that already exist, on a loopback port.

    .venv/bin/python bench/api.py [--codes 50] [--requests 5000] [--concurrency 32]

``minpcode``'s real server (``create_app``, uvicorn, sandbox upstreams, a fresh data dir) runs in a
child process so the client does not share its interpreter. The bench first makes ``--codes`` B
codes through ``POST /api/weapp/qrcode``, then sends ``--requests`` requests for those same codes
from ``--concurrency`` connections and prints requests per second with p50/p99 latency for:

- ``POST /api/weapp/qrcode`` answered by reuse (auth, validation, reuse lookup, audit row; no
  upstream call), and
- ``GET /codes/{id}.png`` (the image bytes), and the same with ``If-None-Match`` (304).

The client is one Python process (httpx), so on small machines it may be the limit: the figures are
a floor for the server.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

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


async def load(label: str, total: int, concurrency: int, call: Callable[[httpx.AsyncClient, int], Awaitable[int]],
               expect: int) -> None:
    latencies: list[float] = []
    failures = 0
    counter = iter(range(total))
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(trust_env=False, timeout=30, limits=limits) as client:
        async def worker() -> None:
            nonlocal failures
            for i in counter:
                started = time.perf_counter()
                status = await call(client, i)
                latencies.append(time.perf_counter() - started)
                failures += status != expect

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    print(f"{label:<44} {total / elapsed:8.0f} req/s   p50 {percentile(latencies, 0.50) * 1000:6.1f} ms   "
          f"p99 {percentile(latencies, 0.99) * 1000:6.1f} ms   mean {statistics.fmean(latencies) * 1000:6.1f} ms"
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

    async def reuse(client: httpx.AsyncClient, i: int) -> int:
        response = await client.post(f"{url}/api/weapp/qrcode", json=bodies[i % codes], headers=headers)
        return response.status_code if response.json().get("reused") else -1

    async def image(client: httpx.AsyncClient, i: int) -> int:
        return (await client.get(images[i % codes])).status_code

    async def not_modified(client: httpx.AsyncClient, i: int) -> int:
        return (await client.get(images[i % codes], headers={"If-None-Match": etags[i % codes]})).status_code

    await load("POST /api/weapp/qrcode (existing code)", requests, concurrency, reuse, 200)
    await load("GET /codes/{id}.png", requests, concurrency, image, 200)
    await load("GET /codes/{id}.png If-None-Match (304)", requests, concurrency, not_modified, 304)


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
