"""Signed webhooks over the real server (``create_app`` on a loopback port, its sender started by the lifespan), the
WeChat emulator, and a receiver on 127.0.0.1 that checks every signature with its own implementation.

Codes made and failed, a failing receiver retried then succeeding, a live code's scans passing 100, the A/C
quota passing 80% and 95%, live codes changed, the private-address refusal, one delivery per event even with two
senders, and no secret in a listing or a payload.
"""

from __future__ import annotations

import asyncio
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from bot import sandbox
from bot.batch.models import BatchOrigin
from bot.batch.sheets import read_pasted
from bot.config import Settings
from bot.errors import FieldError, PermissionDenied
from bot.live.selection import Selection
from bot.models import Requester
from bot.sandbox.server import ServerThread, free_port
from bot.server import create_app, open_service
from bot.service import Service
from bot.webhooks.sender import Sender
from tests.conftest import Site
from tests.emulators.upstreams import Upstreams
from tests.webhooks.receiver import Receiver

API_KEY = "cms-hooks-4f0c2b9a7e1d4c83"
ADMIN = Requester(chat="cli", user_id="ops", user_name="ops")
FAST = "0.3,0.3,0.3"  # seconds between attempts: the schedule is a setting, so the tests need not wait 70 s


@dataclass
class Server:
    url: str
    service: Service
    thread: ServerThread

    def make(self, **body: Any) -> dict[str, Any]:
        with httpx.Client(trust_env=False, timeout=30) as client:
            answer = client.post(self.url + "/api/weapp/qrcode", json=body,
                                 headers={"Authorization": f"Bearer {API_KEY}"})
        data: dict[str, Any] = answer.json()
        return data


def start(data_dir: Path, wechat: Site, **extra: Any) -> Server:
    port = free_port()
    values: dict[str, Any] = {"minpcode_webhooks_allow_private": True, "minpcode_webhooks_retry": FAST, **extra}
    settings = Settings(
        _env_file=None, minpcode_sandbox=False, minpcode_data_dir=data_dir,
        minpcode_public_url=f"http://127.0.0.1:{port}", minpcode_api_keys=SecretStr(f"cms:{API_KEY}"),
        wechat_appid=sandbox.SANDBOX_APPID, wechat_secret=SecretStr(sandbox.SANDBOX_SECRET), wechat_api_url=wechat.url,
        **values)
    app = create_app(settings)
    thread = ServerThread(app, port=port).start()
    return Server(thread.url, app.state.service, thread)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    running = Receiver().start()
    yield running
    running.stop()


@pytest.fixture
def server(tmp_path: Path, wechat: Site) -> Iterator[Server]:
    running = start(tmp_path, wechat, minpcode_ac_cap=5, minpcode_resolver_rate=100_000)
    yield running
    running.thread.stop()


def run(work: Any) -> Any:
    """A verb of the server's service run from the test's thread (the database is shared across threads)."""
    return asyncio.run(work)


def register(server: Server, receiver: Receiver, events: tuple[str, ...] = ()) -> str:
    """Add the receiver's URL (the service runs on the server's loop) and hand the receiver its secret."""
    added = run(server.service.webhooks.add(receiver.url, events, requester=ADMIN))
    receiver.secret = added.secret
    return added.endpoint.id


def test_a_code_made_is_delivered_once_signed_with_its_public_fields(server: Server, receiver: Receiver) -> None:
    endpoint = register(server, receiver)
    made = server.make(path="pages/shop/index", scene="sku=42")
    got = receiver.wait(1)
    assert len(got) == 1 and got[0].verified and got[0].status == 200
    event = got[0].event
    assert event["type"] == "code.made" and event["id"].startswith("evt_")
    assert got[0].headers["x-minpcode-event-id"] == event["id"]
    code = event["data"]["code"]
    assert (code["id"], code["status"], code["type"], code["scene"]) == (made["id"], "done", "B", "sku=42")
    assert code["image_url"] == made["data"]
    assert set(event) == {"id", "type", "created_at", "data"}
    rows = server.service.webhooks.deliveries(ADMIN, endpoint)
    assert [(d.event_type, d.state, d.attempts, d.last_status) for d in rows] == [("code.made", "done", 1, 200)]
    time.sleep(1.5)  # the sender looks again each second: nothing more is sent
    assert len(receiver.received) == 1


