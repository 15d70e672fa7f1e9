"""The MCP tools through the official SDK's client (in-process transport), on a service over the WeChat and
GrowingIO emulators on loopback ports and a real SQLite file. Over stdio and HTTP: test_stdio.py, test_http.py."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from mcp.client import Client
from mcp.types import CallToolResult, ImageContent

from bot.config import Settings
from bot.server import open_service
from bot.service import Service
from handlers.api.routes import Api
from handlers.mcp import McpTools
from handlers.mcp.models import MakeCodeArgs
from handlers.mcp.tools import code_fields
from tests.emulators.upstreams import Upstreams

TOOLS = ["make_code", "find_codes", "show_code", "make_poster", "repoint_live_code", "pause_live_code", "code_stats",
         "quota"]
PUBLIC = "https://codes.example.com"


@pytest.fixture
async def service(upstreams: Upstreams, tmp_path: Path) -> AsyncIterator[Service]:
    settings: Settings = upstreams.settings(tmp_path, minpcode_public_url=PUBLIC,
                                            minpcode_admins=["mcp:boss", "slack:U_ADMIN"])
    async with open_service(settings) as svc:
        yield svc


def as_(service: Service, name: str) -> Client:
    return Client(McpTools(service, lambda ctx: name).server())


async def call(client: Client, tool: str, **arguments: Any) -> dict[str, Any]:
    result = await client.call_tool(tool, arguments)
    assert isinstance(result, CallToolResult)
    assert not result.is_error, result.content
    assert result.structured_content is not None
    return result.structured_content


async def refused(client: Client, tool: str, **arguments: Any) -> dict[str, Any]:
    result = await client.call_tool(tool, arguments)
    assert isinstance(result, CallToolResult) and result.is_error, result
    assert result.structured_content is not None
    return result.structured_content


async def test_the_eight_tools_say_what_they_are_for_and_take_the_api_s_fields(service: Service) -> None:
    async with as_(service, "claude") as client:
        listed = (await client.list_tools()).tools
    assert [t.name for t in listed] == TOOLS
    by_name = {t.name: t for t in listed}
    for tool in listed:
        assert tool.description and tool.output_schema, tool.name
    make = by_name["make_code"]
    properties = make.input_schema["properties"]
    # The HTTP API's body, under its names (docs/api.md), and the rest of the code types.
    assert {"path", "scene", "width", "live", "expires", "long_scene", "env_version", "check_path", "type",
            "expire_days", "plain", "tags"} <= properties.keys()
    assert "required" not in make.input_schema  # a blank live code (空码) has no path; the rules ask it of the rest
    assert properties["width"]["maximum"] == 1280 and properties["width"]["minimum"] == 280
    for word in ("B", "scene", "32", "100,000", "published", "shortlink", "urllink", "live"):
        assert word in make.description, word
    assert set(by_name["find_codes"].input_schema["properties"]) == {"q", "type", "status", "requested_by", "mine",
                                                                     "limit", "offset"}
    assert by_name["find_codes"].annotations.read_only_hint and not make.annotations.read_only_hint


async def test_a_b_code_is_made_as_mcp_name_found_shown_and_its_image_returned(service: Service) -> None:
    async with as_(service, "claude") as client:
        made = await call(client, "make_code", path="/pages/index/index", scene="id=42")
        code = made["code"]
        assert code["type"] == "B" and code["status"] == "done" and code["requested_by"] == "mcp:claude"
        assert code["image_url"] == f"{PUBLIC}/codes/{code['id']}.png" and not made["reused"]
        image = await client.call_tool("make_code", {"path": "pages/index/index", "scene": "id=42",
                                                     "include_image": True})
        assert image.structured_content is not None and image.structured_content["reused"]
        pictures = [c for c in image.content if isinstance(c, ImageContent)]
        data, mime = service.image(code["id"])
        assert [(base64.b64decode(p.data), p.mime_type) for p in pictures] == [(data, mime)]
        found = await call(client, "find_codes", q="id=42", mine=True)
        assert [c["id"] for c in found["items"]] == [code["id"]]
        shown = await call(client, "show_code", id=code["id"])
        assert shown["code"]["scene"] == "id=42" and shown["live_code"] is None
    # The same audit log and history as every front-end.
    assert [(a.actor, a.action) for a in service.audit(code["id"])][0] == ("mcp:claude",
                                                                                                "requested")


async def test_field_errors_are_structured_with_the_field_and_both_languages(service: Service) -> None:
    async with as_(service, "claude") as client:
        bad_scene = await refused(client, "make_code", path="pages/index/index", scene="商品=1")
        assert bad_scene["error"] == "invalid_request"
        [problem] = bad_scene["fields"]
        assert problem["field"] == "scene" and "scene" in problem["en"] and "去掉" in problem["zh"]
        # Refused by the tool's input schema (the SDK checks it first): still our words, per field.
        narrow = await refused(client, "make_code", path="pages/index/index", width=5)
        assert [f["field"] for f in narrow["fields"]] == ["width"]
        assert narrow["message"]["zh"] and narrow["message"]["en"] and "280" in narrow["fields"][0]["en"]
        missing = await refused(client, "show_code", id="nosuchcode12")
        assert missing["error"] == "not_found" and missing["message"]["en"]
    assert service.recent() == []  # nothing was made, no upstream call spent


async def test_every_code_type_and_growingio_fields(service: Service) -> None:
    async with as_(service, "claude") as client:
        c = (await call(client, "make_code", path="pages/index/index?id=1", type="C", via="wechat"))["code"]
        link = (await call(client, "make_code", path="pages/index/index", type="urllink", expire_days=7))["code"]
        short = (await call(client, "make_code", path="pages/index/index", type="shortlink", title="Spring"))["code"]
        tracked = (await call(client, "make_code", path="pages/list/list", type="A", campaign="spring",
                              channel="poster", create_missing=True))["code"]
    assert (c["type"], c["provider"]) == ("C", "wechat")
    assert link["type"] == "urllink" and link["link"].startswith("https://wxaurl.cn/") and link["image_url"] is None
    assert short["type"] == "shortlink" and short["link"]
    assert tracked["provider"] == "gio" and tracked["tracking_url"] and tracked["campaign"] == "spring"


def test_what_the_http_api_can_say_is_read_as_the_api_reads_it() -> None:
    for body in ({"path": "pages/a", "scene": "x=1"}, {"path": "pages/a?q=1"},
                 {"path": "pages/a", "type": "urllink", "expire_days": 3}, {"path": "pages/a", "live": True}):
        assert code_fields(MakeCodeArgs.model_validate(body)) == Api.fields(body), body
    # Beyond the API: the type named, GrowingIO's fields.
    assert code_fields(MakeCodeArgs.model_validate({"path": "pages/a", "campaign": "c", "channel": "d"})) == {
        "type": "A", "page": "pages/a", "campaign": "c", "channel": "d", "width": 430}


async def test_live_codes_are_changed_only_by_their_maker_or_an_admin(service: Service) -> None:
    async with as_(service, "claude") as claude:
        code = (await call(claude, "make_code", path="pages/coupon/get?id=1", live=True))["code"]
        assert code["live"] and code["destination"] == "pages/coupon/get?id=1"
        moved = await call(claude, "repoint_live_code", id=code["id"], page="pages/coupon/get?id=2")
        assert moved["live_code"]["destination"] == "pages/coupon/get?id=2"
        stats = await call(claude, "code_stats", id=code["id"], days=7)
        assert stats["live_code"]["scans"]["total"] == 0 and len(stats["days"]) == 7
    async with as_(service, "intruder") as other:
        denied = await refused(other, "pause_live_code", id=code["id"])
        assert denied["error"] == "permission_denied" and "claude" in denied["message"]["en"]
    async with as_(service, "boss") as admin:  # MINPCODE_ADMINS names mcp:boss
        paused = await call(admin, "pause_live_code", id=code["id"], paused=True)
        assert paused["live_code"]["paused"] is True
    actions = [(a.actor, a.action) for a in service.audit(code["id"])]
    assert ("mcp:intruder", "change_refused") in actions and ("mcp:claude", "repointed") in actions


async def test_quota_counts_what_the_assistant_made(service: Service) -> None:
    async with as_(service, "claude") as client:
        await call(client, "make_code", path="pages/index/index?from=mcp")  # a plain WeChat A code
        quota = await call(client, "quota")
    [app] = quota["apps"]
    assert app["used"] == 1 and app["cap"] == 100_000
