"""A summary in Block Kit, within Slack's limits (section text 3000, field 2000, header 150 characters)."""

from __future__ import annotations

from typing import Any

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
from bot.text import Lang, clip

SLACK_SECTION_MAX = 3000
SLACK_FIELD_MAX = 2000
SLACK_HEADER_MAX = 150


def _esc(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": clip(text, SLACK_SECTION_MAX)}}


def slack_text(summary: Summary, lang: Lang = "zh") -> str:
    """The notification / fallback text that goes with the blocks."""
    return f"{word('title', lang)} · {period_label(summary, lang)}: " + " ".join(headline(summary, lang))


def slack_blocks(summary: Summary, lang: Lang = "zh", *, limit: int = 8) -> list[dict[str, Any]]:
    """Block Kit for the summary: header, numbers, breakdowns, failures, quota, pages, context."""
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": clip(
            f"{word('title', lang)} · {period_label(summary, lang)}", SLACK_HEADER_MAX)}},
        _section("\n".join(f"*{_esc(line)}*" if i == 0 else _esc(line)
                           for i, line in enumerate(headline(summary, lang)))),
    ]
    if not summary.empty:
        fields = []
        for key in LIST_KEYS:
            items = limited(tally_items(summary, key, lang), limit, lang)
            if items:
                fields.append({"type": "mrkdwn", "text": clip(f"*{word(key, lang)}*\n" + "\n".join(
                    _esc(item) for item in items), SLACK_FIELD_MAX)})
        if fields:
            blocks.append({"type": "section", "fields": fields})
        if summary.failures:
            items = limited(failure_items(summary, lang, max_chars=150), 5, lang)
            blocks.append(_section(f"*{word('failures', lang)}*\n" + "\n".join("• " + _esc(i) for i in items)))
        if summary.quota:
            lines = ["• " + _esc(i) for i in quota_items(summary, lang)]
            lines += [":warning: " + _esc(w) for w in warning_lines(summary, lang)]
            blocks.append(_section(f"*{word('quota', lang)}*\n" + "\n".join(lines)))
        if summary.top_pages:
            lines = [f"{i}. `{_esc(tally_name('top_pages', t, lang))}` — {number(t.count)}"
                     for i, t in enumerate(summary.top_pages[:5], 1)]
            blocks.append(_section(f"*{word('top_pages', lang)}*\n" + "\n".join(lines)))
        if summary.top_scanned:
            lines = [f"{i}. {_esc(c.name or c.id)} `{c.id}` — {number(c.scans)}" for i, c in enumerate(summary.top_scanned, 1)]
            blocks.append(_section(f"*{word('top_scanned', lang)}*\n" + "\n".join(lines)))
    elif summary.warnings:
        blocks.append(_section("\n".join(":warning: " + _esc(w) for w in warning_lines(summary, lang))))
    context = f"{summary.timezone} · " + (f"生成于 {summary.generated_at:%Y-%m-%d %H:%M}" if lang == "zh"
                                          else f"generated {summary.generated_at:%Y-%m-%d %H:%M}")
    if summary.sandbox:
        context += " · " + word("sandbox", lang)
    blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": _esc(context)}]})
    return blocks


__all__ = ["SLACK_FIELD_MAX", "SLACK_SECTION_MAX", "slack_blocks", "slack_text"]
