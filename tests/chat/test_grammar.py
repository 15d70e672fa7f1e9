"""The shared text-command grammar, tested as plain strings (handlers/grammar.py)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.errors import InputError, UsageError
from handlers import grammar
from handlers.grammar import COMMANDS, Command, help_text, parse, render, usage
from handlers.live_commands import VERBS as LIVE_VERBS

NEW_USAGE = COMMANDS["new"].usage


def cmd(verb: str, *args: str, **fields: str) -> Command:
    return Command(verb=verb, args=list(args), fields=fields)


def usage_error(text: str) -> UsageError:
    with pytest.raises(UsageError) as info:
        parse(text)
    return info.value


def test_public_surface_is_exact() -> None:
    assert sorted(grammar.__all__) == ["CANCEL_WORDS", "COMMANDS", "Command", "LIST_PAGE_SIZE", "PREFIXES", "START_WORDS",
                                       "help_text", "is_cancel", "names", "parse", "render", "usage",
                                       "without_mention", "words"]
    assert issubclass(UsageError, InputError)


def test_table_has_every_command_once() -> None:
    assert list(COMMANDS) == ["help", "new", "bulk", "list", "show", "poster", "rename", "delete", "summary",
                              "quota", "repoint", "pause", "resume", "stats", "tag", "untag", "confirm"]
    aliases = [spec.alias for spec in COMMANDS.values()]
    assert aliases == ["帮助", "新建", "批量", "列表", "查看", "海报", "改名", "删除", "汇总", "额度", "改指向", "暂停", "恢复", "统计", "标签", "取消标签", "确认"]
    assert COMMANDS["rename"].usage == "rename <id> <name>"
    assert (COMMANDS["show"].min_args, COMMANDS["show"].max_args) == (1, 1)
    assert (COMMANDS["summary"].min_args, COMMANDS["summary"].max_args) == (0, 1)
    assert NEW_USAGE.startswith("new <page> [type=A|B|C|shortlink|urllink|scheme] [via=gio|wechat] [scene=…]")
    assert NEW_USAGE.endswith("[create=yes] [width=…] [title=…] [permanent=yes] [expire_days=1-30] [plain=yes] "
                              "[transparent=yes] [live=yes] [tag=…] [expires=…] "
                              "[env=release|trial|develop] [check=no] [long=yes] [poster=…] [subtitle=…] [footer=…] "
                              "[format=png|pdf] [sharp=yes|no]")


# ------------------------------------------------------------------------------------- every command


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("help", cmd("help")),
        ("帮助", cmd("help")),
        ("help new", cmd("help", "new")),
        ("帮助 新建", cmd("help", "new")),
        ("HELP Rename", cmd("help", "rename")),
        ("new pages/index/index", cmd("new", "pages/index/index")),
        ("新建 pages/index/index", cmd("new", "pages/index/index")),
        ("new page=pages/a", cmd("new", "pages/a")),
        ("新建 页面=pages/a 类型=B 场景=id=42", cmd("new", "pages/a", type="B", scene="id=42")),
        ("new pages/item?id=3 type=shortlink", cmd("new", "pages/item?id=3", type="shortlink")),
        ("list", cmd("list")),
        ("列表", cmd("list")),
        ("list spring sale", cmd("list", "spring sale")),
        ("列表 春季 活动", cmd("list", "春季 活动")),
        ('list "a=b"', cmd("list", "a=b")),
        ("show 12", cmd("show", "12")),
        ("查看 abc123", cmd("show", "abc123")),
        ("rename 12 Spring poster", cmd("rename", "12", "Spring poster")),
        ("改名 12 春季 海报", cmd("rename", "12", "春季 海报")),
        ("rename 12 “春季  海报”", cmd("rename", "12", "春季  海报")),
        ("delete 12", cmd("delete", "12")),
        ("删除 12", cmd("delete", "12")),
        ("summary", cmd("summary")),
        ("汇总", cmd("summary")),
        ("summary 30", cmd("summary", "30")),
        ("汇总 30天", cmd("summary", "30")),
        ("汇总 ３０", cmd("summary", "30")),
        ("summary 365", cmd("summary", "365")),
        ("quota", cmd("quota")),
        ("额度", cmd("quota")),
    ],
)
def test_commands_in_english_and_chinese(text: str, expected: Command) -> None:
    assert parse(text) == expected


def test_new_with_every_option() -> None:
    text = (
        "new pages/index type=c via=GIO scene=s1 name=Spring campaign=c1 channel=ch1 medium=poster "
        "content=v1 term=t1 comments=hi create=true width=430 title=Hello permanent=No transparent=是"
    )
    assert parse(text) == cmd(
        "new", "pages/index", type="C", via="gio", scene="s1", name="Spring", campaign="c1", channel="ch1",
        medium="poster", content="v1", term="t1", comments="hi", create="yes", width="430", title="Hello",
        permanent="no", transparent="yes",
    )


def test_chinese_keys_and_values_are_kept_verbatim() -> None:
    text = "新建 pages/index 类型=短链 名称=春季海报 活动=春季大促 渠道=公众号 媒介=海报 内容=版本一 关键词=咖啡 备注=二楼 宽度=280 标题=春天"
    assert parse(text) == cmd(
        "new", "pages/index", type="shortlink", name="春季海报", campaign="春季大促", channel="公众号",
        medium="海报", content="版本一", term="咖啡", comments="二楼", width="280", title="春天",
    )
    assert parse("新建 p 创建=是 永久=否 透明=yes").fields == {"create": "yes", "permanent": "no", "transparent": "yes"}


@pytest.mark.parametrize(
    "text",
    [
        "/minpcode new pages/a",
        "minpcode new pages/a",
        "MINPCODE new pages/a",
        "/new pages/a",
        "/ new pages/a",
        "／new pages/a",
        "/minpcode /new pages/a",
        "  new   pages/a  ",
        "\u3000新建\u3000pages/a",
        "NEW pages/a",
        "ｎｅｗ pages/a",
    ],
)
def test_prefixes_case_and_spacing_are_tolerated(text: str) -> None:
    assert parse(text) == cmd("new", "pages/a")


def test_keys_are_case_insensitive_and_values_are_not() -> None:
    assert parse("new p NAME=Spring Type=a VIA=WeChat").fields == {
        "name": "Spring", "type": "A", "via": "wechat",
    }


# -------------------------------------------------------------------------------------------- quoting


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ('new p name="spring sale"', "spring sale"),
        ("new p name='spring sale'", "spring sale"),
        ("new p name=“春季 大促”", "春季 大促"),
        ("new p name=‘春季 大促’", "春季 大促"),
        ("new p name=「春季 大促」", "春季 大促"),
        ("new p name=『春季 大促』", "春季 大促"),
        ("new p 名称＝“春季 大促”", "春季 大促"),
        ("new p name＝春季", "春季"),
        ('new p name="say \\"hi\\""', 'say "hi"'),
        ('new p name="它的“名字”"', "它的“名字”"),
        ("new p name=Tom’s", "Tom’s"),
        ('new p name=a"b c"d', "ab cd"),
        ('new p name=""', ""),
        ("new p name=", ""),
        ("new p name=a=b", "a=b"),
        ("new p name=C:\\dir", "C:\\dir"),
        ('new p name="back\\\\slash"', "back\\slash"),
    ],
)
def test_quoting(text: str, name: str) -> None:
    assert parse(text).fields == {"name": name}


def test_quoted_page_and_quoted_key_value_pairs_are_words() -> None:
    assert parse('new "pages/a b"') == cmd("new", "pages/a b")
    assert parse('new "type=A"') == cmd("new", "type=A")
    assert parse('new page="pages/a b"') == cmd("new", "pages/a b")


# --------------------------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("text", "expected_usage"),
    [
        ("new", NEW_USAGE),
        ("新建", NEW_USAGE),
        ("new a b", NEW_USAGE),
        ("new a page=b", NEW_USAGE),
        ("new a colour=red", NEW_USAGE),
        ("new a type=A 类型=B", NEW_USAGE),
        ("new a name=x NAME=y", NEW_USAGE),
        ("new a type=D", NEW_USAGE),
        ("new a via=baidu", NEW_USAGE),
        ("new a create=maybe", NEW_USAGE),
        ("new a permanent=1", NEW_USAGE),
        ('new a name="spring', NEW_USAGE),
        ("新建 a 名称=“春季", NEW_USAGE),
        ("new a name=「春季", NEW_USAGE),
        ("show", "show <id>"),
        ("show 1 2", "show <id>"),
        ("查看", "show <id>"),
        ("delete", "delete <id>"),
        ("rename", "rename <id> <name>"),
        ("rename 12", "rename <id> <name>"),
        ("改名 12", "rename <id> <name>"),
        ("list campaign=x", "list [query] [page=N] [tag=…]"),
        ("quota now", "quota"),
        ("额度 1", "quota"),
        ("summary 0", "summary [days]"),
        ("summary 366", "summary [days]"),
        ("summary -3", "summary [days]"),
        ("summary 1.5", "summary [days]"),
        ("summary week", "summary [days]"),
        ("summary 3 4", "summary [days]"),
        ("help nonsense", "help [command]"),
        ("help new list", "help [command]"),
    ],
)
def test_errors_carry_the_command_usage(text: str, expected_usage: str) -> None:
    error = usage_error(text)
    assert error.usage == expected_usage
    assert expected_usage in error.zh + str(error) and expected_usage in error.en + str(error)
    assert error.zh and error.en


@pytest.mark.parametrize("text", ["", "   ", "\u3000", "/minpcode", "minpcode", "/", '""'])
def test_empty_input_gives_the_general_usage(text: str) -> None:
    error = usage_error(text)
    assert error.usage == usage()


def test_unknown_verb_lists_the_verbs_and_suggests_the_closest() -> None:
    error = usage_error("nwe pages/a")
    assert error.usage == usage()
    for spec in COMMANDS.values():
        assert spec.verb in error.usage and spec.alias in error.usage
    assert "Did you mean new" in error.en
    assert "new" in error.zh
    assert "Did you mean" not in usage_error("xyzzy").en
    assert "Did you mean summary" in usage_error("sumary").en


def test_unknown_key_suggests_the_closest_key() -> None:
    assert "Did you mean campaign" in usage_error("new p campaing=x").en
    assert "quote" in usage_error("list a=b").en


def test_unbalanced_quote_names_the_quote() -> None:
    error = usage_error("rename 12 “春季")
    assert "“" in error.zh and "”" in error.en
    assert error.usage == "rename <id> <name>"
    assert usage_error('"new').usage == usage()


# ----------------------------------------------------------------------------------------------- help


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_help_lists_every_command_from_the_table(lang: str) -> None:
    text = help_text(lang)
    for spec in COMMANDS.values():
        assert spec.verb in text
        assert spec.alias in text
        if spec.verb in LIVE_VERBS:  # the live-code family shares one line; each has its own help
            assert f"{spec.alias}｜{spec.verb}" in text and spec.usage in help_text(lang, spec.verb)
            continue
        # a command with many options (new) lists them in its own help, keeping this one chat message
        assert spec.usage in text or (len(spec.keys) > 8 and f"{spec.verb} <page> [key=value …]" in text)
        if spec.verb != "bulk":  # bulk's line says how this chat takes a sheet (below)
            assert spec.zh in text and spec.en in text
    assert len(text.encode("utf-8")) <= 2048  # WeCom's text limit: the welcome is one message


@pytest.mark.parametrize("chat", ["slack", "wecom", "console", None])
def test_help_lists_bulk_the_way_each_chat_takes_a_sheet(chat: str | None) -> None:
    text = help_text("zh", chat=chat)
    line = next(n for n in text.splitlines() if n.startswith("• 批量｜bulk"))
    about = text.splitlines()[text.splitlines().index(line) + 1]
    if chat in ("slack", "wecom"):
        assert line == "• 批量｜bulk ⏎ <header> ⏎ <row> …" and "表头" in about and "header" in about
        assert ("DM" in about and "form" in about) if chat == "slack" else ("upload link" in about and "DM" not in about)
    else:  # the console reads one command a line: it takes no rows and no file, and says where to go
        assert line == "• 批量｜bulk" and "minpcode bulk FILE" in about and "header" not in about


@pytest.mark.parametrize("chat", ["slack", "wecom", "console"])
def test_help_bulk_shows_the_sheet_columns_and_limits_from_the_reader(chat: str) -> None:
    from bot.batch.sheets import COLUMNS, MAX_BYTES, MAX_ROWS

    for name in ("bulk", "批量", "BULK"):
        text = help_text("en", name, chat=chat)
        for key in COLUMNS:
            assert any(line.split()[:1] == [key] for line in text.splitlines()), key
        for chinese in ("页面", "类型", "场景", "推广活动", "推广渠道"):
            assert chinese in text
        assert "poster" in [line.split()[0] for line in text.splitlines() if line.startswith("  ")]  # a poster per row
        assert f"{MAX_ROWS} rows" in text and f"{MAX_BYTES // 1048576} MB" in text
        assert "dry run" in text and "manifest" in text
    assert ("Start and Cancel" in help_text("en", "bulk", chat="slack")
            and "reply start" in help_text("en", "bulk", chat="wecom"))
    if chat == "wecom":
        assert len(help_text("zh", "bulk", chat=chat).encode()) <= 2048  # one WeCom text


def test_bulk_takes_its_rows_whole() -> None:
    rows = 'page,type,scene,comments\npages/a,B,id=1,"春季 ""大促"""'
    for text in (f"bulk\n{rows}", f"/minpcode bulk\n{rows}", f"批量 \n{rows}"):
        assert parse(text) == cmd("bulk", rows)
    assert parse("bulk") == parse("/bulk") == cmd("bulk")
    assert parse(render(cmd("bulk", rows))) == cmd("bulk", rows)
    assert parse("help bulk") == parse("帮助 批量") == cmd("help", "bulk")


