"""A batch of posters through the service, as the batch engine calls it: code made, poster rendered and stored.

    .venv/bin/python bench/poster_service.py [--rows 300] [--template a4] [--format png|pdf] [--concurrency 4]

Each row is its own B code made by the built-in WeChat sandbox (in process) at the width the template
needs, then its poster (``service.posters.for_new``, the per-row call of a batch), with the store's
name in the footer; rows run ``--concurrency`` at a time. A second pass asks for the same posters
again: they are served from the store, nothing rendered and nothing asked of WeChat. Printed: rows
per second for both passes, p50/p99 per row, and the process's peak resident memory against its
start (the service renders at most ``RENDERS_AT_ONCE`` posters at a time, however many rows).
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import statistics
import tempfile
import time
from pathlib import Path

from bot.config import Settings
from bot.models import Requester
from bot.posters.service import RENDERS_AT_ONCE
from bot.server import open_service
from bot.service import Service

STORES = ["上海徐汇店", "北京朝阳大悦城店", "广州天河城店", "深圳万象城店", "杭州西湖银泰店", "成都太古里店"]
WHO = Requester(chat="cli", user_id="bench")


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 1024 / 1024


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def one_pass(service: Service, rows: int, template: str, fmt: str, concurrency: int) -> tuple[float, list[float]]:
    gate = asyncio.Semaphore(concurrency)
    times: list[float] = []

    async def row(n: int) -> None:
        async with gate:
            started = time.perf_counter()
            code = {"type": "B", "page": "pages/shop/index", "scene": f"s={n}", "name": f"{STORES[n % 6]}{n}"}
            made = await service.posters.for_new(code, {"template": template, "title": "春季大促",
                                                       "subtitle": "扫码领券", "footer": "{name}", "format": fmt}, WHO)
            assert made.poster is not None, made.poster_error
            times.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(row(n) for n in range(rows)))
    return time.perf_counter() - started, times


def report(label: str, rows: int, wall: float, times: list[float]) -> None:
    q = statistics.quantiles(times, n=100) if len(times) > 1 else times * 99
    print(f"{label:<8} {rows / wall:7.2f} rows/s   p50 {q[49] * 1000:7.1f} ms   p99 {q[98] * 1000:7.1f} ms   "
          f"({rows} rows in {wall:.1f} s)")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=300)
    parser.add_argument("--template", default="a4")
    parser.add_argument("--format", default="png", choices=["png", "pdf"])
    parser.add_argument("--concurrency", type=int, default=4)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(_env_file=None, minpcode_data_dir=Path(tmp), minpcode_sandbox=True)  # type: ignore[call-arg]
        async with open_service(settings) as service:
            start = rss_mb()
            print(f"{args.rows} rows on {args.template} ({args.format}), {args.concurrency} at a time, "
                  f"renders at once: {RENDERS_AT_ONCE}; RSS at start {start:.0f} MB")
            wall, times = await one_pass(service, args.rows, args.template, args.format, args.concurrency)
            report("made", args.rows, wall, times)
            wall, times = await one_pass(service, args.rows, args.template, args.format, args.concurrency)
            report("served", args.rows, wall, times)
            stored = service.storage.posters.count()
            print(f"posters stored: {stored} (one per row); peak RSS {peak_mb():.0f} MB "
                  f"(+{peak_mb() - start:.0f} MB over the start)")


if __name__ == "__main__":
    asyncio.run(main())
