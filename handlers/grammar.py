"""The text-command grammar shared by every chat front-end (Slack ``/minpcode …``, WeCom, ``minpcode chat``).

One table (:data:`COMMANDS`) describes the commands; :func:`parse` turns a line of text into a
:class:`Command`, :func:`render` turns a ``Command`` back into text that parses to the same thing, and
:func:`help_text` / :func:`usage` are generated from the table, so nothing is written twice.

Tokens are split on whitespace (any Unicode space, including the full-width ``U+3000``) and on an unquoted
full-width comma ``，``, which a Chinese writer types between options (``new pages/x，type=B，scene=s=1``);
no page may hold one anyway (bot/destinations.py: full-width punctuation is refused in a page). Quoting is
shell-like: ``"…"``, ``'…'``, ``“…”``, ``‘…’``, ``「…」`` and ``『…』`` group text, and a backslash before a
quote character or another backslash takes it literally (any other backslash is kept as is). A token
``key=value`` (or ``key＝value``) is an option when the text before the first unquoted ``=`` is a bare
word; so ``name="spring sale"`` is an option while ``pages/item?id=3`` and ``"a=b"`` are plain words.

Only syntax is checked here, plus the few closed value sets (``type``, ``via``, yes/no flags) and
``summary`` days; the models check field rules later. :func:`parse` raises nothing but
:class:`~bot.errors.UsageError`, which carries the usage line of the command concerned.
"""

from __future__ import annotations

import difflib
import re
import unicodedata
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict

from bot.errors import UsageError
from bot.fields import ALIASES, FLAGS, POSTER_TEXTS, CodeAsk, field_key, loose_poster_words, request_name
from bot.summary import MAX_DAYS
from bot.text import yes_no
from handlers import bulk_help

__all__ = ["CANCEL_WORDS", "COMMANDS", "LIST_PAGE_SIZE", "PREFIXES", "START_WORDS", "Command", "help_text", "is_cancel", "names", "parse",
           "render", "usage", "without_mention", "words"]


@dataclass(frozen=True)
class CommandSpec:
    """One row of the command table.

    Args:
        verb: the canonical English verb.
        alias: the Chinese alias, resolved to ``verb`` at parse time.
        params: positional placeholders, ``<required>`` or ``[optional]``, in order.
        en: one-line English summary.
        zh: one-line Chinese summary.
        keys: the ``key=value`` options the command accepts (canonical English keys).
        rest: the last positional takes the rest of the words, joined by single spaces.
        own: options of this command alone, looked up before the shared ones (``list``'s ``page=N`` is
            the list's page, where ``new``'s ``page=`` is a mini-program page).
    """

    verb: str
    alias: str
    params: tuple[str, ...]
    en: str
    zh: str
    keys: tuple[str, ...] = ()
    rest: bool = False
    own: tuple[_FieldSpec, ...] = ()

    @property
    def min_args(self) -> int:
        return sum(1 for p in self.params if p.startswith("<"))

    @property
    def max_args(self) -> int:
        return len(self.params)

    @property
    def usage(self) -> str:
        """The usage line, e.g. ``rename <id> <name>``."""
        parts = [self.verb, *self.params]
        parts += [f"[{_FIELDS[k].hint}]" for k in self.keys if k != "page"]
        parts += [f"[{f.hint}]" for f in self.own]
        return " ".join(parts)

    def options(self) -> list[_FieldSpec]:
        """Every option the command takes, shared ones first."""
        return [*(_FIELDS[k] for k in self.keys), *self.own]

    def own_option(self, typed: str) -> _FieldSpec | None:
        wanted = _norm(typed)
        return next((f for f in self.own if wanted in {_norm(n) for n in (f.key, *f.aliases)}), None)


@dataclass(frozen=True)
class _FieldSpec:
    """One ``key=value`` option: its aliases, how it reads in a usage line, what it means."""

    key: str
    aliases: tuple[str, ...]
    zh: str
    en: str
    choices: dict[str, str] | None = None  # accepted spelling (casefolded) -> canonical value
    shown: str = "…"  # the value placeholder in usage lines

    @property
    def hint(self) -> str:
        return f"{self.key}={self.shown}"


# A text command takes only the spelled-out yes/no words of bot.text ("1"/"0" are refused: in a command
# line they are likelier a slip than a flag, and the tests pin that).
_YES_NO = {w: "yes" if yes_no(w) else "no" for w in ("yes", "true", "是", "no", "false", "否")}
assert all(yes_no(w) is not None for w in _YES_NO)
_TYPES = {"a": "A", "b": "B", "c": "C", "shortlink": "shortlink", "短链": "shortlink", "短链接": "shortlink",
          "urllink": "urllink", "url_link": "urllink", "url-link": "urllink",
          "scheme": "scheme", "urlscheme": "scheme", "url_scheme": "scheme", "url-scheme": "scheme"}
