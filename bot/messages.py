"""Bilingual text for failures: one catalogue, so every front-end says the same thing.

Each WeChat errcode maps to the error class that tells callers what to do with it (refresh, back
off, fix config, fix the request) and a sentence in Chinese and English that a person can act on.
"""

from __future__ import annotations

import re
import time

from bot import errors as e
from bot.redact import redact
from bot.text import Text, clip

BEIJING_OFFSET = 8 * 3600  # China Standard Time has no daylight saving: WeChat's days end at 16:00 UTC

INTERNAL_CODE = "internal"
"""The ``error_code`` stored when making a code failed in a way we did not foresee (a bug)."""
INTERNAL = Text(zh="生成时出现意外错误，已记录，请稍后再试或联系管理员。",
                en="Something unexpected went wrong; it was recorded. Try again later or tell an admin.")

_Entry = tuple[type[e.UpstreamError], str, str]

WECHAT: dict[int, _Entry] = {
    -1: (e.UpstreamBusy, "微信系统繁忙，请稍后再试。", "WeChat is busy; try again in a moment."),
    40001: (e.TokenInvalid, "微信 access_token 已失效。", "The WeChat access token is no longer valid."),
    40014: (e.TokenInvalid, "微信 access_token 不合法。", "The WeChat access token is malformed."),
    42001: (e.TokenInvalid, "微信 access_token 已过期。", "The WeChat access token has expired."),
    40002: (e.ConfigError, "grant_type 不对（应为 client_credential）。", "grant_type must be client_credential."),
    40013: (e.ConfigError, "WECHAT_APPID 不是有效的小程序 AppID，请检查设置。",
            "WECHAT_APPID is not a valid mini-program AppID; check the settings."),
    40125: (e.ConfigError, "WECHAT_SECRET 不对，请在微信公众平台核对 AppSecret。",
            "WECHAT_SECRET is wrong; check the AppSecret in the WeChat admin console."),
    40164: (e.ConfigError, "服务器 IP 不在微信的 IP 白名单里，请在公众平台「开发管理」中添加。",
            "This server's IP is not on WeChat's whitelist; add it under Development settings."),
    40243: (e.ConfigError, "AppSecret 已被冻结，请在公众平台解冻。", "The AppSecret is frozen; unfreeze it in the console."),
    41001: (e.TokenInvalid, "请求缺少 access_token。", "The request had no access token."),
    41002: (e.ConfigError, "缺少 AppID，请设置 WECHAT_APPID。", "The AppID is missing; set WECHAT_APPID."),
    41004: (e.ConfigError, "缺少 AppSecret，请设置 WECHAT_SECRET。", "The AppSecret is missing; set WECHAT_SECRET."),
    43002: (e.UpstreamRejected, "该接口需要 POST 请求。", "That API needs a POST request."),
    45009: (e.RateLimited, "微信调用频率或当日额度已达上限，请稍后（B 码下一分钟，A/C 码北京时间午夜后）再试。",
            "WeChat's rate or daily limit is reached; try again later (B codes: next minute; A/C: after "
            "midnight Beijing time)."),
    45011: (e.RateLimited, "微信每分钟调用次数已达上限，请下一分钟再试。",
            "WeChat's per-minute limit is reached; try again next minute."),
    45029: (e.UpstreamQuotaExhausted, "这个小程序的 A 码和 C 码已达 10 万个的终身上限，请改用 B 码（不限数量）。",
            "This mini program has used its lifetime cap of 100,000 A and C codes; use a B code (unlimited)."),
    45063: (e.ConfigError, "这个小程序没有生成小程序码的权限。", "This mini program may not generate codes."),
    47001: (e.UpstreamRejected, "请求格式不对（字段类型或名称有误）。", "The request was not in the format WeChat expects."),
    48001: (e.ConfigError, "没有接口权限：请确认使用的是小程序的 AppID 和 Secret。",
            "API not authorised: check that the AppID and secret belong to a mini program."),
    # What WeChat's own errmsgs say (its global errcode page,
    # https://developers.weixin.qq.com/doc/oplatform/developers/errCode/errCode.html, lists codes, not these two):
    # 40097 is "invalid args", any argument; 40169 "invalid length for scene, or the data is not json string".
    40097: (e.UpstreamRejected, "微信认为请求的参数不合法（invalid args），例如 env_version 只能是 release、trial 或 develop。",
            "WeChat found an argument invalid (invalid args); env_version, for one, must be release, trial or develop."),
    40129: (e.UpstreamRejected, "scene 含有微信不接受的字符，请只用数字、字母和 !#$&'()*+,/:;=?@-._~。",
            "The scene has characters WeChat refuses; use digits, letters and !#$&'()*+,/:;=?@-._~ only."),
    40159: (e.UpstreamRejected, "路径为空或太长（A 码最多 1024 字节，C 码最多 128 字节），请缩短。",
            "The path is empty or too long (A codes: 1024 bytes at most, C codes: 128); shorten it."),
    40169: (e.UpstreamRejected, "scene 为空或超过 32 个字符，或者请求体不是 JSON。",
            "The scene is empty or longer than 32 characters, or the request body was not JSON."),
    40189: (e.UpstreamRejected, "宽度须在 280 到 1280 之间。", "Width must be between 280 and 1280."),
    41030: (e.UpstreamRejected, "页面不存在于已发布的小程序中（或以 / 开头、带了参数）。检查页面时微信只看已发布的版本，"
            "选体验版/开发版（env=trial/develop）也一样；页面还没发布时请加上 check=no（只适用于 B 码），或先发布再生成。",
            "The page is not in the released mini program (or starts with '/' or has a query). While WeChat "
            "checks the page it looks at the released version whatever env says (trial/develop too); for a page "
            "not yet released add check=no (B codes only), or release it first."),
    85096: (e.UpstreamRejected, "路径里不能有 scancode_time。", "The path cannot contain scancode_time."),
    40066: (e.UpstreamRejected, "已发布的小程序里没有这个页面，请检查短链的页面路径。",
            "The released mini program has no such page; check the Short Link page."),
    40225: (e.UpstreamRejected, "短链标题不合规，请换一个标题。", "WeChat refused the Short Link title; choose another."),
    # "没有调用权限" (Short Link: "目前对所有非个人主体小程序开放"): a permission of the mini program, not our setting.
    43104: (e.ConfigError, "这个接口不对这个小程序开放（例如个人主体的小程序没有这个权限）。",
            "This API is not open to this mini program (mini programs of a personal subject, for one, may not use it)."),
    85400: (e.UpstreamQuotaExhausted, "永久短链已达 10 万条的终身上限，请改用短期短链（30 天有效）。",
            "Permanent Short Links have reached their lifetime cap of 100,000; make a temporary one (30 days) instead."),
    89503: (e.ConfigError, "本次调用需要管理员在公众平台确认服务器 IP。",
            "An admin must confirm this server's IP in the WeChat console."),
}

