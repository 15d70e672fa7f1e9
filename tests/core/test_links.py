"""Links that open the mini program (Short Link, URL Link, URL Scheme, the plain-text scheme) through the whole
service: the WeChat emulator on a real loopback port and a real SQLite file. Rules are checked before any call,
WeChat's refusals are recorded in our words, an identical unexpired link is reused and an expired one never,
and ``quota`` counts what WeChat limits."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.errors import InvalidRequest, NotConfigured
from bot.models import CodeType, Status
from bot.server import open_service
from bot.service import Service
from bot.summary import render_text, summary_for_days
from storage.clock import to_text
from tests.emulators.upstreams import PEOPLE, Upstreams

ALICE, BOB, _ = PEOPLE
URLLINK, SCHEME, SHORT = "/wxa/generate_urllink", "/wxa/generatescheme", "/wxa/genwxashortlink"
DAY = 86400


@pytest.fixture
async def service(upstreams: Upstreams, tmp_path: Path) -> AsyncIterator[Service]:
    upstreams.wechat.reset_counts()
    upstreams.wechat.reset_quotas()
    async with open_service(upstreams.settings(tmp_path)) as svc:
        yield svc


@pytest.fixture
async def declared(upstreams: Upstreams, tmp_path: Path) -> AsyncIterator[Service]:
    """A service whose operator has declared the plain-text scheme (MINPCODE_PLAIN_SCHEME=1)."""
    upstreams.wechat.reset_counts()
    async with open_service(upstreams.settings(tmp_path, minpcode_plain_scheme=True)) as svc:
        yield svc


@pytest.fixture
def knobs(upstreams: Upstreams) -> Iterator[Upstreams]:
    """The module's emulator, its link knobs put back after the test."""
    yield upstreams
    emu = upstreams.wechat
    emu.links_allowed, emu.released, emu.links_per_day, emu.links_per_second = True, True, 500_000, 100


def near(moment: datetime | None, seconds_from_now: float) -> bool:
    return moment is not None and abs(moment.timestamp() - (time.time() + seconds_from_now)) < 10


@pytest.mark.parametrize(("kind", "path", "answer"), [("urllink", URLLINK, "https://wxaurl.cn/"),
                                                      ("scheme", SCHEME, "weixin://dl/business/?t=")])
async def test_a_link_is_made_with_its_expiry_and_reused_while_it_works(
        service: Service, upstreams: Upstreams, kind: str, path: str, answer: str) -> None:
    made = await service.submit({"type": kind, "page": "/pages/goods/goods?id=9"}, ALICE)
    record = made.record
    assert record.status is Status.DONE and record.type is CodeType(kind) and record.link and record.link.startswith(answer)
    assert record.page == "pages/goods/goods?id=9" and record.image_sha256 is None
    assert near(record.expires_at, 30 * DAY) and not record.permanent
    sent = upstreams.wechat.links[-1]
    assert (sent["path"], sent["query"]) == ("pages/goods/goods", "id=9")  # the path apart from its query
    # The identical request reuses it: no second call, the same link and expiry.
    again = await service.submit({"type": kind, "page": "pages/goods/goods?id=9", "expire_days": 30}, BOB)
    assert again.reused and again.record.id == record.id and upstreams.wechat.calls[path] == 1
    # Fewer days is another request.
    week = await service.submit({"type": kind, "page": "pages/goods/goods?id=9", "expire_days": 7}, BOB)
    assert not week.reused and near(week.record.expires_at, 7 * DAY) and upstreams.wechat.calls[path] == 2


async def test_an_expired_link_is_never_reused(service: Service, upstreams: Upstreams) -> None:
    first = (await service.submit({"type": "urllink", "page": "pages/a/a"}, ALICE)).record
    past = to_text(datetime.now(UTC) - timedelta(minutes=1))
    service.storage.db.execute("UPDATE codes SET expires_at = ? WHERE id = ?", [past, first.id])
    assert service.get(first.id).expired()
    second = await service.submit({"type": "urllink", "page": "pages/a/a"}, ALICE)
    assert not second.reused and second.record.id != first.id
    assert upstreams.wechat.calls[URLLINK] == 2 and near(second.record.expires_at, 30 * DAY)


async def test_short_links_say_whether_they_are_permanent(service: Service) -> None:
    temporary = (await service.submit({"type": "shortlink", "page": "pages/a/a"}, ALICE)).record
    assert near(temporary.expires_at, 30 * DAY) and not temporary.permanent
    permanent = (await service.submit({"type": "shortlink", "page": "pages/a/a", "permanent": True}, ALICE)).record
    assert permanent.expires_at is None and permanent.permanent


