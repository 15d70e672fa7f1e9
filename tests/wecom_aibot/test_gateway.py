"""Our long-connection client against the gateway emulator over a real socket: subscribe, heartbeat,
backoff with jitter, a quiet gateway, a displaced connection."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from pydantic import SecretStr

from handlers.wecom_aibot import protocol as p
from handlers.wecom_aibot.gateway import Gateway, GatewayRefused
from tests.emulators.wecom_aibot import ASSUMED, BOT_ID, SECRET, AiBotGateway


async def until(done: Any, timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not done():
        assert asyncio.get_running_loop().time() < deadline, "waited in vain"
        await asyncio.sleep(0.02)


def test_backoff_is_exponential_capped_and_jittered() -> None:
    top = Gateway("ws://x", BOT_ID, SecretStr(SECRET), lambda f: None, rng=lambda: 1.0)
    assert [top.delay(n) for n in range(7)] == [1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0]
    bottom = Gateway("ws://x", BOT_ID, SecretStr(SECRET), lambda f: None, rng=lambda: 0.25)
    assert bottom.delay(3) == 2.0  # full jitter: anywhere from 0 to the step


async def test_it_subscribes_keeps_the_heartbeat_and_gets_callbacks() -> None:
    got: list[dict[str, Any]] = []
    with AiBotGateway() as gw:
        client = Gateway(gw.url, BOT_ID, SecretStr(SECRET), got.append, heartbeat=0.1)
        client.start()
        try:
            await until(lambda: client.connected)
            await until(lambda: gw.pings >= 3)
            msgid = gw.say("zhangsan", "帮助")
            await until(lambda: got)
            assert got[0]["body"]["msgid"] == msgid
            answer = await client.call(p.RESPOND, p.stream("s1", "ok", finish=True), got[0]["headers"]["req_id"])
            assert answer == {} and gw.finished(msgid or "")
            with pytest.raises(GatewayRefused) as refused:  # a refresh of a finished stream
                await client.call(p.RESPOND, p.stream("s1", "again", finish=True), got[0]["headers"]["req_id"])
            assert refused.value.errcode == ASSUMED["answered"][0]
        finally:
            await client.stop()


async def test_a_quiet_gateway_is_left_and_connected_again() -> None:
    with AiBotGateway() as gw:
        client = Gateway(gw.url, BOT_ID, SecretStr(SECRET), lambda f: None, heartbeat=0.1, backoff_first=0.05)
        client.start()
        try:
            await until(lambda: client.connected)
            gw.answer_pings = False  # pings go unanswered: after two the connection is taken for dead
            await until(lambda: gw.subscriptions >= 2)
            assert client.connects >= 2
        finally:
            await client.stop()


async def test_a_frame_sent_while_the_connection_is_down_goes_on_the_next_one() -> None:
    got: list[dict[str, Any]] = []
    with AiBotGateway() as gw:
        client = Gateway(gw.url, BOT_ID, SecretStr(SECRET), got.append, backoff_first=0.3)
        client.start()
        try:
            await until(lambda: client.connected)
            msgid = gw.say("lisi", "帮助")
            await until(lambda: got)
            await asyncio.to_thread(gw.drop)  # its close waits for our answer: not on our loop
            await until(lambda: not client.connected)
            await client.call(p.RESPOND, p.stream("s", "late but there", finish=True), got[0]["headers"]["req_id"])
            assert gw.finished(msgid or "") and gw.subscriptions == 2
        finally:
            await client.stop()


async def test_displaced_by_another_connection_it_stops_and_does_not_fight() -> None:
    with AiBotGateway() as gw:
        first = Gateway(gw.url, BOT_ID, SecretStr(SECRET), lambda f: None, backoff_first=0.05)
        second = Gateway(gw.url, BOT_ID, SecretStr(SECRET), lambda f: None, backoff_first=0.05)
        first.start()
        await until(lambda: first.connected)
        second.start()
        try:
            await until(lambda: first.state == "displaced")
            await asyncio.sleep(0.5)
            assert second.connected and gw.subscriptions == 2
        finally:
            await first.stop()
            await second.stop()


async def test_a_gateway_answering_nonsense_does_not_end_the_reconnects() -> None:
    import threading

    from websockets.sync.server import ServerConnection, serve

    tries: list[int] = []

    def nonsense(conn: ServerConnection) -> None:
        conn.recv(timeout=5)
        tries.append(1)
        conn.send("this is no frame")

    server = serve(nonsense, "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"ws://127.0.0.1:{server.socket.getsockname()[1]}"
    client = Gateway(url, BOT_ID, SecretStr(SECRET), lambda f: None, backoff_first=0.05, backoff_cap=0.1)
    client.start()
    try:
        await until(lambda: len(tries) >= 3)
        assert client.state == "connecting" and client.failures >= 2
    finally:
        await client.stop()
        server.shutdown()
        thread.join(5)
