"""Block Kit builders: the code form, the reuse offer, the rename form, message texts.

Views carry bilingual labels, Chinese first ("页面路径 / Page path"); messages sent to one person
use that person's language (``lang`` ``"zh"``/``"en"``, or ``None`` when unknown: both, Chinese
first). Everything returned here is a plain dict that slack_sdk's Block Kit models accept (the tests
check each one with ``View(**view).validate_json()`` / ``Block.parse_all``). Block ids of input
blocks are the :class:`~bot.models.CodeRequest` field names, so a field error lands beside its field.
"""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

from bot import kinds as code_kinds
from bot import links
from bot.errors import FieldError
from bot.models import CodeRecord, Status
from bot.text import UTC_ZONE, Text, clip, local_time
from handlers.render import STATUS_LABELS, TYPE_LABELS, link_lines, type_label

FORM_CALLBACK = "minpcode_form"
REUSE_CALLBACK = "minpcode_reuse"
RENAME_CALLBACK = "minpcode_rename"

# The form's option values keep Slack's own spelling, in the order the form shows them: a form
# opened before an upgrade is submitted with these values. What each kind is comes from bot.kinds.
FORM_VALUES = ("gio:A", "gio:C", "wechat:A", "wechat:B", "wx-live", "wechat:C", "wechat:shortlink", "wx-urllink",
               "wx-scheme")
LIVE_VALUE = "wx-live"  # a live code (活码, bot/live/rules.py): the form asks for its destination, not a scene


def _kind_entry(value: str) -> tuple[str, str, str, str]:
    kind = code_kinds.kind_of(value)
    assert kind is not None, value
    # Slack's form always names the maker: B codes and short links only WeChat makes
    return kind.type, kind.via or "wechat", kind.label.zh, kind.label.en


# value -> (type, via, Chinese label, English label)
KINDS: dict[str, tuple[str, str, str, str]] = {value: _kind_entry(value) for value in FORM_VALUES}
CREATE_PREFIX = "c:"  # option value of "create '<typed>'"
NAME_PREFIX = "n:"  # option value of an existing campaign / channel
MAX_OPTIONS = 100  # Slack shows at most 100 options per external_select answer
OPTION_TEXT_MAX = 75
OPTION_VALUE_MAX = 150


def say(lang: str | None, zh: str, en: str) -> str:
    """One language when known, else both (Chinese first)."""
    return Text(zh=zh, en=en).render(lang, both=lang not in ("zh", "en"))


# ---------------------------------------------------------------------------------------------- primitives


def plain(text: str, limit: int = 3000) -> dict[str, Any]:
    return {"type": "plain_text", "text": clip(text, limit), "emoji": True}


def modal(callback_id: str, title: str, submit: str, close: str, metadata: str,
          blocks: list[dict[str, Any]]) -> dict[str, Any]:
    """A modal view; Slack cuts nothing itself and refuses a title, submit or close over 24 characters."""
    return {"type": "modal", "callback_id": callback_id, "title": plain(title, 24), "submit": plain(submit, 24),
            "close": plain(close, 24), "private_metadata": metadata, "blocks": blocks}


def mrkdwn(text: str, limit: int = 3000) -> dict[str, Any]:
    return {"type": "mrkdwn", "text": clip(text, limit)}


def section(text: str, **extra: Any) -> dict[str, Any]:
    return {"type": "section", "text": mrkdwn(text), **extra}


def context(*texts: str) -> dict[str, Any]:
    return {"type": "context", "elements": [mrkdwn(t) for t in texts if t][:10]}


def button(text: str, action_id: str, *, value: str | None = None, url: str | None = None,
           style: str | None = None, confirm: dict[str, Any] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "button", "text": plain(text, 75), "action_id": action_id}
    if value is not None:
        out["value"] = value[:2000]
    if url is not None:
        out["url"] = url
    if style is not None:
        out["style"] = style
    if confirm is not None:
        out["confirm"] = confirm
    return out


def option(text: str, value: str) -> dict[str, Any]:
    return {"text": plain(text, OPTION_TEXT_MAX), "value": value[:OPTION_VALUE_MAX]}


def input_block(field: str, label: str, element: dict[str, Any], *, optional: bool = False,
                hint: str | None = None, dispatch: bool = False) -> dict[str, Any]:
    block: dict[str, Any] = {"type": "input", "block_id": field, "label": plain(label, 2000),
                             "element": {**element, "action_id": field}, "optional": optional}
    if hint:
        block["hint"] = plain(hint, 2000)
    if dispatch:
        block["dispatch_action"] = True
    return block


