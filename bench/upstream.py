"""Bench the shared WeChat client: 200 concurrent A/B/C codes on a cold token cache.

    .venv/bin/python bench/upstream.py [--codes 200] [--timeout 60]

Starts the WeChat emulator on a loopback port (ServerThread), wrapped in a small ASGI middleware
that times each request inside the emulator, then fires every code request at once through one
WeChatClient. Prints how many token requests reached the emulator (must be 1: single flight),
codes per second, and p50/p99 of the time the client side adds over the emulator's own handling
time (end-to-end in the client minus time inside the emulator for the same request: token wait,
connection pool, HTTP, parsing). Client and emulator share one process and so one GIL; the added
time is therefore an upper bound. Exits 0 when every code came back and exactly one token request
was made, 1 otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx
from pydantic import SecretStr

from bot.models import UpstreamResult
from bot.sandbox import SANDBOX_APPID, SANDBOX_SECRET
from bot.sandbox.server import ServerThread
from bot.sandbox.wechat import WeChatEmulator
from bot.upstream.wechat import WeChatClient

TOKEN_PATH = "/cgi-bin/stable_token"


def key(path: str, body: dict[str, Any]) -> tuple[str, str]:
    return path, json.dumps(body, sort_keys=True)


class Timing:
    """ASGI middleware: seconds each request spent inside the app, keyed by path and JSON body."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.spans: dict[tuple[str, str], tuple[float, float]] = {}
        self._lock = threading.Lock()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        body = b""
        more = True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                break
            body += message.get("body", b"")
            more = message.get("more_body", False)
        replay = [{"type": "http.request", "body": body, "more_body": False}]

        async def recv() -> Any:
            return replay.pop() if replay else await receive()

        started = time.perf_counter()

        async def snd(message: dict[str, Any]) -> None:
            await send(message)
            if message["type"] == "http.response.body" and not message.get("more_body", False):
                ended = time.perf_counter()
                try:
                    parsed = json.loads(body)
                except ValueError:
                    return
                with self._lock:
                    self.spans[key(scope["path"], parsed)] = (started, ended)

        await self.app(scope, recv, snd)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


Outcome = tuple[str, dict[str, Any], float, float, UpstreamResult]


async def one_code(client: WeChatClient, i: int) -> Outcome:
    """The i-th code (A, B or C in turn): its path, the body the client sends, start, end, result."""
    kind = "ABC"[i % 3]
    started = time.perf_counter()
    if kind == "A":
        path, body = "/wxa/getwxacode", {"path": f"pages/item/item?id={i}", "width": 430, "auto_color": False,
                                         "is_hyaline": False, "env_version": "release"}
        result = await client.a_code(body["path"])
    elif kind == "B":
        path, body = "/wxa/getwxacodeunlimit", {"scene": f"id={i}", "check_path": True, "width": 430,
                                                "auto_color": False, "is_hyaline": False, "env_version": "release"}
        result = await client.b_code(body["scene"])
    else:
        path, body = "/cgi-bin/wxaapp/createwxaqrcode", {"path": f"pages/item/item?c={i}", "width": 430}
        result = await client.c_code(body["path"])
    return path, body, started, time.perf_counter(), result


def report(title: str, outcomes: list[Outcome | BaseException], wall: float, timing: Timing) -> bool:
    """Print one phase's figures; True when every code came back as an image and was matched."""
    failures = [o for o in outcomes if isinstance(o, BaseException)]
    done = [o for o in outcomes if not isinstance(o, BaseException)]
    before, after, added, inside = [], [], [], []
    for path, body, started, ended, result in done:
        if not (result.image and result.mime in ("image/jpeg", "image/png")):
            failures.append(ValueError(f"no image for {path}"))
            continue
        span = timing.spans.get(key(path, body))
        if span is None:
            continue
        # One process, one perf_counter: client and emulator times are directly comparable.
        inside.append(span[1] - span[0])
        before.append(span[0] - started)
        after.append(ended - span[1])
        added.append((ended - started) - (span[1] - span[0]))
    ms = 1000.0

    def p(values: list[float]) -> str:
        return f"p50 {percentile(values, 50) * ms:8.1f} ms   p99 {percentile(values, 99) * ms:8.1f} ms"

    print(f"== {title}")
    print(f"codes made              {len(done)} of {len(outcomes)}, failures {len(failures)}")
    print(f"wall time               {wall:.3f} s")
    print(f"codes per second        {len(done) / wall:.1f}")
    if added:
        print(f"emulator's own time     {p(inside)}")
        print(f"client-added time       {p(added)}   (end-to-end minus emulator time; matched {len(added)})")
        print(f"  of which before       {p(before)}   (token wait, connection pool, send, accept queue)")
        print(f"  of which after        {p(after)}   (response transfer, image sniffing, result)")
    for failure in failures[:5]:
        print(f"failure: {type(failure).__name__}: {failure}")
    return not failures and len(added) == len(done)


async def run(codes: int, timeout: float, warm: int) -> int:
    emulator = WeChatEmulator()
    timing = Timing(emulator.app)
    with ServerThread(timing) as server:
        async with httpx.AsyncClient(timeout=30, trust_env=False) as http:
            client = WeChatClient(http, server.url, SANDBOX_APPID, SecretStr(SANDBOX_SECRET))
            started = time.perf_counter()
            burst = await asyncio.wait_for(
                asyncio.gather(*(one_code(client, i) for i in range(codes)), return_exceptions=True), timeout)
            burst_wall = time.perf_counter() - started
            token_requests = emulator.calls[TOKEN_PATH]

            # The same client, warm token, one code at a time: what the client adds with no queue.
            started = time.perf_counter()
            serial: list[Outcome | BaseException] = []
            for i in range(codes, codes + warm):
                try:
                    serial.append(await asyncio.wait_for(one_code(client, i), timeout))
                except Exception as exc:  # reported, not raised: the bench always prints its figures
                    serial.append(exc)
            serial_wall = time.perf_counter() - started
    ok = report(f"{codes} concurrent codes, A/B/C in turn, cold token cache", list(burst), burst_wall, timing)
    print(f"token requests          {token_requests}   (emulator calls counter; must be 1)")
    if warm:
        ok = report(f"{warm} codes one at a time, warm token (no queueing)", serial, serial_wall, timing) and ok
    print(f"token requests in all   {emulator.calls[TOKEN_PATH]}")
    return 0 if ok and token_requests == 1 else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--codes", type=int, default=200)
    parser.add_argument("--warm", type=int, default=30, help="codes made one at a time afterwards")
    parser.add_argument("--timeout", type=float, default=60.0, help="give up a phase after this many seconds")
    args = parser.parse_args()
    return asyncio.run(run(args.codes, args.timeout, args.warm))


if __name__ == "__main__":
    sys.exit(main())
