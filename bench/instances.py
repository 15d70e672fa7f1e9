"""Two hosts on one PostgreSQL (issue 25): two real ``minpcode serve`` processes, each with a data folder of its own
(no shared disk), on one database.

    bash scripts/ci_postgres .venv/bin/python bench/instances.py          # a throw-away server of its own
    .venv/bin/python bench/instances.py --database-url postgresql://postgres@127.0.0.1:5432/postgres

The URL (or MINPCODE_TEST_DATABASE_URL, which scripts/ci_postgres sets) names a server; every part below gets a
fresh database on it, dropped after (tests/databases.py). Prints:

1. **mixed**: ``--requests`` API requests for A and B codes spread over both hosts, most as identical pairs (one
   to each host) released into the database together: codes made, duplicate codes (target 0), WeChat calls
   (target: the distinct requests);
2. **kill -9**: ``--in-flight`` codes asked of the first host, which is killed with them in flight; the time until
   the second host (running all along) has made them all (target: within the lease, bot/jobs.py);
3. **scans**: ``--scans`` scans of live codes from 200 keep-alive connections, spread over both hosts, then both
   stopped with SIGTERM: every scan answered and counted. The same load on one ``serve`` on SQLite, and on two
   ``serve`` sharing one SQLite data folder (as many processes as on PostgreSQL, so the database is what differs),
   back to back, ``--rounds`` times each: the median p99 of each (target: PostgreSQL's within 20% of SQLite's).

The client and the servers share this machine's CPUs (a loaded 2-core machine prints slower figures): the
figures are a floor. The history queries at 1,000,000 rows on PostgreSQL are bench/history.py --database-url.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import resolver
from api import percentile
from hold import API_KEY, Sites

from bot.jobs import LEASE_SECONDS
from storage.engine import WRITE_LOCK
from tests.databases import SERVER, fresh_postgres
from tests.served import Served


def count(url: str, sql: str) -> int:
    with psycopg.connect(url) as conn:
        return int(conn.execute(sql).fetchone()[0])  # type: ignore[index]


def wait_for(url: str, sql: str, wanted: int, seconds: float) -> float:
    """Seconds until ``sql`` counts ``wanted``; raises after ``seconds``."""
    started = time.monotonic()
    while count(url, sql) < wanted:
        if time.monotonic() - started > seconds:
            raise RuntimeError(f"{sql}: {count(url, sql)} of {wanted} after {seconds} s")
        time.sleep(0.05)
    return time.monotonic() - started


@contextmanager
def held(url: str) -> Iterator[None]:
    """The write lock every host's transaction takes first (storage/engine.py), held from outside: requests sent
    meanwhile have each looked for the other and found nothing when the lock lets their writes in together
    (as tests/served.held does on SQLite)."""
    with psycopg.connect(url) as conn:
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", [WRITE_LOCK])
            yield


def hosts(sites: Sites, root: Path, url: str, **extra: str) -> list[Served]:
    env = {**sites.env(), "MINPCODE_DATABASE_URL": url, **extra}
    return [Served(root / name / "data", env) for name in ("a", "b")]


def ask(host: str, body: dict[str, Any]) -> int:
    with httpx.Client(timeout=120, trust_env=False) as http:
        return http.post(host + "/api/weapp/qrcode", headers={"X-API-Key": API_KEY}, json=body).status_code


def request(n: int) -> dict[str, Any]:
    """The n-th distinct request: A and B codes mixed."""
    return {"path": f"pages/mixed/a?n={n}"} if n % 2 else {"path": "pages/mixed/b", "scene": f"n={n}"}


def mixed(sites: Sites, root: Path, total: int) -> dict[str, Any]:
    sites.wechat.latency = 0.05
    sites.wechat_log.clear()
    pairs = total * 2 // 5  # 4/5 of the requests in identical pairs, the rest one each, alternating hosts
    singles = total - 2 * pairs
    distinct = pairs + singles
    with fresh_postgres() as url:
        first, second = hosts(sites, root / "mixed", url)
        statuses: list[int] = []
        started = time.monotonic()
        try:
            first.start()
            second.start()
            with ThreadPoolExecutor(64) as pool:
                for group in range(0, pairs, 20):
                    with held(url):  # 20 pairs at a time, each pair's two requests let in together
                        sent = [pool.submit(ask, host.url, request(n)) for n in range(group, min(pairs, group + 20))
                                for host in (first, second)]
                        time.sleep(1.0)
                    statuses += [f.result() for f in sent]
                sent = [pool.submit(ask, (first, second)[n % 2].url, request(n)) for n in range(pairs, distinct)]
                statuses += [f.result() for f in sent]
            wait_for(url, "SELECT count(*) FROM codes WHERE status <> 'pending'", distinct, 120)
            took = time.monotonic() - started
        finally:
            first.stop()
            second.stop()
        codes = count(url, "SELECT count(*) FROM codes WHERE status = 'done'")
        duplicates = count(url, "SELECT count(*) FROM (SELECT request_key FROM codes WHERE status <> 'deleted' "
                                "GROUP BY request_key HAVING count(*) > 1) AS d")
    calls = len(sites.wechat_log.to("/wxa/getwxacode")) + len(sites.wechat_log.to("/wxa/getwxacodeunlimit"))
    sites.wechat.latency = 0.0
    return {"requests": len(statuses), "pairs": pairs, "distinct": distinct, "answered": sum(s in (200, 202)
            for s in statuses), "codes": codes, "duplicates": duplicates, "wechat_calls": calls, "seconds": took}


def kill_nine(sites: Sites, root: Path, in_flight: int) -> dict[str, Any]:
    sites.wechat.latency = 5.0  # every code still being made when its host dies
    with fresh_postgres() as url:
        first, second = hosts(sites, root / "kill", url)
        try:
            first.start()
            second.start()
            with ThreadPoolExecutor(in_flight) as pool:
                for n in range(in_flight):
                    pool.submit(ask, first.url, {"path": "pages/kill/b", "scene": f"k={n}"})
                wait_for(url, "SELECT count(*) FROM codes WHERE status = 'pending'", in_flight, 30)
                wait_for(url, "SELECT count(*) FROM leases", 1, 30)
                first.kill()
                killed = time.monotonic()
            sites.wechat.latency = 0.0
            wait_for(url, "SELECT count(*) FROM codes WHERE status = 'done'", in_flight, 3 * LEASE_SECONDS)
            finished = time.monotonic() - killed
        finally:
            first.stop()
            second.stop()
        codes = count(url, "SELECT count(*) FROM codes")
    return {"in_flight": in_flight, "codes": codes, "finished_after": finished,
            "taken_over": "taken over" in second.log()}


SCAN_ENV = {"MINPCODE_API_KEYS": f"bench:{resolver.KEY}", "MINPCODE_RESOLVER_RATE": "10000000"}


async def load(urls: list[str], keys: list[str], connections: int, scans: int) -> tuple[int, list[float]]:
    """``scans`` scans from ``connections`` keep-alive connections, split evenly over ``urls``."""
    each: list[list[float]] = [[] for _ in urls]
    done = await asyncio.gather(*(resolver.keep_alive(u, keys, connections // len(urls), scans // len(urls), into)
                                  for u, into in zip(urls, each, strict=True)))
    return sum(answered for answered, _ in done), [t for into in each for t in into]


def sqlite_round(root: Path, codes: int, connections: int, scans: int, serves: int = 1) -> float:
    """p99 in ms of the load on ``serves`` processes sharing one SQLite data folder."""
    procs = [Served(root / "data", SCAN_ENV) for _ in range(serves)]
    try:
        for proc in procs:
            proc.start()
        keys = asyncio.run(resolver.make_codes(procs[0].url, codes))
        _, latencies = asyncio.run(load([p.url for p in procs], keys, connections, scans))
    finally:
        for proc in procs:
            proc.stop()
    return percentile(latencies, 0.99) * 1000


def postgres_round(root: Path, codes: int, connections: int, scans: int) -> dict[str, Any]:
    with fresh_postgres() as url:
        env = {**SCAN_ENV, "MINPCODE_DATABASE_URL": url}
        procs = [Served(root / name / "data", env).start() for name in ("a", "b")]
        try:
            keys = asyncio.run(resolver.make_codes(procs[0].url, codes))
            answered, latencies = asyncio.run(load([p.url for p in procs], keys, connections, scans))
        finally:
            for proc in procs:  # SIGTERM: each host writes the scans it still holds in memory
                proc.stop()
        stored = count(url, "SELECT count(*) FROM scans")
    # keep_alive answers one warm-up scan a connection before its clock starts: they are scans too
    return {"p99": percentile(latencies, 0.99) * 1000, "answered": answered, "stored": stored}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--database-url", default=os.environ.get(SERVER), help=f"a PostgreSQL server (or {SERVER})")
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--in-flight", type=int, default=20)
    parser.add_argument("--codes", type=int, default=20, help="live codes scanned")
    parser.add_argument("--scans", type=int, default=10_000)
    parser.add_argument("--connections", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3, help="scan rounds on each backend, back to back")
    parser.add_argument("--only", choices=["mixed", "kill", "scans"], action="append")
    args = parser.parse_args()
    if not args.database_url:
        parser.error(f"give --database-url or {SERVER} (bash scripts/ci_postgres starts a server)")
    os.environ[SERVER] = args.database_url  # tests.databases.fresh_postgres makes each part's database there
    only = set(args.only or ["mixed", "kill", "scans"])
    print(f"Python {sys.version.split()[0]}, {os.cpu_count()} CPUs shared by client and servers, "
          f"load average {os.getloadavg()[0]:.1f}")
    sites = Sites()
    try:
        with tempfile.TemporaryDirectory() as folder:
            root = Path(folder)
            if "mixed" in only:
                m = mixed(sites, root, args.requests)
                print(f"mixed: {m['requests']} requests ({m['pairs']} identical pairs released together) over two "
                      f"hosts, {m['answered']} answered in {m['seconds']:.1f} s: {m['codes']} codes made of "
                      f"{m['distinct']} distinct requests, {m['duplicates']} duplicates, {m['wechat_calls']} WeChat "
                      f"calls" + ("  -- ok" if m["duplicates"] == 0 and m["wechat_calls"] == m["distinct"]
                                  == m["codes"] else "  -- WRONG"))
            if "kill" in only:
                k = kill_nine(sites, root, args.in_flight)
                print(f"kill -9: {k['in_flight']} codes in flight on the killed host, all {k['codes']} made by the "
                      f"other {k['finished_after']:.1f} s after the kill (lease {LEASE_SECONDS:.0f} s; "
                      f"{'taken over' if k['taken_over'] else 'no take-over logged'})")
            if "scans" in only:
                one: list[float] = []
                two: list[float] = []
                pg: list[dict[str, Any]] = []
                for n in range(args.rounds):  # alternated, so the machine's wandering load falls on each alike
                    one.append(sqlite_round(root / f"one{n}", args.codes, args.connections, args.scans))
                    pg.append(postgres_round(root / f"pg{n}", args.codes, args.connections, args.scans))
                    two.append(sqlite_round(root / f"two{n}", args.codes, args.connections, args.scans, serves=2))
                    print(f"  round {n + 1}: p99 one serve on SQLite {one[-1]:.1f} ms, two serve on one PostgreSQL "
                          f"{pg[-1]['p99']:.1f} ms ({pg[-1]['answered']} answered, {pg[-1]['stored']} counted), "
                          f"two serve on one SQLite folder {two[-1]:.1f} ms")
                lite, post, pair = (statistics.median(one), statistics.median(r["p99"] for r in pg),
                                    statistics.median(two))
                counted = all(r["answered"] == r["stored"] == args.scans + args.connections for r in pg)
                print(f"scans: {args.scans} from {args.connections} keep-alive connections (split evenly over the "
                      f"serve processes); median p99 of {args.rounds} rounds: one serve on SQLite {lite:.1f} ms, two "
                      f"serve on one PostgreSQL {post:.1f} ms ({(post / lite - 1) * 100:+.0f}%, target within +20%), "
                      f"two serve on one SQLite folder {pair:.1f} ms ({(post / pair - 1) * 100:+.0f}% for "
                      "PostgreSQL against it); on PostgreSQL "
                      + ("every scan answered and counted" if counted else "SCANS LOST OR REFUSED"))
    finally:
        sites.stop()


if __name__ == "__main__":
    main()