LINK_APIS = ("urllink", "scheme")
# URL Link and URL Scheme give some errcodes meanings of their own (40002, 40013 are a token's or an appid's
# elsewhere): their tables on
# https://developers.weixin.qq.com/miniprogram/dev/server/API/qrcode-link/url-link/api_generateurllink.html and
# https://developers.weixin.qq.com/miniprogram/dev/server/API/qrcode-link/url-scheme/api_generatescheme.
LINKS: dict[int, _Entry] = {
    40002: (e.ConfigError, "这个小程序不能生成 URL Link 和 URL Scheme：微信只对国内非个人主体的小程序开放。",
            "This mini program may not make URL Links or URL Schemes: WeChat opens them only to mini programs of a "
            "non-personal subject in mainland China."),
    40013: (e.ConfigError, "微信已封禁这个小程序生成链接的权限。", "WeChat has banned this mini program from making links."),
    85079: (e.UpstreamRejected, "小程序还没有发布：只能为已发布的小程序生成 URL Link 和 URL Scheme。",
            "The mini program has no released version: WeChat makes URL Links and URL Schemes only for released ones."),
    40165: (e.UpstreamRejected, "页面不对：必须是已发布版本里存在的页面，路径开头不带 /，参数写在 ? 后面。",
            "The page is wrong: it must exist in the released version, its path must not start with '/', and "
            "parameters go after '?'."),
    40212: (e.UpstreamRejected, "参数（query）不对：最多 1024 个字符，格式 a=1&b=2，只用数字、英文字母和 !#$&'()*+,/:;=?@-._~%。",
            "The query is wrong: at most 1024 characters like a=1&b=2, with digits, letters and "
            "!#$&'()*+,/:;=?@-._~% only."),
    85401: (e.UpstreamRejected, "有效期不对：必须在 1 分钟到 30 天之间。", "The expiry is wrong: it must be 1 minute to 30 days away."),
    85402: (e.UpstreamRejected, "env_version 只能是 release、trial 或 develop。", "env_version must be release, trial or develop."),
    85400: (e.UpstreamQuotaExhausted, "长期有效的链接已达 10 万个上限，请改用 30 天内有效的链接。",
            "Long-lived links have reached their cap of 100,000; make one that lasts 30 days at most."),
}
LINK_SECOND = ("生成得太快：微信每秒最多生成 100 个 URL Link 和 URL Scheme，请稍后再试。",
               "Too fast: WeChat makes at most 100 URL Links and URL Schemes a second; try again in a moment.")