@pytest.mark.parametrize(("fields", "field", "words"), [
    ({"type": "urllink", "page": "pages/a/a?name=张三"}, "page", "URL-encode"),
    ({"type": "urllink", "page": "pages/a/a?" + "a" * 1025}, "page", "1024"),
    ({"type": "scheme", "page": "pages/a/a", "expire_days": 31}, "expire_days", "30"),
    ({"type": "scheme", "page": "pages/a/a", "expire_days": 0}, "expire_days", "between 1 and 30"),
    ({"type": "urllink", "page": "pages/a/a", "permanent": True}, "permanent", "30 days at most"),
    ({"type": "urllink", "page": "pages/a/a", "plain": True}, "plain", "type=scheme only"),
    ({"type": "scheme", "page": "pages/a/a", "plain": True, "expire_days": 5}, "expire_days", "never expires"),
    ({"type": "scheme", "page": "?id=1", "plain": True}, "page", "page path"),
    ({"type": "scheme", "page": "pages/a/a?" + "a" * 513, "plain": True}, "page", "512"),
    ({"type": "shortlink", "page": "pages/a/a", "expire_days": 5}, "expire_days", "30 days, or permanent=yes"),
    ({"type": "B", "page": "pages/a/a", "scene": "x", "expire_days": 5}, "expire_days", "urllink"),
    ({"type": "urllink", "page": "pages/a/a", "scene": "id=1"}, "scene", "Only B codes"),
    ({"type": "scheme", "page": "pages/a/a", "campaign": "双十一推广"}, "campaign", "URL Scheme is no tracking link"),
])
async def test_the_rules_are_checked_before_any_call(declared: Service, upstreams: Upstreams, fields: dict[str, object],
                                                     field: str, words: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        await declared.submit(fields, ALICE)
    found = caught.value.by_field()
    assert field in found and words in found[field].en, caught.value.en
    assert not upstreams.wechat.calls and declared.storage.history.count() == 0


async def test_the_plain_text_scheme_needs_the_declaration(service: Service, upstreams: Upstreams) -> None:
    with pytest.raises(NotConfigured) as caught:
        await service.submit({"type": "scheme", "plain": True, "page": "pages/coupon/get?id=3"}, ALICE)
    error = caught.value
    assert error.field == "plain" and error.missing == ["MINPCODE_PLAIN_SCHEME"]
    assert "明文 scheme 拉起此小程序" in error.zh and "pages/coupon/get" in error.en and "MINPCODE_PLAIN_SCHEME=1" in error.en
    assert service.storage.history.count() == 0 and not upstreams.wechat.calls


async def test_the_plain_text_scheme_is_made_without_a_call(declared: Service, upstreams: Upstreams) -> None:
    handed_out = len(upstreams.wechat.links)
    made = (await declared.submit({"type": "scheme", "plain": True, "page": "pages/coupon/get?id=3"}, ALICE)).record
    assert made.status is Status.DONE and made.plain and made.permanent and made.expires_at is None
    assert made.link == ("weixin://dl/business/?appid=wxsandbox0000001&path=pages/coupon/get&query=id%3D3")
    assert not upstreams.wechat.calls and len(upstreams.wechat.links) == handed_out  # not even a token
    # Not counted against WeChat's 500,000 a day.
    [row] = declared.quota()
    assert row.links_today == 0


@pytest.mark.parametrize(("setup", "errcode", "words"), [
    ({"links_allowed": False}, "40002", "non-personal subject"),
    ({"released": False}, "85079", "released version"),
    ({"links_per_day": 0}, "44993", "500,000"),
])
async def test_wechat_refusals_are_recorded_in_our_words(service: Service, knobs: Upstreams,
                                                         setup: dict[str, object], errcode: str, words: str) -> None:
    for knob, value in setup.items():
        setattr(knobs.wechat, knob, value)
    record = (await service.submit({"type": "urllink", "page": "pages/a/a"}, ALICE)).record
    assert record.status is Status.FAILED and record.error_code == errcode
    assert record.error_en and words in record.error_en and record.error_zh and record.error_zh != record.error_en


async def test_quota_counts_links_today_and_permanent_short_links(service: Service) -> None:
    for page in ("pages/a/a", "pages/b/b"):
        await service.submit({"type": "urllink", "page": page}, ALICE)
    await service.submit({"type": "scheme", "page": "pages/c/c"}, ALICE)
    await service.submit({"type": "shortlink", "page": "pages/a/a", "permanent": True}, ALICE)
    await service.submit({"type": "shortlink", "page": "pages/b/b"}, ALICE)  # temporary: not counted
    [row] = service.quota()
    assert (row.links_today, row.links_per_day) == (3, 500_000)
    assert (row.permanent_short_links, row.permanent_short_link_cap) == (1, 100_000)
    assert "3 of 500,000" in row.link_lines().en and "1 / 100,000" in row.link_lines().zh


async def test_the_summary_names_the_link_types(service: Service) -> None:
    await service.submit({"type": "urllink", "page": "pages/a/a"}, ALICE)
    await service.submit({"type": "scheme", "page": "pages/a/a"}, ALICE)
    summary = summary_for_days(service, 7)
    assert "URL Links" in render_text(summary, "en") and "URL Scheme" in render_text(summary, "zh")