def test_no_secret_in_the_listing_or_the_payload(server: Server, receiver: Receiver) -> None:
    register(server, receiver)
    server.make(path="pages/shop/index", scene="sku=7")
    got = receiver.wait(1)
    listed = server.service.webhooks.endpoints(ADMIN)
    assert receiver.secret not in repr(listed) and receiver.secret not in repr([e.model_dump() for e in listed])
    assert receiver.secret not in got[0].body.decode()
    assert sandbox.SANDBOX_SECRET not in got[0].body.decode()


def test_a_failing_receiver_is_retried_then_succeeds(server: Server) -> None:
    failing = Receiver(statuses=[500, 503]).start()
    try:
        endpoint = register(server, failing)
        server.make(path="pages/shop/index", scene="sku=1")
        got = failing.wait(3)
        assert [r.status for r in got] == [500, 503, 200]
        assert all(r.verified for r in got)
        assert len({r.event["id"] for r in got}) == 1  # the same event each time: the receiver dedupes on it
        deadline = time.monotonic() + 5
        while server.service.webhooks.deliveries(ADMIN, endpoint)[0].state != "done" and time.monotonic() < deadline:
            time.sleep(0.05)
        (row,) = server.service.webhooks.deliveries(ADMIN, endpoint)
        assert (row.state, row.attempts, row.last_status) == ("done", 3, 200)
        with httpx.Client(trust_env=False) as client:
            page = client.get(server.url + "/metrics").text
        counted = dict(re.findall(r'^minpcode_webhook_deliveries_total\{outcome="(\w+)"\} (\S+)$', page, re.M))
        assert float(counted["retrying"]) >= 2 and float(counted["delivered"]) >= 1
    finally:
        failing.stop()


def test_past_the_last_retry_a_delivery_is_given_up(server: Server) -> None:
    failing = Receiver(statuses=[500] * 10).start()
    try:
        endpoint = register(server, failing)
        server.make(path="pages/shop/index", scene="sku=2")
        failing.wait(4)  # the first attempt and the schedule's three retries
        deadline = time.monotonic() + 5
        while server.service.webhooks.deliveries(ADMIN, endpoint)[0].state == "pending" and time.monotonic() < deadline:
            time.sleep(0.05)
        (row,) = server.service.webhooks.deliveries(ADMIN, endpoint)
        assert (row.state, row.attempts, row.last_status) == ("failed", 4, 500)
        time.sleep(1.2)
        assert len(failing.received) == 4
    finally:
        failing.stop()


def test_a_failed_code_is_an_event_of_its_own(server: Server, receiver: Receiver, wechat: Site) -> None:
    register(server, receiver, ("code.failed",))
    server.make(path="pages/shop/index", scene="sku=9")  # made: not asked for
    wechat.emu.inject(41030, path="/wxa/getwxacodeunlimit")
    server.make(path="pages/shop/index", scene="sku=10")
    got = receiver.wait(1)
    time.sleep(1.2)
    assert [r.event["type"] for r in receiver.received] == ["code.failed"]
    code = got[0].event["data"]["code"]
    assert code["status"] == "failed" and code["error"]["code"] == "41030"


def test_a_live_code_passing_100_scans_is_one_event(server: Server, receiver: Receiver) -> None:
    register(server, receiver, ("live.scans_milestone",))
    made = server.make(path="pages/coupon/get?id=1", live=True)
    with httpx.Client(trust_env=False, timeout=10) as client:
        for _ in range(99):
            assert client.get(f"{server.url}/api/scenes/{made['scene']}").status_code == 200
        time.sleep(1.5)  # flushed: 99 scans, no milestone yet
        assert receiver.received == []
        for _ in range(5):
            client.get(f"{server.url}/api/scenes/{made['scene']}")
    got = receiver.wait(1)
    time.sleep(1.5)
    assert len(receiver.received) == 1 and got[0].verified
    data = got[0].event["data"]
    assert (data["milestone"], data["code"]["id"]) == (100, made["id"])
    assert 100 <= data["scans"] <= 104  # the count when the flush that crossed 100 was written (flushes may split)
    assert "visitor" not in got[0].body.decode()


