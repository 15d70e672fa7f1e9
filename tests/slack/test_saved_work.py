"""A form's ask as the listener reads it once, and as the outbox or a reuse view keeps it (handlers/slack/parse.py)."""

from __future__ import annotations

from typing import Any

from bot.fields import CodeAsk, PosterAsk
from handlers.slack import parse


def _state(**entries: dict[str, Any]) -> dict[str, Any]:
    return {name: {name: entry} for name, entry in entries.items()}


def test_the_form_is_read_once_into_its_fields_the_long_scene_switch_and_the_poster() -> None:
    values = _state(type={"type": "static_select", "selected_option": {"value": "wechat:B"}},
                    page={"type": "plain_text_input", "value": "pages/a/a"},
                    scene={"type": "plain_text_input", "value": "门店=上海一店"},
                    b_options={"type": "checkboxes", "selected_options": [{"value": "long-scene"}]},
                    poster={"type": "static_select", "selected_option": {"value": "a4"}},
                    poster_title={"type": "plain_text_input", "value": "春季"})
    ask = parse.form_ask(values)
    assert ask.fields == {"type": "B", "via": "wechat", "page": "pages/a/a", "scene": "门店=上海一店"}
    assert ask.long_scene and ask.poster == PosterAsk(data={"template": "a4", "title": "春季"})
    assert parse.saved_ask(ask.model_dump(mode="json")) == ask


def test_work_saved_flat_by_an_older_version_is_still_read() -> None:
    flat = {"type": "B", "page": "pages/a/a", "scene": "x", "long_scene": True, "_poster": {"template": "a4"}}
    assert parse.saved_ask(flat) == CodeAsk(fields={"type": "B", "page": "pages/a/a", "scene": "x"}, long_scene=True,
                                            poster=PosterAsk(data={"template": "a4"}))
    assert parse.saved_ask({"type": "A", "page": ""}) == CodeAsk(fields={"type": "A", "page": ""})
