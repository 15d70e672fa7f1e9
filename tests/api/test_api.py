"""The HTTP API over real loopback HTTP, against the real server (``create_app``) on the sandbox.

Every answer of the API's contract (docs/api.md), both key headers, reuse without a second upstream call,
history routes, the image route, long parameters behind short scenes, and the OpenAPI document.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import jsonschema
import pytest
import zxingcpp
from PIL import Image
from pydantic import SecretStr
from starlette.routing import Route

import handlers.api as api_module_init
import handlers.api.errors as api_errors
import handlers.api.routes as api_module
from bot import scenes
from bot.config import Settings
from bot.errors import FieldError, InvalidRequest, NotFound, QuotaExhausted, UpstreamBusy
from bot.sandbox import SANDBOX_APPID
from bot.sandbox.qr import ScannedCode, parse_code_url
from bot.sandbox.server import ServerThread, free_port
from bot.server import create_app
from bot.service import Service
from bot.version import __commit__, __version__
from handlers.api import ApiKeys, openapi_document
from handlers.api.errors import MAX_BODY
from handlers.http import BodyTooLarge

CMS_KEY = "cms-4f0c2b9a7e1d4c83b6a5"
CRM_KEY = "crm-9d8e7f6a5b4c3d2e1f00"
CRM_OLD_KEY = "crm-old-0011223344556677"
KEYS = f"cms:{CMS_KEY}, crm:{CRM_KEY}, crm:{CRM_OLD_KEY}"
B_PATH = "/wxa/getwxacodeunlimit"
A_PATH = "/wxa/getwxacode"


@dataclass
class Live:
    url: str
    service: Service
    app: Any

    @property
    def wechat(self) -> Any:
        return self.service.upstream.emulators[0]

    def post(self, body: Any, key: str | None = CMS_KEY, header: str = "bearer", **kw: Any) -> httpx.Response:
        headers = dict(kw.pop("headers", {}))
        if key is not None:
            headers.update({"Authorization": f"Bearer {key}"} if header == "bearer" else {"X-API-Key": key})
        with httpx.Client(trust_env=False, timeout=30) as client:
            if isinstance(body, bytes | str):
                return client.post(self.url + "/api/weapp/qrcode", content=body, headers=headers, **kw)
            return client.post(self.url + "/api/weapp/qrcode", json=body, headers=headers, **kw)

    def get(self, path: str, key: str | None = CMS_KEY, **kw: Any) -> httpx.Response:
        headers = dict(kw.pop("headers", {}))
        if key is not None:
            headers["X-API-Key"] = key
        with httpx.Client(trust_env=False, timeout=30) as client:
            return client.get(path if path.startswith("http") else self.url + path, headers=headers, **kw)


def _start(tmp: Path, api_keys: str | None = KEYS) -> tuple[ServerThread, Live]:
    port = free_port()
    settings = Settings(_env_file=None, minpcode_sandbox=True, minpcode_data_dir=tmp,
                        minpcode_public_url=f"http://127.0.0.1:{port}/",
                        minpcode_api_keys=SecretStr(api_keys) if api_keys is not None else None)
    app = create_app(settings)
    server = ServerThread(app, port=port).start()
    return server, Live(url=server.url, service=app.state.service, app=app)


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    server, running = _start(tmp_path_factory.mktemp("api"))
    try:
        yield running
    finally:
        server.stop()


def scan(image: bytes) -> ScannedCode:
    found = zxingcpp.read_barcodes(Image.open(io.BytesIO(image)))
    assert len(found) == 1
    return parse_code_url(found[0].text)


def ok(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["code"] == 0 and body["msg"] == "", body
    return body


def image_of(live: Live, url: str) -> bytes:
    response = live.get(url, key=None)
    assert response.status_code == 200
    return response.content


# -- making codes -----------------------------------------------------------------------------------
def test_seed_example_makes_a_b_code_whose_url_serves_it(live: Live) -> None:
    body = ok(live.post({"path": "/pages/product/detail", "scene": "product_id=123"}))
    assert set(body) >= {"code", "msg", "data"}
    assert re.fullmatch(rf"{re.escape(live.url)}/codes/[a-z0-9]{{12}}\.png", body["data"])
    scanned = scan(image_of(live, body["data"]))
    assert scanned == ScannedCode(appid=SANDBOX_APPID, kind="B", page="pages/product/detail", scene="product_id=123")


def test_without_a_scene_an_a_code_keeps_the_query(live: Live) -> None:
    for scene in (None, "", "   "):
        payload: dict[str, Any] = {"path": "/pages/list/index?tab=new"}
        if scene is not None:
            payload["scene"] = scene
        body = ok(live.post(payload))
        scanned = scan(image_of(live, body["data"]))
        assert (scanned.kind, scanned.page, scanned.scene) == ("A", "pages/list/index?tab=new", None)
        assert body["scene"] is None


def test_x_api_key_header_works_and_a_rotated_key_keeps_its_name(live: Live) -> None:
    first = ok(live.post({"path": "pages/crm/a", "scene": "c=1"}, key=CRM_KEY, header="x-api-key"))
    second = ok(live.post({"path": "pages/crm/b", "scene": "c=1"}, key=CRM_OLD_KEY, header="bearer"))
    for body in (first, second):
        record = ok(live.get(f"/api/codes/{body['id']}"))["data"]
        assert record["requested_by"] == "api:crm" and record["chat"] == "api"


def test_missing_key_is_1001(live: Live) -> None:
    for headers in ({}, {"Authorization": "Basic Y21zOnNlY3JldA=="}, {"Authorization": "Bearer"},
                    {"X-API-Key": ""}):
        response = live.post({"path": "pages/a"}, key=None, headers=headers)
        assert response.status_code == 401
        assert response.json()["code"] == 1001 and response.json()["data"] is None
        assert response.headers["www-authenticate"].startswith("Bearer")
    assert live.get("/api/codes", key=None).json()["code"] == 1001


def test_wrong_key_is_1002(live: Live) -> None:
    for header in ("bearer", "x-api-key"):
        for key in ("nope", CMS_KEY + "x", CMS_KEY[:-1], f"cms:{CMS_KEY}", "x" * 5000):
            response = live.post({"path": "pages/a"}, key=key, header=header)
            assert response.status_code == 403 and response.json()["code"] == 1002
    assert live.get("/api/codes", key="nope").json()["code"] == 1002
    assert live.get("/api/codes/abc", key="nope").json()["code"] == 1002


def test_closed_api_refuses_every_key(tmp_path: Path) -> None:
    server, closed = _start(tmp_path, api_keys=None)
    try:
        assert closed.post({"path": "pages/a"}, key=None).json()["code"] == 1001
        answer = closed.post({"path": "pages/a"}, key="anything").json()
        assert answer["code"] == 1002 and "MINPCODE_API_KEYS" in answer["msg"]
    finally:
        server.stop()


def test_keys_never_appear_in_logs_or_answers(live: Live, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    texts = [
        live.post({"path": "pages/log/a", "scene": "x=1"}).text,
        live.post({"path": "pages/log/a", "scene": "x=1"}, key=CRM_KEY, header="x-api-key").text,
        live.post({"path": "pages/log/a"}, key="wrong-" + CMS_KEY).text,
        live.post({"path": ""}, key=CMS_KEY).text,
        live.get("/api/codes?limit=1", key=CRM_OLD_KEY).text,
    ]
    ApiKeys(SecretStr("good:abcdef, bare-secret-without-name, :nameless-secret"))
    logged = caplog.text
    assert "entry 2" in logged and "entry 3" in logged  # malformed entries are reported by position
    for secret in (CMS_KEY, CRM_KEY, CRM_OLD_KEY, "bare-secret-without-name", "nameless-secret"):
        assert secret not in logged
        assert all(secret not in text for text in texts)
    assert "cms" in logged  # the key's name is what the log shows


def test_input_errors_carry_the_seeds_codes(live: Live) -> None:
    cases: list[tuple[Any, int]] = [
        ({"path": "", "scene": "product_id=123"}, 3001),
        ({"path": "   "}, 3001),
        ({"scene": "a=1"}, 3001),
        ({"path": None}, 3001),
        ({"path": "/"}, 3001),
        ({"path": "pages/a", "scene": 123}, 3002),
        ({"path": "pages/a", "scene": "a=1\x00"}, 3002),
        ({"path": "pages/a", "scene": "x" * (scenes.PARAMS_MAX + 1)}, 3002),
        ({"path": "pages/a", "scene": "k=ZZZZZZZZZZ", "long_scene": "key"}, 3002),  # key-shaped, but no such key
        ({"path": "/pages/product/detail", "scene": "产品=1"}, 3002),  # 3002: WeChat would refuse it
        ({"path": "pages/a", "scene": "x" * 33}, 3002),
        ({"path": "pages/a", "scene": "a=1", "long_scene": "yes"}, -1),
        ({"path": "pages/a?x=1", "scene": "a=1"}, -1),  # a B page cannot carry a query
        ({"path": "pages/a b"}, -1),
        ({"path": 5}, -1),
        ({"path": "pages/a", "width": 100}, -1),
        ({"path": "pages/a", "width": "big"}, -1),
        ({"path": "pages/a", "scen": "typo"}, -1),
        (b'{"path": "pages/\\ud800"}', -1),  # a lone surrogate (valid JSON, not storable text)
        (b'{"path": "pages/a", "scene": "a=\\udfff"}', 3002),
        ({"path": "pages/" + "x" * 1100}, -1),  # A paths are at most 1024 bytes
        (b"not json", -1),
        (b"[1, 2]", -1),
        (b"\xff\xfe", -1),
    ]
    for body, code in cases:
        response = live.post(body, headers={"Content-Type": "application/json"})
        answer = response.json()
        assert (response.status_code, answer["code"]) == (400, code), (body, answer)
        assert answer["msg"] and answer["data"] is None
    huge = live.post(b'{"path": "' + b"a" * 20000 + b'"}', headers={"Content-Type": "application/json"})
    assert huge.status_code == 413 and huge.json()["code"] == -1


def test_msg_language_follows_accept_language(live: Live) -> None:
    zh = live.post({"path": ""}).json()["msg"]
    en = live.post({"path": ""}, headers={"Accept-Language": "en-GB,en;q=0.9"}).json()["msg"]
    assert zh.startswith("path 参数不能为空") and en.startswith("The path cannot be empty")


def test_different_scenes_make_different_images(live: Live) -> None:
    first = ok(live.post({"path": "pages/goods/index", "scene": "id=1"}))
    second = ok(live.post({"path": "pages/goods/index", "scene": "id=2"}))
    assert first["data"] != second["data"]
    one, two = image_of(live, first["data"]), image_of(live, second["data"])
    assert one != two
    assert (scan(one).scene, scan(two).scene) == ("id=1", "id=2")


def test_identical_request_reuses_the_code_without_an_upstream_call(live: Live) -> None:
    payload = {"path": "/pages/reuse/index", "scene": "r=1"}
    first = ok(live.post(payload))
    calls = live.wechat.calls[B_PATH]
    again = ok(live.post({"path": "pages/reuse/index", "scene": " r=1 "}, key=CRM_KEY))
    assert (again["data"], again["id"], again["reused"]) == (first["data"], first["id"], True)
    assert first["reused"] is False
    assert live.wechat.calls[B_PATH] == calls


@pytest.mark.slow
def test_a_leading_slash_in_the_api_is_the_same_code_as_the_cli_makes_without_it(tmp_path: Path) -> None:
    server, running = _start(tmp_path)
    try:
        made = ok(running.post({"path": "/pages/slash/index", "scene": "s=1"}))
        assert running.service.get(made["id"]).page == "pages/slash/index"  # a B page, accepted and normalised
        env = {k: v for k, v in os.environ.items() if not k.startswith(("WECHAT_", "GIO_", "SLACK_", "WECOM_", "MINPCODE_"))}
        env.update(MINPCODE_DATA_DIR=str(tmp_path), MINPCODE_SANDBOX="true", USER="alice", PYTHONUTF8="1")
        for page in ("pages/slash/index", "/pages/slash/index"):  # the CLI refused the second before the core's rule
            done = subprocess.run([sys.executable, "-m", "bot", "create", "--page", page, "--type", "B", "--scene", "s=1",
                                   "--json"], env=env, cwd=tmp_path, capture_output=True, text=True, encoding="utf-8",
                                  timeout=120)
            assert done.returncode == 0, done.stdout + done.stderr
            answer = json.loads(done.stdout)
            assert (answer["id"], answer["reused"], answer["page"]) == (made["id"], True, "pages/slash/index")
    finally:
        server.stop()


def test_a_code_reuse_spends_the_quota_once(live: Live) -> None:
    used = live.service.storage.ledger.used(SANDBOX_APPID)
    calls = live.wechat.calls[A_PATH]
    first = ok(live.post({"path": "pages/quota/index?q=1"}))
    again = ok(live.post({"path": "/pages/quota/index?q=1"}))
    assert again["id"] == first["id"] and again["reused"]
    assert live.wechat.calls[A_PATH] == calls + 1
    assert live.service.storage.ledger.used(SANDBOX_APPID) == used + 1


async def test_concurrent_identical_requests_make_one_code(live: Live) -> None:
    calls = live.wechat.calls[B_PATH]
    async with httpx.AsyncClient(trust_env=False, timeout=30) as client:
        answers = await asyncio.gather(*(
            client.post(live.url + "/api/weapp/qrcode", json={"path": "pages/race/index", "scene": "race=1"},
                        headers={"X-API-Key": CMS_KEY}) for _ in range(8)))
    bodies = [ok(a) for a in answers]
    assert len({b["id"] for b in bodies}) == 1
    assert sum(not b["reused"] for b in bodies) == 1
    assert live.wechat.calls[B_PATH] == calls + 1


def test_width_is_part_of_the_code(live: Live) -> None:
    small = ok(live.post({"path": "pages/w/index", "scene": "w=1", "width": 280}))
    large = ok(live.post({"path": "pages/w/index", "scene": "w=1", "width": 1280}))
    assert small["id"] != large["id"]
    assert ok(live.get(f"/api/codes/{large['id']}"))["data"]["width"] == 1280


def test_upstream_refusal_is_minus_one_with_the_reason(live: Live) -> None:
    live.wechat.inject(41030, path=B_PATH)
    response = live.post({"path": "pages/missing/index", "scene": "m=1"})
    answer = response.json()
    assert response.status_code == 502 and answer["code"] == -1 and answer["data"] is None
    assert answer["msg"]
    # A failed code is not reused: the same request tries again and succeeds.
    ok(live.post({"path": "pages/missing/index", "scene": "m=1"}))


def test_quota_exhausted_is_minus_one_409(live: Live) -> None:
    settings = live.service.settings
    cap = settings.minpcode_ac_cap
    settings.minpcode_ac_cap = live.service.storage.ledger.used(SANDBOX_APPID)
    try:
        response = live.post({"path": "pages/quota/new-one"})
        assert response.status_code == 409 and response.json()["code"] == -1
        assert "B" in response.json()["msg"]
        ok(live.post({"path": "pages/quota/index?q=1"}))  # an A code already made is still reused
    finally:
        settings.minpcode_ac_cap = cap


def test_still_pending_is_503_and_the_retry_reuses(live: Live, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(api_module, "WAIT_SECONDS", 0.05)
    live.wechat.latency = 0.5
    try:
        response = live.post({"path": "pages/slow/index", "scene": "s=1"})
    finally:
        live.wechat.latency = 0.0
    assert response.status_code == 503 and response.json()["code"] == -1
    assert response.headers["retry-after"] == "5"
    monkeypatch.setattr(api_module, "WAIT_SECONDS", 30.0)
    calls = live.wechat.calls[B_PATH]
    body = ok(live.post({"path": "pages/slow/index", "scene": "s=1"}))
    assert body["reused"] and live.wechat.calls[B_PATH] == calls


# -- long parameters --------------------------------------------------------------------------------
def test_seed_003_a_scene_wechat_would_refuse_is_3002_naming_the_opt_in(live: Live) -> None:
    calls = live.wechat.calls[B_PATH]
    response = live.post({"path": "/pages/product/detail", "scene": "产品=1"})
    body = response.json()
    assert (response.status_code, body["code"]) == (400, 3002)
    assert '"long_scene": "key"' in body["msg"] and "'产品'" in body["msg"]
    assert live.service.storage.scenes.key_for("产品=1") is None and live.wechat.calls[B_PATH] == calls
    assert "long_scene" in live.get("/openapi.json", key=None).json()["components"]["schemas"]["QRCodeRequest"][
        "properties"]


def test_long_parameters_go_through_a_short_key(live: Live) -> None:
    params = "product_id=12345&from=公众号推文&campaign=双十一大促&utm=spring"
    body = ok(live.post({"path": "/pages/product/detail", "scene": params, "long_scene": "key"}))
    key = body["scene"]
    assert scenes.KEY_RE.fullmatch(key) and len(key) <= 32
    scanned = scan(image_of(live, body["data"]))
    assert (scanned.kind, scanned.scene) == ("B", key)
    # The mini program resolves it, with no API key, as it arrives (URL-encoded) or decoded, with or without k=.
    for form in (key, key[2:], quote(key, safe="")):
        answer = ok(live.get(f"/api/scenes/{form}", key=None))
        # Today's fields stay as they were; live codes' fields are there, saying "not live" (tests/live/test_live.py).
        assert answer["data"] == {"key": key, "scene": params, "query": {
            "product_id": "12345", "from": "公众号推文", "campaign": "双十一大促", "utm": "spring"},
            "page": None, "live": False, "paused": False}
    # The same parameters get the same key and reuse the code; the record shows the parameters.
    calls = live.wechat.calls[B_PATH]
    again = ok(live.post({"path": "pages/product/detail", "scene": params, "long_scene": "key"}))
    assert (again["scene"], again["id"], again["reused"]) == (key, body["id"], True)
    assert live.wechat.calls[B_PATH] == calls
    record = ok(live.get(f"/api/codes/{body['id']}"))["data"]
    assert record["scene"] == key and record["scene_params"] == params and params in record["comments"]
    found = ok(live.get("/api/codes", params={"q": "双十一大促"}))["data"]["items"]
    assert [r["id"] for r in found] == [body["id"]]
    # Sending the key itself is the same code.
    assert ok(live.post({"path": "pages/product/detail", "scene": key}))["id"] == body["id"]


def test_scenes_that_do_not_fit_are_shortened_and_those_that_fit_are_not(live: Live) -> None:
    fits = "a" * 32
    assert ok(live.post({"path": "pages/s/index", "scene": fits}))["scene"] == fits
    for scene, query in (("a" * 33, {"a" * 33: ""}), ("name=张三", {"name": "张三"}), ("q=a b+c", {"q": "a b+c"}),
                         ("p=100%&p=5%&x", {"p": "5%", "x": ""})):
        key = ok(live.post({"path": "pages/s/index", "scene": scene, "long_scene": "key"}))["scene"]
        assert scenes.is_key(key)
        data = ok(live.get(f"/api/scenes/{quote(key, safe='')}", key=None))["data"]
        assert (data["scene"], data["query"]) == (scene, query)


def test_a_refused_request_stores_no_scene(live: Live) -> None:
    # A B page cannot carry a ?query: the request is refused before the long scene is stored.
    response = live.post({"path": "pages/refused/index?x=1", "scene": "城市=拒绝", "long_scene": "key"})
    assert response.status_code == 400 and response.json()["code"] == -1
    assert live.service.storage.scenes.key_for("城市=拒绝") is None
    stored = ok(live.post({"path": "pages/refused/index", "scene": "城市=拒绝", "long_scene": "key"}))["scene"]
    assert live.service.storage.scenes.key_for("城市=拒绝") == stored


def test_unknown_scene_key_is_404(live: Live) -> None:
    for key in ("k=0000000000", "0000000000", "nonsense", "k%3D", "x" * 100):
        response = live.get(f"/api/scenes/{key}", key=None)
        assert response.status_code == 404 and response.json()["code"] == -1


def test_shorten_is_deterministic_and_keys_are_random(live: Live) -> None:
    storage = live.service.storage
    one = scenes.shorten(storage, "城市=上海&门店=静安寺")
    assert scenes.shorten(storage, "城市=上海&门店=静安寺") == one
    other = scenes.shorten(storage, "城市=上海&门店=静安寺 ")
    assert other != one and scenes.resolve(storage, other) == "城市=上海&门店=静安寺 "
    assert scenes.resolve(storage, one) == "城市=上海&门店=静安寺"
    # What shorten_fields did for the API alone, Service.prepare now does for every front-end that asks (long_scene=True):
    # tests/core/test_service.py::test_long_scenes_go_behind_a_key_when_asked.


# -- history ----------------------------------------------------------------------------------------
def test_history_routes_filter_and_page(tmp_path: Path) -> None:
    server, live = _start(tmp_path)
    try:
        made = []
        for i in range(5):
            made.append(ok(live.post({"path": "pages/h/index", "scene": f"h={i}"}))["id"])
        made.append(ok(live.post({"path": "pages/h/a-code"}, key=CRM_KEY))["id"])
        live.wechat.inject(41030, path=B_PATH)
        assert live.post({"path": "pages/h/broken", "scene": "h=x"}).status_code == 502

        every = ok(live.get("/api/codes"))["data"]
        assert len(every["items"]) == 7 and every["next_offset"] is None
        assert every["items"][1]["id"] == made[-1]  # newest first
        item = every["items"][1]
        assert set(item) >= {"id", "type", "page", "scene", "name", "campaign", "channel", "status", "tracking_url",
                             "error", "created_at", "requested_by", "image_url"}

        first = ok(live.get("/api/codes", params={"limit": 3}))["data"]
        second = ok(live.get("/api/codes", params={"limit": 3, "offset": first["next_offset"]}))["data"]
        third = ok(live.get("/api/codes", params={"limit": 3, "offset": second["next_offset"]}))["data"]
        assert (first["next_offset"], second["next_offset"], third["next_offset"]) == (3, 6, None)
        ids = [r["id"] for page in (first, second, third) for r in page["items"]]
        assert ids == [r["id"] for r in every["items"]]

        mine = ok(live.get("/api/codes", key=CRM_KEY, params={"mine": "true"}))["data"]["items"]
        assert [r["id"] for r in mine] == [made[-1]]
        by_cms = ok(live.get("/api/codes", key=CRM_KEY, params={"requested_by": "api:cms"}))["data"]["items"]
        assert len(by_cms) == 6 and {r["requested_by"] for r in by_cms} == {"api:cms"}
        a_codes = ok(live.get("/api/codes", params={"type": "A"}))["data"]["items"]
        assert [r["id"] for r in a_codes] == [made[-1]]
        failed = ok(live.get("/api/codes", params={"status": "failed"}))["data"]["items"]
        assert len(failed) == 1 and failed[0]["error"] and failed[0]["image_url"] is None
        done_b = ok(live.get("/api/codes", params={"type": "B", "status": "done", "limit": 2, "offset": 1}))["data"]
        assert [r["id"] for r in done_b["items"]] == made[3:1:-1] and done_b["next_offset"] == 3
        found = ok(live.get("/api/codes", params={"q": "h=3"}))["data"]["items"]
        assert [r["id"] for r in found] == [made[3]]

        one = ok(live.get(f"/api/codes/{made[0]}"))["data"]
        assert one["scene"] == "h=0" and one["image_url"] == f"{live.url}/codes/{made[0]}.png"
        for bad in ({"limit": 0}, {"limit": 101}, {"limit": "x"}, {"offset": -1}, {"type": "Z"},
                    {"status": "gone"}, {"mine": "maybe"}, {"unknown": "1"}):
            response = live.get("/api/codes", params=bad)
            assert response.status_code == 400 and response.json()["code"] == -1, bad
        missing = live.get("/api/codes/zzzzzzzzzzzz")
        assert missing.status_code == 404 and missing.json()["code"] == -1
    finally:
        server.stop()


# -- the image route --------------------------------------------------------------------------------
def test_image_route_type_etag_and_304(live: Live) -> None:
    body = ok(live.post({"path": "pages/img/index", "scene": "i=1"}))
    response = live.get(body["data"], key=None)
    assert response.headers["content-type"] == "image/jpeg" and response.content[:3] == b"\xff\xd8\xff"
    etag = response.headers["etag"]
    assert re.fullmatch(r'"[0-9a-f]{64}"', etag)
    assert "max-age" in response.headers["cache-control"]
    assert response.headers["x-content-type-options"] == "nosniff"
    cached = live.get(body["data"], key=None, headers={"If-None-Match": etag})
    assert cached.status_code == 304 and cached.content == b"" and cached.headers["etag"] == etag
    stale = live.get(body["data"], key=None, headers={"If-None-Match": '"0000"'})
    assert stale.status_code == 200
    with httpx.Client(trust_env=False) as client:
        head = client.head(body["data"])
    assert head.status_code == 200 and head.headers["etag"] == etag
    for unknown in ("zzzzzzzzzzzz", "x", body["id"][:-1]):
        assert live.get(f"/codes/{unknown}.png", key=None).status_code == 404


def test_code_ids_are_unguessable(live: Live) -> None:
    ids = [ok(live.post({"path": "pages/ids/index", "scene": f"n={n}"}))["id"] for n in range(6)]
    assert all(re.fullmatch(r"[a-z0-9]{12}", i) for i in ids)
    assert len({i[:4] for i in ids}) > 1  # random, not sequential


# -- OpenAPI ----------------------------------------------------------------------------------------
DOCUMENTED_PREFIXES = ("/api/", "/codes/", "/posters/", "/healthz", "/openapi.json")


def _route_pairs(app: Any) -> set[tuple[str, str]]:
    pairs = set()
    for route in app.routes:
        if not isinstance(route, Route) or not route.path.startswith(DOCUMENTED_PREFIXES):
            continue
        path = re.sub(r"\{(\w+)(:\w+)?\}", r"{\1}", route.path)
        for method in route.methods or ():
            if method != "HEAD":
                pairs.add((path, method.lower()))
    return pairs


def test_openapi_matches_the_routes(live: Live) -> None:
    doc = live.get("/openapi.json", key=None).json()
    assert doc["openapi"].startswith("3.1")
    documented = {(path, method) for path, ops in doc["paths"].items() for method in ops}
    assert documented == _route_pairs(live.app)
    assert doc["servers"] == [{"url": live.url}]
    # Every $ref resolves, every schema is valid JSON Schema, and real answers match their schemas.
    schemas = doc["components"]["schemas"]
    for ref in re.findall(r'"\$ref": "#/components/schemas/(\w+)"', str(doc).replace("'", '"')):
        assert ref in schemas
    for schema in schemas.values():
        jsonschema.Draft202012Validator.check_schema(schema)

    def check(path: str, method: str, status: int, body: Any) -> None:
        content = doc["paths"][path][method]["responses"][str(status)]["content"]["application/json"]
        schema = {**content["schema"], "components": doc["components"]}
        jsonschema.Draft202012Validator(schema).validate(body)

    made = live.post({"path": "pages/doc/index", "scene": "d=1"})
    check("/api/weapp/qrcode", "post", 200, made.json())
    check("/api/weapp/qrcode", "post", 401, live.post({"path": "x"}, key=None).json())
    check("/api/codes", "get", 200, live.get("/api/codes").json())
    check("/api/codes/{code_id}", "get", 200, live.get(f"/api/codes/{made.json()['id']}").json())
    key = ok(live.post({"path": "pages/doc/index", "scene": "名=值", "long_scene": "key"}))["scene"]
    check("/api/scenes/{key}", "get", 200, live.get(f"/api/scenes/{key}", key=None).json())
    check("/healthz", "get", 200, live.get("/healthz", key=None).json())


def test_healthz_names_the_version_and_the_commit(live: Live) -> None:
    health = live.get("/healthz", key=None).json()
    assert __commit__  # the tests run from a git checkout (tests/cli/test_version.py checks it against git)
    assert health["version"] == __version__ and health["commit"] == __commit__


def test_openapi_document_builds_without_a_server() -> None:
    doc = openapi_document()
    assert "servers" not in doc
    body = doc["components"]["schemas"]["QRCodeRequest"]
    # path is asked of every code but a blank live code (空码), so the routes refuse its absence (3001), not the schema
    assert "required" not in body and body["additionalProperties"] is False
    assert "blank live code" in body["properties"]["path"]["description"]


# -- the front-end and the error table ---------------------------------------------------------------
async def test_the_api_is_a_front_end(live: Live) -> None:
    front = api_module_init.api_front_end(live.service)
    assert front.name == "api"
    paths = {route.path for route in front.routes() if isinstance(route, Route)}
    assert paths == {"/api/weapp/qrcode", "/api/posters", "/api/codes", "/api/codes/{code_id:str}", "/api/scenes/{key:str}",
                     "/api/codes/{code_id:str}/destination", "/api/codes/{code_id:str}/scans.csv",
                     "/openapi.json"}
    await front.start()
    await front.stop()


@pytest.mark.parametrize(("error", "status", "code"), [
    (api_errors.MissingKey("缺", "missing"), 401, 1001),
    (api_errors.KeyRefused("拒", "refused"), 403, 1002),
    (api_errors.EmptyPath(), 400, 3001),
    (FieldError("scene", "场景", "scene"), 400, 3002),
    (InvalidRequest([FieldError("page", "页", "page"), FieldError("scene", "场景", "scene")]), 400, 3002),
    (InvalidRequest([api_errors.EmptyPath()]), 400, 3001),
    (FieldError("width", "宽", "width"), 400, -1),
    (NotFound("无", "none"), 404, -1),
    (BodyTooLarge(MAX_BODY), 413, -1),
    (QuotaExhausted("满", "full"), 409, -1),
    (api_errors.StillPending(), 503, -1),
    (UpstreamBusy("wechat", -1, "忙", "busy"), 502, -1),
    (api_errors.CodeFailed("败", "failed"), 502, -1),
])
def test_one_table_maps_our_errors_to_status_and_seed_code(error: Any, status: int, code: int) -> None:
    assert api_errors.status_and_code(error)[:2] == (status, code)
    response = api_errors.error_response(error, "en")
    assert response.status_code == status
    body = json.loads(bytes(response.body))
    assert body["code"] == code and body["data"] is None and body["msg"]
    if not isinstance(error, BodyTooLarge):
        assert body["msg"] == f"{error.en}\n{error.zh}"



def test_env_version_and_check_path_reach_wechat_where_they_apply(live: Live) -> None:
    body = ok(live.post({"path": "pages/new/index", "scene": "v=1", "env_version": "trial", "check_path": False}))
    record = live.service.get(body["id"])
    assert (record.code_request().env_version, record.code_request().check_path) == ("trial", False)
    a_code = ok(live.post({"path": "pages/new/index?x=1", "env_version": "develop"}))
    assert live.service.get(a_code["id"]).code_request().env_version == "develop"
    refused = live.post({"path": "pages/a/index?x=1", "check_path": False})  # an A code has no page check
    assert refused.status_code == 400 and "B codes only" in refused.json()["msg"]