def text_input(placeholder: str | None = None, *, initial: str | None = None, multiline: bool = False,
               max_length: int | None = None) -> dict[str, Any]:
    element: dict[str, Any] = {"type": "plain_text_input"}
    if placeholder:
        element["placeholder"] = plain(placeholder, 150)
    if initial:
        element["initial_value"] = initial
    if multiline:
        element["multiline"] = True
    if max_length:
        element["max_length"] = max_length
    return element


# ---------------------------------------------------------------------------------------------- the form


def kinds_for(gio: bool) -> list[str]:
    """Which kinds the form offers: the GrowingIO ones only when GrowingIO is configured."""
    offered = {k.id for k in code_kinds.offered(gio, live=True)}
    return [value for value in FORM_VALUES if _id(value) in offered]


def default_kind(gio: bool) -> str:
    """The form value of the kind a new form starts with."""
    wanted = code_kinds.default_kind(gio).id
    return next(value for value in FORM_VALUES if _id(value) == wanted)


def _id(value: str) -> str | None:
    kind = code_kinds.kind_of(value)
    return kind.id if kind else None


def code_form(*, kind: str, kinds: list[str], apps: list[tuple[str, str]], metadata: str,
              suggestion: str | None = None, notice: str | None = None,
              posters: list[tuple[str, str]] | None = None, poster: str | None = None) -> dict[str, Any]:
    """The modal of a bare ``/minpcode``; fields appear and disappear with the kind (views.update)."""
    type_, via, _, _ = KINDS[kind]
    gio = via == "gio"
    live = kind == LIVE_VALUE
    image = type_ in ("A", "B", "C")
    blocks: list[dict[str, Any]] = []
    if notice:
        blocks.append(context(notice))
    kind_options = [option(f"{KINDS[k][2]} / {KINDS[k][3]}", k) for k in kinds]
    initial = next((o for o in kind_options if o["value"] == kind), kind_options[0])
    blocks.append(input_block(
        "type", "码类型 / Code type",
        {"type": "static_select", "options": kind_options, "initial_option": initial},
        hint="GrowingIO 监测链接可统计扫码来源；A、C 码共用每个小程序 10 万个的终身额度，B 码不限量。 / "
             "Tracking links count scans by campaign and channel; A and C codes share a lifetime cap of "
             "100,000 per mini program, B codes are unlimited.",
        dispatch=True,
    ))
    if len(apps) > 1:
        app_options = [option(label, value) for value, label in apps][:MAX_OPTIONS]
        blocks.append(input_block("app", "小程序 / Mini program",
                                  {"type": "static_select", "options": app_options,
                                   "initial_option": app_options[0]}))
    page_hint = {
        "A": "可以带 ?参数；最多 1024 字节（监测链接 107 字节）。 / May carry a ?query; at most 1024 bytes "
             "(107 for tracking links).",
        "C": "可以带 ?参数；最多 128 字节（监测链接 107 字节）。 / May carry a ?query; at most 128 bytes "
             "(107 for tracking links).",
        "B": "不带 ?参数（参数放 scene），开头的 / 会去掉；留空为首页。 / No ?query (use the scene); a leading / is dropped; "
             "empty opens the home page.",
        "shortlink": "小程序页面路径，可带 ?参数。短链只在微信里打开；短期的 30 天后失效。 / The mini-program page, a ?query "
                     "is allowed. A Short Link opens inside WeChat only; a temporary one stops working after 30 days.",
        "urllink": "可带 ?参数（最多 1024 个字符）；开头的 / 会去掉；留空为首页。URL Link 在短信、邮件、网页里打开。 / May carry a "
                   "?query (1024 characters at most); a leading / is dropped; empty opens the home page. A URL Link "
                   "opens from SMS, email and web pages.",
        "scheme": "可带 ?参数（最多 1024 个字符，明文 512）；开头的 / 会去掉。URL Scheme 用于 iOS 短信和网页（安卓需网页跳转）。 / "
                  "May carry a ?query (1024 characters, 512 for plain text); a leading / is dropped. A URL Scheme is "
                  "for SMS on iOS and web pages (Android needs a web page that opens it).",
    }[type_]
    if live:
        page_hint = ("扫码后打开的页面，可带 ?参数，最多 1024 个字符；以后可以改指向。留空为空码，以后再绑定。 / The page a scan "
                     "opens, a ?query allowed, at most 1024 characters; you can re-point it later. Empty: a blank code, "
                     "bound later.")
    blocks.append(input_block("page", "页面路径 / Page path", text_input("pages/index/index"),
                              optional=type_ in ("B", "urllink") or live, hint=page_hint))
    if type_ == "B" and not live:
        blocks.append(input_block(
            "scene", "scene 参数 / Scene", text_input("id=42", max_length=1024),
            hint="1–32 个字符：数字、英文字母和 !#$&'()*+,/:;=?@-._~；更长或含中文时勾选下面的「长参数」。 / 1–32 "
                 "characters: digits, letters and !#$&'()*+,/:;=?@-._~; for longer ones or Chinese tick "
                 "\"long parameters\" below.",
        ))
    if type_ in ("A", "B", "urllink", "scheme") and not gio and not live:
        blocks.append(input_block(
            "env_version", "版本 / Version",
            {"type": "static_select", "initial_option": option("正式版 / Release", "release"),
             "options": [option("正式版 / Release", "release"), option("体验版 / Trial", "trial"),
                         option("开发版 / Develop", "develop")]},
            optional=True, hint="扫码打开哪个版本。 / Which version a scan opens.",
        ))
    if type_ == "B" and not live:
        blocks.append(input_block(
            "b_options", "选项 / Options",
            {"type": "checkboxes", "options": [
                option("不检查页面是否已发布（check=no） / Skip the released-page check", "no-check"),
                option("长参数：存为 k= 短编号 / Long parameters: store behind a k= key", "long-scene")]},
            optional=True,
            hint="检查页面时微信只看已发布的版本，体验版/开发版也一样；不检查时微信最多接受 6 万个页面。 / WeChat checks the "
                 "page against the released version, whatever the version above; unchecked, it takes at most 60,000 "
                 "pages.",
        ))
    if type_ == "shortlink":
        blocks.append(input_block("title", "短链标题 / Short Link title", text_input(max_length=40),
                                  optional=True, hint="超过 20 个字会被微信截断。 / WeChat cuts titles past 20 characters."))
    if type_ in ("urllink", "scheme"):
        blocks.append(input_block(
            "expire_days", "有效天数 / Days valid",
            {"type": "number_input", "is_decimal_allowed": False, "min_value": "1", "max_value": "30",
             "initial_value": "30"},
            optional=True, hint="1–30 天，微信最长 30 天。 / 1–30 days; WeChat's longest is 30."))
    if type_ == "scheme":
        blocks.append(input_block(
            "link_options", "选项 / Options",
            {"type": "checkboxes", "options": [
                option("明文 scheme（不调用接口、不过期） / Plain text (no API call, never expires)", "plain")]},
            optional=True,
            hint="需要管理员先在小程序管理后台「设置 → 隐私与安全 → 明文 scheme 拉起此小程序」里声明这个页面。 / The admin first "
                 "declares the page under 设置 → 隐私与安全 → 明文 scheme 拉起此小程序 in the mini program's console."))
    if gio:
        for field, zh, en in (("campaign", "推广活动", "Campaign"), ("channel", "推广渠道", "Channel")):
            blocks.append(input_block(
                field, f"{zh} / {en}",
                {"type": "external_select", "min_query_length": 0,
                 "placeholder": plain("选择或输入新名称 / Choose, or type a new name", 150)},
                hint="输入新名称可新建：最多 50 个字符，仅中文、英文字母、数字和 - / _。 / Type a new name to create "
                     "it: at most 50 characters; Chinese, letters, digits and - / _ only.",
                dispatch=True,
            ))
        for field, zh, en in (("medium", "媒介", "UTM medium"), ("content", "内容", "UTM content"),
                              ("term", "关键词", "UTM term")):
            blocks.append(input_block(field, f"{zh} / {en}", text_input(max_length=255), optional=True))
    name_placeholder = ("留空则用 / Leave empty for: " + suggestion) if suggestion else "留空则自动命名 / Leave empty to name it automatically"
    blocks.append(input_block("name", "名称 / Name", text_input(name_placeholder, max_length=50), optional=True,
                              hint="最多 50 个字符，仅中文、英文字母、数字和 - / _。 / At most 50 characters; Chinese, "
                                   "letters, digits and - / _ only."))
    blocks.append(input_block("comments", "备注 / Comments", text_input(multiline=True, max_length=255), optional=True))
    blocks.append(input_block("tags", "标签 / Tags", text_input("门店,春节", max_length=255), optional=True,
                              hint="逗号分隔；以后可按标签列出、批量修改。 / Comma-separated; list and change codes by tag later."))
    if image and not gio:
        blocks.append(input_block(
            "width", "宽度（像素） / Width (px)",
            {"type": "number_input", "is_decimal_allowed": False, "min_value": "280", "max_value": "1280",
             "initial_value": "430"},
            optional=True,
        ))
        blocks.append(input_block(
            "transparent", "背景 / Background",
            {"type": "checkboxes", "options": [option("透明背景 / Transparent background", "yes")]},
            optional=True,
        ))
    if image and posters:
        blocks += poster_blocks(posters, poster)
    return modal(FORM_CALLBACK, "生成小程序码 / New code", "生成 / Create", "取消 / Cancel", metadata, blocks)


