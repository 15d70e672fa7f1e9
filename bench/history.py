"""History at scale: fill a database with N codes (default 1,000,000) and time the queries people run.

    .venv/bin/python bench/history.py [--rows 1000000] [--keep DIR] [--database-url URL]
    bash scripts/ci_postgres sh -c '.venv/bin/python bench/history.py --database-url "$MINPCODE_TEST_DATABASE_URL"'

Prints the fill time, then the median and worst of several runs of: list (newest 20), full-text
search, show, quota, and the 7-day summary query. Target: under 50 ms each on a 2-core machine.
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from storage import Storage
from storage.clock import to_text
from storage.history import new_id

CAMPAIGNS = ["双十一推广", "新品上市", "spring-sale", "春节活动", "会员日", "618大促", "back-to-school", "周年庆"]
CHANNELS = ["今日头条", "二维码推广", "线下地推", "wechat-moments", "公众号", "小红书", "抖音", "门店海报"]
PAGES = ["pages/index/index", "pages/list/list", "pages/item/detail", "pages/coupon/get", "pages/store/map"]
APPS = ["wxsandbox0000001", "wxsandbox0000002"]


def rows(n: int, days: int) -> Iterator[dict[str, Any]]:
    rng = random.Random(7)
    start = datetime.now(UTC) - timedelta(days=days)
    step = timedelta(days=days) / n
    for i in range(n):
        kind = rng.choice("AABBBCs")
        campaign, channel, page = rng.choice(CAMPAIGNS), rng.choice(CHANNELS), rng.choice(PAGES)
        created = to_text(start + step * i)
        yield {
            "id": new_id(), "request_key": f"{i:032x}", "type": "shortlink" if kind == "s" else kind,
            "provider": "gio" if kind in "AC" else "wechat",
            "status": rng.choices(["done", "failed", "deleted"], [90, 6, 4])[0],
            "app": rng.choice(APPS), "page": f"{page}?src={i % 997}" if kind in "AC" else page,
            "scene": f"id={i}" if kind == "B" else None, "name": f"{campaign}-{channel}-{i}",
            "campaign": campaign, "channel": channel, "width": 430, "transparent": 0,
            "requested_by": f"U{i % 300:04d}", "requested_by_name": f"user{i % 300}", "chat": "slack",
            "sandbox": 0, "attempts": 1, "request_json": "{}", "created_at": created, "updated_at": created,
        }


def timed(label: str, fn: Callable[[], object], runs: int = 7) -> float:
    fn()  # warm the page cache once, as a running server would be
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    median = statistics.median(times)
    print(f"  {label:<34} median {median:7.2f} ms   worst {max(times):7.2f} ms   {'ok' if median < 50 else 'SLOW'}")
    return median


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=365, help="spread the rows over this many days")
    parser.add_argument("--keep", help="directory for the database (default: a temporary one)")
    parser.add_argument("--database-url", help="a PostgreSQL database to fill and query instead of SQLite "
                                               "(an empty one, or one this benchmark filled)")
    args = parser.parse_args()
    directory = args.keep or tempfile.mkdtemp(prefix="minpcode-bench-")
    store = Storage.open(directory, args.database_url, migrate=True)
    print(f"backend: {store.db.dialect}")
    if store.history.count() < args.rows:
        t0 = time.perf_counter()
        loaded = store.history.import_rows(rows(args.rows, args.days))
        ac = [(r["app"], r["request_key"], r["id"], r["created_at"]) for r in rows(args.rows, args.days)
              if r["type"] in ("A", "C")]
        store.ledger.import_keys(ac)
        print(f"filled {loaded:,} codes ({len(ac):,} A/C ledger keys) in {time.perf_counter() - t0:.1f} s in {directory}")
    total = store.history.count()
    sample = store.history.recent(limit=1, offset=total // 2)[0]
    now = datetime.now(UTC)
    since, until = to_text(now - timedelta(days=7)), to_text(now)
    print(f"queries over {total:,} codes:")
    results = {
        "list (newest 20)": timed("list (newest 20)", lambda: store.history.recent(limit=20)),
        "list mine (newest 20)": timed("list mine (newest 20)", lambda: store.history.recent(requested_by="U0042", limit=20)),
        "search full text ('春节活动-抖音')": timed("search full text ('春节活动-抖音')", lambda: store.history.search("春节活动-抖音")),
        "search short ('抖音')": timed("search short ('抖音')", lambda: store.history.search("抖音")),
        "show": timed("show (by id)", lambda: store.history.get(sample.id)),
        "quota": timed("quota (per mini program)", lambda: [store.ledger.used(a) for a in APPS]),
        "7-day summary": timed("7-day summary query", lambda: summary_query(store, since, until)),
    }
    slow = [k for k, v in results.items() if v >= 50]
    print("all under 50 ms" if not slow else f"over 50 ms: {', '.join(slow)}")


def summary_query(store: Storage, since: str, until: str) -> object:
    """Every storage read bot/summary.py's build_summary makes for a period (the one aggregate statement,
    the reuses, the deletes and each mini program's quota spent in the period)."""
    starts = [to_text(datetime.fromisoformat(since) + timedelta(days=i)) for i in range(1, 8)]
    return (store.reports.period(since, until, starts), store.reports.reuses(since, until),
            store.audit.count("deleted", since, until), [store.ledger.used_between(a, since, until) for a in APPS])


if __name__ == "__main__":
    main()
