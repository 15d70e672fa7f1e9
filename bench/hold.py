"""Hold under attack and failure (issues 13 and 22): seven figures, over real ``minpcode serve`` processes on loopback.

    .venv/bin/python bench/hold.py [--mixed 2000] [--json]

1. **big body**: an unsigned 50 MB body to ``/slack/events`` — the answer, and the server's RSS before/after
   (target: 413, RSS flat);
2. **mixed**: ``--mixed`` requests (signed Slack commands, unsigned garbage, API codes, WeCom garbage,
   health checks) from 16 threads — RSS before/after and the p99 latency (target: no 5xx, RSS flat);
3. **two processes**: two servers on one data directory, 60 API codes sent to the first, the second started
   while they are in flight — duplicate calls to WeChat (target 0);
4. **kill -9**: 30 WeCom messages acknowledged, the server killed 0.6 s later and restarted — members
   who got their code (target 30);
5. **identical pairs**: two servers on one data directory, 20 identical A-code pairs (each request sent to both
   at once, let into the database together) — codes made, WeChat ``getwxacode`` calls and the A+C ledger
   (target 20, 20, 20).
6. **sheet bombs** (issue 22): a 4.6 KB XLSX declaring ``A1:XFD1048576`` with cells across it, a 1 MB XLSX with
   1 GiB of whitespace in a part, an 810 KB XLSX with 20,000,000 shared strings, each through a real upload link
   — the answer, the longest ``/healthz`` wait meanwhile, the server's RSS before/peak/after and the peak of its
   child processes, the workers (target: 400 naming the limit, waits under 1 s, RSS flat);
7. **logo bombs** (issue 22): a 1.4 KB SVG ``<use>`` fan-out 17 deep and a 152 KB 6300×6300 PNG as a poster's
   logo through ``POST /api/posters`` — the same figures (target: the SVG a 400 naming the limit, waits under
   1 s, RSS flat).

Bounded: every request has a timeout, every server a temporary data directory, every process is stopped.
Nothing leaves 127.0.0.1 (WeChat, Slack and WeCom are the emulators in tests/ and bot/sandbox/).
"""

from __future__ import annotations

import argparse
import base64
import functools
import hashlib
import hmac
import io
import json
import re
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
import urllib.parse
import zipfile
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.sandbox import SANDBOX_APPID, SANDBOX_SECRET  # noqa: E402
from bot.sandbox.server import ServerThread  # noqa: E402
from bot.sandbox.wechat import WeChatEmulator  # noqa: E402
from storage.db import DB_NAME  # noqa: E402
from tests.batch.test_sheets import NORMAL, rebuilt, sheet_xml, with_rows  # noqa: E402
from tests.conftest import Recorder  # noqa: E402
from tests.emulators.slack import PUBLIC_CHANNEL, TEAM_ID, SlackEmulator  # noqa: E402
from tests.emulators.wecom import WeComEmulator  # noqa: E402
from tests.posters.test_engine import pixel_logo, svg_bomb  # noqa: E402
from tests.served import Served, held, memory, probing  # noqa: E402

SECRET = "bench-hold-signing-secret"
TOKEN = "minpcodeCallbackToken2024"
AES_KEY = "kWxPEV2UEDyxWpmPdKC3F4dgPDmOvfKX1HGnEUDS1aR"
API_KEY = "bench-hold-0123456789abcdef"
MB = 1024 * 1024


def sign(body: bytes) -> dict[str, str]:
    ts = str(int(time.time()))
    digest = hmac.new(SECRET.encode(), b"v0:" + ts.encode() + b":" + body, hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": "v0=" + digest,
            "content-type": "application/x-www-form-urlencoded"}


def command(user: str, text: str, trigger: str) -> bytes:
    return urllib.parse.urlencode({"team_id": TEAM_ID, "channel_id": PUBLIC_CHANNEL, "user_id": user,
                                   "command": "/minpcode", "text": text, "trigger_id": trigger}).encode()