NO_POSTER = "none"
POSTER_BLOCKS = {"poster_title": "title", "subtitle": "subtitle", "footer": "footer"}  # block id -> poster field


def poster_blocks(templates: list[tuple[str, str]], chosen: str | None) -> list[dict[str, Any]]:
    """A template select; its text fields appear once a template is chosen (views.update)."""
    choices = [option("不要海报 / No poster", NO_POSTER), *(option(label, name) for name, label in templates)]
    choices = choices[:MAX_OPTIONS]
    initial = next((o for o in choices if o["value"] == chosen), choices[0])
    blocks = [input_block("poster", "海报 / Poster", {"type": "static_select", "options": choices,
                                                      "initial_option": initial},
                          optional=True, dispatch=True,
                          hint="发出的是海报（PNG 300 dpi），附只要码的链接。 / The poster is what is posted "
                               "(PNG at 300 dpi), with a link to the bare code.")]
    if chosen in (None, NO_POSTER):
        return blocks
    placeholders = "可用 {name} {campaign} {channel} {page} {scene} / May use {name} {campaign} {channel} {page} {scene}"
    for block, zh, en in (("poster_title", "海报标题", "Poster title"), ("subtitle", "副标题", "Subtitle"),
                          ("footer", "底部文字", "Footer")):
        blocks.append(input_block(block, f"{zh} / {en}", text_input(max_length=120), optional=True,
                                  hint=placeholders))
    return blocks