def test_help_puts_the_requested_language_first() -> None:
    zh, en = help_text("zh"), help_text("en")
    spec = COMMANDS["new"]
    assert zh.index(spec.zh) < zh.index(spec.en)
    assert en.index(spec.en) < en.index(spec.zh)
    assert zh.splitlines()[0].startswith("minpcode 命令")
    assert en.splitlines()[0].startswith("minpcode commands")


@pytest.mark.parametrize("verb", list(COMMANDS))
def test_help_for_one_command(verb: str) -> None:
    spec = COMMANDS[verb]
    for name in (verb, spec.alias, verb.upper()):
        text = help_text("en", name)
        assert spec.usage in text and spec.en in text and spec.zh in text
        assert text.index(spec.en) < text.index(spec.zh)
    for key in spec.keys:
        assert key in help_text("zh", verb)


def test_help_for_new_names_the_chinese_keys() -> None:
    text = help_text("zh", "新建")
    for alias in ("类型", "场景", "名称", "活动", "渠道", "媒介", "内容", "关键词", "备注", "宽度", "标题"):
        assert alias in text


def test_help_for_an_unknown_command_is_a_usage_error() -> None:
    with pytest.raises(UsageError):
        help_text("zh", "nope")


def test_usage_accepts_verb_or_alias() -> None:
    assert usage("rename") == usage("改名") == "rename <id> <name>"
    assert usage("new") == NEW_USAGE
    with pytest.raises(UsageError):
        usage("nope")


