"""The MCP tools over streamable HTTP under a real ``minpcode serve`` (tests/served.py): ``POST /mcp`` takes an
API key of MINPCODE_API_KEYS as the HTTP API does, and acts as ``mcp:<the key's name>``."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import httpx2
import pytest
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.types import CallToolResult

from tests.served import Served

pytestmark = pytest.mark.slow

CLAUDE_KEY = "mcp-test-key-claude-0123456789"
API_KEY = "mcp-test-key-cms-0123456789"
INITIALIZE = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
    "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "curl", "version": "1"}}}
MCP_HEADERS = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    data = tmp_path_factory.mktemp("mcp-http") / "data"
    with Served(data, env={"MINPCODE_API_KEYS": f"claude:{CLAUDE_KEY},cms:{API_KEY}"}) as running:
        yield running


@asynccontextmanager
async def session(served: Served, key: str) -> AsyncIterator[ClientSession]:
    http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {key}"}, trust_env=False, timeout=60)
    async with http, streamable_http_client(f"{served.url}/mcp", http_client=http) as (read, write), \
            ClientSession(read, write) as client:
        await client.initialize()
        yield client


async def call(client: ClientSession, tool: str, **arguments: Any) -> dict[str, Any]:
    result = await client.call_tool(tool, arguments)
    assert isinstance(result, CallToolResult) and not result.is_error, result.content
    assert result.structured_content is not None
    return result.structured_content


def test_without_a_key_or_with_a_wrong_one_nothing_is_served(served: Served) -> None:
    none = served.post("/mcp", json=INITIALIZE, headers=MCP_HEADERS)
    assert none.status_code == 401 and none.json()["code"] == 1001
    assert none.headers["www-authenticate"].startswith("Bearer")
    wrong = served.post("/mcp", json=INITIALIZE, headers=MCP_HEADERS | {"Authorization": "Bearer not-a-key"})
    assert wrong.status_code == 403 and wrong.json()["code"] == 1002
    right = served.post("/mcp", json=INITIALIZE, headers=MCP_HEADERS | {"X-API-Key": CLAUDE_KEY})
    assert right.status_code == 200 and right.json()["result"]["serverInfo"]["name"] == "minpcode"


async def test_with_a_key_it_acts_as_mcp_key_name_in_the_one_history(served: Served) -> None:
    async with session(served, CLAUDE_KEY) as client:
        assert len((await client.list_tools()).tools) == 8
        live = (await call(client, "make_code", path="pages/coupon/get?id=1", live=True))["code"]
        assert live["requested_by"] == "mcp:claude" and live["image_url"].startswith(served.url)
        scanned = served.get(f"/api/scenes/{live['scene']}", params={"visitor": "phone-1"})
        assert scanned.status_code == 200 and scanned.json()["data"]["page"] == "pages/coupon/get"
        stats = await call(client, "code_stats", id=live["id"], days=7)
        assert stats["live_code"]["scans"]["total"] == 1 and sum(d["scans"] for d in stats["days"]) == 1
    # The HTTP API reads the same history, and its key is another person: it may not change the code.
    api = {"Authorization": f"Bearer {API_KEY}"}
    listed = served.get("/api/codes", params={"requested_by": "mcp:claude"}, headers=api).json()["data"]["items"]
    assert [c["id"] for c in listed] == [live["id"]]
    refused = served.post(f"/api/codes/{live['id']}/destination", json={"paused": True}, headers=api)
    assert refused.status_code == 403
    async with session(served, API_KEY) as other:
        denied = await other.call_tool("pause_live_code", {"id": live["id"]})
        assert denied.is_error and denied.structured_content is not None
        assert denied.structured_content["error"] == "permission_denied"