def present_blocks(view: dict[str, Any]) -> list[str]:
    """Input blocks of a submitted view (those in its state are in the view by definition)."""
    found = [b["block_id"] for b in view.get("blocks", []) if b.get("type") == "input" and b.get("block_id")]
    values = (view.get("state") or {}).get("values") or {}
    return found + [k for k in values if k not in found]


def field_errors(errors: list[FieldError], present: list[str], lang: str | None) -> dict[str, str]:
    """``response_action: errors`` for a form: each message beside its field (else beside the type)."""
    out: dict[str, str] = {}
    fallback = "type" if "type" in present else (present[0] if present else "type")
    for error in errors:
        block = error.field if error.field in present else fallback
        text = say(lang, error.zh, error.en)
        if block != error.field:
            text = f"{error.field}: {text}"
        out[block] = (out[block] + "\n" + text) if block in out else text
    return {k: clip(v, 2000) for k, v in out.items()}


def suggestion_options(names: list[str], typed: str, *, create: bool = True) -> list[dict[str, Any]]:
    """External-select options: names containing ``typed`` (prefix matches first), then "create '…'"."""
    needle = typed.strip()
    low = needle.lower()
    matches = [n for n in names if low in n.lower()] if needle else list(names)
    matches.sort(key=lambda n: (not n.lower().startswith(low), len(n)))
    out: list[dict[str, Any]] = []
    exact = any(n == needle for n in names)
    if create and needle and not exact:
        out.append(option(f"新建「{needle}」 / create '{needle}'", CREATE_PREFIX + needle))
    out += [option(n, NAME_PREFIX + n) for n in matches if len(NAME_PREFIX + n) <= OPTION_VALUE_MAX]
    return out[:MAX_OPTIONS]


# ---------------------------------------------------------------------------------------------- other modals


def reuse_view(record: CodeRecord, metadata: str, zone: ZoneInfo = UTC_ZONE) -> dict[str, Any]:
    """Pushed over the form when an identical code exists: says who made it and when (in ``zone``,
    ``Settings.zone``); offers to reuse it."""
    who = record.requested_by_name or record.requested_by
    when = local_time(record.created_at, zone)
    status_zh, status_en = STATUS_LABELS[record.status]
    lines = [
        "*已有一模一样的码* / *An identical code already exists*",
        f"{record.name or record.id}  (`{record.id}`)",
        f"{type_label(record, 'zh')} / {type_label(record, 'en')} · {status_zh} / {status_en}",
        f"由 {who} 于 {when} 生成 / made by {who} at {when}",
    ]
    note = ("复用它不占额度，会把它发到频道里。按「返回」回到表单修改。 / Reusing it spends no quota and posts it "
            "in the channel. Press Back to change the form.")
    return modal(REUSE_CALLBACK, "已有相同的码 / Exists", "复用 / Reuse", "返回 / Back", metadata,
                 [section("\n".join(lines)), context(note)])


