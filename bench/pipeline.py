"""1,000 requests through the service against the in-process sandbox emulators.

    .venv/bin/python bench/pipeline.py [--requests 1000] [--concurrency 50]

WeChat codes and GrowingIO tracking links are timed apart: GrowingIO allows 10 requests a second,
so links are bound by that limit, not by the service. Prints requests per second, and the service's own overhead (time in ``submit`` minus time spent in
the upstream call) at p50/p99: validation, reuse lookup, the pending row, the worker hand-off,
image storage and marking done.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time

from bot.config import Settings
from bot.models import Requester
from bot.server import open_service


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def request_fields(i: int, gio: bool) -> dict[str, str]:
    if gio:
        return {"type": "A", "page": f"pages/list/list?n={i}", "campaign": "双十一推广", "channel": "今日头条"}
    return [{"type": "B", "page": "pages/index/index", "scene": f"id={i}"},
            {"type": "A", "via": "wechat", "page": f"pages/item/detail?id={i}"},
            {"type": "C", "via": "wechat", "page": f"pages/item/detail?c={i}"}][i % 3]


async def run(total: int, concurrency: int, gio: bool) -> None:
    settings = Settings(_env_file=None, minpcode_data_dir=tempfile.mkdtemp(prefix="minpcode-pipe-"),
                        minpcode_sandbox=True)
    service = open_service(settings)
    upstream_time: dict[str, float] = {}
    make = service.upstream.make

    async def timed_make(request, **kwargs):  # type: ignore[no-untyped-def]
        t0 = time.perf_counter()
        try:
            return await make(request, **kwargs)
        finally:
            upstream_time[request.scene or request.page] = time.perf_counter() - t0

    service.upstream.make = timed_make  # type: ignore[method-assign]
    overheads: list[float] = []
    gate = asyncio.Semaphore(concurrency)
    async with service:
        async def one(i: int) -> None:
            async with gate:
                fields = request_fields(i, gio)
                t0 = time.perf_counter()
                submission = await service.submit(fields, Requester(user_id=f"U{i % 20}"), timeout=120)
                elapsed = time.perf_counter() - t0
                assert submission.record.status.value == "done", submission.record.error
                key = fields.get("scene") or fields["page"]
                overheads.append(elapsed - upstream_time.get(key, 0.0))

        t0 = time.perf_counter()
        await asyncio.gather(*(one(i) for i in range(total)))
        wall = time.perf_counter() - t0
    what = "GrowingIO tracking links (A)" if gio else "WeChat A/B/C codes"
    print(f"{total} {what}, concurrency {concurrency}, 4 workers, sandbox upstream in-process")
    print(f"  throughput          {total / wall:8.1f} requests/s  ({wall:.2f} s)")
    print(f"  service overhead    p50 {statistics.median(overheads) * 1000:7.2f} ms   "
          f"p99 {percentile(overheads, 0.99) * 1000:7.2f} ms")
    if gio:
        print("  (bound by GrowingIO's 10 requests/s: each link is a create plus an image download)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--gio-requests", type=int, default=60, help="tracking links to time separately")
    args = parser.parse_args()
    asyncio.run(run(args.requests, args.concurrency, gio=False))
    if args.gio_requests:
        asyncio.run(run(args.gio_requests, args.concurrency, gio=True))


if __name__ == "__main__":
    main()