def test_live_code_changes_are_events(server: Server, receiver: Receiver) -> None:
    register(server, receiver, ("live.repointed", "live.paused", "live.resumed"))
    made = server.make(path="pages/coupon/get?id=1", live=True)
    with httpx.Client(trust_env=False, timeout=30, headers={"Authorization": f"Bearer {API_KEY}"}) as client:
        for change in ({"page": "pages/spring/sale?aid=1"}, {"paused": True}, {"paused": False}):
            answer = client.post(f"{server.url}/api/codes/{made['id']}/destination", json=change)
            assert answer.status_code == 200, answer.text
    got = receiver.wait(3)
    assert sorted(r.event["type"] for r in got) == ["live.paused", "live.repointed", "live.resumed"]
    repointed = next(r.event["data"] for r in got if r.event["type"] == "live.repointed")
    assert repointed["live"]["destination"] == "pages/spring/sale?aid=1"


def test_the_quota_crossing_80_and_95_percent_is_one_event_each(server: Server, receiver: Receiver) -> None:
    register(server, receiver, ("quota.threshold",))
    for n in range(3):  # the cap is 5: 3 of 5 is 60%
        assert server.make(path=f"pages/a/index?n={n}")["code"] == 0
    time.sleep(1.2)
    assert receiver.received == []
    server.make(path="pages/a/index?n=3")  # 4 of 5: 80%
    first = receiver.wait(1)[0].event["data"]["quota"]
    assert (first["level"], first["used"], first["cap"]) == (80, 4, 5)
    server.make(path="pages/a/index?n=3")  # the same request again: reused, not counted
    server.make(path="pages/a/index?n=4")  # 5 of 5: 95% (and 100%)
    second = receiver.wait(2)[1].event["data"]["quota"]
    assert (second["level"], second["used"]) == (95, 5)
    time.sleep(1.2)
    assert len(receiver.received) == 2


def test_an_endpoint_only_gets_the_events_it_asked_for(server: Server, receiver: Receiver) -> None:
    register(server, receiver, ("batch.finished",))
    server.make(path="pages/shop/index", scene="sku=3")
    time.sleep(1.5)
    assert receiver.received == []


def test_a_private_address_is_refused_unless_allowed(tmp_path: Path, wechat: Site, receiver: Receiver) -> None:
    strict = start(tmp_path, wechat, minpcode_webhooks_allow_private=False)
    try:
        with pytest.raises(FieldError) as refused:
            run(strict.service.webhooks.add(receiver.url, requester=ADMIN))
        assert "MINPCODE_WEBHOOKS_ALLOW_PRIVATE" in refused.value.en and "127.0.0.1" in refused.value.en
        for url in ("http://169.254.169.254/latest/meta-data", "http://10.0.0.8/x", "http://[::1]:8080/x",
                    "http://0.0.0.0/x", "ftp://example.com/x", "http://user:pw@example.com/x"):
            with pytest.raises(FieldError):
                run(strict.service.webhooks.add(url, requester=ADMIN))
        assert strict.service.webhooks.endpoints(ADMIN) == []
        # Added while allowed, then no longer: each delivery checks the address again.
        strict.service.settings.minpcode_webhooks_allow_private = True
        endpoint = register(strict, receiver)
        strict.service.settings.minpcode_webhooks_allow_private = False
        strict.make(path="pages/shop/index", scene="sku=5")
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            rows = strict.service.webhooks.deliveries(ADMIN, endpoint)
            if rows and rows[0].attempts:
                break
            time.sleep(0.05)
        assert rows[0].last_error is not None and rows[0].last_error.startswith("refused:")
        assert receiver.received == []
    finally:
        strict.thread.stop()