def rename_view(record: CodeRecord, metadata: str) -> dict[str, Any]:
    return modal(RENAME_CALLBACK, "改名 / Rename", "保存 / Save", "取消 / Cancel", metadata, [
        section(f"`{record.id}` · {type_label(record, 'zh')} / {type_label(record, 'en')}\n{record.page or '-'}"),
        input_block("name", "新名称 / New name", text_input(initial=record.name, max_length=50),
                    hint="最多 50 个字符，仅中文、英文字母、数字和 - / _。 / At most 50 characters; Chinese, "
                         "letters, digits and - / _ only."),
    ])


# ---------------------------------------------------------------------------------------------- messages


_COMMENT_LABELS = {
    "type": ("类型", "Type"), "page": ("页面", "Page"), "scene": ("scene", "Scene"), "title": ("标题", "Title"),
    "campaign": ("推广活动", "Campaign"), "channel": ("推广渠道", "Channel"), "tracking": ("监测链接", "Tracking URL"),
    "link": ("短链", "Short Link"), "id": ("编号", "ID"), "asked": ("申请人", "Asked by"),
    "home": ("（首页）", "(home page)"),
}


def result_comment(record: CodeRecord, user_id: str, lang: str | None, *, reused: bool = False,
                   original_by: str | None = None, notes: list[str] | None = None, zone: ZoneInfo = UTC_ZONE) -> str:
    """The comment that goes with a code posted in a channel (the requester's language)."""
    pick = 0 if lang != "en" else 1

    def label(key: str) -> str:
        return _COMMENT_LABELS[key][pick]

    lines = [f"*{record.name or record.id}* · {type_label(record, 'en' if pick else 'zh')}"]
    page = record.page or label("home")
    lines.append(f"{label('page')}: `{page}`" + (f"   {label('scene')}: `{record.scene}`" if record.scene else ""))
    if record.title:
        lines.append(f"{label('title')}: {record.title}")
    if record.campaign or record.channel:
        lines.append(f"{label('campaign')}: {record.campaign or '-'}   {label('channel')}: {record.channel or '-'}")
    if record.tracking_url:
        lines.append(f"{label('tracking')}: {record.tracking_url}")
    if record.link:
        lines.append(f"{TYPE_LABELS[record.type][pick]}: {record.link}")
        lines += link_lines(record, "en" if pick else "zh", zone)
    lines.append(f"{label('id')}: `{record.id}`   {label('asked')}: <@{user_id}>")
    if reused:
        who = original_by or record.requested_by_name or record.requested_by
        lines.append(say(lang if lang else "zh", f"（复用 {who} 之前生成的码，不占额度）",
                         f"(reusing the code {who} made earlier; no quota spent)"))
    for note in notes or []:
        lines.append(f"_{note}_")
    return "\n".join(lines)


def working_text(lang: str | None) -> str:
    return say(lang, "⏳ 正在生成…", "⏳ Working on it…")


def code_link_blocks(text: str, record: CodeRecord, public_url: str | None) -> list[dict[str, Any]]:
    """An ephemeral answer about one code, with a download button when it has an image and there is an
    address people can reach (``Settings.people_url``: no button rather than a dead one)."""
    blocks = [section(text)]
    if public_url and record.image_sha256 and record.status is Status.DONE:
        blocks.append({"type": "actions", "elements": [
            button("下载 / Download", "result_download", url=links.code_image_url(public_url, record.id), value=record.id),
        ]})
    return blocks


def not_posted(code_id: str, error: str, public_url: str | None, lang: str | None) -> str:
    """A made code Slack would not take: where to find it (a download link only where people can reach us)."""
    url = links.code_image_url(public_url, code_id) if public_url else None
    return say(lang, f"码已生成（编号 {code_id}），但没能发到 Slack（{error}）。请稍后用 `/minpcode show {code_id}` 再看"
                     + (f"，或下载：{url}" if url else "。"),
               f"The code is made (id {code_id}) but could not be posted in Slack ({error}). Try "
               f"`/minpcode show {code_id}` later" + (f", or download it: {url}" if url else "."))


def poster_line(described: str, code_url: str | None, lang: str | None) -> str:
    """Under a posted poster: what it is, and the bare code a link away (when people can reach us)."""
    if not code_url:
        return described
    return say(lang, f"{described} · <{code_url}|只要码>", f"{described} · <{code_url}|bare code>")