# ------------------------------------------------------------------------------------------ rendering


def test_render_quotes_only_when_needed() -> None:
    assert render(cmd("new", "pages/a", type="A")) == "new pages/a type=A"
    assert render(cmd("rename", "12", "春季 海报")) == 'rename 12 "春季 海报"'
    assert render(cmd("new", "p", name='say "hi"')) == 'new p name="say \\"hi\\""'
    assert render(cmd("list", "a=b")) == 'list "a=b"'
    assert render(cmd("show", "")) == 'show ""'


# --------------------------------------------------------------------------------------------- properties

_FRAGMENTS = [
    *COMMANDS, *(s.alias for s in COMMANDS.values()), "/minpcode", "minpcode", "/", "／",
    "type", "name", "类型", "名称", "page", "via", "create", "=", "＝", " ", "\u3000", "\t", "\n",
    '"', "'", "“", "”", "‘", "’", "「", "」", "『", "』", "\\", "A", "shortlink", "短链", "是", "0", "365",
    "366", "天", "pages/index", "?", "-",
]
_fuzz = st.one_of(
    st.text(),
    st.lists(st.one_of(st.sampled_from(_FRAGMENTS), st.text(max_size=3)), max_size=12).map("".join),
)


@settings(max_examples=600)
@given(_fuzz)
def test_parse_returns_a_command_or_raises_usage_error(text: str) -> None:
    try:
        result = parse(text)
    except UsageError as error:
        assert error.usage
        return
    assert isinstance(result, Command)
    assert result.verb in COMMANDS
    # Whatever parses renders back to the same command.
    assert parse(render(result)) == result


