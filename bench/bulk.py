"""A 1,000-row batch through the engine against the emulators on loopback ports, and a person's
single codes while it runs.

    .venv/bin/python bench/bulk.py [--rows 1000] [--singles 15]

Prints, for GrowingIO tracking links (type A via GIO, one rate-limited Open-API call per link):
- with GrowingIO's 10/s limit on: rows/s, rate-limited calls/s against the 10/s GrowingIO allows
  (the client's budget, GIO_RATE_PER_SECOND, is the same 10 by default), 429s the emulator answered,
  rows that failed, and duplicate links (links made minus distinct rows);
- with no limit (the emulator's off, the client's lifted): the bot's own ceiling in rows/s;
- the latency of single interactive codes sent during the batch against the same with no batch.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from collections import Counter
from typing import Any

from pydantic import SecretStr

from bot import sandbox
from bot.batch.models import BatchOrigin
from bot.batch.sheets import read_pasted
from bot.config import Settings
from bot.models import Requester
from bot.sandbox.growingio import GrowingIOEmulator
from bot.sandbox.server import ServerThread
from bot.sandbox.wechat import WeChatEmulator
from bot.server import open_service
from bot.service import Service
from bot.upstream.growingio import GIO_RATE_PER_SECOND
from bot.upstream.ratelimit import RateLimiter

PERSON = Requester(chat="slack", user_id="U_PERSON")


class StatusCounter:
    """ASGI wrapper counting the answers by status: the 429s the emulator gave are counted at the wire."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.statuses: Counter[int] = Counter()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        async def counted(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                self.statuses[message["status"]] += 1
            await send(message)

        await self.app(scope, receive, counted)


def settings_for(wx: ServerThread, gio: ServerThread) -> Settings:
    return Settings(_env_file=None, minpcode_data_dir=tempfile.mkdtemp(prefix="minpcode-bulk-"), minpcode_sandbox=False,
                    wechat_appid=sandbox.SANDBOX_APPID, wechat_secret=SecretStr(sandbox.SANDBOX_SECRET),
                    wechat_api_url=wx.url, gio_project_uid=sandbox.GIO_PROJECT_UID,
                    gio_client_id=sandbox.GIO_CLIENT_ID, gio_token=SecretStr(sandbox.GIO_TOKEN),
                    gio_product_id=sandbox.GIO_PRODUCT_ID, gio_api_url=gio.url)


def sheet_text(rows: int, tag: str) -> str:
    return "页面,类型,推广活动,推广渠道,名称\n" + "".join(
        f"pages/list/list?{tag}={i},A,双十一推广,今日头条,{tag}-{i}\n" for i in range(rows))


def meta_calls(emu: GrowingIOEmulator) -> int:
    return sum(n for path, n in emu.calls.items() if "/buckets/" not in path)


async def singles(service: Service, count: int, tag: str, spacing: float) -> list[float]:
    took = []
    for i in range(count):
        t0 = time.perf_counter()
        done = await service.submit({"type": "A", "page": f"pages/one/one?{tag}={i}", "campaign": "双十一推广",
                                     "channel": "今日头条", "name": f"{tag}-{i}"}, PERSON, timeout=60)
        took.append(time.perf_counter() - t0)
        assert done.record.status.value == "done", done.record.error
        await asyncio.sleep(spacing)
    return took


async def scenario(rows: int, n_singles: int, limited: bool) -> dict[str, float]:
    """One batch; with ``n_singles``, a person's codes before it (alone) and while it runs (during)."""
    wx_emu = WeChatEmulator()
    gio_emu = GrowingIOEmulator(wechat=wx_emu, rate_per_second=10 if limited else None)
    counter = StatusCounter(gio_emu.app)
    wx, gio = ServerThread(wx_emu.app).start(), ServerThread(counter).start()
    try:
        service = open_service(settings_for(wx, gio))
        if not limited and service.upstream.gio is not None:
            service.upstream.gio.limiter = RateLimiter(1_000_000)  # the bot's own ceiling, nothing else
        async with service:
            engine = service.batches
            figures: dict[str, float] = {}
            if n_singles:
                await singles(service, 3, "warm", 0.2)  # the first codes of a process fill its caches
                base = await singles(service, n_singles, "alone", 0.2)
                figures["alone_p50"] = statistics.median(base)
                figures["alone_max"] = max(base)
            plan = await engine.dry_run(read_pasted(sheet_text(rows, "row")), BatchOrigin(user_id="U_BENCH"))
            calls0, links0, t0 = meta_calls(gio_emu), len(gio_emu.links), time.perf_counter()
            running = asyncio.create_task(engine.run(plan.batch.id))
            if n_singles:
                await asyncio.sleep(2.0)  # the batch is at full speed
                during = await singles(service, n_singles, "during", 0.2)
                figures["during_p50"] = statistics.median(during)
                figures["during_max"] = max(during)
            batch = await running
            elapsed = time.perf_counter() - t0
            links = gio_emu.links[links0:]
            batch_links = [link for link in links if str(link.get("name", "")).startswith("row-")]
            figures |= {
                "elapsed": elapsed, "rows_per_s": rows / elapsed, "calls_per_s": (meta_calls(gio_emu) - calls0) / elapsed,
                "done": batch.counts.get("done", 0), "failed": batch.counts.get("failed", 0),
                "status_429": counter.statuses[429],
                "duplicates": len(batch_links) - len({link["name"] for link in batch_links}),
                "extra_links": len(batch_links) - rows,
            }
            return figures
    finally:
        wx.stop()
        gio.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1000)
    parser.add_argument("--singles", type=int, default=15)
    args = parser.parse_args()
    idle = asyncio.run(scenario(args.rows, 0, limited=True))
    busy = asyncio.run(scenario(args.rows, args.singles, limited=True))
    off = asyncio.run(scenario(args.rows, 0, limited=False))
    print(f"{args.rows} rows, GrowingIO tracking links (A via GIO: one rate-limited Open-API call per link), "
          "emulators on loopback ports")
    for label, f in (("limit on, nobody else", idle), ("limit on, a person active", busy)):
        print(f"{label}: {f['elapsed']:.1f}s, {f['rows_per_s']:.2f} rows/s, {f['calls_per_s']:.2f} rate-limited "
              f"calls/s = {f['calls_per_s'] / 10:.0%} of GrowingIO's 10/s (target: at least 95%; "
              f"the client's budget is {GIO_RATE_PER_SECOND}/s); "
              f"done {f['done']:.0f}, failed {f['failed']:.0f}, 429 answers {f['status_429']:.0f}, "
              f"duplicate links {f['duplicates']:.0f}, links beyond one per row {f['extra_links']:.0f}")
    print(f"limit off: {off['elapsed']:.1f}s, {off['rows_per_s']:.1f} rows/s (the bot's own ceiling), "
          f"done {off['done']:.0f}, failed {off['failed']:.0f}, duplicates {off['duplicates']:.0f}")
    ratio = busy["during_p50"] / busy["alone_p50"]
    print(f"single interactive code: no batch p50 {busy['alone_p50'] * 1000:.0f} ms "
          f"(max {busy['alone_max'] * 1000:.0f}); during the batch p50 {busy['during_p50'] * 1000:.0f} ms "
          f"(max {busy['during_max'] * 1000:.0f}) = {ratio:.2f}x")


if __name__ == "__main__":
    main()
