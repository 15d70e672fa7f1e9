"""The webhook store on both backends: one delivery per (endpoint, event), what is due, attempts, removal, and
events written in the transaction of the change they tell of."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from bot.models import CodeRequest, CodeType, Provider, Requester, Status, UpstreamResult
from bot.text import Text
from storage import Storage
from storage.webhooks import Event, Events

ALICE = Requester(chat="slack", user_id="U_ALICE", user_name="alice")


def test_one_row_per_endpoint_and_event_and_only_for_the_events_asked(database_url: str | None,
                                                                      tmp_path: Path) -> None:
    store = Storage.open(tmp_path, database_url).webhooks
    every = store.add("wh_all", "https://a.example/h", "s" * 20, [], "cli:ops")
    store.add("wh_quota", "https://b.example/h", "t" * 20, ["quota.threshold"], "cli:ops")
    assert store.endpoint(every.id) == every and every.events == ()

    made = store.record("evt_1", "code.made", '{"id":"evt_1"}')
    assert len(made) == 1 and store.delivery(made[0]).endpoint_id == "wh_all"  # type: ignore[union-attr]
    assert store.record("evt_1", "code.made", '{"id":"evt_1"}') == []  # noticed twice: recorded once
    assert len(store.record("evt_q", "quota.threshold", "{}")) == 2
    assert store.record("evt_ping", "ping", "{}", endpoint_id="wh_quota") != []


def test_due_attempted_and_given_up(database_url: str | None, tmp_path: Path) -> None:
    store = Storage.open(tmp_path, database_url).webhooks
    store.add("wh_a", "https://a.example/h", "s" * 20, [], "cli:ops")
    (first,) = store.record("evt_1", "code.made", "{}")
    assert store.due() == [first]
    store.attempted(first, status=500, error="HTTP 500", state="pending", next_at=time.time() + 60)
    assert store.due() == [] and store.due(time.time() + 61) == [first]
    row = store.delivery(first)
    assert row is not None and (row.attempts, row.last_status, row.state) == (1, 500, "pending")
    assert store.next_due() == row.next_at
    store.attempted(first, status=200, error=None, state="done")
    store.attempted(first, status=500, error="late", state="pending")  # a second owner's stale write: ignored
    row = store.delivery(first)
    assert row is not None and (row.attempts, row.state, row.last_status) == (2, "done", 200)
    assert store.counts() == {"done": 1}


def test_removing_an_endpoint_gives_up_what_it_was_owed(database_url: str | None, tmp_path: Path) -> None:
    store = Storage.open(tmp_path, database_url).webhooks
    store.add("wh_a", "https://a.example/h", "s" * 20, [], "cli:ops")
    (owed,) = store.record("evt_1", "code.made", "{}")
    assert store.remove("wh_a") and not store.remove("wh_a")
    assert store.endpoints() == [] and store.due() == []
    row = store.delivery(owed)
    assert row is not None and (row.state, row.last_error) == ("failed", "endpoint removed")
    assert store.record("evt_2", "code.made", "{}") == []
    assert [r.id for r in store.recent()] == [owed]


class Refused(Exception):
    pass


def test_a_change_and_its_events_are_one_transaction(database_url: str | None, tmp_path: Path) -> None:
    # A code made, failed, re-pointed, paused: its event written by the same verb, reading the row as just written;
    # an event that cannot be written takes the change back with it (neither is kept without the other).
    store = Storage.open(tmp_path, database_url)
    store.webhooks.add("wh_a", "https://a.example/h", "s" * 20, [], "cli:ops")
    request = CodeRequest(type=CodeType.B, page="pages/index/index", scene="id=1")
    code = store.history.save_pending(request, ALICE, key=request.reuse_key(), app="wxapp", sandbox=False).record

    def seen(event_type: str) -> Events:
        def events() -> list[Event]:
            row = store.history.get(code.id)  # inside the transaction: the change is visible
            assert row is not None
            return [Event(f"evt_{event_type}", event_type, json.dumps({"status": row.status.value}))]
        return events

    def refused() -> list[Event]:
        raise Refused

    with pytest.raises(Refused):
        store.history.mark_done(code.id, UpstreamResult(provider=Provider.WECHAT, mime="image/png"), "a" * 64,
                                events=refused)
    assert store.history.get(code.id).status is Status.PENDING  # type: ignore[union-attr]
    store.history.mark_done(code.id, UpstreamResult(provider=Provider.WECHAT, mime="image/png"), "a" * 64,
                            events=seen("code.made"))
    with pytest.raises(Refused):
        store.history.mark_failed(code.id, "41030", Text(zh="不行", en="No"), events=refused)
    assert store.history.get(code.id).status is Status.DONE  # type: ignore[union-attr]
    store.history.mark_failed(code.id, "41030", Text(zh="不行", en="No"), events=seen("code.failed"))

    store.live.create("k=abc", code.id, "pages/a/a", "cli:ops", None)
    with pytest.raises(Refused):
        store.live.set_page("k=abc", "pages/b/b", "cli:ops", events=refused)
    with pytest.raises(Refused):
        store.live.set_paused("k=abc", True, events=refused)
    live = store.live.get("k=abc")
    assert live is not None and (live.page, live.paused) == ("pages/a/a", False)
    assert len(store.live.destinations("k=abc")) == 1
    store.live.set_page("k=abc", "pages/b/b", "cli:ops", events=seen("live.repointed"))
    store.live.set_paused("k=abc", True, events=seen("live.paused"))

    rows = {r.event_type: json.loads(r.body) for r in store.webhooks.recent()}
    assert rows == {"code.made": {"status": "done"}, "code.failed": {"status": "failed"},
                    "live.repointed": {"status": "failed"}, "live.paused": {"status": "failed"}}


def test_no_endpoint_no_event_built(database_url: str | None, tmp_path: Path) -> None:
    store = Storage.open(tmp_path, database_url)
    request = CodeRequest(type=CodeType.B, page="pages/index/index", scene="id=2")
    code = store.history.save_pending(request, ALICE, key=request.reuse_key(), app="wxapp", sandbox=False).record

    def never() -> list[Event]:
        raise AssertionError("built for nobody")

    store.history.mark_done(code.id, UpstreamResult(provider=Provider.WECHAT, mime="image/png"), None, events=never)
    assert store.history.get(code.id).status is Status.DONE  # type: ignore[union-attr]
