"""Live codes (活码) over the real server (``create_app`` on a loopback port) and the WeChat emulator.

Create, resolve, re-point, resolve again, pause, expiry, resume; permission refusals; scans counted
across a restart; visitors kept only as keyed hashes; the resolver's shape and its per-IP limit.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from pydantic import SecretStr

from bot import sandbox
from bot.config import Settings
from bot.destinations import DESTINATION_MAX
from bot.live import rules as live_module
from bot.live import scan_origin
from bot.models import Requester
from bot.sandbox.server import ServerThread, free_port
from bot.server import create_app
from bot.service import Service
from handlers import commands
from storage import Storage
from storage.secrets import INSTALL_KEY, LEGACY_FILES
from tests.conftest import Site, scan_image

CMS_KEY = "cms-live-4f0c2b9a7e1d4c83"
CRM_KEY = "crm-live-9d8e7f6a5b4c3d2e"
B_PATH = "/wxa/getwxacodeunlimit"
ROUTER = "pages/minpcode/router"


@dataclass
class Server:
    url: str
    service: Service
    thread: ServerThread

    def call(self, method: str, path: str, key: str | None = CMS_KEY, **kw: Any) -> httpx.Response:
        headers = dict(kw.pop("headers", {})) | ({"Authorization": f"Bearer {key}"} if key else {})
        with httpx.Client(trust_env=False, timeout=30) as client:
            return client.request(method, self.url + path, headers=headers, **kw)

    def ok(self, method: str, path: str, key: str | None = CMS_KEY, **kw: Any) -> dict[str, Any]:
        response = self.call(method, path, key, **kw)
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["code"] == 0, body
        return body


def settings_for(data_dir: Path, wechat: Site, port: int, **extra: Any) -> Settings:
    return Settings(
        _env_file=None, minpcode_sandbox=False, minpcode_data_dir=data_dir,
        minpcode_public_url=f"http://127.0.0.1:{port}", minpcode_api_keys=SecretStr(f"cms:{CMS_KEY},crm:{CRM_KEY}"),
        wechat_appid=sandbox.SANDBOX_APPID, wechat_secret=SecretStr(sandbox.SANDBOX_SECRET), wechat_api_url=wechat.url,
        **extra)


def start(data_dir: Path, wechat: Site, **extra: Any) -> Server:
    port = free_port()
    app = create_app(settings_for(data_dir, wechat, port, **extra))
    thread = ServerThread(app, port=port).start()
    return Server(thread.url, app.state.service, thread)


@pytest.fixture
def server(tmp_path: Path, wechat: Site) -> Iterator[Server]:
    running = start(tmp_path, wechat)
    try:
        yield running
    finally:
        running.thread.stop()


def make_live(server: Server, path: str = "/pages/coupon/get?id=1&from=poster") -> dict[str, Any]:
    return server.ok("POST", "/api/weapp/qrcode", json={"path": path, "live": True})


def resolve(server: Server, key: str, **params: str) -> httpx.Response:
    return server.call("GET", f"/api/scenes/{key}", key=None, params=params)


def test_create_resolve_repoint_pause_resume_without_a_second_wechat_call(server: Server, wechat: Site) -> None:
    body = make_live(server)
    key = body["scene"]
    assert wechat.log.count(B_PATH) == 1 and wechat.log.count("/wxa/getwxacode") == 0  # a B code: no A/C quota
    image = server.call("GET", body["data"].removeprefix(server.url), key=None).content
    scanned = scan_image(image)
    assert (scanned.kind, scanned.page, scanned.scene) == ("B", ROUTER, key)

    first = resolve(server, key)
    assert first.status_code == 200 and first.headers["cache-control"] == "no-store"
    assert first.json()["data"] == {"key": key, "scene": "id=1&from=poster", "query": {"id": "1", "from": "poster"},
                                    "page": "pages/coupon/get", "live": True, "paused": False}

    view = server.ok("POST", f"/api/codes/{body['id']}/destination",
                     json={"page": "pages/spring/sale?aid=a9a84ZoB"})["data"]
    assert (view["live"], view["destination"], view["paused"]) == (True, "pages/spring/sale?aid=a9a84ZoB", False)
    again = resolve(server, key[2:]).json()["data"]  # the 10 characters alone work too
    assert (again["page"], again["query"]) == ("pages/spring/sale", {"aid": "a9a84ZoB"})

    server.ok("POST", f"/api/codes/{body['id']}/destination", json={"paused": True})
    paused = resolve(server, key).json()["data"]
    assert (paused["page"], paused["query"], paused["live"], paused["paused"]) == ("pages/index/index", {}, True, True)
    server.ok("POST", f"/api/codes/{body['id']}/destination", json={"paused": False})
    assert resolve(server, key).json()["data"]["page"] == "pages/spring/sale"
    assert wechat.log.count(B_PATH) == 1  # re-pointing, pausing and resuming never call WeChat

    record = server.ok("GET", f"/api/codes/{body['id']}")["data"]
    assert (record["page"], record["scene"], record["scans"]) == (ROUTER, key, 4)
    history = server.service.live.view(server.service.get(body["id"]))
    assert history is not None
    assert [d.page for d in history.destinations] == ["pages/coupon/get?id=1&from=poster",
                                                       "pages/spring/sale?aid=a9a84ZoB"]
    assert {d.set_by for d in history.destinations} == {"api:cms"}
    actions = [a["action"] for a in server.service.storage.audit.for_code(body["id"])]
    assert actions[-3:] == ["repointed", "paused", "resumed"]


async def test_expiry_sends_scans_to_the_fallback_until_resumed(server: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    service = server.service
    body = server.ok("POST", "/api/weapp/qrcode", json={"path": "pages/event/index?d=1", "live": True,
                                                        "expires": "2099-12-31"})
    key = body["scene"]
    assert resolve(server, key).json()["data"]["page"] == "pages/event/index"
    # The clock is the one thing without a wire: move it past the last day (local end of day).
    later = service.live.rules.end_of(date(2099, 12, 31)) + 1
    assert datetime.fromtimestamp(later - 2, ZoneInfo("Asia/Shanghai")).date() == date(2099, 12, 31)
    monkeypatch.setattr(live_module.time, "time", lambda: later)
    expired = resolve(server, key).json()["data"]
    assert (expired["page"], expired["paused"]) == ("pages/index/index", True)
    me = Requester(chat="api", user_id="cms", lang="en")
    shown = await commands.run(service, f"show {body['id']}", me)
    assert "expired: scans open the fallback page" in shown.en and "Last day: 2099-12-31" in shown.en
    resumed = await commands.run(service, f"resume {body['id']}", me)
    assert resumed.ok
    assert resolve(server, key).json()["data"]["page"] == "pages/event/index"
    past = server.call("POST", "/api/weapp/qrcode", json={"path": "pages/a/b", "live": True, "expires": "2001-01-01"})
    assert past.status_code == 400 and "expires" in past.text
    plain = server.call("POST", "/api/weapp/qrcode", json={"path": "pages/a/b", "expires": "2099-01-01"})
    assert plain.status_code == 400


async def test_only_the_creator_or_an_admin_may_change_a_live_code(tmp_path: Path, wechat: Site) -> None:
    server = start(tmp_path, wechat, minpcode_admins=["cli:boss"])
    try:
        body = make_live(server)
        refused = server.call("POST", f"/api/codes/{body['id']}/destination", key=CRM_KEY, json={"page": "pages/x/y"})
        assert refused.status_code == 403 and "cms" in refused.json()["msg"]
        stranger = Requester(chat="slack", user_id="U2", lang="zh")
        for verb in ("pause", "resume", "repoint"):
            reply = await commands.run(server.service, f"{verb} {body['id']}" + (" pages/x/y" if verb == "repoint" else ""),
                                       stranger)
            assert not reply.ok and "只有创建者" in reply.zh
        admin = await commands.run(server.service, f"改指向 {body['id']} pages/boss/page", Requester(user_id="boss"))
        assert admin.ok and resolve(server, body["scene"]).json()["data"]["page"] == "pages/boss/page"
    finally:
        server.thread.stop()


async def test_destinations_are_checked_and_plain_codes_are_not_live(server: Server) -> None:
    body = make_live(server)
    too_long = "pages/a/b?x=" + "1" * (DESTINATION_MAX - 11)
    response = server.call("POST", f"/api/codes/{body['id']}/destination", json={"page": too_long})
    assert response.status_code == 400 and "1024" in response.json()["msg"]
    fits = too_long[:DESTINATION_MAX]
    server.ok("POST", f"/api/codes/{body['id']}/destination", json={"page": fits})
    assert resolve(server, body["scene"]).json()["data"]["scene"] == fits.partition("?")[2]
    for bad in ("", "pages/a b", "pages/a?scancode_time=1"):
        assert server.call("POST", f"/api/codes/{body['id']}/destination", json={"page": bad}).status_code == 400
    plain = server.ok("POST", "/api/weapp/qrcode", json={"path": "pages/plain/index", "scene": "id=1"})
    response = server.call("POST", f"/api/codes/{plain['id']}/destination", json={"page": "pages/x/y"})
    assert response.status_code == 400 and "not a live code" in server.call(
        "POST", f"/api/codes/{plain['id']}/destination", json={"page": "pages/x/y"},
        headers={"Accept-Language": "en"}).json()["msg"]
    assert server.ok("GET", f"/api/codes/{plain['id']}")["data"]["live"] is False
    with_scene = server.call("POST", "/api/weapp/qrcode", json={"path": "pages/a/b", "scene": "x=1", "live": True})
    assert with_scene.status_code == 400


def test_scans_survive_a_clean_restart_and_visitors_are_only_hashed(tmp_path: Path, wechat: Site) -> None:
    server = start(tmp_path, wechat)
    body = make_live(server)
    key = body["scene"]
    openids = ["oXyZ-openid-1", "oXyZ-openid-2", "oXyZ-openid-1"]
    for openid in openids:
        assert resolve(server, key, visitor=openid).status_code == 200
    for _ in range(7):
        assert resolve(server, key).status_code == 200
    server.thread.stop()  # a clean shutdown: the flusher writes what is still in memory

    db = sqlite3.connect(tmp_path / "minpcode.db")
    stored = [row[0] for row in db.execute("SELECT visitor FROM scans WHERE key = ? AND visitor IS NOT NULL", [key])]
    db.close()
    assert len(stored) == 3 and not any("openid" in (v or "") for v in stored)
    with sqlite3.connect(tmp_path / "minpcode.db") as db:  # the key is the database's, not a file's
        secret = bytes(db.execute("SELECT value FROM secrets WHERE name = ?", [INSTALL_KEY]).fetchone()[0])
    assert not (tmp_path / LEGACY_FILES[INSTALL_KEY]).exists()
    assert stored[0] == hmac.new(secret, b"oXyZ-openid-1", hashlib.sha256).hexdigest()[:32]

    again = start(tmp_path, wechat)
    try:
        view = again.service.live.view(again.service.get(body["id"]))
        assert view is not None
        assert (view.scans.total, view.scans.today, view.scans.last_7_days, view.scans.unique) == (10, 10, 10, 2)
        listed = again.ok("GET", "/api/codes")["data"]["items"]
        assert [(i["live"], i["scans"]) for i in listed if i["id"] == body["id"]] == [(True, 10)]
    finally:
        again.thread.stop()


def test_a_configured_hash_key_is_used_and_nothing_is_written_beside_the_database(tmp_path: Path, wechat: Site) -> None:
    server = start(tmp_path, wechat, minpcode_scan_hash_key=SecretStr("team-secret"))
    try:
        key = make_live(server)["scene"]
        resolve(server, key, visitor="v1")
        server.service.live.scans.flush()
        db = sqlite3.connect(tmp_path / "minpcode.db")
        (visitor,) = db.execute("SELECT visitor FROM scans").fetchone()
        db.close()
        assert visitor == hmac.new(b"team-secret", b"v1", hashlib.sha256).hexdigest()[:32]
        assert not (tmp_path / LEGACY_FILES[INSTALL_KEY]).exists()
        with sqlite3.connect(tmp_path / "minpcode.db") as db:  # the setting's key is nowhere stored
            assert db.execute("SELECT count(*) FROM secrets").fetchone()[0] == 0
    finally:
        server.thread.stop()


def test_unknown_keys_are_answered_alike_and_each_ip_is_limited(tmp_path: Path, wechat: Site) -> None:
    server = start(tmp_path, wechat, minpcode_resolver_rate=120)  # bursts of 12
    try:
        answers = {resolve(server, k).text for k in ("k=0000000000", "0000000000", "k=zzzzzzzzzz")}
        assert len(answers) == 1 and resolve(server, "nonsense").status_code == 404
        began = time.monotonic()
        responses = []
        while len(responses) < 60 and (not responses or responses[-1].status_code != 429):
            responses.append(resolve(server, "k=0000000000"))
        elapsed = time.monotonic() - began
        statuses = [r.status_code for r in responses]
        first = statuses.index(429)
        # 12 a burst, 2 a second back: the limit bites after the burst and what came back meanwhile (a
        # loaded machine sends slower, so the bound follows the time the requests took, not a guess).
        assert 8 <= first <= 12 + 2 * elapsed + 2 and set(statuses[:first]) == {404}
        limited = responses[first]
        assert limited.headers["retry-after"] == "1" and limited.json()["code"] == -1
        # the same address, limited for keys that do not exist, still opens a printed code at once
        known = make_live(server)["scene"]
        assert [resolve(server, known).status_code for _ in range(20)] == [200] * 20
    finally:
        server.thread.stop()


async def test_200_scans_of_one_code_from_one_address_are_all_answered_and_the_counts_kept_sane(
        server: Server) -> None:
    body = make_live(server)
    key = body["scene"]
    gate = asyncio.Semaphore(50)

    async def scan(client: httpx.AsyncClient, n: int) -> int:
        async with gate:
            return (await client.get(f"{server.url}/api/scenes/{key}", params={"visitor": f"phone-{n}"})).status_code

    began = time.monotonic()
    limits = httpx.Limits(max_connections=50, max_keepalive_connections=50)
    async with httpx.AsyncClient(trust_env=False, timeout=30, limits=limits) as client:
        statuses = await asyncio.gather(*(scan(client, n) for n in range(200)))
    elapsed = time.monotonic() - began
    assert statuses.count(200) == 200  # one venue's Wi-Fi: every phone behind it opens the code
    # What one address adds to one code's counts: the default 600 a minute, in bursts of 60.
    view = server.service.live.view(server.service.get(body["id"]))
    assert view is not None and 60 <= view.scans.total <= 60 + 10 * elapsed + 1
    listed = server.ok("GET", "/api/codes")["data"]["items"]
    assert [i["scans"] for i in listed if i["id"] == body["id"]] == [view.scans.total]


async def test_test_builds_are_counted_apart_and_other_mini_programs_not_at_all(server: Server) -> None:
    body = make_live(server)
    key = body["scene"]
    frame = "https://servicewechat.com/{}/{}/page-frame.html"
    referers = {
        "release": frame.format(sandbox.SANDBOX_APPID, 17),
        "develop, trial or review": frame.format(sandbox.SANDBOX_APPID, 0),
        "the IDE": frame.format(sandbox.SANDBOX_APPID, "devtools"),
        "another mini program": frame.format("wx0123456789abcdef", 3),
        "another mini program's test build": frame.format("wx0123456789abcdef", 0),
    }
    for who, referer in referers.items():
        answer = server.call("GET", f"/api/scenes/{key}", key=None, headers={"Referer": referer})
        assert answer.status_code == 200 and answer.json()["data"]["page"] == "pages/coupon/get", who
    assert resolve(server, key).status_code == 200  # no Referer (another client): counted as before

    view = server.service.live.view(server.service.get(body["id"]))
    assert view is not None
    assert (view.scans.total, view.scans.today, view.scans.last_7_days, view.scans.tests) == (2, 2, 2, 2)
    me = Requester(chat="api", user_id="cms", lang="en")
    shown = await commands.run(server.service, f"show {body['id']}", me)
    assert "Scans: 2 in all" in shown.en and "Test scans: 2" in shown.en and "测试扫码: 2 次" in shown.zh
    stats = await commands.run(server.service, f"stats {body['id']}", me)
    assert sum(d["scans"] for d in stats.data["days"]) == 2 and stats.data["live"]["scans"]["tests"] == 2
    listed = server.ok("GET", "/api/codes")["data"]["items"]
    assert [i["scans"] for i in listed if i["id"] == body["id"]] == [2]


@pytest.mark.parametrize(("referer", "origin"), [
    (None, "real"),
    ("https://codes.example.com/q/abc", "real"),
    (f"https://servicewechat.com/{sandbox.SANDBOX_APPID}/3/page-frame.html", "real"),
    (f"https://servicewechat.com/{sandbox.SANDBOX_APPID}/0/page-frame.html", "test"),
    (f"https://servicewechat.com/{sandbox.SANDBOX_APPID}/devtools/page-frame.html", "test"),
    ("https://servicewechat.com/wxother/3/page-frame.html", "other"),
    (f"https://servicewechat.com/{sandbox.SANDBOX_APPID}/0/other.html", "real"),  # not the documented form
    (f"http://servicewechat.com/{sandbox.SANDBOX_APPID}/0/page-frame.html", "real"),
])
def test_a_scans_origin_is_read_from_wx_requests_referer(referer: str | None, origin: str) -> None:
    assert scan_origin(referer, sandbox.SANDBOX_APPID) == origin
    assert scan_origin(referer, None) == ("real" if origin == "other" else origin)  # no appid: none is another's


def test_a_long_scene_key_answers_as_before(server: Server) -> None:
    params = "product_id=12345&from=公众号推文"
    key = server.ok("POST", "/api/weapp/qrcode", json={"path": "pages/p/d", "scene": params, "long_scene": "key"})["scene"]
    response = resolve(server, key)
    assert response.headers["cache-control"] == "public, max-age=86400, immutable"
    assert response.json()["data"] == {"key": key, "scene": params, "query": {"product_id": "12345", "from": "公众号推文"},
                                       "page": None, "live": False, "paused": False}
    assert server.service.live.view(server.service.get(
        server.ok("GET", "/api/codes")["data"]["items"][0]["id"])) is None


async def test_stats_draws_scans_per_day(server: Server) -> None:
    body = make_live(server)
    for _ in range(3):
        resolve(server, body["scene"])
    reply = await commands.run(server.service, f"统计 {body['id']}", Requester(user_id="anyone"))
    assert reply.ok and reply.image is not None and reply.image[:8] == b"\x89PNG\r\n\x1a\n"
    days = reply.data["days"]
    assert len(days) == 30 and days[-1]["scans"] == 3 and sum(d["scans"] for d in days) == 3
    assert "共 3 次" in reply.zh
    started = time.perf_counter()
    assert server.service.live.resolve("k=0000000000") is None
    assert time.perf_counter() - started < 1.0


def test_the_summary_lists_the_most_scanned_codes(server: Server) -> None:
    from bot.summary import render_text, summary_for_days
    from handlers.slack.summary_view import slack_blocks
    from handlers.wecom.summary_view import wecom_markdown

    busy, quiet = make_live(server, "/pages/busy/index?x=1"), make_live(server, "/pages/quiet/index")
    for _ in range(5):
        resolve(server, busy["scene"])
    resolve(server, quiet["scene"])
    summary = summary_for_days(server.service, 7)
    assert [(c.id, c.scans) for c in summary.top_scanned] == [(busy["id"], 5), (quiet["id"], 1)]
    text = render_text(summary, "zh")
    assert "扫码最多的活码：" in text and f"({busy['id']}) — 5次" in text
    assert "Most scanned codes" in render_text(summary, "en")
    assert busy["id"] in str(slack_blocks(summary, "en")) and busy["id"] in wecom_markdown(summary, "zh")


def test_a_change_made_by_another_process_reaches_the_server_within_the_cache_time(
        server: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    body = make_live(server)
    assert resolve(server, body["scene"]).json()["data"]["page"] == "pages/coupon/get"
    monkeypatch.setattr(live_module, "CACHE_SECONDS", 0.3)
    other = Service(server.service.settings, Storage.open(tmp_path), server.service.upstream)  # the CLI, say
    other.live.repoint(body["id"], "pages/from/cli", Requester(chat="api", user_id="cms"))
    other.storage.close()
    time.sleep(0.4)
    assert resolve(server, body["scene"]).json()["data"]["page"] == "pages/from/cli"