LINK_DAILY = ("今天的 URL Link 和 URL Scheme 已达微信每天 50 万个的上限（两者共用），北京时间午夜后再生成；"
              "明文 URL Scheme（type=scheme plain=yes）不调用接口，不受此限。",
              "WeChat's limit of 500,000 URL Links and URL Schemes a day (shared by both) is reached; make more after "
              "midnight Beijing time. A plain-text URL Scheme (type=scheme plain=yes) calls no API and is not limited.")

SHORTLINK_RATE = (
    "今日生成的短链数量已达上限，请明天再试。",
    "Today's Short Link limit is reached; try again tomorrow.",
)
# 45009 on A is the 10,000-codes-a-day limit (WeChat's answer in its developer community,
# https://developers.weixin.qq.com/community/develop/doc/00024cb7bac430fec599b56ed5bc00; on C too: our
# assumption); on B it is 5,000 a minute
# (https://developers.weixin.qq.com/miniprogram/dev/OpenApiDoc/qrcode-link/qr-code/getUnlimitedQRCode.html).
DAILY_RATE = (
    "今天的 A/C 码已达微信每天 1 万个的上限，剩下的会在北京时间午夜之后再生成（或改用 B 码，不受此限）。",
    "WeChat's limit of 10,000 A/C codes a day is reached; the rest can be made after midnight Beijing time "
    "(or use a B code, which has no daily limit).",
)
MINUTE_RATE = (
    "B 码已达微信每分钟 5000 次的上限，请下一分钟再试。",
    "WeChat's limit of 5,000 B codes a minute is reached; try again next minute.",
)


def next_beijing_midnight(now: float) -> float:
    """The Unix time of the next midnight in Beijing, when WeChat's daily quotas start again."""
    day = (now + BEIJING_OFFSET) // 86400
    return (day + 1) * 86400 - BEIJING_OFFSET


_CALLER_IP = re.compile(r"(?:invalid ip|from ip:?)\s*([0-9a-fA-F.:]*[0-9a-fA-F])")


def caller_ip(errmsg: str) -> str | None:
    """The IP an upstream says it saw in its refusal (WeChat 40164 ``invalid ip 1.2.3.4 …``, WeCom 60020
    ``… from ip: 1.2.3.4``): the address the operator must add to the whitelist."""
    found = _CALLER_IP.search(errmsg)
    return found.group(1) if found else None


def wechat_error(errcode: int, errmsg: str, *, api: str = "", now: float | None = None) -> e.UpstreamError:
    """The typed error for a WeChat errcode; unknown codes keep WeChat's own text.

    ``api`` is the code type (``A``, ``B``, ``C``, ``shortlink``, ``urllink``, ``scheme``) where the meaning
    of a code depends on it (45009 is a daily limit for A/C and Short Links, a per-minute one for B; 40002 is
    a personal mini program's for URL Link and URL Scheme, a wrong grant_type's for tokens).
    """
    cls, zh, en = (LINKS.get(errcode) if api in LINK_APIS else None) or WECHAT.get(
        errcode,
        (e.UpstreamRejected, f"微信返回错误 {errcode}：{errmsg}", f"WeChat answered error {errcode}: {errmsg}"),
    )
    if api == "shortlink" and errcode == 43104:
        # "目前对所有非个人主体小程序开放"
        # (https://developers.weixin.qq.com/miniprogram/dev/server/API/qrcode-link/short-link/api_generateshortlink.html)
        zh, en = ("这个小程序不能生成短链：微信只对非个人主体的小程序开放。",
                  "This mini program may not make Short Links: WeChat opens them only to mini programs of a "
                  "non-personal subject.")
    if api in LINK_APIS and errcode == 44990:
        return e.RateLimited("wechat", errcode, *LINK_SECOND, raw=errmsg, retry_after=1.0)
    if api in LINK_APIS and errcode in (44993, 45009):
        now = time.time() if now is None else now
        midnight = next_beijing_midnight(now)
        return e.RateLimited("wechat", errcode, *LINK_DAILY, raw=errmsg, retry_after=midnight - now, not_before=midnight)
    if errcode == 45009 and api in ("A", "C", "shortlink", "B"):
        now = time.time() if now is None else now
        if api == "B":
            return e.RateLimited("wechat", errcode, *MINUTE_RATE, raw=errmsg, retry_after=60 - now % 60)
        midnight = next_beijing_midnight(now)
        zh, en = SHORTLINK_RATE if api == "shortlink" else DAILY_RATE
        return e.RateLimited("wechat", errcode, zh, en, raw=errmsg, retry_after=midnight - now, not_before=midnight)
    return cls("wechat", errcode, zh, en, raw=errmsg)


