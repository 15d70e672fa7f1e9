"""Routes of a live code (by share, by phone, by date) and scans worth reading, over the real server
(``create_app`` on a loopback port, the WeChat emulator) and the chat commands.

A 70/30 share over 1,000 scans, each visitor kept on its page; a phone's platform choosing its page; a dated
route switching at its boundaries (the clock injected into the rules) and one around now through the API;
stats per destination, platform and source, and the CSV export with test scans apart and no raw visitor id.
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from bot import sandbox
from bot.live import LiveCodes, parse_routes
from bot.models import Requester
from handlers import commands
from tests.conftest import Site
from tests.live.test_live import Server, make_live, start

ZONE = ZoneInfo("Asia/Shanghai")
ME = Requester(chat="api", user_id="cms", lang="en")  # the API key "cms" made the codes: it may change them


@pytest.fixture
def server(tmp_path: Path, wechat: Site) -> Iterator[Server]:
    running = start(tmp_path, wechat, minpcode_resolver_rate=1_000_000)  # every scan here comes from 127.0.0.1
    try:
        yield running
    finally:
        running.thread.stop()


def scans(server: Server, key: str, params: list[dict[str, str]], headers: dict[str, str] | None = None) -> list[str]:
    """One resolve per ``params`` over one keep-alive connection; the pages answered, in order."""
    pages = []
    with httpx.Client(trust_env=False, timeout=30, base_url=server.url) as client:
        for p in params:
            answer = client.get(f"/api/scenes/{key}", params=p, headers=headers or {})
            assert answer.status_code == 200, answer.text
            data = answer.json()["data"]
            pages.append(data["page"] + ("?" + "&".join(f"{k}={v}" for k, v in data["query"].items())
                                         if data["query"] else ""))
    return pages


async def test_a_70_30_share_holds_over_1000_scans_and_keeps_each_visitor_on_one_page(server: Server) -> None:
    body = make_live(server)
    reply = await commands.run(server.service, f"repoint {body['id']} pages/a/index=70 pages/b/index?v=2=30", ME)
    assert reply.ok, reply.en
    assert "By share: pages/a/index 70% / pages/b/index?v=2 30%" in reply.en and "按比例" in reply.zh

    visitors = [f"visitor-{n}" for n in range(1000)]
    answered = scans(server, body["scene"], [{"visitor": v} for v in visitors])
    split = Counter(answered)
    assert set(split) == {"pages/a/index", "pages/b/index?v=2"}
    assert 650 <= split["pages/a/index"] <= 750, split  # the split held within a few percent
    # Sticky: the same visitors asking again land where they landed first.
    again = scans(server, body["scene"], [{"visitor": v} for v in visitors[:100]])
    assert again == answered[:100]
    # Without a visitor id each scan draws: both pages still come up.
    drawn = scans(server, body["scene"], [{}] * 60)
    assert set(drawn) == {"pages/a/index", "pages/b/index?v=2"}

    stats = await commands.run(server.service, f"stats {body['id']}", ME)
    assert stats.data["breakdown"]["pages"] == dict(Counter(answered + again + drawn))  # counted per destination
    assert stats.data["days"][-1]["pages"] == dict(Counter(answered + again + drawn))
    shown = await commands.run(server.service, f"show {body['id']}", ME)
    assert "Route · By share: pages/a/index 70%" in shown.en
    api = server.ok("GET", f"/api/codes/{body['id']}")["data"]
    assert api["routes"]["shares"] == [{"page": "pages/a/index", "weight": 70}, {"page": "pages/b/index?v=2", "weight": 30}]


async def test_a_phone_chooses_its_page_and_other_platforms_take_the_rest(server: Server) -> None:
    body = make_live(server, "/pages/home/index")
    view = server.ok("POST", f"/api/codes/{body['id']}/destination",
                     json={"platforms": {"ios": "pages/x/ios", "android": "pages/x/android"}})["data"]
    assert view["destination"] == "pages/home/index"  # the default stays
    assert view["routes"]["platforms"] == {"ios": "pages/x/ios", "android": "pages/x/android"}
    key = body["scene"]
    asked = [{"platform": "ios"}, {"platform": "android"}, {"platform": "iOS"}, {"platform": "windows"}, {},
             {"platform": "<script>"}]
    assert scans(server, key, asked) == ["pages/x/ios", "pages/x/android", "pages/x/ios", "pages/home/index",
                                         "pages/home/index", "pages/home/index"]
    reply = await commands.run(server.service, f"repoint {body['id']} pages/home/index android=pages/x/android "
                                               "other=pages/x/other", ME)
    assert reply.ok, reply.en
    assert scans(server, key, [{"platform": "ohos"}, {"platform": "ios"}, {}]) == [
        "pages/x/other", "pages/x/other", "pages/home/index"]
    counts = server.service.live.breakdown(body["id"])
    # as reported, lower-cased; "<script>" is no platform's name and is kept as "other"
    assert counts.platforms == {"ios": 3, "android": 1, "windows": 1, "unknown": 2, "other": 1, "ohos": 1}


def test_a_dated_route_switches_at_its_boundaries_in_the_teams_zone(server: Server) -> None:
    body = make_live(server, "/pages/home/index")
    service = server.service
    record = service.get(body["id"])
    first = datetime.now(ZONE).date() + timedelta(days=5)
    last = first + timedelta(days=1)
    clock = [0.0]
    rules = service.live.rules
    dated = LiveCodes(service.storage, service.live.scans, router_page=rules.router_page,
                      fallback_page=rules.fallback_page, zone=ZONE, clock=lambda: clock[0])
    change = parse_routes(["pages/sale/index"], {"from": first.isoformat(), "until": last.isoformat()}, ZONE)
    dated.repoint(record, change, Requester(chat="api", user_id="cms"))

    def at(day: date, h: int, m: int, s: int) -> str | None:
        clock[0] = datetime(day.year, day.month, day.day, h, m, s, tzinfo=ZONE).timestamp()
        found = dated.resolve(body["scene"])
        assert found is not None
        return found.page

    assert at(first - timedelta(days=1), 23, 59, 59) == "pages/home/index"
    assert at(first, 0, 0, 0) == "pages/sale/index"
    assert at(last, 23, 59, 59) == "pages/sale/index"  # until is the last day, all of it
    assert at(last + timedelta(days=1), 0, 0, 0) == "pages/home/index"  # then back
    view = dated.view(record)
    assert view is not None and view.routes is not None and view.routes.dated is not None
    assert (view.routes.dated.from_day, view.routes.dated.until_day) == (first, last)


def test_a_dated_route_around_now_over_the_api_keeps_the_other_routes(server: Server) -> None:
    body = make_live(server, "/pages/home/index")
    key = body["scene"]
    server.ok("POST", f"/api/codes/{body['id']}/destination", json={"platforms": {"ios": "pages/x/ios"}})
    today = datetime.now(ZONE).date()
    tomorrow = today + timedelta(days=1)
    server.ok("POST", f"/api/codes/{body['id']}/destination",
              json={"page": "pages/later/index", "from": tomorrow.isoformat()})
    assert scans(server, key, [{}, {"platform": "ios"}]) == ["pages/home/index", "pages/x/ios"]
    server.ok("POST", f"/api/codes/{body['id']}/destination",
              json={"page": "pages/now/index", "from": today.isoformat(), "until": today.isoformat()})
    assert scans(server, key, [{}, {"platform": "ios"}]) == ["pages/now/index", "pages/now/index"]
    routes = server.ok("GET", f"/api/codes/{body['id']}")["data"]["routes"]
    assert routes["platforms"] == {"ios": "pages/x/ios"}
    assert routes["dated"] == {"page": "pages/now/index", "from_day": today.isoformat(), "until_day": today.isoformat()}
    server.ok("POST", f"/api/codes/{body['id']}/destination", json={"page": "pages/plain/index"})  # all routes go
    assert scans(server, key, [{}, {"platform": "ios"}]) == ["pages/plain/index", "pages/plain/index"]
    assert server.ok("GET", f"/api/codes/{body['id']}")["data"]["routes"] is None


@pytest.mark.parametrize(("words", "zh", "en"), [
    ("pages/a=70 pages/b=20", "比例之和须为 100", "must add up to 100 (each above 0, two pages at least); they add up to 90"),
    ("pages/a=100", "比例之和须为 100", "two pages at least"),
    ("pages/a=70 pages/b", "每个页面都要写比例", "every page needs its weight"),
    ("pages/s from=2026-13-01", "from 的日期", "from='2026-13-01' is not a date"),
    ("pages/s from=2099-12-13 until=2099-12-12", "早于", "until (2099-12-12) is before from (2099-12-13)"),
    ("pages/s until=2001-01-01", "已经过去", "has already passed"),
    ("pages/s ios=pages/x from=2099-01-01", "只写一个页面", "A dated repoint names one page"),
    ("pages/s harmony=pages/x", "harmony", "harmony"),
    ("", "缺少参数 [page[=weight]…]", "Missing [page[=weight]…]"),  # the grammar says it, with the usage line
])
async def test_bad_routes_are_refused_in_both_languages(server: Server, words: str, zh: str, en: str) -> None:
    body = make_live(server)
    reply = await commands.run(server.service, f"repoint {body['id']} {words}", ME)
    assert not reply.ok and zh in reply.zh and en in reply.en, (reply.zh, reply.en)
    assert server.service.live.routes_of(server.service.get(body["id"])) is None  # nothing changed


async def test_stats_and_the_csv_show_destinations_platforms_sources_and_test_scans_apart(server: Server) -> None:
    body = make_live(server, "/pages/home/index")
    key = body["scene"]
    reply = await commands.run(server.service, f"repoint {body['id']} pages/home/index ios=pages/x/ios", ME)
    assert reply.ok
    openid = "oXyZ-raw-openid-7"
    scans(server, key, [{"visitor": openid, "platform": "ios"}, {"visitor": openid, "platform": "ios", "source": "link"},
                        {"visitor": "v2", "platform": "android"}, {}])
    test_build = {"Referer": f"https://servicewechat.com/{sandbox.SANDBOX_APPID}/0/page-frame.html"}
    scans(server, key, [{"visitor": "tester", "platform": "devtools"}], headers=test_build)
    server.call("GET", f"/q/{key}", key=None)  # the link page outside WeChat

    stats = await commands.run(server.service, f"stats {body['id']}", ME)
    counts: dict[str, Any] = stats.data["breakdown"]
    assert counts["pages"] == {"pages/home/index": 3, "pages/x/ios": 2}
    assert counts["platforms"] == {"ios": 2, "unknown": 2, "android": 1}
    assert counts["sources"] == {"wxa": 3, "link": 1, "web": 1}
    assert stats.data["live"]["scans"]["tests"] == 1 and stats.data["live"]["scans"]["unique"] == 2
    assert "By source: B code 3 · plain-link QR 1 · link page outside WeChat 1" in stats.en
    assert "按来源: 小程序码 3" in stats.zh and "By platform: ios 2" in stats.en
    assert stats.image is not None and stats.image[:4] == b"\x89PNG"

    exported = server.call("GET", f"/api/codes/{body['id']}/scans.csv")
    assert exported.status_code == 200 and exported.headers["content-type"].startswith("text/csv")
    assert openid not in exported.text and "tester" not in exported.text  # only keyed hashes, never an id sent
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    assert [r["test"] for r in rows] == ["no"] * 4 + ["yes", "no"]
    assert [r["destination"] for r in rows] == ["pages/x/ios", "pages/x/ios", "pages/home/index", "pages/home/index",
                                                "pages/home/index", "pages/home/index"]
    assert [r["source"] for r in rows] == ["wxa", "link", "wxa", "wxa", "unknown", "web"]
    assert [r["platform"] for r in rows] == ["ios", "ios", "android", "unknown", "devtools", "unknown"]
    assert rows[0]["visitor"] == rows[1]["visitor"] != rows[2]["visitor"] and len(rows[0]["visitor"]) == 32
    assert rows[3]["visitor"] == "" and all(r["time"].endswith("+08:00") for r in rows)  # the team's zone
    assert datetime.fromisoformat(rows[0]["time"]).date() == datetime.now(ZONE).date()
    assert server.call("GET", f"/api/codes/{body['id']}/scans.csv", key=None).status_code == 401
    assert server.call("GET", f"/api/codes/{body['id']}/scans.csv?days=0").status_code == 400
    plain = server.ok("POST", "/api/weapp/qrcode", json={"path": "pages/plain/index", "scene": "id=1"})
    assert server.call("GET", f"/api/codes/{plain['id']}/scans.csv").status_code == 400
    spec = server.call("GET", "/openapi.json", key=None).json()
    assert "/api/codes/{code_id}/scans.csv" in spec["paths"]
