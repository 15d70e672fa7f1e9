"""The live-code resolver under 200 concurrent scans, and every scan counted after a clean shutdown.

    .venv/bin/python bench/resolver.py [--codes 20] [--scans 10000] [--concurrency 200]

``minpcode``'s real server (``create_app`` under uvicorn, sandbox upstreams, a fresh data dir) runs in a
child process. The bench makes ``--codes`` live codes through ``POST /api/weapp/qrcode`` (``"live": true``),
then scans them: ``GET /api/scenes/{key}?visitor=…`` exactly as the router page asks,

- in waves of ``--concurrency`` scans at once, each on a new connection (a phone per scan), and
- from ``--concurrency`` keep-alive connections at once (``--scans`` in all),

and prints p50/p99 for each (target: p99 under 20 ms). It then stops the server the way an operator does
(SIGTERM: uvicorn's graceful shutdown, the service closes, the scan flusher writes what is in memory) and
counts the scans rows in SQLite: every answered scan must be there. Last, the same after a SIGKILL (a crash):
what was not yet flushed is lost, at most the last second of scans.

The per-IP limit (MINPCODE_RESOLVER_RATE) is raised for the bench: every scan here comes from 127.0.0.1.
Client and server share this machine's CPUs, so the figures are a floor for the server.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import signal
import sqlite3
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from api import Connection, http_request, percentile, wait_ready

KEY = "bench-resolver-6bc1bee22e409f96"


def _serve(port: int, data_dir: str) -> None:
    import uvicorn
    from pydantic import SecretStr

    from bot.config import Settings
    from bot.server import create_app

    settings = Settings(_env_file=None, minpcode_sandbox=True, minpcode_data_dir=Path(data_dir),
                        minpcode_public_url=f"http://127.0.0.1:{port}", minpcode_api_keys=SecretStr(f"bench:{KEY}"),
                        minpcode_resolver_rate=10_000_000)
    uvicorn.run(create_app(settings), host="127.0.0.1", port=port, log_level="warning", access_log=False)


def start(data_dir: str) -> tuple[multiprocessing.process.BaseProcess, str]:
    from bot.sandbox.server import free_port

    port = free_port()
    process = multiprocessing.get_context("spawn").Process(target=_serve, args=(port, data_dir), daemon=True)
    process.start()
    url = f"http://127.0.0.1:{port}"
    asyncio.run(wait_ready(url))
    return process, url


async def make_codes(url: str, codes: int) -> list[str]:
    headers = {"Authorization": f"Bearer {KEY}"}
    async with httpx.AsyncClient(trust_env=False, timeout=60) as client:
        made = [(await client.post(f"{url}/api/weapp/qrcode", headers=headers,
                                   json={"path": f"/pages/coupon/get?id={n}&from=poster", "live": True})).json()
                for n in range(codes)]
    assert all(m["code"] == 0 for m in made), made[:2]
    return [m["scene"] for m in made]


def report(label: str, latencies: list[float], elapsed: float, failures: int) -> None:
    print(f"{label:<52} {len(latencies) / elapsed:7.0f} scans/s   p50 {percentile(latencies, 0.50) * 1000:6.1f} ms   "
          f"p99 {percentile(latencies, 0.99) * 1000:6.1f} ms" + (f"   {failures} not 200" if failures else ""))


async def waves(url: str, keys: list[str], concurrency: int, rounds: int) -> int:
    parts = urlsplit(url)
    latencies: list[float] = []
    failures = 0

    async def one(n: int) -> None:
        nonlocal failures
        connection = Connection(parts.hostname or "127.0.0.1", parts.port or 80)
        raw = http_request("GET", f"/api/scenes/{keys[n % len(keys)]}?visitor=phone-{n}", parts.netloc,
                           {"Connection": "close"})
        started = time.perf_counter()
        try:
            status = await connection.request(raw)
        finally:
            await connection.close()
        latencies.append(time.perf_counter() - started)
        failures += status != 200

    started = time.perf_counter()
    for r in range(rounds):
        await asyncio.gather(*(one(r * concurrency + i) for i in range(concurrency)))
    report(f"{concurrency} at once, new connection each (x{rounds})", latencies, time.perf_counter() - started, failures)
    return len(latencies) - failures


async def keep_alive(url: str, keys: list[str], concurrency: int, total: int) -> int:
    parts = urlsplit(url)
    latencies: list[float] = []
    failures = 0
    counter = iter(range(total))
    requests = [http_request("GET", f"/api/scenes/{keys[n % len(keys)]}?visitor=v{n % 997}", parts.netloc)
                for n in range(len(keys) * 50)]

    async def worker() -> None:
        nonlocal failures
        connection = Connection(parts.hostname or "127.0.0.1", parts.port or 80)
        try:
            for n in counter:
                started = time.perf_counter()
                status = await connection.request(requests[n % len(requests)])
                latencies.append(time.perf_counter() - started)
                failures += status != 200
        finally:
            await connection.close()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    report(f"{concurrency} keep-alive connections, {total} scans", latencies, time.perf_counter() - started, failures)
    return len(latencies) - failures


def stored_scans(data_dir: str) -> int:
    db = sqlite3.connect(Path(data_dir) / "minpcode.db")
    try:
        return int(db.execute("SELECT count(*) FROM scans").fetchone()[0])
    finally:
        db.close()


def stop(process: multiprocessing.process.BaseProcess, how: signal.Signals) -> None:
    assert process.pid is not None
    os.kill(process.pid, how)
    process.join(30)


def main() -> None:
    try:
        import uvloop  # the client's own overhead is smaller on it (the server uses it too, via uvicorn)

        uvloop.install()
    except ImportError:
        pass
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--codes", type=int, default=20)
    parser.add_argument("--scans", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=10)
    args = parser.parse_args()
    print(f"Python {sys.version.split()[0]}, {os.cpu_count()} CPUs shared by client and server")

    with tempfile.TemporaryDirectory() as data_dir:
        process, url = start(data_dir)
        keys = asyncio.run(make_codes(url, args.codes))
        print(f"minpcode serve (sandbox) on {url}: {args.codes} live codes")
        asyncio.run(keep_alive(url, keys, 1, 2000))  # one at a time: the server's own time per scan
        answered = 2000
        answered += asyncio.run(waves(url, keys, args.concurrency, args.rounds))
        answered += asyncio.run(keep_alive(url, keys, args.concurrency, args.scans))
        stop(process, signal.SIGTERM)
        stored = stored_scans(data_dir)
        print(f"clean shutdown (SIGTERM): {answered} scans answered, {stored} in SQLite"
              + ("  -- every scan counted" if stored == answered else f"  -- {answered - stored} LOST"))

    with tempfile.TemporaryDirectory() as data_dir:
        process, url = start(data_dir)
        keys = asyncio.run(make_codes(url, args.codes))
        answered = asyncio.run(keep_alive(url, keys, args.concurrency, args.scans))
        stop(process, signal.SIGKILL)
        stored = stored_scans(data_dir)
        print(f"crash (SIGKILL right after the load): {answered} answered, {stored} in SQLite, "
              f"{answered - stored} lost (the flusher writes every second)")


if __name__ == "__main__":
    main()
