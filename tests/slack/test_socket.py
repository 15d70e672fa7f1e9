"""Socket Mode end to end: the bot connects out over a websocket instead of serving /slack/events.

A small aiohttp server stands in for Slack's Socket Mode side: ``apps.connections.open`` hands out a
``ws://`` URL on loopback, the websocket says hello and delivers envelopes, and every other Web API
method is passed through to :class:`~tests.emulators.slack.SlackEmulator`, which records what the bot
did (uploads included).
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from bot.sandbox.server import free_port
from tests.emulators.slack import APP_ID, PUBLIC_CHANNEL, TEAM_ID, USER_ID, SlackEmulator
from tests.slack.test_e2e import Harness, make_harness, scan  # noqa: F401 (a fixture)

APP_TOKEN = "xapp-1-A0APP-1-test"


class SocketSlack:
    """``apps.connections.open`` + the websocket; other ``/api/*`` calls go to the emulator."""

    def __init__(self, emu: SlackEmulator) -> None:
        self.emu = emu
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.api_url = self.url + "/api/"
        self.acks: dict[str, dict[str, Any]] = {}
        self.opened: list[str] = []  # the app tokens apps.connections.open saw
        self._sockets: list[web.WebSocketResponse] = []
        self._loop = asyncio.new_event_loop()
        self._started = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._runner: web.AppRunner | None = None

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        app = web.Application()
        app.router.add_route("*", "/api/{method}", self._api)
        app.router.add_get("/link", self._link)
        self._runner = web.AppRunner(app)
        self._loop.run_until_complete(self._runner.setup())
        self._loop.run_until_complete(web.TCPSite(self._runner, "127.0.0.1", self.port).start())
        self._started.set()
        self._loop.run_forever()

    def start(self) -> SocketSlack:
        self._thread.start()
        self._started.wait(10)
        return self

    def stop(self) -> None:
        async def shutdown() -> None:
            for ws in list(self._sockets):
                await ws.close()
            if self._runner is not None:
                await self._runner.cleanup()

        asyncio.run_coroutine_threadsafe(shutdown(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    async def _api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        if method == "apps.connections.open":
            self.opened.append(request.headers.get("Authorization", ""))
            return web.json_response({"ok": True, "url": f"ws://127.0.0.1:{self.port}/link"})
        body = await request.read()
        headers = {k: v for k, v in request.headers.items() if k.lower() in ("authorization", "content-type")}
        async with aiohttp.ClientSession() as session, session.request(
                request.method, self.emu.api_url + method + ("?" + request.query_string if request.query_string else ""),
                data=body, headers=headers) as answer:
            payload = await answer.read()
            passed = {k: v for k, v in answer.headers.items() if k.lower().startswith("x-") or k.lower() == "retry-after"}
            return web.Response(body=payload, status=answer.status, headers=passed, content_type="application/json")

    async def _link(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self._sockets.append(ws)
        await ws.send_str(json.dumps({"type": "hello", "num_connections": 1, "connection_info": {"app_id": APP_ID}}))
        async for message in ws:
            if message.type == aiohttp.WSMsgType.TEXT:
                data = json.loads(message.data)
                if "envelope_id" in data:
                    self.acks[data["envelope_id"]] = data
        return ws

    def connected(self, timeout: float = 10) -> bool:
        deadline = time.monotonic() + timeout
        while not self._sockets and time.monotonic() < deadline:
            time.sleep(0.02)
        return bool(self._sockets)

    def send(self, envelope: dict[str, Any]) -> None:
        async def push() -> None:
            await self._sockets[-1].send_str(json.dumps(envelope, ensure_ascii=False))

        asyncio.run_coroutine_threadsafe(push(), self._loop).result(5)

    def ack(self, envelope_id: str, timeout: float = 5) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while envelope_id not in self.acks:
            assert time.monotonic() < deadline, f"no ack for {envelope_id}"
            time.sleep(0.01)
        return self.acks[envelope_id]


def command(envelope_id: str, text: str, retry: int = 0) -> dict[str, Any]:
    return {
        "envelope_id": envelope_id, "type": "slash_commands", "accepts_response_payload": True,
        "retry_attempt": retry, "retry_reason": "timeout" if retry else "",
        "payload": {"token": "legacy", "team_id": TEAM_ID, "team_domain": "test-team", "channel_id": PUBLIC_CHANNEL,
                    "channel_name": "general", "user_id": USER_ID, "user_name": "alice", "command": "/minpcode",
                    "text": text, "api_app_id": APP_ID, "is_enterprise_install": "false",
                    "response_url": "", "trigger_id": f"1.2.{envelope_id}"},
    }


@pytest.fixture
def socket_bot(make_harness: Any) -> Any:  # noqa: F811 (the imported fixture)
    emu = SlackEmulator().start()
    fake = SocketSlack(emu).start()
    harness: Harness = make_harness(slack_app_token=APP_TOKEN, slack_signing_secret=None,
                                    slack_api_url=fake.api_url, slack_bot_token=emu.bot_token)
    harness.emu = emu  # the recording emulator behind the pass-through
    try:
        yield harness, fake
    finally:
        fake.stop()
        emu.stop()


def test_socket_mode_receives_commands_and_posts_codes(socket_bot: Any) -> None:
    h, fake = socket_bot
    assert fake.connected(), "the bot never opened the websocket"
    assert fake.opened and set(fake.opened) == {f"Bearer {APP_TOKEN}"}
    assert h.http.post(h.url + "/slack/events", content=b"x").status_code == 404  # no HTTP endpoint
    fake.send(command("env1", "new pages/socket/index type=B scene=sock1"))
    ack = fake.ack("env1")
    assert "Working" in ack["payload"]["text"] or "正在生成" in ack["payload"]["text"]
    [upload] = h.uploads_for("sock1")
    code = scan(upload.data or b"")
    assert (code.kind, code.page, code.scene) == ("B", "pages/socket/index", "sock1")
    fake.send(command("env2", "new pages/socket/index type=B scene=sock1", retry=1))
    assert fake.ack("env2").get("payload") in (None, {})
    time.sleep(0.3)
    assert len(h.uploads_for("sock1")) == 1 and len(h.service.recent(limit=5)) == 1


def acks_timed() -> float:
    from prometheus_client.parser import text_string_to_metric_families

    from bot.metrics import render

    return sum(s.value for f in text_string_to_metric_families(render()[0].decode()) for s in f.samples
               if s.name == "minpcode_ack_latency_seconds_count" and s.labels == {"front_end": "slack"})


def test_socket_mode_times_each_ack(socket_bot: Any) -> None:
    h, fake = socket_bot
    assert fake.connected()
    before = acks_timed()
    fake.send(command("env9", "help"))
    fake.ack("env9")
    assert acks_timed() == before + 1


def test_socket_mode_with_a_bad_app_token_says_so(make_harness: Any, caplog: pytest.LogCaptureFixture) -> None:  # noqa: F811
    caplog.set_level("INFO", logger="minpcode.slack")
    h = make_harness(slack_app_token="not-an-app-token", slack_signing_secret=None)
    deadline = time.monotonic() + 5
    while not any("Socket Mode could not connect" in r.getMessage() for r in caplog.records):
        assert time.monotonic() < deadline, [r.getMessage() for r in caplog.records]
        time.sleep(0.02)
    assert any("xapp-" in r.getMessage() for r in caplog.records)
    assert h.http.get(h.url + "/healthz").status_code == 200
