"""200 concurrent encrypted WeCom messages against the real ``minpcode serve`` app.

    .venv/bin/python bench/wecom_callback.py [--messages 200] [--duplicates 40] [--users 40]

Our server (``create_app`` under uvicorn) runs in its own process, as ``minpcode serve`` does; WeCom's server
(``tests/emulators/wecom.py``) and WeChat/GrowingIO (the sandbox emulators) run in this process on their own
loopback ports, as remote upstreams would. The client is a bare asyncio HTTP/1.1 client (one connection per
callback, as WeCom does), so the figures measure the server rather than a client library. Every
message is a text command ``新建 pages/index/index type=B scene=…`` encrypted and signed like WeCom's; of the
``--messages`` sent at once, ``--duplicates`` are byte-for-byte re-sends of others (WeCom's retries).

Prints p50/p99/max time to the HTTP 200 (target: p99 under 100 ms; WeCom gives 5 s), the time until every
answer reached the WeCom emulator, and checks that each distinct MsgId made exactly one code and got exactly
one image and one text, and that no re-send made anything.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from urllib.parse import urlencode, urlsplit

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot import sandbox  # noqa: E402
from bot.sandbox.growingio import GrowingIOEmulator  # noqa: E402
from bot.sandbox.server import ServerThread, free_port  # noqa: E402
from bot.sandbox.wechat import WeChatEmulator  # noqa: E402
from storage import Storage  # noqa: E402
from tests.emulators.wecom import CallbackRequest, WeComEmulator  # noqa: E402

TOKEN = "minpcodeBenchToken"
AES_KEY = "kWxPEV2UEDyxWpmPdKC3F4dgPDmOvfKX1HGnEUDS1aR"
SERVE = """
import json, sys, time, uvicorn
from bot.config import Settings
from bot.server import create_app

app = create_app(Settings(_env_file=None))
times = []

async def timed(scope, receive, send):
    # bench only: time from the request reaching the app to the start of its response
    if scope["type"] != "http" or scope["path"] != "/wecom/callback":
        if scope.get("path") == "/bench/ack-times":
            body = json.dumps(times).encode()
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": body})
            return
        return await app(scope, receive, send)
    t0 = time.perf_counter()

    async def snd(message):
        if message["type"] == "http.response.start":
            times.append(time.perf_counter() - t0)
        await send(message)

    await app(scope, receive, snd)