_CANONICAL = {
    "type": ["A", "B", "C", "shortlink", "urllink", "scheme"],
    "via": ["gio", "wechat"],
    "create": ["yes", "no"],
    "permanent": ["yes", "no"],
    "plain": ["yes", "no"],
    "transparent": ["yes", "no"],
    "live": ["yes", "no"],
    "env": ["release", "trial", "develop"],
    "check": ["yes", "no"],
    "long": ["yes", "no"],
    "sharp": ["yes", "no"],
    "format": ["png", "pdf"],
}


@st.composite
def commands(draw: st.DrawFn) -> Command:
    verb = draw(st.sampled_from(list(COMMANDS)))
    text = st.text()
    args: list[str]
    fields: dict[str, str] = {}
    if verb == "help":
        args = draw(st.lists(st.sampled_from(list(COMMANDS)), max_size=1))
    elif verb == "new":
        args = [draw(text)]
        keys = draw(st.sets(st.sampled_from([k for k in COMMANDS["new"].keys if k != "page"])))
        for key in sorted(keys):
            fields[key] = draw(st.sampled_from(_CANONICAL[key]) if key in _CANONICAL else text)
    elif verb == "list":
        args = draw(st.lists(st.text(min_size=1), max_size=1))
    elif verb in ("show", "delete", "pause", "resume", "stats"):
        args = [draw(text)]
    elif verb in ("tag", "untag"):
        args = [draw(text), draw(st.text(min_size=1))]
    elif verb in ("rename", "repoint", "poster"):
        args = [draw(text), draw(text)]
        for key in sorted(draw(st.sets(st.sampled_from(COMMANDS["poster"].keys))) if verb == "poster" else ()):
            fields[key] = draw(st.sampled_from(_CANONICAL[key]) if key in _CANONICAL else text)
    elif verb == "summary":
        args = draw(st.lists(st.integers(1, 365).map(str), max_size=1))
    else:
        args = []
    return Command(verb=verb, args=args, fields=fields)


