"""CodeRequest field rules at their boundaries, by property-based tests (bot/models.py cites each rule's page)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.errors import FieldError, InvalidRequest
from bot.models import (
    GIO_NAME_MAX,
    GIO_NAME_RE,
    PATH_MAX_BYTES,
    SCENE_MAX,
    SCENE_RE,
    CodeRecord,
    CodeRequest,
    CodeType,
    Provider,
    Status,
    check_name,
    truncate_title,
)
from bot.sandbox._wechat_codes import CodeRules, parse_code_request
from bot.sandbox._wechat_errors import WeChatError
from bot.text import Text

CJK = re.compile(r"[\u4e00-\u9fff]")
NAME_ALPHABET = st.sampled_from(
    "abcxyzABCXYZ0123456789-/_" "推广活动渠道二维码线下地推双十一"
) | st.characters(min_codepoint=0x4E00, max_codepoint=0x9FA5)
SCENE_ALPHABET = st.sampled_from("0123456789abcXYZ!#$&'()*+,/:;=?@-._~")
PRINTABLE = st.characters(exclude_categories=("Cs", "Cc"))
# Path characters that can never spell the reserved "scancode_time" and contain no whitespace.
PATH_ASCII = st.sampled_from("ab01/=&?_-")
GIO_BASE = {"type": "A", "via": "gio", "page": "pages/list/list", "campaign": "spring-sale", "channel": "weibo"}


def errors_of(data: dict[str, Any]) -> dict[str, FieldError]:
    with pytest.raises(InvalidRequest) as caught:
        CodeRequest.parse(data)
    errors = caught.value.errors
    for error in errors:
        assert isinstance(error, FieldError)
        assert error.zh and error.en and CJK.search(error.zh), error
    return caught.value.by_field()


def names(size: int) -> st.SearchStrategy[str]:
    return st.text(NAME_ALPHABET, min_size=size, max_size=size)


def path_of_bytes(size: int) -> st.SearchStrategy[str]:
    """A non-empty A/C path of exactly ``size`` UTF-8 bytes, mixing 3-byte Chinese and ASCII."""

    @st.composite
    def build(draw: st.DrawFn) -> str:
        chinese = draw(st.integers(0, (size - 1) // 3))
        head = draw(st.text(st.characters(min_codepoint=0x4E00, max_codepoint=0x9FA5), min_size=chinese,
                            max_size=chinese))
        tail = draw(st.text(PATH_ASCII, min_size=size - 3 * chinese, max_size=size - 3 * chinese))
        cut = draw(st.integers(0, len(tail)))
        path = tail[:cut] + head + tail[cut:]
        # the size is of the path as kept: a leading / would be dropped (bot.models.page_path)
        return "p" + path[1:] if path.startswith("/") else path

    return build()


# ---- GrowingIO names: at most 50 characters of 中文 / letters / digits / - / _ -----------------------


@given(names(GIO_NAME_MAX))
def test_name_of_50_allowed_characters_is_accepted(name: str) -> None:
    request = CodeRequest.parse({**GIO_BASE, "name": name})
    assert request.name == name
    assert check_name(name) == name


@given(names(GIO_NAME_MAX + 1))
def test_name_of_51_characters_is_refused_naming_the_limit(name: str) -> None:
    error = errors_of({**GIO_BASE, "name": name})["name"]
    assert "50" in error.en and "51" in error.en and "50" in error.zh
    with pytest.raises(FieldError):
        check_name(name)


@given(names(GIO_NAME_MAX + 1), st.booleans())
def test_campaign_and_channel_names_share_the_50_character_rule(name: str, which: bool) -> None:
    field = "campaign" if which else "channel"
    errors = errors_of({**GIO_BASE, field: name, "create_missing": True})
    assert set(errors) == {field}
    ok = CodeRequest.parse({**GIO_BASE, field: name[:GIO_NAME_MAX], "create_missing": True})
    assert getattr(ok, field) == name[:GIO_NAME_MAX]


@given(names(2), st.characters(exclude_categories=("Cs",)).filter(lambda ch: not GIO_NAME_RE.match(ch)),
       st.booleans())
def test_a_single_disallowed_character_anywhere_inside_is_refused_and_shown(name: str, bad: str, use_channel: bool) -> None:
    value = name[0] + bad + name[1:]
    field = "channel" if use_channel else "name"
    data = {**GIO_BASE, field: value}
    if use_channel:
        data["create_missing"] = True
    error = errors_of(data)[field]
    assert repr(bad)[1:-1] in error.en or bad in error.en


@pytest.mark.parametrize("name", ["spring sale", "双十一,推广", "a.b", "tab\there", "100%"])
def test_spaces_punctuation_and_percent_are_refused(name: str) -> None:
    assert "name" in errors_of({**GIO_BASE, "name": name})


@pytest.mark.parametrize("value", ["abc\n", "推广\n", "a/b_c-1\n"])
def test_a_trailing_newline_does_not_slip_past_the_name_and_scene_patterns(value: str) -> None:
    with pytest.raises(FieldError):
        check_name(value)
    assert SCENE_RE.match(value) is None


def test_gio_codes_need_campaign_and_channel() -> None:
    errors = errors_of({"type": "C", "via": "gio", "page": "pages/a/a"})
    assert set(errors) == {"campaign", "channel"}
    assert "GrowingIO" in errors["campaign"].en


# ---- C path: at most 128 UTF-8 bytes, A 1024 (107 through GrowingIO, which appends ?gio_link_id=<8>) ---


@given(path_of_bytes(PATH_MAX_BYTES), st.sampled_from(["A", "C"]))
def test_path_of_128_bytes_is_accepted(path: str, kind: str) -> None:
    assert len(path.encode()) == 128
    assert CodeRequest.parse({"type": kind, "page": path}).page == path


@given(path_of_bytes(PATH_MAX_BYTES + 1))
def test_c_path_of_129_bytes_is_refused_with_the_byte_count(path: str) -> None:
    error = errors_of({"type": "C", "page": path})["page"]
    assert "128" in error.en and "129" in error.en and "字节" in error.zh
    assert CodeRequest.parse({"type": "A", "page": path}).page == path  # A takes up to 1024


@given(st.integers(90, 140).flatmap(lambda n: st.tuples(st.just(n), path_of_bytes(n))))
def test_gio_path_leaves_21_bytes_for_the_gio_link_id_suffix(sized: tuple[int, str]) -> None:
    size, path = sized
    data = {**GIO_BASE, "page": path}
    if size <= PATH_MAX_BYTES - 21:
        assert CodeRequest.parse(data).page == path
    else:
        error = errors_of(data)["page"]
        assert "?gio_link_id=" in error.en and str(PATH_MAX_BYTES - 21) in error.en


@given(path_of_bytes(PATH_MAX_BYTES + 1))
def test_the_model_and_the_emulator_agree_on_the_128_byte_rule(path: str) -> None:
    """What we refuse locally WeChat would refuse too, so no call is wasted (and vice versa)."""
    for size_path in (path, path.encode()[:128].decode("utf-8", "ignore")):
        local_ok = not _fails(lambda p=size_path: CodeRequest.parse({"type": "C", "page": p}))
        remote_ok = not _fails(lambda p=size_path: parse_code_request("C", {"path": p}, CodeRules()))
        assert local_ok == remote_ok, size_path


def _fails(call: Any) -> bool:
    try:
        call()
    except (InvalidRequest, WeChatError):
        return True
    return False


@pytest.mark.parametrize(("kind", "page", "word"), [
    ("A", "", "page path"),
    ("C", "pages/a/a?scancode_time=1", "scancode_time"),
    ("A", "pages/a a", "spaces"),
    ("B", "//pages/index/index", "'/'"),  # one leading / is dropped (page_path); two are a typo
    ("B", "pages/index/index?x=1", "?query"),
])
def test_page_rules(kind: str, page: str, word: str) -> None:
    data: dict[str, Any] = {"type": kind, "page": page}
    if kind == "B":
        data["scene"] = "x=1"
    assert word in errors_of(data)["page"].en


@pytest.mark.parametrize("kind", ["A", "B", "C", "shortlink"])
def test_a_leading_slash_is_dropped_so_both_spellings_are_one_request(kind: str) -> None:
    data: dict[str, Any] = {"type": kind, "page": "pages/index/index"} | ({"scene": "x=1"} if kind == "B" else {})
    slashed = CodeRequest.parse(data | {"page": " /pages/index/index"})
    assert slashed.page == "pages/index/index"
    assert slashed.reuse_key() == CodeRequest.parse(data).reuse_key()


# ---- B scene: 1–32 characters from WeChat's set -----------------------------------------------------


@given(st.text(SCENE_ALPHABET, min_size=SCENE_MAX, max_size=SCENE_MAX))
def test_scene_of_32_characters_is_accepted(scene: str) -> None:
    request = CodeRequest.parse({"type": "B", "scene": scene})
    assert request.scene == scene and request.provider is Provider.WECHAT


@given(st.text(SCENE_ALPHABET, min_size=SCENE_MAX + 1, max_size=SCENE_MAX + 20))
def test_scene_of_33_or_more_characters_is_refused(scene: str) -> None:
    error = errors_of({"type": "B", "scene": scene})["scene"]
    assert "32" in error.en and str(len(scene)) in error.en


# Control characters have their own rule (test_control_characters_are_refused_in_every_text_field).
@given(st.text(SCENE_ALPHABET, min_size=0, max_size=40),
       st.one_of(st.none(), st.characters(exclude_categories=("Cs", "Cc"))))
def test_the_model_and_the_emulator_agree_on_every_scene(scene: str, extra: str | None) -> None:
    if extra is not None:
        scene = scene[: len(scene) // 2] + extra + scene[len(scene) // 2:]
    local_ok = not _fails(lambda: CodeRequest.parse({"type": "B", "scene": scene}))
    remote_ok = not _fails(lambda: parse_code_request("B", {"scene": scene.strip()}, CodeRules()))
    assert local_ok == remote_ok, scene


@pytest.mark.parametrize("scene", ["", "   ", "id=中文", "a%20b", "a b"])
def test_empty_chinese_percent_and_space_scenes_are_refused(scene: str) -> None:
    assert "scene" in errors_of({"type": "B", "scene": scene})


def test_scene_is_only_for_b_codes() -> None:
    assert "B codes" in errors_of({"type": "A", "page": "pages/a/a", "scene": "x"})["scene"].en


# ---- width, short link, free text -------------------------------------------------------------------


@given(st.integers(280, 1280))
def test_width_inside_280_to_1280_is_accepted(width: int) -> None:
    assert CodeRequest.parse({"type": "A", "page": "p/a", "width": width}).width == width


@given(st.one_of(st.integers(max_value=279), st.integers(min_value=1281)))
def test_width_outside_is_refused(width: int) -> None:
    assert str(width) in errors_of({"type": "A", "page": "p/a", "width": width})["width"].en


@given(st.text(st.characters(exclude_categories=("Cs", "Zs", "Cc", "Zl", "Zp")), min_size=1, max_size=40))
def test_short_link_title_is_cut_past_20_characters(title: str) -> None:
    request = CodeRequest.parse({"type": "shortlink", "page": "pages/a/a", "title": title})
    if len(title.strip()) <= 20:
        assert request.title == title.strip()
    else:
        assert request.title == title.strip()[:20] + "..."
    assert truncate_title(title[:20]) == title[:20]


@pytest.mark.parametrize(("size", "ok"), [(1024, True), (1025, False)])
def test_short_link_page_may_have_1024_characters(size: int, ok: bool) -> None:
    page = "pages/a/a?q=" + "x" * (size - 12)
    data = {"type": "short", "page": page}
    if ok:
        assert CodeRequest.parse(data).type is CodeType.SHORTLINK
    else:
        assert "1024" in errors_of(data)["page"].en


@pytest.mark.parametrize(("size", "ok"), [(255, True), (256, False)])
def test_free_text_fields_may_have_255_characters(size: int, ok: bool) -> None:
    data = {**GIO_BASE, "medium": "m" * size}
    if ok:
        assert CodeRequest.parse(data).medium == "m" * size
    else:
        assert "medium" in errors_of(data)


# ---- parse() gathers everything; normalisation; keys and names ---------------------------------------


def test_parse_reports_every_broken_field_at_once() -> None:
    errors = errors_of({"type": "b", "page": "/x?y", "scene": "", "width": 10, "name": "a b"})
    assert set(errors) == {"page", "scene", "width", "name"}


def test_unknown_fields_and_bad_types_become_field_errors() -> None:
    errors = errors_of({"type": "A", "page": "p/a", "colour": "red", "width": "wide"})
    assert errors["colour"].en == "Unknown field colour."
    assert "width" in errors


@pytest.mark.parametrize(("raw", "expected"), [("a", CodeType.A), (" c ", CodeType.C), ("Short", CodeType.SHORTLINK),
                                               ("短链", CodeType.SHORTLINK)])
def test_type_is_normalised(raw: str, expected: CodeType) -> None:
    data: dict[str, Any] = {"type": raw, "page": "pages/a/a"}
    assert CodeRequest.parse(data).type is expected


def test_provider_b_and_short_links_are_always_wechat() -> None:
    assert CodeRequest.parse({"type": "B", "scene": "x", "via": "GIO"}).provider is Provider.WECHAT
    assert CodeRequest.parse({**GIO_BASE}).provider is Provider.GIO
    assert CodeRequest.parse({"type": "C", "page": "p/a"}).provider is Provider.WECHAT


@settings(max_examples=60)
@given(names(8), names(8), st.text(PRINTABLE, max_size=30), st.text(PRINTABLE, max_size=30))
def test_reuse_key_ignores_name_and_comments_only(name1: str, name2: str, c1: str, c2: str) -> None:
    first = CodeRequest.parse({**GIO_BASE, "name": name1 or None, "comments": c1})
    second = CodeRequest.parse({**GIO_BASE, "name": name2 or None, "comments": c2})
    assert first.reuse_key() == second.reuse_key()
    assert CodeRequest.parse({**GIO_BASE, "width": 431}).reuse_key() != first.reuse_key()
    assert CodeRequest.parse({**GIO_BASE, "type": "C"}).reuse_key() != first.reuse_key()


@given(names(1) | names(30) | names(50), names(1) | names(50),
       st.text(st.characters(exclude_categories=("Cs", "Zs", "Cc", "Zl", "Zp")), min_size=1, max_size=60),
       st.one_of(st.none(), st.text(SCENE_ALPHABET, min_size=1, max_size=32)))
def test_suggested_name_always_obeys_growingio_name_rules(campaign: str, channel: str, page: str,
                                                           scene: str | None) -> None:
    request = CodeRequest.model_construct(type=CodeType.A, campaign=campaign, channel=channel, page=page,
                                          scene=scene)
    name = request.suggested_name()
    assert check_name(name) == name


PRINTABLE_CONTROL = st.characters(min_codepoint=0, max_codepoint=0x1F) | st.just("\x7f")


@given(st.sampled_from(["page", "name", "comments", "medium", "title"]), PRINTABLE_CONTROL)
def test_control_characters_are_refused_in_every_text_field(field: str, bad: str) -> None:
    data = {"type": "shortlink", "page": "pages/a/a", field: "ab" + bad + "cd"}
    error = errors_of(data)[field]
    assert repr(bad)[1:-1] in error.en or bad in error.en


def failed_record(**error: str | None) -> CodeRecord:
    now = datetime(2026, 3, 1, tzinfo=UTC)
    return CodeRecord(id="failed000001", type=CodeType.A, provider=Provider.WECHAT, status=Status.FAILED,
                      page="pages/a/a", requested_by="U1", request_key="k", created_at=now, updated_at=now, **error)


@given(st.text(PRINTABLE, min_size=1), st.text(PRINTABLE, min_size=1))
def test_error_message_reads_the_two_stored_sentences_whatever_they_hold(zh: str, en: str) -> None:
    record = failed_record(error_code="41030", error_zh=zh, error_en=en)
    assert record.error_message == Text(zh=zh, en=en)  # newlines inside a sentence no longer split it


def test_error_message_is_none_without_a_failure_and_fills_a_missing_language() -> None:
    assert failed_record().error_message is None and failed_record().error is None
    assert failed_record(error_zh="只有中文").error_message == Text(zh="只有中文", en="只有中文")
    assert failed_record(error_en="English only").error_message == Text(zh="English only", en="English only")


def test_error_keeps_the_json_outputs_zh_newline_en_string() -> None:
    assert failed_record(error_zh="页面不存在。", error_en="No such page.").error == "页面不存在。\nNo such page."


FULL_WIDTH = "？＆／＝：，"


@given(st.sampled_from(FULL_WIDTH), st.sampled_from(["A", "B", "C", "shortlink"]), st.booleans())
@settings(max_examples=60, deadline=None)
def test_full_width_punctuation_is_never_part_of_a_page(char: str, kind: str, live: bool) -> None:
    from bot.destinations import destination_errors

    page = f"pages/goods/detail{char}id=1" if kind != "B" else f"pages/goods{char}detail"
    data: dict[str, Any] = {"type": kind, "page": page, "via": "wechat"}
    if kind == "B":
        data = {"type": "B", "page": page, "scene": "id=1"} if not live else {
            "live": True, "page": "pages/minpcode/router", "scene": "k=abcdefghij", "destination": page}
    with pytest.raises(InvalidRequest) as caught:
        CodeRequest.parse(data)
    [error] = [e for e in caught.value.errors if e.field in ("page", "destination")]
    assert char in error.zh and char in error.en
    [refused] = destination_errors(page)  # a live code's destination, as repoint checks it
    assert char in refused.zh and char in refused.en
    if char != "，":  # the half-width form is named, and the page as it was meant
        assert page.replace(char, "?&/=:"["？＆／＝：".index(char)]) in error.en


def test_tags_are_split_trimmed_lowered_for_ascii_and_limited_in_both_languages() -> None:
    from bot.models import TAG_MAX, TAGS_MAX

    request = CodeRequest.parse({"type": "B", "page": "pages/a", "scene": "s=1", "tags": " 门店，VIP, vip;春节、 "})
    assert request.tags == ["门店", "vip", "春节"]
    assert CodeRequest.parse({"type": "B", "page": "pages/a", "scene": "s=1", "tags": ["A", "b,C"]}).tags == ["a", "b", "c"]
    for tags, zh, en in (([f"t{n}" for n in range(TAGS_MAX + 1)], "最多", "at most"),
                         (["x" * (TAG_MAX + 1)], "太长", "too long"), (["a=b"], "不能包含", "cannot contain")):
        with pytest.raises(InvalidRequest) as caught:
            CodeRequest.parse({"type": "B", "page": "pages/a", "scene": "s=1", "tags": tags})
        assert [(e.field, zh in e.zh, en in e.en) for e in caught.value.errors] == [("tags", True, True)]
    blank = CodeRequest.parse({"live": True, "page": "pages/minpcode/router", "scene": "k=abcdefghij"})
    assert blank.blank and blank.destination is None
