"""The HTTP API's links (``"type": "urllink" | "scheme"`` on ``POST /api/weapp/qrcode``) and the link fields of
``GET /api/codes``, over a real server on 127.0.0.1 in sandbox mode (tests/api/test_api.py's harness)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import jsonschema
import pytest
from pydantic import SecretStr

from bot.config import Settings
from bot.sandbox.server import ServerThread, free_port
from bot.server import create_app
from tests.api.test_api import CMS_KEY, Live, ok

URLLINK = "/wxa/generate_urllink"


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    port = free_port()
    settings = Settings(_env_file=None, minpcode_sandbox=True, minpcode_data_dir=tmp_path_factory.mktemp("links"),
                        minpcode_public_url=f"http://127.0.0.1:{port}/", minpcode_api_keys=SecretStr(f"cms:{CMS_KEY}"))
    app = create_app(settings)
    server = ServerThread(app, port=port).start()
    try:
        yield Live(url=server.url, service=app.state.service, app=app)
    finally:
        server.stop()


def days_away(stamp: str, days: int) -> bool:
    return abs(datetime.fromisoformat(stamp) - (datetime.now(UTC) + timedelta(days=days))) < timedelta(minutes=1)


def test_a_url_link_answers_the_link_and_its_expiry(live: Live) -> None:
    body = ok(live.post({"path": "/pages/product/detail?id=123", "type": "urllink", "expire_days": 3}))
    assert body["data"] == body["link"] and body["link"].startswith("https://wxaurl.cn/")
    assert days_away(body["expires_at"], 3) and body["reused"] is False
    again = ok(live.post({"path": "pages/product/detail?id=123", "type": "urllink", "expire_days": 3}))
    assert again["reused"] and again["link"] == body["link"] and live.wechat.calls[URLLINK] == 1
    view = ok(live.get(f"/api/codes/{body['id']}"))["data"]
    assert view["type"] == "urllink" and view["link"] == body["link"] and view["image_url"] is None
    assert days_away(view["expires_at"], 3) and view["permanent"] is False and view["plain"] is False
    listed = ok(live.get("/api/codes", params={"type": "urllink"}))["data"]["items"]
    assert [item["id"] for item in listed] == [body["id"]]


def test_a_url_scheme_and_what_it_refuses(live: Live) -> None:
    body = ok(live.post({"path": "pages/a/a", "type": "scheme", "env_version": "trial"}))
    assert body["data"].startswith("weixin://dl/business/?t=") and days_away(body["expires_at"], 30)
    assert live.wechat.links[-1]["env_version"] == "trial"
    for wrong, field in (({"expire_days": 31}, "expire_days"), ({"scene": "id=1"}, "scene"),
                         ({"plain": True}, "plain"), ({"live": True}, "type")):
        response = live.post({"path": "pages/a/a", "type": "scheme", **wrong})
        assert response.status_code == 400, (wrong, response.text)
        assert response.json()["code"] != 0 and field in response.text
    refused = live.post({"path": "pages/a/a", "expire_days": 3})  # no type: an image, which lasts for ever
    assert refused.status_code == 400 and "urllink" in refused.json()["msg"]


def test_the_openapi_document_describes_the_link_fields(live: Live) -> None:
    schemas = live.get("/openapi.json", key=None).json()["components"]["schemas"]
    request = schemas["QRCodeRequest"]["properties"]
    assert {"type", "expire_days", "plain"} <= set(request)
    assert {"link", "expires_at"} <= set(schemas["QRCodeAnswer"]["properties"])
    assert {"expires_at", "permanent", "plain"} <= set(schemas["CodeView"]["properties"])
    jsonschema.Draft202012Validator.check_schema(schemas["QRCodeRequest"])