class Sites:
    """The emulators, each on its own loopback port in this process."""

    def __init__(self) -> None:
        self.slack = SlackEmulator().start()
        self.wechat = WeChatEmulator()
        self.wechat_log = Recorder(self.wechat.app)
        self.wechat_thread = ServerThread(self.wechat_log).start()
        self.wecom = WeComEmulator()
        self.wecom_thread = ServerThread(self.wecom.app).start()

    def env(self) -> dict[str, str]:
        return {"SLACK_BOT_TOKEN": self.slack.bot_token, "SLACK_SIGNING_SECRET": SECRET,
                "SLACK_API_URL": self.slack.api_url, "MINPCODE_SANDBOX": "false", "WECHAT_APPID": SANDBOX_APPID,
                "WECHAT_SECRET": SANDBOX_SECRET, "WECHAT_API_URL": self.wechat_thread.url,
                "MINPCODE_API_KEYS": f"bench:{API_KEY}", "WECOM_CORP_ID": self.wecom.corp_id,
                "WECOM_AGENT_ID": str(self.wecom.agent_id), "WECOM_SECRET": self.wecom.secret, "WECOM_TOKEN": TOKEN,
                "WECOM_AES_KEY": AES_KEY, "WECOM_API_URL": self.wecom_thread.url}

    def stop(self) -> None:
        self.slack.stop()
        self.wechat_thread.stop()
        self.wecom_thread.stop()


def big_body(sites: Sites, root: Path) -> dict[str, Any]:
    with Served(root / "big", sites.env()) as proc:
        time.sleep(1.0)
        before = proc.rss()
        answer = proc.post("/slack/events", content=b"payload=" + b"A" * (50 * MB),
                           headers={"content-type": "application/x-www-form-urlencoded"})
        time.sleep(0.5)
        after = proc.rss()
        log_bytes = len(proc.log().encode())
    return {"status": answer.status_code, "rss_before_mb": round(before / MB, 1), "rss_after_mb": round(after / MB, 1),
            "log_bytes": log_bytes}


def mixed(sites: Sites, root: Path, n: int) -> dict[str, Any]:
    kinds = ["signed", "garbage", "api", "wecom", "health"]
    with Served(root / "mixed", sites.env()) as proc:
        time.sleep(1.0)
        before = proc.rss()

        def one(i: int) -> tuple[str, int, float]:
            kind = kinds[i % len(kinds)]
            started = time.perf_counter()
            with httpx.Client(timeout=30, trust_env=False) as http:
                if kind == "signed":
                    body = command(f"U{i % 50:04d}", "list" if i % 2 else "help", f"{i}.1.1")
                    status = http.post(proc.url + "/slack/events", content=body, headers=sign(body)).status_code
                elif kind == "garbage":
                    status = http.post(proc.url + "/slack/events", content=[b"payload=%7Bx", b"{x", b"payload=[]"][i % 3],
                                       headers={"content-type": "application/x-www-form-urlencoded"}).status_code
                elif kind == "api":
                    status = http.post(proc.url + "/api/weapp/qrcode", headers={"X-API-Key": API_KEY},
                                       json={"path": "pages/index/index", "scene": f"m={i % 40}"}).status_code
                elif kind == "wecom":
                    status = http.post(proc.url + "/wecom/callback", params={"msg_signature": "0" * 40, "nonce": "1",
                                                                             "timestamp": str(int(time.time()))},
                                       content=b"<xml>" + b"<a>" * 2000 + b"</xml>").status_code
                else:
                    status = http.get(proc.url + "/healthz").status_code
            return kind, status, time.perf_counter() - started

        with ThreadPoolExecutor(16) as pool:
            results = list(pool.map(one, range(n)))
        time.sleep(0.5)
        after = proc.rss()
    latencies = sorted(r[2] for r in results)
    return {"requests": n, "p50_ms": round(statistics.median(latencies) * 1000, 1),
            "p99_ms": round(latencies[int(len(latencies) * 0.99) - 1] * 1000, 1),
            "status": dict(Counter(str(r[1]) for r in results)),
            "server_errors": sum(1 for r in results if r[1] >= 500),
            "rss_before_mb": round(before / MB, 1), "rss_after_mb": round(after / MB, 1)}