# GrowingIO documents no error body for campaigns, channels or minplinks (docs/growingio.md): what it
# refuses is recognised from the status and GrowingIO's own words (Chinese or English), and its words
# are always shown. The names on the left are ours (stored as error_code), not GrowingIO's.
GIO: dict[str, _Entry] = {
    "duplicate_name": (e.UpstreamRejected, "GrowingIO 里已有同名的条目，请换一个名称。",
                       "GrowingIO already has one with that name; choose another name."),
    "invalid_name": (e.UpstreamRejected, "名称只能包含中文、英文字母、数字和 - / _。",
                     "Names may contain only Chinese, English letters, digits and - / _."),
    "name_too_long": (e.UpstreamRejected, "名称最多 50 个字符。", "Names may have at most 50 characters."),
    "required": (e.UpstreamRejected, "GrowingIO 缺少必填字段。", "GrowingIO is missing a required field."),
    "unknown_product": (e.ConfigError, "GIO_PRODUCT_ID 不是这个项目的小程序应用，请检查设置。",
                        "GIO_PRODUCT_ID is not a mini program of this project; check the settings."),
    "unknown_campaign": (e.UpstreamRejected, "GrowingIO 找不到这个推广活动。", "GrowingIO has no such campaign."),
    "unknown_channel": (e.UpstreamRejected, "GrowingIO 找不到这个推广渠道。", "GrowingIO has no such channel."),
    "invalid_redirect_url": (e.UpstreamRejected, "跳转页面路径不合法。", "The landing page path is not valid."),
    "url_too_long": (e.UpstreamRejected, "监测链接超过 128 字节，请缩短页面路径。",
                     "The tracking link is longer than 128 bytes; shorten the page path."),
    "quota_exceeded": (e.UpstreamQuotaExhausted, "这个小程序的 A 码和 C 码已达 10 万个的终身上限，请改用 B 码。",
                       "This mini program has used its 100,000 A and C codes; use a B code."),
}
# First match wins, so the narrow patterns come before the broad ones ("超过 128 字节上限" is a URL).
_GIO_WORDS: tuple[tuple[str, re.Pattern[str]], ...] = tuple((kind, re.compile(words, re.IGNORECASE)) for kind, words in (
    ("quota_exceeded", r"45029|count out of limit|quota[^;]{0,40}used up|数量已达"),
    ("url_too_long", r"tracking ?url|trackingUrl|监测链接长度|url.{0,20}(too long|over \d+)"),
    ("name_too_long", r"too long|longer than|不能超过|过长|超出长度"),
    ("invalid_name", r"only contain|invalid (name|char)|仅支持|非法字符|不合法的字符"),
    ("duplicate_name", r"already exist|duplicate|已存在|重复|同名"),
    ("unknown_product", r"(product|应用).{0,30}(not found|no such|不存在|不属于|not exist|not a wechat|不是微信)|"
                        r"(not found|no such|不存在).{0,10}(product|应用)"),
    ("unknown_campaign", r"(campaign|活动).{0,30}(not found|no such|不存在|not exist)|"
                         r"(not found|no such).{0,10}campaign"),
    ("unknown_channel", r"(channel|渠道).{0,30}(not found|no such|不存在|not exist)|(not found|no such).{0,10}channel"),
    ("required", r"required|必填|不能为空|missing"),
    ("invalid_redirect_url", r"redirect|跳转"),
))
RAW_MAX = 500