@settings(max_examples=400)
@given(commands())
def test_render_then_parse_round_trips(command: Command) -> None:
    assert parse(render(command)) == command


@pytest.mark.parametrize(("text", "said"), [
    ("取消", ["取消"]),
    ("  CANCEL ", ["cancel"]),
    ("@minpcode 取消", ["取消"]),
    ("<@U0BOT> /minpcode new", ["new"]),
    ("minpcode /ＢＵＬＫ please", ["bulk", "please"]),
    ("/ new", ["new"]),
    ("", []),
])
def test_words_are_a_messages_words_as_the_grammar_compares_them(text: str, said: list[str]) -> None:
    assert grammar.words(text) == said


def test_cancel_is_one_cancel_word_alone() -> None:
    for text in ("取消", "Cancel", "＠bot 退出", "@bot quit", "/cancel", "minpcode 取消"):
        assert grammar.is_cancel(text), text
    for text in ("取消 吧", "cancel it", "new", "", "取消取消"):
        assert not grammar.is_cancel(text), text
    assert grammar.START_WORDS.isdisjoint(grammar.CANCEL_WORDS)
    assert not (grammar.CANCEL_WORDS | grammar.START_WORDS) & grammar.names()  # never a command's word


@pytest.mark.parametrize("loose", ["sharp=no", "sharp=yes", "subtitle=x", "format=pdf"])
def test_poster_words_without_a_poster_are_a_usage_error(loose: str) -> None:
    command = parse(f"new pages/a/a type=B scene=s {loose}")
    with pytest.raises(UsageError) as refused:
        command.ask()
    assert loose.split("=")[0] in refused.value.en and "poster=<template>" in refused.value.en
    assert "海报的参数" in refused.value.zh
    assert parse(f"new pages/a/a type=B scene=s poster=a4 {loose}").ask().poster is not None


@pytest.mark.parametrize("text", [
    "@minpcode new pages/index/index type=B scene=id=42",
    "@minpcode\u2005new pages/index/index type=B scene=id=42",  # WeCom ends a mention with U+2005
    "＠minpcode @someone minpcode /new pages/index/index type=B scene=id=42",
    "<@U0BOT> new pages/index/index type=B scene=id=42",
])
def test_parse_reads_a_command_after_a_leading_mention_as_words_does(text: str) -> None:
    # One rule for a leading @mention in every front-end's text: parse read "@minpcode" as an unknown verb
    assert grammar.parse(text) == Command(verb="new", args=["pages/index/index"], fields={"type": "B", "scene": "id=42"})
    assert grammar.words(text)[0] == "new"


def test_bulk_after_a_mention_keeps_its_rows_whole() -> None:
    assert grammar.parse("@minpcode 批量\npage,type\npages/a/a,B\n") == Command(verb="bulk", args=["page,type\npages/a/a,B"])
    assert grammar.without_mention("new @x") == "new @x"  # only a leading mention is dropped
