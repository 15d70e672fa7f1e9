"""A summary as group-robot markdown, within WeCom's 4096-byte limit."""

from __future__ import annotations

from bot.summary import (
    LIST_KEYS,
    Summary,
    failure_items,
    headline,
    limited,
    number,
    period_label,
    quota_items,
    tally_items,
    tally_name,
    warning_lines,
    word,
)
from bot.text import Lang, clip_utf8, utf8_len

WECOM_MARKDOWN_MAX = 4096


def _render(summary: Summary, lang: Lang, limit: int | None, reason_chars: int) -> str:
    sep = "：" if lang == "zh" else ": "
    out = [f"## {word('title', lang)}", f"> {period_label(summary, lang)}", ""]
    out += [f"**{line}**" if i == 0 else line for i, line in enumerate(headline(summary, lang))]
    if not summary.empty:
        for key in LIST_KEYS:
            items = limited(tally_items(summary, key, lang), limit, lang)
            if items:
                out.append(f"**{word(key, lang)}**{sep}" + " · ".join(items))
        if summary.failures:
            out.append(f"**{word('failures', lang)}**")
            out += ["- " + i for i in limited(failure_items(summary, lang, max_chars=reason_chars), limit, lang)]
        if summary.quota:
            out.append(f"**{word('quota', lang)}**")
            out += ["- " + i for i in limited(quota_items(summary, lang), limit, lang)]
        if summary.top_pages:
            pages = [f"`{tally_name('top_pages', t, lang)}` {number(t.count)}" for t in summary.top_pages]
            out.append(f"**{word('top_pages', lang)}**{sep}" + " · ".join(limited(pages, limit, lang)))
        if summary.top_scanned:
            scanned = [f"{c.name or c.id} `{c.id}` {number(c.scans)}" for c in summary.top_scanned]
            out.append(f"**{word('top_scanned', lang)}**{sep}" + " · ".join(limited(scanned, limit, lang)))
    out += [f'<font color="warning">⚠ {w}</font>' for w in warning_lines(summary, lang)]
    if summary.sandbox:
        out.append(f'<font color="comment">{word("sandbox", lang)}</font>')
    return "\n".join(out)


def wecom_markdown(summary: Summary, lang: Lang = "zh", *, max_bytes: int = WECOM_MARKDOWN_MAX) -> str:
    """Markdown for the group robot, at most ``max_bytes`` UTF-8 bytes.

    Long lists are cut to fewer items each (saying "…and N more"), then long reasons shortened;
    only if that is still too long is the text cut, and then it says so.
    """
    text = ""
    for limit in (None, 15, 10, 6, 4, 2, 1):
        for reason_chars in (200, 80, 40):
            text = _render(summary, lang, limit, reason_chars)
            if utf8_len(text) <= max_bytes:
                return text
    tail = "\n…（内容过长，已截断）" if lang == "zh" else "\n…(too long, cut here)"
    cut = clip_utf8(text, max_bytes - utf8_len(tail))
    return cut[: cut.rfind("\n")] + tail if "\n" in cut else cut + tail


__all__ = ["WECOM_MARKDOWN_MAX", "wecom_markdown"]