_FORMATS = {"png": "png", "pdf": "pdf"}
_VIA = {"gio": "gio", "growingio": "gio", "wechat": "wechat", "微信": "wechat"}
_ENVS = {"release": "release", "正式版": "release", "trial": "trial", "体验版": "trial", "develop": "develop",
         "开发版": "develop"}

_POSTER_KEYS = ("title", *POSTER_TEXTS, "sharp")
_KEYS_SHOWN = 8  # options listed in the general help before "help <command>" takes over
_FIELDS: dict[str, _FieldSpec] = {
    f.key: f
    for f in (
        _FieldSpec("page", ALIASES["page"], "小程序页面路径（也可直接写在 new 后面）",
                   "mini-program page path (may also follow `new` directly)"),
        _FieldSpec("type", ALIASES["type"], "码的类型：A、B、C、shortlink（短链，微信内）、urllink 或 scheme（微信外打开）",
                   "code type: A, B, C, shortlink (inside WeChat), urllink or scheme (from outside WeChat)", _TYPES,
                   "A|B|C|shortlink|urllink|scheme"),
        _FieldSpec("via", ALIASES["via"], "由谁生成：gio（GrowingIO 追踪链接）或 wechat（微信原生码）",
                   "who makes it: gio (GrowingIO tracking link) or wechat (plain WeChat code)",
                   _VIA, "gio|wechat"),
        _FieldSpec("scene", ALIASES["scene"], "scene 参数", "scene value handed to the page"),
        _FieldSpec("name", ALIASES["name"], "名称", "display name"),
        _FieldSpec("campaign", ALIASES["campaign"], "GrowingIO 活动（名称或 id）",
                   "GrowingIO campaign (name or id)"),
        _FieldSpec("channel", ALIASES["channel"], "GrowingIO 渠道（名称或 id）",
                   "GrowingIO channel (name or id)"),
        _FieldSpec("medium", ALIASES["medium"], "utm 媒介", "utm medium"),
        _FieldSpec("content", ALIASES["content"], "utm 内容", "utm content"),
        _FieldSpec("term", ALIASES["term"], "utm 关键词", "utm term"),
        _FieldSpec("comments", ALIASES["comments"], "备注", "comments"),
        _FieldSpec("create", ALIASES["create"], "活动或渠道不存在时按 GrowingIO 规则新建",
                   "create a missing campaign or channel under GrowingIO's rules", _YES_NO, "yes"),
        _FieldSpec("width", ALIASES["width"], "图片宽度（像素）", "image width in pixels"),
        _FieldSpec("title", ALIASES["title"], "短链的页面标题；有 poster= 时是海报标题",
                   "page title of a short link; with poster= the poster's title"),
        _FieldSpec("permanent", ALIASES["permanent"], "永久短链（终身最多 10 万条；默认 30 天有效）",
                   "permanent short link (100,000 ever; the default lasts 30 days)", _YES_NO, "yes"),
        _FieldSpec("expire_days", ALIASES["expire_days"], "urllink/scheme 的有效天数：1–30（默认 30）",
                   "urllink/scheme: days it stays valid, 1-30 (default 30)", None, "1-30"),
        _FieldSpec("plain", ALIASES["plain"], "scheme：明文 URL Scheme（不调用接口、不过期；需先在小程序后台声明页面）",
                   "scheme: plain-text URL Scheme (no API call, never expires; its page declared in the admin first)",
                   _YES_NO, "yes"),
        _FieldSpec("transparent", ALIASES["transparent"], "透明背景", "transparent background", _YES_NO, "yes"),
        _FieldSpec("live", ALIASES["live"], "活码：以后可改指向、可暂停、统计扫码（B 码）",
                   "live code: re-point, pause and count scans later (a B code)", _YES_NO, "yes"),
        _FieldSpec("tag", ALIASES["tag"], "标签，逗号分隔，如 tag=门店,春节（之后可按标签列出、批量修改）",
                   "tags, comma-separated, e.g. tag=store,spring (list and change codes by tag later)"),
        _FieldSpec("expires", ALIASES["expires"], "活码到期日（YYYY-MM-DD，之后扫码去默认页）",
                   "a live code's last day (YYYY-MM-DD; scans go to the fallback page after it)"),
        _FieldSpec("env", ALIASES["env"], "A/B 码和 urllink/scheme 打开的版本：release（正式版）、trial（体验版）或 develop（开发版）",
                   "A/B, urllink/scheme: which version it opens: release, trial or develop", _ENVS,
                   "release|trial|develop"),
        _FieldSpec("check", ALIASES["check"], "B 码：check=no 时不检查页面是否已发布（这样最多 6 万个页面）",
                   "B: check=no skips the released-page check (for at most 60,000 pages)", _YES_NO, "no"),
        _FieldSpec("long", ALIASES["long"], "B 码：scene 放不下时保存参数，码里带 k= 短编号",
                   "B: store a scene that does not fit and have the code carry a k= key", _YES_NO, "yes"),
        _FieldSpec("poster", ALIASES["poster"], "同时生成海报：模板名，如 a4、a5-tent、sticker-60、moments",
                   "also make a poster: a template, e.g. a4, a5-tent, sticker-60, moments"),
        _FieldSpec("subtitle", ALIASES["subtitle"], "海报副标题", "the poster's subtitle"),
        _FieldSpec("footer", ALIASES["footer"], "海报底部文字，可用 {name} {campaign} {channel} {page} {scene}",
                   "the poster's footer; may use {name} {campaign} {channel} {page} {scene}"),
        _FieldSpec("format", ALIASES["format"], "海报格式：png 或 pdf", "poster format: png or pdf", _FORMATS, "png|pdf"),
        _FieldSpec("sharp", ALIASES["sharp"], "A/C 码图片不够清晰时：yes 花 1 个额度生成清晰版，no 用现在的图片印",
                   "when an A/C code's stored image is too small: yes spends one A/C code on a sharper copy, no prints "
                   "the current image", _YES_NO, "yes|no"),
    )
}

