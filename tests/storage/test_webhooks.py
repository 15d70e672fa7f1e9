"""The webhook store on both backends: one delivery per (endpoint, event), what is due, attempts, removal."""

from __future__ import annotations

import time
from pathlib import Path

from storage import Storage


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
