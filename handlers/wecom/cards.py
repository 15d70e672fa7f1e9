"""Template cards for the WeCom form: builders that keep WeCom's limits (``template_card`` in
https://developer.work.weixin.qq.com/document/path/90236).

The form is one ``multiple_interaction`` card: at most **3** dropdowns of at most **10** options each,
with no text inputs. The dropdowns are *code type*, *campaign* and *channel* (the last two only when
GrowingIO is configured). A list longer than 10 shows 9 entries and a tenth ``更多…`` option; choosing it
makes the bot send a follow-up card with the next page (:func:`more_card`). Campaigns and channels are
ranked with the ones used recently first (:func:`rank`), so the common choices are on the first page.

Option ids are the GrowingIO ids (opaque, ≤128 bytes); ``task_id`` values are unique forever
(:func:`new_task_id`), as WeCom requires (42014 otherwise).
"""

from __future__ import annotations

import re
import secrets
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from bot.kinds import KINDS, Kind, offered
from bot.text import clip

__all__ = [
    "KINDS",
    "MORE_PREFIX",
    "SUBMIT_KEY",
    "Choice",
    "Kind",
    "find_choice",
    "form_card",
    "kinds",
    "more_card",
    "new_task_id",
    "options_page",
    "rank",
    "short_label",
]

SUBMIT_KEY = "submit"
MORE_PREFIX = "more:"
MAX_SELECTS = 3
MAX_OPTIONS = 10
OPTION_TEXT_MAX = 16
OPTION_ID_MAX = 128
TITLE_MAX = 36
DESC_MAX = 44
Q_KIND, Q_CAMPAIGN, Q_CHANNEL = "kind", "campaign", "channel"

_TASK_ID_RE = re.compile(r"[0-9A-Za-z_\-@]{1,128}")


# A card option shows at most 16 characters, so the kinds of bot.kinds get shorter names here.
_SHORT_LABELS: dict[str, str] = {
    "gio-A": "监测链接·A码",
    "gio-C": "监测链接·C码",
    "wx-B": "B码（scene，不限量）",
    "wx-A": "微信A码",
    "wx-C": "微信C码（二维码）",
    "wx-shortlink": "小程序短链",
    "wx-urllink": "URL Link",
    "wx-scheme": "URL Scheme",
}


def short_label(kind: Kind) -> str:
    """The kind's name as a card option shows it (Chinese, within WeCom's 16 characters)."""
    return _SHORT_LABELS.get(kind.id) or clip(kind.label.zh, OPTION_TEXT_MAX)


def kinds(gio: bool) -> list[Kind]:
    """The code types the form offers: GrowingIO tracking links first when GrowingIO is there."""
    return offered(gio)


@dataclass(frozen=True, slots=True)
class Choice:
    """A campaign or channel as an option: ``id`` goes on the card, ``name`` into the request."""

    id: str
    name: str


def new_task_id(prefix: str = "mp") -> str:
    """A ``task_id`` WeCom accepts (``[0-9A-Za-z_-@]``, ≤128 bytes) and that never repeats."""
    task_id = f"{prefix}-{time.time_ns() // 1_000_000:x}-{secrets.token_hex(6)}"
    assert _TASK_ID_RE.fullmatch(task_id)
    return task_id


def rank(items: Iterable[Choice], recent: Iterable[str | None]) -> list[Choice]:
    """Most used first (how often a name or id appears in ``recent``), then the rest in their own order."""
    counts = Counter(value for value in recent if value)
    listed = list(items)
    return [c for _, c in sorted(enumerate(listed), key=lambda p: (-(counts[p[1].name] + counts[p[1].id]), p[0]))]


def options_page(choices: list[Choice], page: int) -> tuple[list[dict[str, str]], bool]:
    """The options of one page: all of them when ≤10 remain, else 9 and a ``更多…`` option."""
    rest = choices[page * (MAX_OPTIONS - 1):]
    more = len(rest) > MAX_OPTIONS
    shown = rest[: MAX_OPTIONS - 1] if more else rest
    options = [{"id": _option_id(c, i + page * (MAX_OPTIONS - 1)), "text": clip(c.name, OPTION_TEXT_MAX)}
               for i, c in enumerate(shown)]
    if more:
        options.append({"id": f"{MORE_PREFIX}{page + 1}", "text": f"更多…（第{page + 2}页）"})
    return options, more


def _option_id(choice: Choice, index: int) -> str:
    ok = choice.id and len(choice.id.encode("utf-8")) <= OPTION_ID_MAX and not choice.id.startswith(MORE_PREFIX)
    return choice.id if ok else f"#{index}"


def find_choice(choices: list[Choice], option_id: str) -> Choice | None:
    """The choice an option id names (the inverse of the ids :func:`options_page` writes)."""
    if option_id.startswith("#") and option_id[1:].isdigit():
        index = int(option_id[1:])
        return choices[index] if index < len(choices) else None
    return next((c for c in choices if c.id == option_id), None)


def _select(key: str, title: str, options: list[dict[str, str]], selected: str | None = None) -> dict[str, Any]:
    select: dict[str, Any] = {"question_key": key, "title": title, "option_list": options}
    if selected and any(o["id"] == selected for o in options):
        select["selected_id"] = selected
    return select


def form_card(task_id: str, offered: list[Kind], campaigns: list[Choice] | None,
              channels: list[Choice] | None) -> dict[str, Any]:
    """The new-code form: type, campaign and channel dropdowns and a submit button."""
    selects = [_select(Q_KIND, "码类型 Type", [{"id": k.id, "text": short_label(k)} for k in offered])]
    if campaigns:
        selects.append(_select(Q_CAMPAIGN, "推广活动 Campaign", options_page(campaigns, 0)[0]))
    if channels:
        selects.append(_select(Q_CHANNEL, "推广渠道 Channel", options_page(channels, 0)[0]))
    desc = "选好后点提交，再发送页面路径" + ("（活动和渠道只用于监测链接）" if campaigns else "")
    return _card(task_id, "新建小程序码 New code", desc, selects[:MAX_SELECTS])


def more_card(task_id: str, campaigns: tuple[list[Choice], int] | None,
              channels: tuple[list[Choice], int] | None) -> dict[str, Any]:
    """The follow-up card with the next page of campaigns and/or channels (``(choices, page)``)."""
    selects = []
    pages = []
    if campaigns is not None:
        selects.append(_select(Q_CAMPAIGN, "推广活动 Campaign", options_page(*campaigns)[0]))
        pages.append(f"活动第{campaigns[1] + 1}页")
    if channels is not None:
        selects.append(_select(Q_CHANNEL, "推广渠道 Channel", options_page(*channels)[0]))
        pages.append(f"渠道第{channels[1] + 1}页")
    if not selects:
        raise ValueError("nothing to page")
    return _card(task_id, "继续选择 More choices", "、".join(pages) + "，选好后点提交", selects)


def _card(task_id: str, title: str, desc: str, selects: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "card_type": "multiple_interaction",
        "source": {"desc": "minpcode", "desc_color": 1},
        "main_title": {"title": clip(title, TITLE_MAX), "desc": clip(desc, DESC_MAX)},
        "task_id": task_id,
        "select_list": selects,
        "submit_button": {"text": "提交 Submit", "key": SUBMIT_KEY},
    }