def two_processes(sites: Sites, root: Path) -> dict[str, Any]:
    sites.wechat.latency = 0.25
    sites.wechat_log.clear()
    data = root / "shared"
    env = sites.env()
    first = Served(data, env).start()
    second = Served(data, env)

    def ask(i: int) -> int:
        with httpx.Client(timeout=60, trust_env=False) as http:
            return http.post(first.url + "/api/weapp/qrcode", headers={"X-API-Key": API_KEY},
                             json={"path": "pages/index/index", "scene": f"two={i}"}).status_code

    try:
        with ThreadPoolExecutor(30) as pool:
            futures = [pool.submit(ask, i) for i in range(60)]
            time.sleep(1.0)
            second.start()
            statuses = [f.result() for f in futures]
        deadline = time.monotonic() + 60
        while len({r.body for r in sites.wechat_log.to("/wxa/getwxacodeunlimit")}) < 60 and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(1.0)
    finally:
        first.stop()
        second.stop()
        sites.wechat.latency = 0.0
    calls = [r.body for r in sites.wechat_log.to("/wxa/getwxacodeunlimit")]
    return {"requests": 60, "answered_200": statuses.count(200), "wechat_calls": len(calls),
            "distinct_codes": len(set(calls)), "duplicate_upstream_calls": len(calls) - len(set(calls))}


def kill_nine(sites: Sites, root: Path) -> dict[str, Any]:
    sites.wechat.latency = 0.3
    env = sites.env()
    data = root / "killed"
    proc = Served(data, env).start()
    sender = sites.wecom.callback_client(proc.url + "/wecom/callback", TOKEN, AES_KEY, clock=time.time)
    users = [f"bench{n:02d}" for n in range(30)]

    def images() -> set[str]:
        return {u for m in sites.wecom.sent_messages if m.msgtype == "image" for u in m.delivered_to if u in users}

    with ThreadPoolExecutor(30) as pool:
        acked = list(pool.map(lambda u: sender.send_text(u, f"new pages/index/index type=B scene=k={u}").status_code,
                              users))
    time.sleep(0.6)
    proc.kill()
    before = len(images())
    restarted = Served(data, env, port=proc.port).start()
    try:
        deadline = time.monotonic() + 90
        while len(images()) < 30 and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        restarted.stop()
        sites.wechat.latency = 0.0
    return {"acknowledged": acked.count(200), "delivered_before_kill": before, "delivered_after_restart": len(images())}


def identical_pairs(sites: Sites, root: Path, pairs: int = 20) -> dict[str, Any]:
    sites.wechat_log.clear()
    data = root / "pairs"
    env = sites.env()
    first = Served(data, env).start()
    second = Served(data, env).start()

    def ask(url: str, n: int) -> int:
        with httpx.Client(timeout=60, trust_env=False) as http:
            return http.post(url + "/api/weapp/qrcode", headers={"X-API-Key": API_KEY},
                             json={"path": f"pages/pair/pair?n={n}"}).status_code

    statuses: list[int] = []
    try:
        with ThreadPoolExecutor(2) as pool:
            for n in range(pairs):
                # Both of a pair have looked for the other and found nothing when the database lets them in.
                with held(data):
                    pair = [pool.submit(ask, url, n) for url in (first.url, second.url)]
                    time.sleep(0.5)
                statuses += [f.result() for f in pair]
    finally:
        first.stop()
        second.stop()
    with sqlite3.connect(data / DB_NAME) as db:
        codes = db.execute("SELECT count(*) FROM codes WHERE status = 'done'").fetchone()[0]
        ledger = db.execute("SELECT count(*) FROM quota_keys").fetchone()[0]
    return {"pairs": pairs, "answered_200": statuses.count(200), "codes": codes,
            "getwxacode_calls": len(sites.wechat_log.to("/wxa/getwxacode")), "ledger": ledger}