def test_only_admins_manage_webhooks(server: Server, receiver: Receiver) -> None:
    someone = Requester(chat="slack", user_id="U123")
    with pytest.raises(PermissionDenied):
        run(server.service.webhooks.add(receiver.url, requester=someone))
    with pytest.raises(PermissionDenied):
        server.service.webhooks.endpoints(someone)


def test_two_senders_deliver_each_event_once(server: Server, receiver: Receiver) -> None:
    # A second process's sender on the same database (its own owner): the lease and the re-read under it keep
    # every event to one delivery.
    service = server.service
    other = Sender(service.storage.webhooks, service.storage.leases, "otherhost:1:abcd", schedule=[0.3],
                   allow_private=lambda: True, open_secret=service.webhooks.sealer.open, poll=0.05)
    stopping = threading.Event()

    async def elsewhere() -> None:  # its own thread and loop, as another process's would be
        await other.start()
        while not stopping.is_set():
            await asyncio.sleep(0.05)
        await other.stop()

    thread = threading.Thread(target=asyncio.run, args=(elsewhere(),), daemon=True)
    thread.start()
    try:
        register(server, receiver)
        for n in range(6):
            server.make(path="pages/shop/index", scene=f"sku=2{n}")
        receiver.wait(6)
        time.sleep(1.5)
        ids = [r.event["id"] for r in receiver.received]
        assert len(ids) == 6 and len(set(ids)) == 6
    finally:
        stopping.set()
        thread.join(10)


def test_webhooks_test_sends_a_signed_ping(server: Server, receiver: Receiver) -> None:
    register(server, receiver)
    sent = run(server.service.webhooks.test(receiver.url, ADMIN))
    assert (sent.event_type, sent.state, sent.last_status) == ("ping", "done", 200)
    (got,) = receiver.wait(1)
    assert got.verified and got.event["type"] == "ping" and got.event["id"] == sent.event_id


async def test_a_finished_batch_is_one_event(upstreams: Upstreams, tmp_path: Path, receiver: Receiver) -> None:
    settings = upstreams.settings(tmp_path, minpcode_webhooks_allow_private=True, minpcode_webhooks_retry=FAST)
    async with open_service(settings) as service:
        added = await service.webhooks.add(receiver.url, ("batch.finished",), requester=ADMIN)
        receiver.secret = added.secret
        await service.webhooks.sender.start()
        try:
            origin = BatchOrigin(user_id="U1", user_name="alice", chat="slack", channel_id="D1", message_id="1.1")
            plan = await service.batches.dry_run(read_pasted("页面,类型,场景\npages/index/index,B,id=1\n"
                                                             "pages/index/index,B,id=2\n"), origin)
            batch = await service.batches.run(plan.batch.id)
            await service.batches.run(plan.batch.id)  # run again (a resume after a restart): finished already
            got = await asyncio.to_thread(receiver.wait, 1)
            await asyncio.sleep(1.2)
        finally:
            await service.webhooks.sender.stop()
    assert len(receiver.received) == 1 and got[0].verified
    data = got[0].event["data"]["batch"]
    assert (data["id"], data["total"], data["rows"], data["requested_by"]) == (batch.id, 2, {"done": 2}, "slack:U1")


def test_a_change_to_many_live_codes_is_one_event_per_code(server: Server, receiver: Receiver) -> None:
    """A selection (bot/live/selection.py) changes each code as one change does: each sends its own event."""
    register(server, receiver, ("live.repointed", "live.paused"))
    made = [server.make(path=f"pages/shop/index?s={n}", live=True) for n in range(2)]
    maker = Requester(chat="api", user_id="cms", user_name="cms")
    ids = [m["id"] for m in made]
    server.service.live.selections.apply(Selection(ids=ids), "repoint", "pages/store/open", maker)
    server.service.live.selections.apply(Selection(ids=ids), "pause", None, maker)
    got = receiver.wait(4)
    assert sorted((r.event["type"], r.event["data"]["code"]["id"]) for r in got) == sorted(
        [("live.repointed", i) for i in ids] + [("live.paused", i) for i in ids])
    assert {r.event["data"]["live"]["destination"] for r in got} == {"pages/store/open"}