# ``list``'s own option: which page of the list. An option, not a word, so ``list 2`` still searches for "2".
LIST_PAGE_SIZE = 10
LIST_PAGE_MAX = 10_000
_LIST_PAGE = _FieldSpec("page", ("页", "页码"), f"第几页（每页 {LIST_PAGE_SIZE} 个），如 list 徐汇 page=2",
                        f"which page ({LIST_PAGE_SIZE} codes a page), e.g. list 徐汇 page=2", shown="N")

# repoint's routes (bot/live/routes.py): by phone, by date; shares are words (pages/a=70 pages/b=30)
_ROUTE_OPTIONS = (
    _FieldSpec("ios", ("苹果",), "iPhone/iPad 上扫码打开的页面", "the page scans from iOS open", shown="PAGE"),
    _FieldSpec("android", ("安卓",), "Android 上扫码打开的页面", "the page scans from Android open", shown="PAGE"),
    _FieldSpec("ohos", ("鸿蒙",), "HarmonyOS 上扫码打开的页面", "the page scans from HarmonyOS open", shown="PAGE"),
    _FieldSpec("other", ("其他",), "其他手机平台打开的页面", "the page scans from any other platform open", shown="PAGE"),
    _FieldSpec("from", ("从",), "按日期改指向的第一天（团队时区），如 2026-12-12",
               "a dated route's first day (the team's zone), e.g. 2026-12-12", shown="YYYY-MM-DD"),
    _FieldSpec("until", ("到",), "按日期改指向的最后一天（含），之后回到原来的指向",
               "a dated route's last day (included); then scans go back", shown="YYYY-MM-DD"),
)
# A selection, the codes a change to many codes at once touches (bot/live/selection.py): options of repoint,
# pause, resume and tag; list takes tag= too.
_SELECT_TAG = _FieldSpec("tag", ("标签",), "按标签选择，如 tag=春节", "select by tag, e.g. tag=spring")
_SELECT_CAMPAIGN = _FieldSpec("campaign", ("活动",), "按推广活动选择（名称完全一致）", "select by campaign (its exact name)")
_SELECT_BATCH = _FieldSpec("batch", ("批次",), "按批量任务选择（批次编号）", "select by batch (its id)")
_SELECTING = (_SELECT_TAG, _SELECT_CAMPAIGN, _SELECT_BATCH)
SELECTING_VERBS = frozenset({"repoint", "pause", "resume", "tag", "untag"})

