"""Slack payloads → plain values: form state → CodeRequest input, metadata, who asked.

Nothing here talks to Slack or the core; every function is pure so the tests can feed it payloads.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from bot.fields import CodeAsk, PosterAsk
from handlers.slack.views import CREATE_PREFIX, KINDS, LIVE_VALUE, NAME_PREFIX

TEXT_FIELDS = ("app", "page", "scene", "title", "name", "comments", "tags", "medium", "content", "term")
METADATA_MAX = 3000


@dataclass(frozen=True)
class Origin:
    """Where an interaction came from: the team, the person and the conversation (if any).

    ``in_place``: the person wrote in the conversation itself (a text in the bot's DM, an @mention in a
    channel), so every answer is a message posted there, in ``thread_ts`` when set; otherwise (a slash
    command, a form) answers only the asker sees are ephemeral and only a new code is posted."""

    team_id: str
    user_id: str
    user_name: str | None = None
    channel_id: str | None = None
    response_url: str | None = None
    thread_ts: str | None = None
    in_place: bool = False


def command_origin(body: dict[str, Any]) -> Origin:
    return Origin(
        team_id=str(body.get("team_id") or ""),
        user_id=str(body.get("user_id") or ""),
        user_name=body.get("user_name") or None,
        channel_id=body.get("channel_id") or None,
        response_url=body.get("response_url") or None,
    )


def action_origin(body: dict[str, Any]) -> Origin:
    """block_actions / view_submission / block_suggestion: ``user`` and ``team`` are objects."""
    user = body.get("user") or {}
    team = body.get("team") or {}
    channel = body.get("channel") or {}
    return Origin(
        team_id=str(team.get("id") or user.get("team_id") or ""),
        user_id=str(user.get("id") or ""),
        user_name=user.get("username") or user.get("name") or None,
        channel_id=channel.get("id") or None,
        response_url=body.get("response_url") or None,
    )


# Message subtypes that are a person writing (https://docs.slack.dev/reference/events/message): a plain
# message has none, a file dropped with a message is ``file_share``. Every other subtype (an edit,
# ``message_changed``; a deletion; ``channel_join``; ``bot_message`` …) is not a command.
PERSON_SUBTYPES = frozenset({None, "", "file_share", "thread_broadcast"})
_MENTION = re.compile(r"<@([UW][A-Z0-9]+)(?:\|[^>]*)?>")
_LINK = re.compile(r"<((?:https?|mailto):[^|>]*)(?:\|([^>]*))?>")


def from_a_person(event: dict[str, Any]) -> bool:
    """A message a person wrote: no bot's (ours included, which would answer itself; Slack marks them with
    ``bot_id``), no edit or join."""
    return not event.get("bot_id") and bool(event.get("user")) and event.get("subtype") in PERSON_SUBTYPES


def message_origin(body: dict[str, Any], event: dict[str, Any], thread_ts: str | None) -> Origin:
    """A DM text or an @mention (an Events API ``event_callback``): answered in place, in ``thread_ts``."""
    return Origin(team_id=str(body.get("team_id") or event.get("team") or ""), user_id=str(event.get("user") or ""),
                  channel_id=event.get("channel") or None, thread_ts=thread_ts or None, in_place=True)


def message_text(text: str, bot_user_id: str | None) -> str:
    """A message's text as a command: after the bot's @mention (the text before it is not the command),
    or without leading mentions; Slack's markup undone (https://docs.slack.dev/messaging/formatting-message-text:
    ``&``, ``<`` and ``>`` arrive as entities, a typed URL as ``<url|text>``)."""
    if bot_user_id:
        for found in _MENTION.finditer(text):
            if found.group(1) == bot_user_id:
                text = text[found.end():]
                break
    text = re.sub(r"^(\s*<@[UW][A-Z0-9]+(?:\|[^>]*)?>)+", "", text)
    text = _LINK.sub(lambda m: m.group(2) or m.group(1), text)
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&").strip()


def slash_body_from_raw(raw: str) -> dict[str, str] | None:
    """Bolt reads any form body containing the substring ``payload`` as an interactivity envelope, so
    ``/minpcode new pages/payload`` arrives empty (our finding in slack_bolt's body parsing; tests/slack/test_e2e.py pins it). A slash command has
    ``command=`` and no ``payload=`` field: re-read such a body as the flat form it is."""
    if "payload" not in raw or raw.lstrip().startswith("{"):
        return None
    fields = dict(parse_qsl(raw, keep_blank_values=True))
    if "payload" in fields or "command" not in fields:
        return None
    return fields


# ---------------------------------------------------------------------------------------------- view state


def _value(entry: dict[str, Any]) -> Any:
    kind = entry.get("type")
    if kind in ("static_select", "external_select"):
        selected = entry.get("selected_option")
        return selected.get("value") if selected else None
    if kind == "checkboxes":
        return [o.get("value") for o in entry.get("selected_options") or []]
    return entry.get("value")


def state_values(values: dict[str, Any]) -> dict[str, Any]:
    """``view.state.values`` → {block id: value} (block id and action id are the field name)."""
    out: dict[str, Any] = {}
    for block_id, actions in (values or {}).items():
        for entry in (actions or {}).values():
            out[block_id] = _value(entry)
    return out


def form_kind(values: dict[str, Any], default: str) -> str:
    kind = state_values(values).get("type")
    return kind if kind in KINDS else default


def read_option(value: str | None) -> tuple[str | None, bool]:
    """An external-select value → (name, create it?)."""
    if not value:
        return None, False
    if value.startswith(CREATE_PREFIX):
        return value[len(CREATE_PREFIX):] or None, True
    if value.startswith(NAME_PREFIX):
        return value[len(NAME_PREFIX):] or None, False
    return value, False


def form_fields(values: dict[str, Any], default_kind: str = "wechat:A") -> dict[str, Any]:
    """The form's state as CodeRequest input; the models check every rule afterwards."""
    state = state_values(values)
    typed = state.get("type")
    kind = typed if isinstance(typed, str) and typed in KINDS else default_kind
    type_, via, _, _ = KINDS[kind]
    fields: dict[str, Any] = {"type": type_, "via": via}
    if kind == LIVE_VALUE:
        fields["live"] = True
    for name in TEXT_FIELDS:
        value = state.get(name)
        if isinstance(value, str) and value.strip():
            fields[name] = value.strip()
    if "page" not in fields:
        fields["page"] = ""
    create = False
    for name in ("campaign", "channel"):
        if name in state:
            value, wanted = read_option(state.get(name))
            if value:
                fields[name] = value
            create = create or wanted
    if create:
        fields["create_missing"] = True
    width = state.get("width")
    if isinstance(width, str) and width.strip():
        try:
            fields["width"] = int(float(width))
        except (ValueError, OverflowError):  # "abc", or "1e400" (inf)
            fields["width"] = width  # the model reports it beside the field
    if state.get("transparent"):
        fields["transparent"] = "yes" in state["transparent"]
    if isinstance(state.get("env_version"), str):
        fields["env_version"] = state["env_version"]
    if "no-check" in (state.get("b_options") or []):
        fields["check_path"] = False
    days = state.get("expire_days")
    if isinstance(days, str) and days.strip():
        try:
            fields["expire_days"] = int(float(days))
        except (ValueError, OverflowError):
            fields["expire_days"] = days  # the model reports it beside the field
    if "plain" in (state.get("link_options") or []):
        fields["plain"] = True
        fields.pop("expire_days", None)  # the form's default 30 days: a plain-text scheme has none
    return fields


def poster_fields(values: dict[str, Any]) -> dict[str, Any] | None:
    """The form's poster (template and texts) as PosterRequest input, or None for no poster."""
    state = state_values(values)
    template = state.get("poster")
    if not isinstance(template, str) or not template or template == "none":
        return None
    fields: dict[str, Any] = {"template": template}
    for block, field in (("poster_title", "title"), ("subtitle", "subtitle"), ("footer", "footer")):
        value = state.get(block)
        if isinstance(value, str) and value.strip():
            fields[field] = value.strip()
    return fields


def form_ask(values: dict[str, Any], default_kind: str = "wechat:A") -> CodeAsk:
    """The submitted form as the typed ask: its fields, the long-scene switch and the poster."""
    poster = poster_fields(values)
    return CodeAsk(fields=form_fields(values, default_kind),
                   long_scene="long-scene" in (state_values(values).get("b_options") or []),
                   poster=PosterAsk(data=poster) if poster is not None else None)


def saved_ask(value: dict[str, Any]) -> CodeAsk:
    """A form's ask as the outbox or a reuse view kept it (``CodeAsk.model_dump``). An older version kept
    the fields flat, with ``long_scene`` and the poster (``_poster``) among them; such a row is read too."""
    if "fields" in value:
        return CodeAsk.model_validate(value)
    flat = dict(value)
    poster = flat.pop("_poster", None)
    long_scene = bool(flat.pop("long_scene", False))
    return CodeAsk(fields=flat, long_scene=long_scene,
                   poster=PosterAsk(data=poster) if isinstance(poster, dict) else None)


# ---------------------------------------------------------------------------------------------- private_metadata


def sealed(data: dict[str, Any], key: bytes, user_id: str) -> dict[str, Any]:
    """``data`` with a MAC binding its channel and code id to the person the form is for."""
    return {**data, "s": _mac(key, user_id, data)}


def checked(meta: dict[str, Any], key: bytes, user_id: str) -> dict[str, Any]:
    """``meta`` as read back, its channel and code id kept only when sealed for ``user_id``: a channel
    that did not come from where this person opened the form is never used."""
    if hmac.compare_digest(_mac(key, user_id, meta).encode(), str(meta.get("s") or "").encode()):  # see bot/batch/links.py
        return meta
    return {k: v for k, v in meta.items() if k not in ("c", "r", "id", "s")}


def _mac(key: bytes, user_id: str, data: dict[str, Any]) -> str:
    signed = json.dumps([user_id, data.get("c"), data.get("id")], ensure_ascii=False)
    return hmac.new(key, signed.encode(), hashlib.sha256).hexdigest()[:32]


def dump_metadata(data: dict[str, Any]) -> str:
    """Compact JSON for ``private_metadata``; drops the optional ``f`` (fields) when it would not fit."""
    text = json.dumps({k: v for k, v in data.items() if v is not None}, ensure_ascii=False, separators=(",", ":"))
    if len(text) > METADATA_MAX and "f" in data:
        return dump_metadata({k: v for k, v in data.items() if k != "f"})
    if len(text) > METADATA_MAX:
        return dump_metadata({k: v for k, v in data.items() if k not in ("r",)}) if "r" in data else "{}"
    return text


def load_metadata(view: dict[str, Any] | None) -> dict[str, Any]:
    try:
        data = json.loads((view or {}).get("private_metadata") or "{}")
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}
