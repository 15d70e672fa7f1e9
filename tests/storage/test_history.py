"""The history's verbs over a real SQLite file: a request from ``pending`` to ``done``/``failed``/``deleted``."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from bot.models import CodeRecord, CodeRequest, CodeType, Provider, Requester, Status, UpstreamResult
from bot.text import Text
from storage import Storage
from storage.clock import to_text
from storage.history import ID_LENGTH, Saved

ALICE = Requester(chat="slack", user_id="U_ALICE", user_name="alice")
BOB = Requester(chat="wecom", user_id="U_BOB", user_name="bob")
T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
WHY = Text(zh="页面不存在于已发布的小程序中。", en="The page is not in the released mini program.")


@pytest.fixture
def store(tmp_path: Path, database_url: str | None) -> Iterator[Storage]:
    opened = Storage.open(tmp_path, database_url)
    yield opened
    opened.close()


def a_code(page: str = "pages/index/index?x=1", **extra: Any) -> CodeRequest:
    return CodeRequest(type=CodeType.A, page=page, **extra)


def gio_code(name: str, page: str = "pages/list/list") -> CodeRequest:
    return CodeRequest(type=CodeType.A, via=Provider.GIO, page=page, name=name, campaign="双十一推广", channel="微博")


def save(store: Storage, request: CodeRequest, requester: Requester = ALICE) -> CodeRecord:
    return store.history.save_pending(request, requester, key=request.reuse_key(), app="wxapp", sandbox=False).record


def row(code_id: str, at: datetime, **fields: Any) -> dict[str, Any]:
    """One history row as import_rows takes it, created at ``at``."""
    base: dict[str, Any] = dict(
        id=code_id, request_key=f"key-{code_id}", type="B", provider="wechat", status="done", page="pages/item/item",
        scene=code_id, width=430, transparent=0, requested_by="U_ALICE", sandbox=0, attempts=1,
        request_json='{"type": "B", "page": "pages/item/item"}', created_at=to_text(at), updated_at=to_text(at),
    )
    return base | fields


# ---- writing ----------------------------------------------------------------------------------------


def test_save_pending_records_the_request_before_any_upstream_call(store: Storage, tmp_path: Path,
                                                                  database_url: str | None) -> None:
    request = a_code(name="spring", comments="海报")
    record = save(store, request)
    assert record.status is Status.PENDING and len(record.id) == ID_LENGTH and record.id.isalnum()
    assert (record.type, record.provider, record.page, record.name) == (CodeType.A, Provider.WECHAT,
                                                                         request.page, "spring")
    assert record.request_key == request.reuse_key() and record.app == "wxapp" and record.sandbox is False
    assert (record.requested_by, record.requested_by_name, record.chat) == ("slack:U_ALICE", "alice", "slack")
    assert record.error_code is None and record.error_message is None and record.image_sha256 is None
    assert record.code_request() == request  # the request survives the round trip exactly
    again = Storage.open(tmp_path, database_url)
    try:
        assert again.history.get(record.id) == record  # durable: another connection reads the same row
    finally:
        again.close()


def test_start_attempt_counts_attempts(store: Storage) -> None:
    record = save(store, a_code())
    assert [store.history.start_attempt(record.id) for _ in range(3)] == [1, 2, 3]


def test_mark_done_stores_what_the_upstream_gave(store: Storage) -> None:
    record = save(store, gio_code("spring-weibo"))
    result = UpstreamResult(provider=Provider.GIO, mime="image/jpeg", tracking_url="https://gio.example/t/1",
                            link_id="L1", campaign_id="C1", campaign_name="双十一推广", channel_id="H1",
                            channel_name="微博")
    store.history.mark_done(record.id, result, "f" * 64)
    done = store.history.get(record.id)
    assert done is not None and done.status is Status.DONE
    assert (done.tracking_url, done.link_id, done.image_sha256, done.image_mime) == (
        "https://gio.example/t/1", "L1", "f" * 64, "image/jpeg")
    assert (done.campaign, done.campaign_id, done.channel, done.channel_id) == ("双十一推广", "C1", "微博", "H1")
    assert done.updated_at >= record.updated_at


def test_mark_failed_stores_the_code_and_both_sentences(store: Storage) -> None:
    record = save(store, a_code())
    store.history.mark_failed(record.id, "41030", WHY)
    failed = store.history.get(record.id)
    assert failed is not None and failed.status is Status.FAILED
    assert failed.error_code == "41030"
    assert (failed.error_zh, failed.error_en) == (WHY.zh, WHY.en)
    assert failed.error_message == WHY
    assert failed.error == f"{WHY.zh}\n{WHY.en}"  # the JSON outputs' field, unchanged


def test_a_sentence_with_a_newline_stays_whole(store: Storage) -> None:
    # The old "zh\nen" column could not hold this: the split took the second Chinese line for English.
    two_lines = Text(zh="第一行\n第二行", en="line one\nline two")
    record = save(store, a_code())
    store.history.mark_failed(record.id, None, two_lines)
    failed = store.history.get(record.id)
    assert failed is not None and failed.error_message == two_lines and failed.error_code is None


def test_a_retry_that_succeeds_clears_the_failure(store: Storage) -> None:
    record = save(store, a_code())
    store.history.mark_failed(record.id, "upstream_busy", WHY)
    store.history.mark_done(record.id, UpstreamResult(provider=Provider.WECHAT, mime="image/png"), "a" * 64)
    done = store.history.get(record.id)
    assert done is not None and done.status is Status.DONE
    assert (done.error_code, done.error_zh, done.error_en, done.error_message) == (None, None, None, None)


def test_rename_and_mark_deleted(store: Storage) -> None:
    record = save(store, a_code(name="old"))
    store.history.rename(record.id, "新名字")
    renamed = store.history.get(record.id)
    assert renamed is not None and renamed.name == "新名字"
    store.history.mark_deleted(record.id)
    deleted = store.history.get(record.id)
    assert deleted is not None and deleted.status is Status.DELETED
    assert store.history.find_by_key(record.request_key) is None
    assert store.history.recent() == [] and [r.id for r in store.history.recent(include_deleted=True)] == [record.id]


def test_get_unknown_id_is_none(store: Storage) -> None:
    assert store.history.get("nosuchcode00") is None


# ---- reuse ------------------------------------------------------------------------------------------


def test_one_live_row_per_request_and_a_failed_or_deleted_one_holds_nothing(store: Storage) -> None:
    request = a_code()
    key = request.reuse_key()
    first = store.history.save_pending(request, ALICE, key=key, app="wxapp", sandbox=False)
    again = store.history.save_pending(request, BOB, key=key, app="wxapp", sandbox=False)
    assert first.new and not again.new and again.record == first.record  # Bob is handed Alice's pending row
    assert store.history.find_by_key(key) == first.record
    store.history.mark_failed(first.record.id, "45009", WHY)
    assert store.history.find_by_key(key) is None  # a failure is never offered again
    retry = store.history.save_pending(request, BOB, key=key, app="wxapp", sandbox=False)
    assert retry.new and retry.record.id != first.record.id  # and it does not stop a new attempt
    store.history.mark_done(retry.record.id, UpstreamResult(provider=Provider.WECHAT, mime="image/png"), "b" * 64)
    made = store.history.save_pending(request, ALICE, key=key, app="wxapp", sandbox=False)
    assert not made.new and made.record.id == retry.record.id and made.record.status is Status.DONE
    store.history.mark_deleted(retry.record.id)
    after_delete = store.history.save_pending(request, ALICE, key=key, app="wxapp", sandbox=False)
    assert after_delete.new and store.history.find_by_key(key) == after_delete.record
    assert store.history.find_by_key("no-such-key") is None
    # the database itself refuses a second live row, whoever writes it
    with pytest.raises((sqlite3.IntegrityError, psycopg.IntegrityError), match="(?i)unique"):
        store.history.import_rows([row("sneaky", T0, request_key=key, status="done")])


def test_two_connections_saving_the_same_requests_at_once_write_one_row_each(tmp_path: Path,
                                                                            database_url: str | None) -> None:
    # two processes on one data folder are two connections to one file; the database keeps one row per request
    stores = [Storage.open(tmp_path, database_url), Storage.open(tmp_path, database_url)]
    requests = [a_code(f"pages/index/index?n={n}") for n in range(20)]
    go = threading.Barrier(2)

    def save_all(store: Storage, requester: Requester) -> list[Saved]:
        go.wait(timeout=10)
        return [store.history.save_pending(r, requester, key=r.reuse_key(), app="wxapp", sandbox=False)
                for r in requests]

    try:
        with ThreadPoolExecutor(2) as pool:
            alice, bob = (f.result() for f in [pool.submit(save_all, stores[0], ALICE),
                                               pool.submit(save_all, stores[1], BOB)])
        assert stores[0].history.count() == len(requests)
        assert all(a.record.id == b.record.id and a.new != b.new for a, b in zip(alice, bob, strict=True))
    finally:
        for opened in stores:
            opened.close()


def test_name_taken_counts_only_other_live_codes(store: Storage) -> None:
    first = save(store, gio_code("spring-weibo"))
    assert store.history.name_taken("spring-weibo", "gio")
    assert not store.history.name_taken("spring-weibo", "wechat")  # names are unique per provider
    assert not store.history.name_taken("spring-weibo", "gio", except_id=first.id)
    assert not store.history.name_taken("spring-weibo", "gio", except_key=first.request_key)
    store.history.mark_failed(first.id, "duplicate_name", WHY)
    assert not store.history.name_taken("spring-weibo", "gio")


def test_pending_lists_unfinished_rows_oldest_first(store: Storage) -> None:
    store.history.import_rows([row("p2", T0 + timedelta(minutes=2), status="pending"),
                               row("p1", T0 + timedelta(minutes=1), status="pending"),
                               row("d1", T0, status="done")])
    assert [r.id for r in store.history.pending()] == ["p1", "p2"]


# ---- reading ----------------------------------------------------------------------------------------


def test_recent_is_newest_first_paged_and_filtered_by_requester(store: Storage) -> None:
    store.history.import_rows([
        row(f"r{i}", T0 + timedelta(minutes=i), requested_by="U_BOB" if i % 2 else "U_ALICE") for i in range(6)
    ] + [row("gone", T0 + timedelta(hours=1), status="deleted")])
    assert [r.id for r in store.history.recent(limit=3)] == ["r5", "r4", "r3"]
    assert [r.id for r in store.history.recent(limit=3, offset=3)] == ["r2", "r1", "r0"]
    assert [r.id for r in store.history.recent(requested_by="U_BOB")] == ["r5", "r3", "r1"]
    assert store.history.recent(include_deleted=True)[0].id == "gone"
    record = store.history.recent(limit=1)[0]
    assert record.created_at == T0 + timedelta(minutes=5) and record.created_at.tzinfo is not None


def test_search_finds_chinese_and_latin_substrings(store: Storage) -> None:
    store.history.import_rows([
        row("c1", T0, name="双十一推广-微博", campaign="双十一推广", channel="微博"),
        row("c2", T0 + timedelta(minutes=1), name="春节活动-微信群", campaign="春节活动", channel="微信群",
            comments="线下地推海报"),
        row("c3", T0 + timedelta(minutes=2), name="spring_sale", page="pages/sale/sale",
            tracking_url="https://gio.example/t/XyZ123", requested_by="U_BOB"),
        row("c4", T0 + timedelta(minutes=3), name="双十一推广-旧", status="deleted"),
    ])
    ids = lambda query, **kw: [r.id for r in store.history.search(query, **kw)]  # noqa: E731
    assert ids("双十一推广") == ["c1"]  # the deleted namesake is not found
    assert ids("地推海报") == ["c2"]  # comments, mid-string
    assert ids("微") == ["c2", "c1"]  # one character: below the trigram, still found
    assert ids("微信") == ["c2"]
    assert ids("t/XyZ") == ["c3"]  # tracking URLs
    assert ids("sale/sale") == ["c3"]  # pages
    assert ids("spring", requested_by="U_ALICE") == [] and ids("spring", requested_by="U_BOB") == ["c3"]
    assert ids('"双十一') == [] and ids("50%") == [] and ids("_") == ["c3"]  # quotes and LIKE wildcards are literal
    assert ids("  ") == ["c3", "c2", "c1"]  # nothing to search for: the recent ones
    assert ids("推广", limit=1) == ["c1"] and ids("活动", offset=1) == []


def test_search_finds_codes_saved_one_by_one(store: Storage) -> None:
    # save_pending goes through the full-text index's insert trigger, import_rows through a rebuild.
    record = save(store, gio_code("端午节-小红书"))
    assert [r.id for r in store.history.search("端午节")] == [record.id]
    store.history.rename(record.id, "中秋节-小红书")
    assert store.history.search("端午节") == [] and [r.id for r in store.history.search("中秋节")] == [record.id]


def test_between_is_half_open_and_counts_deleted_codes(store: Storage) -> None:
    store.history.import_rows([
        row("before", T0 - timedelta(microseconds=1)), row("start", T0),
        row("gone", T0 + timedelta(hours=1), status="deleted"), row("end", T0 + timedelta(days=1)),
    ])
    since, until = to_text(T0), to_text(T0 + timedelta(days=1))
    assert [r.id for r in store.history.between(since, until)] == ["start", "gone"]


def test_count_counts_every_row(store: Storage) -> None:
    assert store.history.count() == 0
    save(store, a_code())
    assert store.history.import_rows(row(f"n{i}", T0 + timedelta(seconds=i)) for i in range(5)) == 5
    assert store.history.count() == 6


def test_tags_are_kept_per_code_and_filter_lists_counts_and_search(store: Storage) -> None:
    first = save(store, a_code("pages/shop/index?s=1"))
    second = save(store, a_code("pages/shop/index?s=2"))
    save(store, a_code("pages/shop/index?s=3"))
    assert store.tags.add(first.id, ["门店", "vip"], ALICE.key) == ["门店", "vip"]
    assert store.tags.add(first.id, ["vip", "春节"], ALICE.key) == ["春节"]  # a tag it carries is not added twice
    store.tags.add(second.id, ["门店"], ALICE.key)
    assert store.tags.of(first.id) == sorted(["门店", "vip", "春节"])
    assert store.tags.of_codes([first.id, second.id]) == {first.id: sorted(["门店", "vip", "春节"]), second.id: ["门店"]}
    assert sorted(store.tags.codes("门店")) == sorted([first.id, second.id])
    assert [r.id for r in store.history.recent(tag="门店")] == [second.id, first.id]
    assert store.history.count_matching(tag="门店") == 2 and store.history.count_matching("s=1", tag="门店") == 1
    assert [r.id for r in store.history.search("shop", tag="vip")] == [first.id]
    assert [r.id for r in store.history.search("s", tag="春节")] == [first.id]  # the short (LIKE) search too
    assert store.tags.remove(first.id, ["vip", "nope"]) == ["vip"]
    assert store.history.recent(tag="vip") == []