uvicorn.run(timed, host="127.0.0.1", port=int(sys.argv[1]), log_level="error", backlog=4096)
"""


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def post(request: CallbackRequest) -> tuple[int, float]:
    """One callback on its own connection; the time runs from connecting to the status line of the answer."""
    url = urlsplit(request.url)
    body = request.body or b""
    head = (f"POST {url.path}?{urlencode(request.params)} HTTP/1.1\r\nHost: {url.netloc}\r\n"
            f"Content-Type: text/xml\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n")
    t0 = time.perf_counter()
    reader, writer = await asyncio.open_connection(url.hostname, url.port)
    writer.write(head.encode("ascii") + body)
    status = await reader.readline()
    elapsed = time.perf_counter() - t0
    await reader.read()
    writer.close()
    return int(status.split()[1]), elapsed


def start_bot(port: int, env: dict[str, str]) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen([sys.executable, "-c", SERVE, str(port)], cwd=ROOT, env={**os.environ, **env})
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1, trust_env=False).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError("the bot did not start")
        time.sleep(0.1)


async def wait_sent(wecom: WeComEmulator, count: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while len(wecom.sent_messages) < count and time.monotonic() < deadline:
        await asyncio.sleep(0.02)


async def run(total: int, duplicates: int, users: int) -> int:
    distinct = total - duplicates
    wechat = WeChatEmulator()
    gio = GrowingIOEmulator(wechat=wechat)
    wecom = WeComEmulator(member_cap_per_minute=100_000)
    servers = [ServerThread(app).start() for app in (wechat.app, gio.app, wecom.app)]
    data_dir = tempfile.mkdtemp(prefix="minpcode-wecom-bench-")
    env = {
        "MINPCODE_DATA_DIR": data_dir, "MINPCODE_SANDBOX": "false",
        "WECHAT_APPID": sandbox.SANDBOX_APPID, "WECHAT_SECRET": sandbox.SANDBOX_SECRET, "WECHAT_API_URL": servers[0].url,
        "GIO_PROJECT_UID": sandbox.GIO_PROJECT_UID, "GIO_CLIENT_ID": sandbox.GIO_CLIENT_ID, "GIO_TOKEN": sandbox.GIO_TOKEN,
        "GIO_PRODUCT_ID": sandbox.GIO_PRODUCT_ID, "GIO_API_URL": servers[1].url,
        "WECOM_CORP_ID": wecom.corp_id, "WECOM_AGENT_ID": str(wecom.agent_id), "WECOM_SECRET": wecom.secret,
        "WECOM_TOKEN": TOKEN, "WECOM_AES_KEY": AES_KEY, "WECOM_API_URL": servers[2].url,
    }
    port = free_port()
    bot = start_bot(port, env)
    sender = wecom.callback_client(f"http://127.0.0.1:{port}/wecom/callback", TOKEN, AES_KEY, clock=time.time)
    failures = 0
    try:
        # warm up: imports, the access tokens, one code
        await post(sender.build(sender.text_xml("warmup", "新建 pages/index/index type=B scene=warm=1")))
        await wait_sent(wecom, 2, 30)
        baseline = len(wecom.sent_messages)

        originals = [sender.build(sender.text_xml(f"bench{i % users}", f"新建 pages/index/index type=B scene=b={i}"))
                     for i in range(distinct)]
        batch = originals + [random.Random(7).choice(originals) for _ in range(duplicates)]
        random.Random(8).shuffle(batch)

        started = time.perf_counter()
        results = await asyncio.gather(*(post(r) for r in batch))
        acked = time.perf_counter() - started
        statuses = Counter(status for status, _ in results)
        times = [t for _, t in results]
        server_times = httpx.get(f"http://127.0.0.1:{port}/bench/ack-times", trust_env=False).json()[-total:]
        await wait_sent(wecom, baseline + 2 * distinct, 120)
        done = time.perf_counter() - started
        await asyncio.sleep(0.5)  # anything extra (a re-send handled twice) would show up now
    finally:
        bot.terminate()
        bot.wait(30)
        for server in servers:
            server.stop()

    sent = wecom.sent_messages[baseline:]
    per_user = Counter((m.delivered_to[0], m.msgtype) for m in sent)
    storage = Storage.open(Path(data_dir))
    scenes = Counter(r.scene for r in storage.history.recent(limit=10 * total) if r.scene != "warm=1")
    storage.close()
    expected_per_user = Counter(f"bench{i % users}" for i in range(distinct))
    checks = {
        "every request answered HTTP 200": statuses == Counter({200: total}),
        "one code per distinct MsgId": len(scenes) == distinct and set(scenes.values()) == {1},
        "one image and one text per distinct MsgId": all(
            per_user[(u, "image")] == n and per_user[(u, "text")] == n for u, n in expected_per_user.items()),
        "nothing sent for the re-sends": len(sent) == 2 * distinct,
    }
    print(f"{total} concurrent encrypted messages ({distinct} distinct MsgIds + {duplicates} WeCom re-sends), "
          f"{users} members")
    print(f"  time to HTTP 200     p50 {statistics.median(times) * 1000:7.2f} ms   "
          f"p99 {percentile(times, 0.99) * 1000:7.2f} ms   max {max(times) * 1000:7.2f} ms   (target p99 < 100 ms; "
          "client side: connect, send, status line)")
    print(f"  inside the app       p50 {statistics.median(server_times) * 1000:7.2f} ms   "
          f"p99 {percentile(server_times, 0.99) * 1000:7.2f} ms   max {max(server_times) * 1000:7.2f} ms   "
          "(request reaching the ASGI app to its 200)")
    print(f"  all {total} acknowledged within {acked * 1000:.0f} ms; every answer (image + text) sent after "
          f"{done:.2f} s")
    print(f"  WeCom API calls      {len(wecom.calls_to('media/upload'))} media/upload, "
          f"{len(wecom.calls_to('message/send'))} message/send, {len(wecom.calls_to('gettoken'))} gettoken")
    for name, ok in checks.items():
        print(f"  {'ok  ' if ok else 'FAIL'} {name}")
        failures += not ok
    return failures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=200)
    parser.add_argument("--duplicates", type=int, default=40)
    parser.add_argument("--users", type=int, default=40)
    args = parser.parse_args()
    sys.exit(1 if asyncio.run(run(args.messages, args.duplicates, args.users)) else 0)


if __name__ == "__main__":
    main()