_HELP, _NEW, _BULK, _LIST, _SHOW, _POSTER, _RENAME, _DELETE, _SUMMARY, _QUOTA, *_LIVE_SPECS = _SPECS = (
    CommandSpec("help", "帮助", ("[command]",), "show this help, or one command's detail",
                "查看帮助，或某个命令的详细说明"),
    CommandSpec("new", "新建", ("<page>",), "make a mini-program code or a link",
                "生成一个小程序码或链接", keys=tuple(_FIELDS)),
    # The rows follow on the next lines: parse() takes them whole, before tokens (cells hold quotes and '=').
    CommandSpec("bulk", "批量", (), "many codes from a sheet: a dry run first, then start",
                "用表格批量生成：先预检，再开始"),
    CommandSpec("list", "列表", ("[query]",), "list codes, optionally matching a query or tag=",
                "列出已生成的码，可按关键词或标签筛选", rest=True,
                own=(_LIST_PAGE, _FieldSpec("tag", ("标签",), "只列出带这个标签的码，如 list tag=门店",
                                            "only codes with this tag, e.g. list tag=store"))),
    CommandSpec("show", "查看", ("<id>",), "show one code", "查看一个码"),
    CommandSpec("poster", "海报", ("<id>", "<template>"), "a print-ready poster of a code (PNG or PDF)",
                "用一个码生成可印刷的海报（PNG 或 PDF）", keys=_POSTER_KEYS),
    CommandSpec("rename", "改名", ("<id>", "<name>"), "rename a code", "给码改名", rest=True),
    CommandSpec("delete", "删除", ("<id>",), "delete a code", "删除一个码"),
    CommandSpec("summary", "汇总", ("[days]",), f"report on the last N days (N from 1 to {MAX_DAYS})",
                f"最近 N 天的汇总（N 为 1 到 {MAX_DAYS}）"),
    CommandSpec("quota", "额度", (), "how much of the A+C code quota is left", "A+C 码剩余额度"),
    CommandSpec("repoint", "改指向", ("<id…>", "[page[=weight]…]"),
                "send live codes' scans elsewhere, split one's, bind a blank code; several: ids, tag=, campaign=, batch=",
                "改活码的目标页面、分流，或绑定空码；多个码：几个编号，或 tag=、campaign=、batch=",
                rest=True, own=(*_ROUTE_OPTIONS, *_SELECTING)),
    CommandSpec("pause", "暂停", ("<id…>",), "pause a live code (scans go to the fallback page)",
                "暂停活码（扫码打开默认页）", own=_SELECTING),
    CommandSpec("resume", "恢复", ("<id…>",), "resume a paused or expired live code", "恢复已暂停或已到期的活码",
                own=_SELECTING),
    CommandSpec("stats", "统计", ("<id>",), "a live code's scans per day and page", "活码每天、每个页面的扫码次数"),
    CommandSpec("tag", "标签", ("<id>", "<tag…>"), "add tags to a code (or to a selection: tag=, campaign=, batch=)", "给码加标签（或给一组码：tag=、campaign=、batch=）", own=_SELECTING),
    CommandSpec("untag", "取消标签", ("<id>", "<tag…>"), "take tags off a code (or a selection)", "去掉码的标签（或一组码的）", own=_SELECTING),
    CommandSpec("confirm", "确认", (), "apply the change to many codes previewed last (also: yes)", "执行刚才预览的批量修改"),
)

# Which options apply to which code type (help new): the rules of bot/models.py, said per type.
_NEW_BY_TYPE = (
    ("A / C 监测链接（配置了 GrowingIO 时的默认）：campaign、channel 必填；可选 medium、content、term、name、create=yes、width",
     "A / C tracking link (the default when GrowingIO is configured): campaign and channel required; "
     "medium, content, term, name, create=yes, width optional"),
    ("A / C 普通码（via=wechat）：page 可带 ?参数；可选 width、transparent=yes（A）；不用 campaign、channel",
     "A / C plain code (via=wechat): the page may carry a ?query; width, transparent=yes (A) optional; "
     "no campaign or channel"),
    ("B：scene 必填（1–32 个字符）；page 不带 ?参数，开头的 / 会去掉；可选 width、transparent=yes；不用 campaign、channel",
     "B: scene required (1-32 characters); the page has no ?query, a leading / is dropped; width, transparent=yes "
     "optional; no campaign or channel"),
    ("shortlink 短链：只能在微信里打开（聊天、公众号文章）；page 是要打开的页面；可选 title（最多 20 字）、permanent=yes"
     "（默认 30 天后失效）；没有图片",
     "shortlink: opens inside WeChat only (chats, articles); the page to open; title (up to 20 characters), "
     "permanent=yes optional (else it stops working after 30 days); no image"),
    ("urllink / scheme：在短信、邮件、网页里打开小程序（scheme：iOS 短信和网页）；page 可带 ?参数；可选 expire_days=1–30"
     "（默认 30）、env；scheme 加 plain=yes 为明文 scheme（不过期）；没有图片",
     "urllink / scheme: open the mini program from SMS, email, web pages (scheme: SMS on iOS, web pages); the page may "
     "carry a ?query; expire_days=1-30 (default 30), env optional; scheme with plain=yes is the plain-text scheme "
     "(never expires); no image"),
)

COMMANDS: dict[str, CommandSpec] = {spec.verb: spec for spec in _SPECS}
"""The command table, in help order, keyed by canonical English verb."""

_BY_NAME: dict[str, CommandSpec] = {**COMMANDS, **{spec.alias: spec for spec in _SPECS}, "yes": COMMANDS["confirm"]}
_KEY_NAMES: dict[str, str] = {
    name: f.key for f in _FIELDS.values() for name in (f.key, *f.aliases)
}

