"""The one copy of each shared piece: bilingual text, clipping, yes/no words, kinds, media, concurrency."""

from __future__ import annotations

import asyncio

import pytest

from bot.concurrency import KeyedLocks, SingleFlight, TtlSet
from bot.kinds import KINDS, default_kind, kind_of, offered
from bot.media import extension, mime_for, sniff
from bot.text import Text, bilingual, clip, clip_utf8, yes_no


def test_text_renders_the_askers_language_first_and_both_when_unknown() -> None:
    text = Text(zh="你好", en="Hello")
    assert text.render("en") == "Hello\n你好"
    assert text.render("zh") == "你好\nHello"
    assert text.render(None) == "你好\nHello"
    assert text.render("en", both=False) == "Hello"
    assert text.pick("en") == "Hello" and text.pick(None) == "你好"
    assert bilingual("甲", "A", "en", sep=" / ") == "A / 甲"
    assert Text(zh="ok", en="ok").render() == "ok"


def test_clip_marks_the_cut_and_never_splits_a_character() -> None:
    assert clip("abcdef", 10) == "abcdef"
    assert clip("abcdef", 4) == "abc…"
    assert len(clip("x" * 100, 20)) == 20
    assert clip_utf8("中文中文", 7) == "中文"
    assert clip_utf8("中文中文", 12) == "中文中文"
    assert clip_utf8("中文中文", 9, ellipsis="…").encode() == "中文…".encode()


@pytest.mark.parametrize(("word", "value"), [("yes", True), ("是", True), ("Y", True), ("no", False),
                                             ("否", False), ("maybe", None), ("", None)])
def test_yes_no_words(word: str, value: bool | None) -> None:
    assert yes_no(word) is value


def test_kinds_accept_current_and_older_option_values() -> None:
    assert kind_of("gio-A") is KINDS["gio-A"]
    assert kind_of("gio:A") is KINDS["gio-A"]
    assert kind_of("wechat:shortlink") is KINDS["wx-shortlink"]
    assert kind_of("nope") is None
    assert all(not k.gio for k in offered(gio=False))
    assert offered(gio=True)[0].gio
    assert default_kind(True).id == "gio-A" and default_kind(False).id == "wx-A"


def test_media_is_told_by_the_bytes() -> None:
    assert sniff(b"\x89PNG\r\n\x1a\n....") == "image/png"
    assert sniff(b"\xff\xd8\xff\xe0") == "image/jpeg"
    assert sniff(b"%PDF-1.7") == "application/pdf"
    assert sniff(b"<html>") is None
    assert extension("image/png") == "png" and extension(None) == "jpg"
    assert mime_for("poster.PDF") == "application/pdf" and mime_for("a.jpeg") == "image/jpeg"


async def test_keyed_locks_serialise_one_key_and_forget_idle_keys() -> None:
    locks: KeyedLocks[str] = KeyedLocks()
    order: list[str] = []

    async def work(key: str, tag: str) -> None:
        async with locks.hold(key):
            order.append(f"{tag}+")
            await asyncio.sleep(0.01)
            order.append(f"{tag}-")

    await asyncio.gather(work("a", "1"), work("a", "2"), work("b", "3"))
    assert order.index("1-") < order.index("2+")  # same key: one after the other
    assert order.index("3+") < order.index("1-")  # other key: at the same time
    assert len(locks) == 0


async def test_single_flight_shares_one_call_and_survives_a_cancelled_caller() -> None:
    flight: SingleFlight[str, int] = SingleFlight()
    calls = 0

    async def fetch() -> int:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.02)
        return 42

    impatient = asyncio.ensure_future(flight.run("k", fetch))
    others = [asyncio.ensure_future(flight.run("k", fetch)) for _ in range(5)]
    await asyncio.sleep(0.005)
    impatient.cancel()
    assert await asyncio.gather(*others) == [42] * 5
    assert calls == 1
    assert await flight.run("k", fetch) == 42 and calls == 2  # a finished call is not cached


async def test_single_flight_gives_every_waiter_the_failure() -> None:
    flight: SingleFlight[str, int] = SingleFlight()

    async def boom() -> int:
        await asyncio.sleep(0.01)
        raise ValueError("no")

    results = await asyncio.gather(*(flight.run("k", boom) for _ in range(3)), return_exceptions=True)
    assert all(isinstance(r, ValueError) for r in results)


def test_ttl_set_remembers_within_the_window_and_stays_bounded() -> None:
    now = [0.0]
    seen: TtlSet[str] = TtlSet(ttl=10, capacity=3, clock=lambda: now[0])
    assert seen.first("a") and not seen.first("a") and "a" in seen
    now[0] = 11
    assert "a" not in seen and seen.first("a")
    for key in "bcde":
        seen.first(key)
    assert len(seen) <= 3
