"""``minpcode mcp`` driven by the official SDK's client over stdio: a real ``python -m bot mcp`` process in
sandbox mode on a temporary data folder, as Claude Desktop would start it (docs/mcp.md)."""

from __future__ import annotations

import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from mcp import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.types import CallToolResult, ImageContent

pytestmark = pytest.mark.slow

TOOLS = {"make_code", "find_codes", "show_code", "make_poster", "repoint_live_code", "pause_live_code", "code_stats",
         "quota"}


@asynccontextmanager
async def mcp_process(data_dir: Path, *args: str, **env: str) -> AsyncIterator[ClientSession]:
    """The server as an assistant starts it; the SDK passes on only a few variables of ours (PATH, HOME …)."""
    params = StdioServerParameters(
        command=sys.executable, args=["-m", "bot", "mcp", *args], cwd=str(data_dir.parent),
        env={"MINPCODE_DATA_DIR": str(data_dir), "MINPCODE_SANDBOX": "true", "PYTHONUTF8": "1",
             "MINPCODE_PUBLIC_URL": "https://codes.example.com", "PYTHONPATH": os.environ.get("PYTHONPATH", ""),
             **env})
    async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        yield session


async def call(session: ClientSession, tool: str, **arguments: Any) -> dict[str, Any]:
    result = await session.call_tool(tool, arguments)
    assert isinstance(result, CallToolResult) and not result.is_error, result.content
    assert result.structured_content is not None
    return result.structured_content


async def test_an_assistant_lists_the_tools_makes_a_b_code_and_its_poster_finds_it_and_reads_live_stats(
        tmp_path: Path) -> None:
    async with mcp_process(tmp_path / "data", "--name", "claude") as session:
        listed = await session.list_tools()
        assert {t.name for t in listed.tools} == TOOLS

        made = await call(session, "make_code", path="pages/index/index", scene="id=42", include_image=True)
        code = made["code"]
        assert (code["type"], code["status"], code["requested_by"]) == ("B", "done", "mcp:claude")
        assert code["image_url"] == f"https://codes.example.com/codes/{code['id']}.png" and code["sandbox"]
        again = await session.call_tool("make_code", {"path": "pages/index/index", "scene": "id=42",
                                                      "include_image": True})
        assert [c.mime_type for c in again.content if isinstance(c, ImageContent)] == ["image/jpeg"]

        found = await call(session, "find_codes", q="id=42")
        assert [c["id"] for c in found["items"]] == [code["id"]]
        shown = await call(session, "show_code", id=code["id"])
        assert shown["code"]["scene"] == "id=42"
        poster = await call(session, "make_poster", id=code["id"], template="a4", title="Spring")
        assert poster["code_id"] == code["id"] and poster["mime"] == "image/png"
        assert poster["url"] == f"https://codes.example.com/posters/{poster['id']}.png"

        live = (await call(session, "make_code", path="pages/coupon/get?id=1", live=True))["code"]
        stats = await call(session, "code_stats", id=live["id"])
        assert stats["live_code"]["destination"] == "pages/coupon/get?id=1"
        assert stats["live_code"]["scans"]["total"] == 0 and len(stats["days"]) == 30

        bad = await session.call_tool("make_code", {"path": "pages/index/index", "scene": "商品=1"})
        assert bad.is_error and bad.structured_content is not None
        assert [f["field"] for f in bad.structured_content["fields"]] == ["scene"]
        assert bad.structured_content["message"]["zh"] and bad.structured_content["message"]["en"]

        quota = await call(session, "quota")
        assert [a["used"] for a in quota["apps"]] == [0]  # a B code and a live code spend no A/C quota


async def test_without_a_name_it_acts_as_the_terminal_s_login(tmp_path: Path) -> None:
    async with mcp_process(tmp_path / "data", USER="mei") as session:
        made = await call(session, "make_code", path="pages/index/index?from=mcp")
    assert made["code"]["requested_by"] == "mcp:mei"