_QUOTES = {'"': '"', "'": "'", "“": "”", "‘": "’", "「": "」", "『": "』"}
_ESCAPABLE = frozenset(_QUOTES) | frozenset(_QUOTES.values()) | {"\\"}
_SEPARATORS = "，"  # besides whitespace: the full-width comma, as a Chinese writer separates options
_EQUALS = "=＝"
_KEY_RE = re.compile(r"[^\W\d][\w-]*")
PREFIXES = ("/minpcode", "minpcode")
"""The words a message may start with before its command (after any ``@mention``)."""
_PREFIX_RE = re.compile(r"\s*(?:/?minpcode\s+)?/?", re.I)
_MENTIONS_RE = re.compile(r"\s*(?:(?:<@[^>\s]*>|[@＠]\S+)\s*)+")
"""Leading mentions: WeCom's ``@bot`` (in a group the AI bot's text starts with it, ended by a space, often
U+2005, which ``\\s`` matches), Slack's ``<@U…>``."""
CANCEL_WORDS = frozenset({"取消", "cancel", "退出", "quit"})
"""A one-word answer that drops what is in progress (a chat's form, a batch waiting after its dry run)."""
START_WORDS = frozenset({"开始", "start"})
"""A one-word answer that starts a batch waiting after its dry run."""


class Command(BaseModel):
    """A parsed text command: canonical verb, positional arguments and canonical options."""

    model_config = ConfigDict(extra="forbid")

    verb: str
    args: list[str] = []
    fields: dict[str, str] = {}

    def ask(self) -> CodeAsk:
        """A ``new`` command's words as the typed ask: the request's fields, the long-scene switch and the
        poster (``title`` is the poster's when ``poster=`` is given). Poster words without ``poster=`` are a
        usage error, said before anything is asked of the service."""
        loose = ", ".join(loose_poster_words(self.fields))  # the sheet reader's rule (bot.fields), in usage words
        if loose:
            raise UsageError(usage("new"), zh=f"{loose} 是海报的参数，请同时写 poster=<模板>。",
                             en=f"{loose} belong to a poster; add poster=<template>.")
        named: dict[str, Any] = {"page": self.args[0] if self.args else ""}
        for key, value in self.fields.items():
            named[request_name(key)] = (value == "yes") if key in FLAGS else value
        return CodeAsk.read(named)


# ---------------------------------------------------------------------------------------------- public


def parse(text: str) -> Command:
    """Parse one line of chat text (``bulk`` with its rows: several). Raises only :class:`UsageError`."""
    text = without_mention(text)
    prefix = _PREFIX_RE.match(text)
    rows = _bulk_rows(text[prefix.end():] if prefix else text)
    if rows is not None:
        return Command(verb="bulk", args=[rows] if rows else [])
    tokens = _tokenize(text)
    tokens = _strip_prefix(tokens)
    if not tokens:
        raise UsageError(usage(), zh="请输入命令。", en="Please type a command.")
    head, *rest = tokens
    spec = _BY_NAME.get(_norm(head.text)) if head.key is None else None
    if spec is None:
        raise _unknown_verb(head.raw)
    args = [t.text for t in rest if t.key is None]
    fields = _fields(spec, [t for t in rest if t.key is not None])
    if spec is _NEW and "page" in fields:
        page = fields.pop("page")
        if args:
            raise _error(spec, "页面路径写了两次（page= 和位置参数）。",
                         "The page is given twice (as page= and as a word).")
        args = [page]
    if spec is _NEW and not args and fields.get("live") == "yes":
        pass  # a blank live code (空码): no page now, bound later with repoint
    elif spec.verb in SELECTING_VERBS:
        args = _selection_arity(spec, args, fields)
    else:
        args = _arity(spec, args)
    if spec is _HELP and args:
        target = _BY_NAME.get(_norm(args[0]))
        if target is None:
            raise _unknown_verb(args[0], spec)
        args = [target.verb]
    if spec is _SUMMARY and args:
        args = [_days(args[0])]
    if spec is _LIST and "page" in fields:
        fields["page"] = _list_page(fields["page"])
    return Command(verb=spec.verb, args=args, fields=fields)


def names(verb: str | None = None) -> frozenset[str]:
    """The spellings (normalised as :func:`parse` compares them) of ``verb``, or of every verb, in both languages."""
    specs = _SPECS if verb is None else (COMMANDS[verb],)
    return frozenset(_norm(name) for spec in specs for name in (spec.verb, spec.alias))


def words(text: str) -> list[str]:
    """The words of a message as :func:`parse` compares them (NFKC, case-folded), without a leading
    ``@mention`` (WeCom's ``@bot``, Slack's ``<@U…>``), ``minpcode`` prefix or ``/``: what a chat matches a
    one-word answer (``取消``, ``开始``, ``新建``) or a word of its own (a sheet dropped with ``bulk``) against."""
    items = [_norm(w) for w in without_mention(text).split()]
    if items and items[0] in PREFIXES:
        items.pop(0)
    if items and items[0].startswith("/"):
        items[0] = items[0][1:]
        if not items[0]:
            items.pop(0)
    return items