def gio_words(body: object, text: str = "") -> str:
    """GrowingIO's own message, from whichever shape it answered (JSON with message/msg/error and an
    ``errors`` list, ``{"status": "fail", "message"}``, a bare JSON string, or plain text)."""
    parts: list[str] = []
    if isinstance(body, dict):
        for key in ("message", "msg", "error_description", "errorMessage", "error", "detail"):
            value = body.get(key)
            if isinstance(value, str) and value.strip() and value.strip() not in parts:
                parts.append(value.strip())
        items = body.get("errors")
        for item in items if isinstance(items, list) else []:
            value = item.get("message") if isinstance(item, dict) else item
            if isinstance(value, str) and value.strip() and value.strip() not in parts:
                parts.append(value.strip())
    elif isinstance(body, str):
        parts.append(body.strip())
    elif text.strip() and not text.lstrip().startswith(("<", "{", "[")):
        parts.append(text.strip())
    return clip(redact("; ".join(p for p in parts if p)), 300)


def gio_kind(status: int, words: str) -> str | None:
    """Our name for what GrowingIO refused, when its status and words make it recognisable."""
    if status == 409:
        return "duplicate_name"
    return next((kind for kind, pattern in _GIO_WORDS if pattern.search(words)), None)


def gio_error(status: int, body: object, retry_after: float | None = None, *, text: str = "") -> e.UpstreamError:
    """The typed error for a GrowingIO answer that is not 2xx, with GrowingIO's own words in it.

    ``body`` is the parsed JSON (or None), ``text`` the body as received: kept, redacted and cut to
    :data:`RAW_MAX` characters, in ``raw`` for the record and the log.
    """
    words = gio_words(body, text)
    raw = clip(redact(f"HTTP {status} {text}".strip()), RAW_MAX)
    said_zh = f"（GrowingIO：{words}）" if words else ""
    said_en = f" (GrowingIO: {words})" if words else ""
    if status == 401:
        return e.ConfigError("gio", 401, "GrowingIO 拒绝了 GIO_TOKEN，请在「API Token 管理」中检查或新建。" + said_zh,
                             "GrowingIO refused GIO_TOKEN; check it or create one under API Token management." + said_en,
                             raw)
    if status == 403:
        return e.ConfigError("gio", 403, "GrowingIO 拒绝访问：请检查 GIO_TOKEN 的权限（设置了 GIO_CLIENT_ID 时也检查它）。" + said_zh,
                             "GrowingIO refused access: check GIO_TOKEN's rights (and GIO_CLIENT_ID, when set)." + said_en,
                             raw)
    if status == 429:
        return e.RateLimited("gio", 429, "GrowingIO 请求太频繁（每秒最多 10 次），请稍后再试。" + said_zh,
                             "Too many GrowingIO requests (10 per second at most); try again shortly." + said_en, raw,
                             retry_after=retry_after)
    if status >= 500:
        return e.UpstreamBusy("gio", status, "GrowingIO 暂时不可用，请稍后再试。" + said_zh,
                              "GrowingIO is unavailable for now; try again shortly." + said_en, raw)
    kind = gio_kind(status, words)
    if kind is None and status == 404:
        return e.ConfigError("gio", 404, "GrowingIO 找不到这个项目，请检查 GIO_PROJECT_UID。" + said_zh,
                             "GrowingIO has no such project; check GIO_PROJECT_UID." + said_en, raw)
    if kind is not None:
        cls, zh, en = GIO[kind]
        return cls("gio", kind, zh + said_zh, en + said_en, raw)
    return e.UpstreamRejected("gio", status, f"GrowingIO 拒绝了请求（HTTP {status}）：{words or '没有说明原因'}",
                              f"GrowingIO refused the request (HTTP {status}): {words or 'no reason given'}", raw)


def gio_bad_answer(what_zh: str, what_en: str, text: str) -> e.UpstreamBusy:
    """A 2xx whose body lacks what we need: GrowingIO's fault, said plainly (never a parser's traceback)."""
    return e.UpstreamBusy("gio", "bad-answer", f"GrowingIO 的回答里缺少{what_zh}，无法使用；请稍后再试或联系管理员。",
                          f"GrowingIO's answer lacks {what_en}; it cannot be used. Try again later or tell an admin.",
                          clip(redact(text), RAW_MAX))


def unreachable(provider: str, what: str) -> e.UpstreamBusy:
    name = "微信" if provider == "wechat" else "GrowingIO"
    eng = "WeChat" if provider == "wechat" else "GrowingIO"
    return e.UpstreamBusy(provider, "network", f"连不上{name}（{what}），请稍后再试。",
                          f"Could not reach {eng} ({what}); try again shortly.")