# -- bombs (issue 22): what one upload costs the serving process, and whether it keeps answering ----------------
def descendants(pid: int) -> list[int]:
    """The processes under ``pid`` (the workers' fork server and the workers it forks)."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):  # gone meanwhile
                continue
            parents.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def under_load(proc: Served, work: Callable[[], httpx.Response]) -> dict[str, Any]:
    """``work()`` while /healthz is asked every 100 ms and the memory of the server and its children sampled."""
    try:
        Path(f"/proc/{proc.pid}/clear_refs").write_text("5")  # VmHWM starts again from now (Linux >= 4.0)
    except OSError:
        pass
    before = proc.rss()
    children = 0
    done = threading.Event()

    def sample() -> None:
        nonlocal children
        while not done.is_set():
            for child in descendants(proc.pid):
                try:
                    children = max(children, memory(child, "VmHWM"))
                except (OSError, RuntimeError):  # reaped between the listing and the read
                    pass
            time.sleep(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    started = time.monotonic()
    try:
        answer, wait = probing(proc.url, work)
    finally:
        done.set()
        sampler.join()
    took = time.monotonic() - started
    time.sleep(0.5)
    body = answer.json() if answer.headers.get("content-type", "").startswith("application/json") else {}
    said = str(body.get("message") or body.get("msg") or "").splitlines()
    return {"status": answer.status_code, "message": next((line for line in said if line.isascii()), ""),
            "seconds": round(took, 1), "longest_healthz_wait_ms": round(wait * 1000, 1),
            "rss_before_mb": round(before / MB, 1), "rss_peak_mb": round(proc.peak() / MB, 1),
            "rss_after_mb": round(proc.rss() / MB, 1), "children_peak_mb": round(children / MB, 1)}


def streamed_xlsx(part: str, head: bytes, filler: bytes, count: int, tail: bytes) -> bytes:
    """The normal workbook with ``part`` replaced by head + filler × count + tail, deflated as it is written."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(NORMAL)) as src, \
            zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as dst:
        for name in src.namelist():
            if name != part:
                dst.writestr(name, src.read(name))
        with dst.open(part, "w", force_zip64=True) as body:
            body.write(head)
            chunk = filler * max(1, (4 * MB) // len(filler))
            per_chunk = len(chunk) // len(filler)
            for _ in range(count // per_chunk):
                body.write(chunk)
            body.write(filler * (count % per_chunk))
            body.write(tail)
    return out.getvalue()


def sheet_bomb_files() -> dict[str, bytes]:
    """The three sheets issue 22 names, at its sizes (tests/batch uses smaller ones)."""
    xml = sheet_xml(NORMAL)
    spanning = "".join(f'<row r="{r}"><c r="XFD{r}" t="inlineStr"><is><t>x</t></is></c></row>' for r in range(10, 80))
    head, tail = xml.split("<sheetData>", 1)
    strings = b'<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
    return {
        "declared A1:XFD1048576, cells across it": rebuilt(NORMAL, sheet=with_rows(xml, spanning)),
        "1 GiB of whitespace in sheet1.xml": streamed_xlsx("xl/worksheets/sheet1.xml", (head + "<sheetData>").encode(),
                                                           b" ", 1024 * MB, tail.encode()),
        "20,000,000 shared strings": streamed_xlsx("xl/sharedStrings.xml", strings, b"<si><t>a</t></si>",
                                                   20_000_000, b"</sst>"),
    }


def sheet_bombs(sites: Sites, root: Path) -> dict[str, Any]:
    bombs = sheet_bomb_files()
    figures: dict[str, Any] = {}
    with Served(root / "sheets", sites.env()) as proc:
        sender = sites.wecom.callback_client(proc.url + "/wecom/callback", TOKEN, AES_KEY, clock=time.time)
        sender.send_text("bench-bombs", "批量")
        deadline = time.monotonic() + 30
        link = None
        while link is None and time.monotonic() < deadline:
            texts = [m.content or "" for m in sites.wecom.sent_messages if m.msgtype == "text"]
            found = [re.search(r"(http://\S+/batches/upload/\S+)", t) for t in texts]
            link = next((m.group(1) for m in found if m), None)
            time.sleep(0.1)
        if link is None:
            raise RuntimeError("no upload link came back")
        with httpx.Client(timeout=120, trust_env=False) as http:  # the fork server started, as it is after a while
            http.post(link, content=b"nothing,we,know\n1,2,3\n", headers={"X-Filename": "warm.csv"})  # refused
            for label, data in bombs.items():
                upload = functools.partial(http.post, link, content=data, headers={"X-Filename": "bomb.xlsx"})
                figures[label] = {"bytes": len(data), **under_load(proc, upload)}
    return figures


def logo_bombs(sites: Sites, root: Path) -> dict[str, Any]:
    logos = {"SVG <use> fan-out 17 deep": svg_bomb(), "6300x6300 PNG": pixel_logo()}
    figures: dict[str, Any] = {}
    with Served(root / "logos", sites.env()) as proc, httpx.Client(timeout=300, trust_env=False) as http:
        def poster(logo: bytes, scene: str) -> httpx.Response:
            return http.post(proc.url + "/api/posters", headers={"X-API-Key": API_KEY, "Accept-Language": "en"},
                             json={"path": "pages/index/index", "scene": scene, "template": "a4",
                                   "logo": base64.b64encode(logo).decode()})

        small = io.BytesIO()
        Image.new("RGB", (600, 600), "#E53935").save(small, "PNG")
        poster(small.getvalue(), "warm")  # the fork server started and a poster drawn, as after a while
        for n, (label, data) in enumerate(logos.items()):
            figures[label] = {"bytes": len(data), **under_load(proc, functools.partial(poster, data, f"bomb={n}"))}
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mixed", type=int, default=2000)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    sites = Sites()
    figures: dict[str, Any] = {}
    try:
        with tempfile.TemporaryDirectory(prefix="bench-hold-") as tmp:
            root = Path(tmp)
            figures["big_body"] = big_body(sites, root)
            figures["mixed"] = mixed(sites, root, args.mixed)
            figures["two_processes"] = two_processes(sites, root)
            figures["kill_9"] = kill_nine(sites, root)
            figures["identical_pairs"] = identical_pairs(sites, root)
            figures["sheet_bombs"] = sheet_bombs(sites, root)
            figures["logo_bombs"] = logo_bombs(sites, root)
    finally:
        sites.stop()
    if args.json:
        print(json.dumps(figures, indent=2))
        return
    b, m, t, k = figures["big_body"], figures["mixed"], figures["two_processes"], figures["kill_9"]
    p = figures["identical_pairs"]
    print(f"50 MB unsigned body: {b['status']}; RSS {b['rss_before_mb']} -> {b['rss_after_mb']} MB; "
          f"log {b['log_bytes']} bytes in all")
    print(f"{m['requests']} mixed requests: p50 {m['p50_ms']} ms, p99 {m['p99_ms']} ms; statuses {m['status']}; "
          f"RSS {m['rss_before_mb']} -> {m['rss_after_mb']} MB")
    print(f"two processes, one data dir, 60 codes: {t['wechat_calls']} WeChat calls for {t['distinct_codes']} codes "
          f"-> {t['duplicate_upstream_calls']} duplicate(s)")
    print(f"kill -9 0.6 s after {k['acknowledged']} acked WeCom messages: {k['delivered_before_kill']} delivered "
          f"before, {k['delivered_after_restart']} of 30 after the restart")
    print(f"two processes, {p['pairs']} identical A pairs released together: {p['codes']} codes made, "
          f"{p['getwxacode_calls']} getwxacode calls, ledger {p['ledger']} ({p['answered_200']} answered 200)")
    print_bombs(figures["sheet_bombs"], figures["logo_bombs"])


def print_bombs(*groups: dict[str, Any]) -> None:
    for group in groups:
        for label, f in group.items():
            print(f"{label} ({f['bytes']:,} bytes): {f['status']} in {f['seconds']} s ({f['message'] or '-'}); "
                  f"longest /healthz wait {f['longest_healthz_wait_ms']} ms; server RSS {f['rss_before_mb']} -> "
                  f"peak {f['rss_peak_mb']} -> {f['rss_after_mb']} MB; its children's peak (the workers' fork "
                  f"server and workers) {f['children_peak_mb']} MB")


if __name__ == "__main__":
    main()