def without_mention(text: str) -> str:
    """``text`` without the ``@mention`` (or several) it starts with: the one place every front-end's text
    loses it (:func:`parse`, :func:`words`, the AI bot's group messages). Slack's front-end cuts at its own
    bot's mention first (handlers/slack/parse.py), as the words before it are no command."""
    found = _MENTIONS_RE.match(text)
    return text[found.end():] if found else text


def is_cancel(text: str) -> bool:
    """Whether ``text`` is one of :data:`CANCEL_WORDS` alone (after :func:`words`' normalisation)."""
    said = words(text)
    return len(said) == 1 and said[0] in CANCEL_WORDS


def render(command: Command) -> str:
    """Text that :func:`parse` reads back as ``command`` (canonical verb, every value quoted as needed)."""
    if command.verb == "bulk":  # the rows as they are, on the lines after the verb
        return "\n".join(["bulk", *command.args])
    parts = [command.verb, *(_quote(a) for a in command.args)]
    parts += [f"{key}={_quote(value)}" for key, value in command.fields.items()]
    return " ".join(parts)


def usage(verb: str | None = None) -> str:
    """The usage line of ``verb`` (English or Chinese), or the general usage listing every command."""
    if verb is None:
        lines = " · ".join(" ".join((s.verb, *s.params)) for s in _SPECS)
        aliases = " ".join(s.alias for s in _SPECS)
        return f"{lines}（中文：{aliases}）"
    spec = _BY_NAME.get(_norm(verb))
    if spec is None:
        raise _unknown_verb(verb)
    return spec.usage


def help_text(lang: str = "zh", command: str | None = None, chat: str | None = None) -> str:
    """Bilingual help, the requested language first: every command, or one command in detail.

    ``chat`` (``Requester.chat``: slack, wecom, console …) says how ``bulk`` takes a sheet there; any other
    value, or None, points to the CLI's ``minpcode bulk FILE``, which is true everywhere.
    """
    en_first = lang.lower().startswith("en")

    def pair(zh: str, en: str, sep: str = "\n") -> str:
        return f"{en}{sep}{zh}" if en_first else f"{zh}{sep}{en}"

    if command is not None:
        spec = _BY_NAME.get(_norm(command))
        if spec is None:
            raise _unknown_verb(command, _HELP)
        lines = [
            f"{spec.verb}（{spec.alias}）",
            pair(spec.zh, spec.en),
            pair(f"用法：{spec.usage}", f"Usage: {spec.usage}"),
        ]
        if spec.options():
            lines.append(pair("参数：", "Options:", " / "))
            for f in spec.options():
                names = "、".join((f.key, *f.aliases))
                lines.append(f"  {names}：{pair(f.zh, f.en, ' / ')}")
        if spec is _NEW:
            lines.append(pair("按类型：", "By type:", " / "))
            lines += [f"  {pair(zh, en, ' / ')}" for zh, en in _NEW_BY_TYPE]
        if spec is _BULK:
            shown, _, _ = bulk_help.overview(chat)
            lines[2] = f"用法 Usage: {shown}"  # the same in both languages: said once, so the help fits one WeCom text
            for n, (zh, en) in enumerate(bulk_help.detail(chat)):
                lines.append(pair(zh, en))
                if n == 1:
                    lines += [f"  {names}" for names in bulk_help.columns()]
        return "\n".join(lines)

    lines = [pair("minpcode 命令（中文或英文命令名均可）：", "minpcode commands (English or Chinese verbs):")]
    for spec in _SPECS:
        if spec in _LIVE_SPECS:
            continue  # one line for the live-code family, below: the welcome must stay one WeCom text (2048 bytes)
        # A command with many options shows them in its own help, so this list stays one chat message.
        shown = spec.usage if len(spec.options()) <= _KEYS_SHOWN else " ".join((spec.verb, *spec.params, "[key=value …]"))
        zh, en = spec.zh, spec.en
        if spec is _BULK:
            shown, zh, en = bulk_help.overview(chat)
        lines.append(f"• {spec.alias}｜{shown}")
        lines.append(f"  {pair(zh, en, ' / ')}")
    lines.append("• " + " · ".join(f"{spec.alias}｜{spec.verb}" for spec in _LIVE_SPECS))
    lines.append(f"  {pair('活码和标签：改指向、暂停、恢复、统计，加/去标签；多个码先预览再确认', 'live codes and tags; many codes at once: a preview, then confirm', ' / ')}")
    lines.append(pair('含空格或全角逗号的值请加引号，如 备注=“春季 海报”。',
                      'Quote values with spaces or full-width commas, e.g. comments="spring poster".'))
    lines.append(pair("发送 help <命令> 查看详细说明。", "Send help <command> for details."))
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------- helpers


@dataclass(frozen=True)
class _Token:
    raw: str  # the source text, for error messages
    text: str  # the value after quoting and escapes
    key: str | None  # the option name as typed, when the token is ``key=value``
    after_comma: bool = False  # a full-width comma, not a space, separates it from the word before


def _tokenize(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    buf: list[str] = []
    key: str | None = None
    plain = True  # no quote or escape seen yet in this token
    start: int | None = None
    closer: str | None = None
    opened_at = 0
    comma = after_comma = False  # the last separator was "，"; the current token follows one
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        escaped = c == "\\" and i + 1 < n and text[i + 1] in _ESCAPABLE
        if closer is not None:
            if escaped:
                buf.append(text[i + 1])
                i += 2
                continue
            if c == closer:
                closer = None
            else:
                buf.append(c)
            i += 1
            continue
        if c.isspace() or c in _SEPARATORS:
            if start is not None:
                tokens.append(_Token(text[start:i], "".join(buf), key, after_comma))
                buf, key, plain, start = [], None, True, None
            comma = c in _SEPARATORS
            i += 1
            continue
        if start is None:
            start, after_comma = i, comma and bool(tokens)
        if escaped:
            buf.append(text[i + 1])
            plain = False
            i += 2
            continue
        if c in _QUOTES:
            closer, opened_at, plain = _QUOTES[c], i, False
        elif c in _EQUALS and key is None and plain and _KEY_RE.fullmatch("".join(buf)):
            key, buf = "".join(buf), []
        else:
            buf.append(c)
        i += 1
    if closer is not None:
        opener = text[opened_at]
        raise UsageError(_usage_for(tokens), zh=f"引号 {opener} 没有配对的 {closer}。",
                         en=f"The quote {opener} is never closed with {closer}.")
    if start is not None:
        tokens.append(_Token(text[start:], "".join(buf), key, after_comma))
    return tokens


def _bulk_rows(text: str) -> str | None:
    """The rows after ``bulk`` / ``批量`` (a header line then one line per code), or None for other commands.

    Read before tokens: the rows are a sheet, whose cells hold quotes and '=' that are no command syntax."""
    match = re.match(r"\s*(\S+)[ \t]*(.*)", text, re.S)
    if match is None or _norm(match.group(1)) not in names("bulk"):
        return None
    return match.group(2).strip("\n")


def _usage_for(tokens: list[_Token]) -> str:
    """The usage line of the command the tokens seem to start, else the general usage."""
    for token in _strip_prefix(tokens)[:1]:
        spec = _BY_NAME.get(_norm(token.text))
        if spec is not None:
            return spec.usage
    return usage()


def _strip_prefix(tokens: list[_Token]) -> list[_Token]:
    if tokens and tokens[0].key is None and _norm(tokens[0].text) in PREFIXES:
        tokens = tokens[1:]
    if tokens and tokens[0].key is None:
        head = _norm(tokens[0].text)
        if head.startswith("/"):
            head = head[1:]
            tokens = ([_Token(tokens[0].raw, head, None)] if head else []) + tokens[1:]
    return tokens


def _norm(word: str) -> str:
    """Verbs, keys and closed values compare after NFKC (full-width letters) and case folding."""
    return unicodedata.normalize("NFKC", word).casefold()


def _fields(spec: CommandSpec, tokens: list[_Token]) -> dict[str, str]:
    fields: dict[str, str] = {}
    for token in tokens:
        typed = token.key or ""
        field = spec.own_option(typed)
        key = field.key if field is not None else field_key(_norm(typed), _KEY_NAMES)
        if field is None and (key is None or key not in spec.keys):
            raise _comma_note(_unknown_key(spec, typed), token)
        assert key is not None
        field = field or _FIELDS[key]
        if key in fields:
            raise _error(spec, f"参数 {key} 写了两次。", f"The option {key} is given twice.")
        choices = field.choices
        value = token.text
        if choices is not None:
            canonical = choices.get(_norm(value.strip()))
            if canonical is None:
                allowed = field.shown.replace("|", ", ")
                raise _error(spec, f"{key} 的值「{value}」不对，可选：{allowed}。",
                             f"{key}={value!r} is not allowed; use one of: {allowed}.")
            value = canonical
        fields[key] = value
    return fields


def _arity(spec: CommandSpec, args: list[str]) -> list[str]:
    if spec.rest and len(args) > spec.max_args:
        keep = spec.max_args - 1
        args = [*args[:keep], " ".join(args[keep:])]
    if spec is _LIST and args == [""]:
        args = []
    if len(args) < spec.min_args:
        missing = spec.params[len(args)]
        raise _error(spec, f"缺少参数 {missing}。", f"Missing {missing}.")
    if len(args) > spec.max_args:
        extra = " ".join(args[spec.max_args:])
        raise _error(spec, f"多余的参数：{extra}", f"Too many arguments: {extra}")
    return args


def _selection_arity(spec: CommandSpec, args: list[str], fields: dict[str, str]) -> list[str]:
    """The words of a change that may touch many codes: ids (several, or none with tag=/campaign=/batch=),
    then repoint's page or tag's tags. Which words are ids the dispatcher reads (handlers/live_commands.py)."""
    selected = any(k in fields for k in ("tag", "campaign", "batch"))
    need = {"repoint": 1, "tag": 1, "untag": 1}.get(spec.verb, 0) + (0 if selected else 1)
    if len(args) < need:
        missing = spec.params[min(len(args), len(spec.params) - 1)]
        raise _error(spec, f"缺少参数 {missing}（或用 tag=、campaign=、batch= 选择一组码）。",
                     f"Missing {missing} (or choose codes with tag=, campaign=, batch=).")
    return args


def _days(word: str) -> str:
    digits = unicodedata.normalize("NFKC", word).strip().casefold().removesuffix("天").removesuffix("d")
    if digits.isascii() and digits.isdecimal() and 1 <= int(digits) <= MAX_DAYS:
        return str(int(digits))
    raise _error(_SUMMARY, f"天数须是 1 到 {MAX_DAYS} 之间的整数，收到「{word}」。",
                 f"days must be a whole number from 1 to {MAX_DAYS}, not {word!r}.")


def _list_page(word: str) -> str:
    digits = unicodedata.normalize("NFKC", word).strip()
    if digits.isascii() and digits.isdecimal() and 1 <= int(digits) <= LIST_PAGE_MAX:
        return str(int(digits))
    raise _error(_LIST, f"page 须是 1 到 {LIST_PAGE_MAX} 之间的整数（第几页），收到「{word}」。",
                 f"page must be a whole number from 1 to {LIST_PAGE_MAX:,} (which page), not {word!r}.")


def _quote(value: str) -> str:
    """``value`` as one token: bare when safe, otherwise in double quotes with ``\\`` and ``"`` escaped."""
    if value and not any(c.isspace() or c in _ESCAPABLE or c in _EQUALS or c in _SEPARATORS for c in value):
        return value
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _error(spec: CommandSpec, zh: str, en: str) -> UsageError:
    return UsageError(spec.usage, zh=zh, en=en)


def _suggest(word: str, names: list[str]) -> str | None:
    close = difflib.get_close_matches(_norm(word), names, n=1, cutoff=0.6)
    return close[0] if close else None


def _unknown_verb(word: str, within: CommandSpec | None = None) -> UsageError:
    zh, en = f"没有「{word}」这个命令。", f"There is no command {word!r}."
    guess = _suggest(word, list(_BY_NAME))
    if guess is not None:
        spec = _BY_NAME[guess]
        zh += f"你是不是想输入 {spec.verb}（{spec.alias}）？"
        en += f" Did you mean {spec.verb} ({spec.alias})?"
    return UsageError(within.usage if within is not None else usage(), zh=zh, en=en)


def _comma_note(error: UsageError, token: _Token) -> UsageError:
    """An option the command does not take, split off by a full-width comma: perhaps the comma was meant
    inside a page (``pages/coupon/get，id=3``), so the answer says how the comma was read."""
    if not token.after_comma:
        return error
    return UsageError(error.usage, zh=error.reason.zh + f"（全角逗号「，」和空格一样分隔选项，所以 {token.raw} 成了一个选项；"
                      "如果它是页面的参数，请用半角 ? 或 & 连接。）",
                      en=error.reason.en + f" (A full-width comma separates options as a space does, so {token.raw} "
                      "became an option; if it belongs to the page, join it with a half-width ? or &.)")


def _unknown_key(spec: CommandSpec, key: str) -> UsageError:
    if not spec.options():
        return _error(spec, f"{spec.verb} 不接受 {key}= 这样的参数；值里要有等号请加引号。",
                      f"{spec.verb} takes no {key}= option; quote text that contains '='.")
    zh, en = f"{spec.verb} 没有参数 {key}。", f"{spec.verb} has no option {key!r}."
    known = {n: k for n, k in _KEY_NAMES.items() if k in spec.keys}
    known |= {_norm(n): f.key for f in spec.own for n in (f.key, *f.aliases)}
    guess = _suggest(key, list(known))
    if guess is not None:
        zh += f"你是不是想写 {known[guess]}？"
        en += f" Did you mean {known[guess]}?"
    if spec.rest:  # its text may hold '=' (list a=b searches for "a=b" once quoted)
        zh += "文字里要有等号请加引号。"
        en += " Text that contains '=' must be quoted."
    return _error(spec, zh, en)
