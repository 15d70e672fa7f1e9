"""A faithful local emulator of Slack's Web API, for end-to-end tests of the Slack front end.

Usage::

    from tests.emulators.slack import SlackEmulator, Channel

    with SlackEmulator() as emu:                      # serves on a loopback port (ServerThread)
        client = AsyncWebClient(token=emu.bot_token, base_url=emu.api_url)   # api_url = url + "/api/"
        ...                                           # drive the bot
        [call] = emu.wait_for("chat.postMessage")     # polls: the bot works after the ack
        assert emu.uploads[0].data.startswith(b"\\x89PNG")

Wire behaviour follows slack_sdk's source and Slack's method reference
(https://docs.slack.dev/reference/methods): ``POST``/``GET /api/<method>``, params merged from the query string, a form body,
a multipart body or a JSON body; token from ``Authorization: Bearer`` (or a ``token`` param);
answers are ``application/json; charset=utf-8``, ``{"ok": true, ...}`` or HTTP 200
``{"ok": false, "error": "..."}``; injected rate limits are HTTP 429 + ``Retry-After`` +
``{"ok": false, "error": "ratelimited"}``. Every response carries ``x-oauth-scopes``.

Choices where Slack's behaviour is not pinned down (documented here so tests can rely on them):

* Trigger ids: by default (``strict_triggers=False``) ``views.open``/``views.push`` accept any
  non-empty trigger id, but each one only once (``exchanged_trigger_id`` on reuse, like Slack).
  Ids handed out by :meth:`SlackEmulator.issue_trigger_id` also expire after ``trigger_ttl``
  seconds (3 s, on the injectable ``clock``) → ``expired_trigger_id``. With
  ``strict_triggers=True`` only issued ids are accepted (others → ``invalid_trigger_id``).
  :meth:`expire_trigger` / :meth:`expire_next_trigger` force ``expired_trigger_id``.
* Posting to a *private* channel (or DM) the bot is not in answers ``channel_not_found`` (Slack
  hides such channels); a *public* channel the bot is not in answers ``not_in_channel``
  (``chat.postMessage`` succeeds anyway when the ``chat:write.public`` scope is granted; file
  shares never do).
* The upload URL checks that the body length equals the ``length`` declared to
  ``files.getUploadURLExternal`` (HTTP 400 otherwise; ``check_upload_length=False`` turns it off).
* ``users.info`` returns ``locale`` only with ``include_locale=true``, as Slack does.
* ``calls`` also records the POSTs to upload URLs, under the pseudo-method name ``"upload"``.

Events (the Events API side, once :meth:`SlackEmulator.deliver_events_to` names the app's request URL and
signing secret): :meth:`SlackEmulator.user_says` is a person writing in a conversation. The message is stored
and, as the app's manifest (:meth:`SlackEmulator.install`) subscribes it, delivered as the documents show
it: an ``event_callback`` envelope with ``event_id``, ``event_time`` and ``authorizations``
(https://docs.slack.dev/apis/events-api/), a ``message`` with ``channel_type: "im"`` for the bot's DM
(https://docs.slack.dev/reference/events/message.im/, needs ``im:history``), an ``app_mention`` for a
message naming the bot in a channel it is in (https://docs.slack.dev/reference/events/app_mention, needs
``app_mentions:read``; never for a DM), ``thread_ts`` when written in a thread, signed the v0 way
(``X-Slack-Signature``, ``X-Slack-Request-Timestamp``). :meth:`SlackEmulator.redeliver` sends one again
with ``X-Slack-Retry-Num`` and ``X-Slack-Retry-Reason``, as Slack does when it saw no 2xx within 3 s.

* The text arrives as Slack writes it (https://docs.slack.dev/messaging/formatting-message-text): ``&``,
  ``<`` and ``>`` as entities, ``@name`` of the bot or a known user as ``<@U…>``, a typed URL as ``<url>``.
* A read-only Messages tab (the manifest's ``messages_tab_read_only_enabled``) or none
  (``messages_tab_enabled: false``) leaves no composer in the DM: ``user_says`` there raises
  :class:`MessagingRefused` with the client's words ("Sending messages to this app has been turned off",
  slackapi/bolt-js#2127); nothing is stored or delivered.
* The bot's own posts in its DM are delivered as ``message.im`` too (with ``bot_id``), as Slack does — why
  Bolt has its ignoring-self-events middleware (our reading of Bolt; Slack's page does not say it in words).
  Each delivery is kept in :attr:`SlackEmulator.deliveries`.
* :meth:`SlackEmulator.hold_answers` lets a method take effect and holds back its answer, as a response
  lost on its way back (or a caller killed waiting for it) would.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import itertools
import json
import math
import mimetypes
import re
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any, Literal
from urllib.parse import parse_qsl

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bot.sandbox.server import ServerThread

# ----------------------------------------------------------------------------------------------
# identities and defaults

TEAM_ID = "T0TEAM"
TEAM_NAME = "Test Team"
TEAM_DOMAIN = "test-team"
BOT_USER_ID = "U0BOT"
BOT_ID = "B0BOT"
APP_ID = "A0APP"
BOT_NAME = "minpcode"

USER_ID = "U0USER"  # en-US, America/Los_Angeles
ZH_USER_ID = "U0ZHANG"  # zh-CN, Asia/Shanghai
PUBLIC_CHANNEL = "C0GENERAL"  # public, bot is a member
OTHER_PUBLIC_CHANNEL = "C0RANDOM"  # public, bot is NOT a member (join works)
PRIVATE_CHANNEL = "G0PRIVATE"  # private, bot is NOT a member (join refused)
DM_CHANNEL = "D0USER"  # the bot's DM with USER_ID

DEFAULT_TOKEN = "xoxb-test-token"
DEFAULT_SCOPES = (
    "app_mentions:read",
    "commands",
    "chat:write",
    "files:write",
    "files:read",
    "channels:join",
    "channels:read",
    "groups:read",
    "im:history",
    "im:read",
    "im:write",
    "users:read",
)
UPLOAD_METHOD = "upload"  # pseudo-method name under which upload-URL POSTs are recorded

MAX_MESSAGE_BLOCKS = 50
MAX_VIEW_BLOCKS = 100
MAX_VIEW_BYTES = 250_000
MAX_VIEW_STACK = 3
MAX_TEXT = 40_000
MAX_SCHEDULE_AHEAD = 120 * 24 * 3600

# Scopes a method needs (any one of them). conversations.info depends on the channel type and is
# checked inside its handler.
METHOD_SCOPES: dict[str, tuple[str, ...]] = {
    "chat.postMessage": ("chat:write",),
    "chat.postEphemeral": ("chat:write",),
    "chat.update": ("chat:write",),
    "chat.delete": ("chat:write",),
    "chat.scheduleMessage": ("chat:write",),
    "chat.scheduledMessages.list": ("chat:write",),
    "chat.deleteScheduledMessage": ("chat:write",),
    "files.getUploadURLExternal": ("files:write",),
    "files.completeUploadExternal": ("files:write",),
    "files.info": ("files:read",),
    "files.delete": ("files:write",),
    "conversations.join": ("channels:join",),
    "conversations.open": ("im:write", "mpim:write"),
    "users.info": ("users:read",),
}
_CONVERSATION_READ_SCOPE = {
    "public": "channels:read",
    "private": "groups:read",
    "im": "im:read",
    "mpim": "mpim:read",
}


# ----------------------------------------------------------------------------------------------
# records and fixtures


@dataclass
class Call:
    """One request received by the emulator (recorded once it has been answered)."""

    method: str
    params: dict[str, Any]
    headers: dict[str, str]  # lower-cased names
    http_method: str
    time: float  # wall clock (time.time()) at arrival
    token: str | None = None
    status: int = 200
    response: dict[str, Any] | None = None

    @property
    def ok(self) -> bool:
        return self.status == 200 and bool(self.response and self.response.get("ok"))

    @property
    def error(self) -> str | None:
        return None if self.response is None else self.response.get("error")

    def __getitem__(self, key: str) -> Any:
        return self.params[key]

    def get(self, key: str, default: Any = None) -> Any:
        return self.params.get(key, default)


@dataclass
class Upload:
    """A file announced by files.getUploadURLExternal; ``data`` is filled by the upload-URL POST,
    the sharing fields by files.completeUploadExternal."""

    file_id: str
    filename: str
    length: int  # as declared to files.getUploadURLExternal
    upload_url: str
    created: int
    alt_txt: str | None = None
    snippet_type: str | None = None
    data: bytes | None = None
    content_type: str | None = None  # of the upload POST
    title: str | None = None
    channel_id: str | None = None
    channels: list[str] = field(default_factory=list)  # every channel it was shared to
    initial_comment: str | None = None
    thread_ts: str | None = None
    completed: bool = False
    message_ts: str | None = None  # ts of the file-share message (Slack doesn't return it)
    deleted: bool = False

    @property
    def uploaded(self) -> bool:
        return self.data is not None

    @property
    def size(self) -> int:
        return len(self.data or b"")

    @property
    def mimetype(self) -> str:
        return mimetypes.guess_type(self.filename)[0] or "application/octet-stream"


ChannelKind = Literal["public", "private", "im", "mpim"]


@dataclass
class Channel:
    """A conversation. ``members`` lists the human members (None = every known user)."""

    id: str = ""
    name: str = ""
    kind: ChannelKind = "public"
    is_member: bool = True  # is the bot in it?
    is_archived: bool = False
    user: str | None = None  # the other party of an im
    members: set[str] | None = None
    messages: list[dict[str, Any]] = field(default_factory=list)
    created: int = 1_700_000_000

    def has_user(self, user_id: str) -> bool:
        if self.kind == "im":
            return user_id == self.user
        return self.members is None or user_id in self.members

    def to_api(self) -> dict[str, Any]:
        base: dict[str, Any] = {"id": self.id, "created": self.created, "is_archived": self.is_archived}
        if self.kind == "im":
            return {
                **base,
                "is_im": True,
                "is_org_shared": False,
                "user": self.user,
                "is_user_deleted": False,
            }
        name = self.name or self.id.lower()
        return {
            **base,
            "name": name,
            "name_normalized": name,
            "is_channel": self.kind == "public",
            "is_group": self.kind == "private",
            "is_im": False,
            "is_mpim": self.kind == "mpim",
            "is_private": self.kind != "public",
            "is_general": name == "general",
            "is_shared": False,
            "is_ext_shared": False,
            "is_org_shared": False,
            "is_member": self.is_member,
            "creator": USER_ID,
            "topic": {"value": "", "creator": "", "last_set": 0},
            "purpose": {"value": "", "creator": "", "last_set": 0},
        }


@dataclass
class User:
    id: str = ""
    name: str = ""
    real_name: str = ""
    locale: str = "en-US"
    tz: str = "America/Los_Angeles"
    tz_label: str = "Pacific Standard Time"
    tz_offset: int = -28800
    is_bot: bool = False
    deleted: bool = False
    email: str | None = None

    def to_api(self, team_id: str, include_locale: bool) -> dict[str, Any]:
        name = self.name or self.id.lower()
        real = self.real_name or name
        out: dict[str, Any] = {
            "id": self.id,
            "team_id": team_id,
            "name": name,
            "deleted": self.deleted,
            "real_name": real,
            "tz": self.tz,
            "tz_label": self.tz_label,
            "tz_offset": self.tz_offset,
            "is_bot": self.is_bot,
            "is_admin": False,
            "is_owner": False,
            "is_app_user": False,
            "updated": 1_700_000_000,
            "profile": {
                "real_name": real,
                "display_name": name,
                "real_name_normalized": real,
                "display_name_normalized": name,
                **({"email": self.email} if self.email else {}),
            },
        }
        if include_locale:
            out["locale"] = self.locale
        return out


def default_channels() -> dict[str, Channel]:
    return {
        PUBLIC_CHANNEL: Channel(PUBLIC_CHANNEL, "general", "public", is_member=True),
        OTHER_PUBLIC_CHANNEL: Channel(OTHER_PUBLIC_CHANNEL, "random", "public", is_member=False),
        PRIVATE_CHANNEL: Channel(PRIVATE_CHANNEL, "secret", "private", is_member=False),
        DM_CHANNEL: Channel(DM_CHANNEL, "", "im", is_member=True, user=USER_ID),
    }


def default_users() -> dict[str, User]:
    return {
        USER_ID: User(USER_ID, "alice", "Alice Example"),
        ZH_USER_ID: User(
            ZH_USER_ID,
            "zhang",
            "张伟",
            locale="zh-CN",
            tz="Asia/Shanghai",
            tz_label="China Standard Time",
            tz_offset=28800,
        ),
    }


class WaitTimeout(AssertionError):
    """wait_for gave up."""


class MessagingRefused(Exception):
    """The person could not send this message: the Slack client offers no composer there."""


@dataclass
class Delivery:
    """One POST of an event to the app's request URL (a retry is a Delivery of its own)."""

    event_id: str
    body: dict[str, Any]
    retry_num: int = 0
    status: int | None = None  # None: no answer (connection failed or timed out)
    seconds: float = 0.0

    @property
    def event(self) -> dict[str, Any]:
        return dict(self.body["event"])


EVENT_TIMEOUT = 3.0  # Slack waits 3 s for a 2xx, then counts the delivery failed (events-api)


class _SlackError(Exception):
    def __init__(self, error: str, **extra: Any) -> None:
        super().__init__(error)
        self.body: dict[str, Any] = {"ok": False, "error": error, **extra}


def _invalid_arguments(*messages: str) -> _SlackError:
    return _SlackError("invalid_arguments", response_metadata={"messages": list(messages)})


@dataclass
class _Trigger:
    issued: float
    view_id: str | None = None
    user_id: str | None = None
    expired: bool = False


@dataclass
class _RateLimit:
    limit: int
    per_seconds: float
    retry_after: int | None
    hits: deque[float] = field(default_factory=deque)


def _truthy(value: Any) -> bool:
    return value in (True, 1, "1", "true", "True", "TRUE")


def _str(value: Any) -> str | None:
    if value is None:
        return None
    return value if isinstance(value, str) else str(value)


def _json_param(params: Mapping[str, Any], key: str, error: str) -> Any:
    """Fields such as ``blocks``/``view``/``files`` are JSON strings in forms, objects in JSON."""
    value = params.get(key)
    if isinstance(value, str):
        if not value.strip():
            return None
        try:
            return json.loads(value)
        except ValueError:
            raise _SlackError(error) from None
    return value


def _parse_multipart(body: bytes, content_type: str) -> list[tuple[str, str | None, bytes, str | None]]:
    """(field name, filename, raw content, part content type) for each part — exact bytes."""
    boundary = None
    for piece in content_type.split(";")[1:]:
        key, _, value = piece.strip().partition("=")
        if key.lower() == "boundary":
            boundary = value.strip().strip('"')
    if not boundary:
        return []
    parts = []
    delimiter = b"--" + boundary.encode()
    for chunk in body.split(delimiter)[1:]:
        if chunk.startswith(b"--"):
            break
        chunk = chunk[2:] if chunk.startswith(b"\r\n") else chunk
        head, _, content = chunk.partition(b"\r\n\r\n")
        if content.endswith(b"\r\n"):
            content = content[:-2]
        name = filename = ctype = None
        for line in head.decode("utf-8", "replace").split("\r\n"):
            hname, _, hvalue = line.partition(":")
            if hname.strip().lower() == "content-disposition":
                for attr in hvalue.split(";")[1:]:
                    k, _, v = attr.strip().partition("=")
                    if k.lower() == "name":
                        name = v.strip('"')
                    elif k.lower() == "filename":
                        filename = v.strip('"')
            elif hname.strip().lower() == "content-type":
                ctype = hvalue.strip()
        parts.append((name or "", filename, content, ctype))
    return parts


def _block_count_messages(blocks: Any, limit: int, pointer: str) -> list[str]:
    if not isinstance(blocks, list):
        return [f"[ERROR] must be an array [json-pointer:{pointer}]"]
    messages = []
    if len(blocks) > limit:
        messages.append(f"[ERROR] no more than {limit} items allowed [json-pointer:{pointer}]")
    seen: set[str] = set()
    for i, block in enumerate(blocks):
        if not isinstance(block, dict) or not isinstance(block.get("type"), str):
            messages.append(f"[ERROR] missing required field: type [json-pointer:{pointer}/{i}]")
            continue
        block_id = block.get("block_id")
        if block_id is not None:
            if block_id in seen:
                messages.append(f"[ERROR] duplicate block_id [json-pointer:{pointer}/{i}/block_id]")
            seen.add(block_id)
    return messages


def _plain_text_messages(obj: Any, pointer: str, max_len: int, required: bool) -> list[str]:
    if obj is None:
        return (
            [f"[ERROR] missing required field: {pointer.rsplit('/', 1)[-1]} [json-pointer:{pointer}]"]
            if required
            else []
        )
    if not isinstance(obj, dict) or obj.get("type") != "plain_text":
        return [f"[ERROR] must be a plain_text text object [json-pointer:{pointer}]"]
    text = obj.get("text")
    if not isinstance(text, str) or not text:
        return [f"[ERROR] must be more than 0 characters [json-pointer:{pointer}/text]"]
    if len(text) > max_len:
        return [f"[ERROR] must be less than {max_len + 1} characters [json-pointer:{pointer}/text]"]
    return []


def validate_view(view: Any, allowed_types: Iterable[str]) -> None:
    """Loose check of a view payload against Slack's documented limits; raises _SlackError."""
    allowed = tuple(allowed_types)
    if not isinstance(view, dict):
        raise _invalid_arguments("[ERROR] missing required field: view [json-pointer:/view]")
    if len(json.dumps(view, ensure_ascii=False).encode()) > MAX_VIEW_BYTES:
        raise _SlackError("view_too_large")
    messages: list[str] = []
    vtype = view.get("type")
    if vtype not in allowed:
        messages.append(f"[ERROR] must be one of {', '.join(allowed)} [json-pointer:/view/type]")
    if "blocks" not in view:
        messages.append("[ERROR] missing required field: blocks [json-pointer:/view]")
    else:
        messages += _block_count_messages(view["blocks"], MAX_VIEW_BLOCKS, "/view/blocks")
    if vtype == "modal":
        messages += _plain_text_messages(view.get("title"), "/view/title", 24, required=True)
        messages += _plain_text_messages(view.get("submit"), "/view/submit", 24, required=False)
        messages += _plain_text_messages(view.get("close"), "/view/close", 24, required=False)
        blocks = view.get("blocks") if isinstance(view.get("blocks"), list) else []
        if view.get("submit") is None and any(
            isinstance(b, dict) and b.get("type") == "input" for b in blocks
        ):
            messages.append(
                "[ERROR] must provide a submit property when using input blocks [json-pointer:/view]"
            )
    for key, limit in (("private_metadata", 3000), ("callback_id", 255), ("external_id", 255)):
        value = view.get(key)
        if value is not None and (not isinstance(value, str) or len(value) > limit):
            messages.append(
                f"[ERROR] must be a string of at most {limit} characters [json-pointer:/view/{key}]"
            )
    if messages:
        raise _invalid_arguments(*messages)


# ----------------------------------------------------------------------------------------------
# the emulator


class SlackEmulator:
    """Starlette app emulating the Slack Web API methods the bot uses. See the module docstring."""

    def __init__(
        self,
        *,
        bot_token: str = DEFAULT_TOKEN,
        scopes: str | Iterable[str] = DEFAULT_SCOPES,
        channels: Mapping[str, Channel | Mapping[str, Any]] | None = None,
        users: Mapping[str, User | Mapping[str, Any]] | None = None,
        latency: float = 0.0,
        latency_by_method: Mapping[str, float] | None = None,
        strict_triggers: bool = False,
        trigger_ttl: float = 3.0,
        home_enabled: bool = True,
        enforce_scopes: bool = True,
        check_upload_length: bool = True,
        team_id: str = TEAM_ID,
        team_name: str = TEAM_NAME,
        team_domain: str = TEAM_DOMAIN,
        bot_user_id: str = BOT_USER_ID,
        bot_id: str = BOT_ID,
        app_id: str = APP_ID,
        bot_name: str = BOT_NAME,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.bot_token = bot_token
        self.scopes = scopes  # via the property: stored as a list
        self.latency = latency
        self.latency_by_method: dict[str, float] = dict(latency_by_method or {})
        self._holds: dict[str, tuple[Callable[[dict[str, Any]], bool], threading.Event]] = {}
        self.strict_triggers = strict_triggers
        self.trigger_ttl = trigger_ttl
        self.home_enabled = home_enabled
        self.enforce_scopes = enforce_scopes
        self.check_upload_length = check_upload_length
        self.team_id, self.team_name, self.team_domain = team_id, team_name, team_domain
        self.bot_user_id, self.bot_id, self.app_id, self.bot_name = bot_user_id, bot_id, app_id, bot_name
        self.clock = clock
        self.wall_clock = wall_clock

        self.channels: dict[str, Channel] = {}
        for cid, ch in (default_channels() if channels is None else channels).items():
            self.add_channel(cid, ch)
        self.users: dict[str, User] = {}
        for uid, user in (default_users() if users is None else users).items():
            self.add_user(uid, user)

        self._lock = threading.RLock()
        self._ids = itertools.count(1)
        # the app as installed: the manifest's bot events and Messages tab (install() reads a manifest)
        self.bot_events: set[str] = {"app_home_opened", "message.im", "app_mention"}
        self.messages_tab_enabled = True
        self.messages_tab_read_only = False
        self.events_url: str | None = None
        self.signing_secret: str | None = None
        self._deliverers: list[threading.Thread] = []
        self._last_ts = (0, 0)
        self._server: ServerThread | None = None
        self.url: str | None = None
        self._handlers: dict[str, Callable[[dict[str, Any], str], dict[str, Any]]] = {
            "auth.test": self._auth_test,
            "chat.postMessage": self._chat_post_message,
            "chat.postEphemeral": self._chat_post_ephemeral,
            "chat.update": self._chat_update,
            "chat.delete": self._chat_delete,
            "chat.scheduleMessage": self._chat_schedule_message,
            "chat.scheduledMessages.list": self._chat_scheduled_messages_list,
            "chat.deleteScheduledMessage": self._chat_delete_scheduled_message,
            "views.open": self._views_open,
            "views.push": self._views_push,
            "views.update": self._views_update,
            "views.publish": self._views_publish,
            "files.getUploadURLExternal": self._files_get_upload_url_external,
            "files.completeUploadExternal": self._files_complete_upload_external,
            "files.info": self._files_info,
            "files.delete": self._files_delete,
            "conversations.join": self._conversations_join,
            "conversations.info": self._conversations_info,
            "conversations.list": self._conversations_list,
            "conversations.open": self._conversations_open,
            "users.info": self._users_info,
        }
        self.reset()
        self.app = Starlette(
            routes=[
                Route("/api/{method}", self._api_endpoint, methods=["GET", "POST"]),
                Route("/upload/v1/{upload_key}", self._upload_endpoint, methods=["POST"]),
                Route("/files-pri/{team_file}/{filename}", self._download_endpoint, methods=["GET"]),
            ]
        )

    # ------------------------------------------------------------------ configuration helpers

    @property
    def scopes(self) -> list[str]:
        return self._scopes

    @scopes.setter
    def scopes(self, value: str | Iterable[str]) -> None:
        items = value.split(",") if isinstance(value, str) else list(value)
        self._scopes = [s.strip() for s in items if s.strip()]

    @property
    def methods(self) -> list[str]:
        return sorted(self._handlers)

    def add_channel(
        self, channel_id: str, channel: Channel | Mapping[str, Any] | None = None, **kw: Any
    ) -> Channel:
        """``add_channel("C1", kind="public", is_member=False, name="qr")`` (or pass a Channel)."""
        if channel is None:
            channel = Channel(**kw)
        elif not isinstance(channel, Channel):
            channel = Channel(**{**channel, **kw})
        channel.id = channel.id or channel_id
        self.channels[channel_id] = channel
        return channel

    def add_user(self, user_id: str, user: User | Mapping[str, Any] | None = None, **kw: Any) -> User:
        """``add_user("U1", locale="zh-CN", tz="Asia/Shanghai", tz_offset=28800)`` (or pass a User)."""
        if user is None:
            user = User(**kw)
        elif not isinstance(user, User):
            known = {f.name for f in fields(User)}
            user = User(**{k: v for k, v in {**user, **kw}.items() if k in known})
        user.id = user.id or user_id
        self.users[user_id] = user
        return user

    def reset(self) -> None:
        """Forget recorded calls, uploads, messages, views and injected faults (keeps channels/users)."""
        with self._lock:
            self.calls: list[Call] = []
            self.files: dict[str, Upload] = {}  # every file announced, by id
            self.uploads: list[Upload] = []  # files completed via files.completeUploadExternal, in order
            # every channel message (file shares included), with its "channel"
            self.messages: list[dict[str, Any]] = []
            self.ephemerals: list[dict[str, Any]] = []
            self.scheduled_messages: list[dict[str, Any]] = []
            self.views: dict[str, dict[str, Any]] = {}  # every modal/home view by id (current version)
            self.home_views: dict[str, dict[str, Any]] = {}  # user id -> published home view
            self.view_stacks: dict[str, list[str]] = {}  # root view id -> open stack of view ids
            self._upload_keys: dict[str, str] = {}
            self._triggers: dict[str, _Trigger] = {}
            self._exchanged: set[str] = set()
            self._expire_next = 0
            self._failures: dict[str, deque[tuple[str, dict[str, Any]]]] = {}
            self._ratelimits: dict[str, deque[int]] = {}
            self._rate_windows: dict[str, _RateLimit] = {}
            self._upload_failures: deque[tuple[int, str]] = deque()
            self.deliveries: list[Delivery] = []
            for ch in self.channels.values():
                ch.messages.clear()

    # ------------------------------------------------------------------ fault injection

    def _check_method(self, method: str) -> None:
        if method not in self._handlers:
            raise ValueError(f"SlackEmulator does not implement {method!r}; known: {self.methods}")

    def fail_next(self, method: str, error: str, times: int = 1, **extra: Any) -> None:
        """The next ``times`` calls to ``method`` answer ``{"ok": false, "error": error, **extra}``."""
        self._check_method(method)
        with self._lock:
            self._failures.setdefault(method, deque()).extend([(error, extra)] * times)

    def hold_answers(self, method: str, when: Callable[[dict[str, Any]], bool] | None = None) -> None:
        """Calls to ``method`` (those whose params ``when`` accepts) take effect and are recorded as usual,
        but their HTTP answer is held back until :meth:`release_answers`: the caller cannot tell that its
        call took effect."""
        self._check_method(method)
        with self._lock:
            self._holds[method] = (when or (lambda params: True), threading.Event())

    def release_answers(self) -> None:
        """Send every held answer and hold no more."""
        with self._lock:
            for _, released in self._holds.values():
                released.set()
            self._holds.clear()

    def ratelimit_next(self, method: str, retry_after: int = 1, times: int = 1) -> None:
        """The next ``times`` calls to ``method`` get HTTP 429, ``Retry-After: retry_after``."""
        self._check_method(method)
        with self._lock:
            self._ratelimits.setdefault(method, deque()).extend([retry_after] * times)

    def set_rate_limit(
        self, method: str, limit: int, per_seconds: float = 60.0, retry_after: int | None = None
    ) -> None:
        """Sliding-window limit: more than ``limit`` calls within ``per_seconds`` → 429 (``Retry-After``:
        ``retry_after`` or the time until the window frees up). ``reset()`` clears it."""
        self._check_method(method)
        with self._lock:
            self._rate_windows[method] = _RateLimit(limit, per_seconds, retry_after)

    def fail_upload_next(self, status: int = 500, times: int = 1, body: str = "upload failed") -> None:
        """The next ``times`` POSTs to an upload URL answer HTTP ``status`` (text/plain ``body``)."""
        with self._lock:
            self._upload_failures.extend([(status, body)] * times)

    def issue_trigger_id(self, *, view_id: str | None = None, user_id: str | None = None) -> str:
        """A fresh trigger id in Slack's ``digits.digits.hex`` shape, valid once for ``trigger_ttl``
        seconds. ``view_id``: the modal the interaction came from (views.push stacks onto it)."""
        with self._lock:
            tid = f"{next(self._ids)}.{int(self.wall_clock())}.{secrets.token_hex(16)}"
            self._triggers[tid] = _Trigger(self.clock(), view_id, user_id)
            return tid

    def expire_trigger(self, trigger_id: str) -> None:
        with self._lock:
            self._triggers.setdefault(trigger_id, _Trigger(self.clock())).expired = True

    def expire_next_trigger(self, times: int = 1) -> None:
        """The next ``times`` views.open/views.push answer ``expired_trigger_id`` whatever the id."""
        with self._lock:
            self._expire_next += times

    def close_view(self, view_id: str) -> None:
        """Close ``view_id`` and everything stacked above it (what the user closing a modal does)."""
        with self._lock:
            for root, stack in list(self.view_stacks.items()):
                if view_id in stack:
                    del stack[stack.index(view_id) :]
                    if not stack:
                        del self.view_stacks[root]

    # ------------------------------------------------------------------ assertions helpers

    def calls_to(self, method: str, *, ok: bool | None = None) -> list[Call]:
        with self._lock:
            return [c for c in self.calls if c.method == method and (ok is None or c.ok == ok)]

    def last_call(self, method: str) -> Call:
        calls = self.calls_to(method)
        if not calls:
            raise AssertionError(f"no {method} call; calls so far: {[c.method for c in self.calls]}")
        return calls[-1]

    def _wait_result(self, method: str, count: int, ok: bool | None) -> list[Call] | None:
        calls = self.calls_to(method, ok=ok)
        return calls if len(calls) >= count else None

    def _timeout(self, method: str, count: int, timeout: float, ok: bool | None) -> WaitTimeout:
        seen = [(c.method, c.error) if c.error else c.method for c in self.calls]
        qual = "" if ok is None else f" with ok={ok}"
        return WaitTimeout(f"expected >= {count} {method} call(s){qual} within {timeout}s; calls: {seen}")

    def wait_for(
        self, method: str, count: int = 1, timeout: float = 5.0, *, ok: bool | None = None
    ) -> list[Call]:
        """Block (polling) until ``count`` answered calls to ``method`` exist; returns all of them.
        From an async test whose bot runs on the same event loop use :meth:`wait_for_async`."""
        deadline = time.monotonic() + timeout
        while (calls := self._wait_result(method, count, ok)) is None:
            if time.monotonic() > deadline:
                raise self._timeout(method, count, timeout, ok)
            time.sleep(0.01)
        return calls

    async def wait_for_async(
        self, method: str, count: int = 1, timeout: float = 5.0, *, ok: bool | None = None
    ) -> list[Call]:
        deadline = time.monotonic() + timeout
        while (calls := self._wait_result(method, count, ok)) is None:
            if time.monotonic() > deadline:
                raise self._timeout(method, count, timeout, ok)
            await asyncio.sleep(0.01)
        return calls

    def messages_in(self, channel_id: str) -> list[dict[str, Any]]:
        with self._lock:
            return [m for m in self.messages if m["channel"] == channel_id]

    # ------------------------------------------------------------------ the app as installed; events

    def install(self, manifest: Mapping[str, Any]) -> None:
        """Install the app as ``manifest`` (manifest.yml, loaded) describes it: its bot scopes, its bot events
        and its App Home Messages tab (https://docs.slack.dev/reference/app-manifest)."""
        self.scopes = list(manifest.get("oauth_config", {}).get("scopes", {}).get("bot", []))
        events = manifest.get("settings", {}).get("event_subscriptions", {})
        self.bot_events = set(events.get("bot_events", []))
        home = manifest.get("features", {}).get("app_home", {})
        self.messages_tab_enabled = bool(home.get("messages_tab_enabled", False))
        self.messages_tab_read_only = bool(home.get("messages_tab_read_only_enabled", False))

    def deliver_events_to(self, url: str, signing_secret: str) -> None:
        """Send events to the app's request URL (``…/slack/events``), signed with its signing secret."""
        self.events_url, self.signing_secret = url, signing_secret

    def _subscribed(self, event: str, scope: str) -> bool:
        """Slack delivers an event the app subscribes to only with the event's scope granted."""
        return self.events_url is not None and event in self.bot_events and scope in self._scopes

    def slack_text(self, typed: str) -> str:
        """What a person typed as the message's ``text`` (https://docs.slack.dev/messaging/formatting-message-text)."""
        text = typed.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        names = {self.bot_name: self.bot_user_id, **{u.name or uid.lower(): uid for uid, u in self.users.items()}}
        for name in sorted(names, key=len, reverse=True):
            text = text.replace(f"@{name}", f"<@{names[name]}>")
        return re.sub(r"(?<![<|])(https?://[^\s<>]+)", r"<\1>", text)

    def user_says(self, user_id: str, typed: str, *, channel: str | None = None, thread_ts: str | None = None,
                  files: list[dict[str, Any]] | None = None) -> str:
        """``user_id`` writes ``typed`` in ``channel`` (default: their DM with the bot), in ``thread_ts``
        when given, with ``files`` (objects from :meth:`add_user_file`) attached; returns the message's ts.
        Delivers ``message.im`` / ``app_mention`` as subscribed (see the module docstring) and waits for
        the app's answer to each delivery."""
        with self._lock:
            ch = self._dm_with(user_id) if channel is None else self.channels.get(channel)
            if ch is None:
                raise ValueError(f"no channel {channel!r}")
            if ch.kind == "im" and (not self.messages_tab_enabled or self.messages_tab_read_only):
                raise MessagingRefused("Sending messages to this app has been turned off.")
            if not ch.has_user(user_id):
                raise MessagingRefused(f"{user_id} is not in {ch.id}")
            ts = self._next_ts()
            msg: dict[str, Any] = {"type": "message", "user": user_id, "text": self.slack_text(typed), "ts": ts,
                                   "team": self.team_id, "client_msg_id": secrets.token_hex(8)}
            if files:
                msg.update(subtype="file_share", files=list(files), upload=False)
            if thread_ts:
                parent = next((m for m in ch.messages if m["ts"] == thread_ts), None)
                msg.update(thread_ts=thread_ts, parent_user_id=(parent or {}).get("user", user_id))
            ch.messages.append(msg)
            self.messages.append({**msg, "channel": ch.id})
            events: list[dict[str, Any]] = []
            if ch.kind == "im":
                if self._subscribed("message.im", "im:history"):
                    events.append({**msg, "channel": ch.id, "event_ts": ts, "channel_type": "im"})
            elif (f"<@{self.bot_user_id}>" in msg["text"] and ch.is_member
                  and self._subscribed("app_mention", "app_mentions:read")):
                mention = {k: v for k, v in msg.items() if k not in ("subtype", "upload")}
                events.append({**mention, "type": "app_mention", "channel": ch.id, "event_ts": ts})
        for event in events:
            self._deliver(event)
        return ts

    def _deliver(self, event: dict[str, Any]) -> Delivery:
        body = {"token": "emulated-verification-token", "team_id": self.team_id, "api_app_id": self.app_id,
                "event": event, "type": "event_callback", "event_id": "Ev" + secrets.token_hex(5).upper(),
                "event_time": int(self.wall_clock()), "event_context": secrets.token_hex(12),
                "authorizations": [{"enterprise_id": None, "team_id": self.team_id, "user_id": self.bot_user_id,
                                    "is_bot": True, "is_enterprise_install": False}],
                "is_ext_shared_channel": False}
        return self._post_event(Delivery(body["event_id"], body))

    def redeliver(self, event_id: str, reason: str = "http_timeout") -> Delivery:
        """Send an event again as Slack's retry does: the same body, ``X-Slack-Retry-Num`` counting up."""
        with self._lock:
            first = [d for d in self.deliveries if d.event_id == event_id]
        if not first:
            raise ValueError(f"no delivery of {event_id}")
        return self._post_event(Delivery(event_id, first[0].body, retry_num=len(first)), reason)

    def _post_event(self, delivery: Delivery, reason: str | None = None) -> Delivery:
        assert self.events_url and self.signing_secret, "deliver_events_to() first"
        raw = json.dumps(delivery.body, ensure_ascii=False).encode()
        stamp = str(int(self.wall_clock()))
        digest = hmac.new(self.signing_secret.encode(), b"v0:" + stamp.encode() + b":" + raw, hashlib.sha256)
        headers = {"content-type": "application/json", "x-slack-request-timestamp": stamp,
                   "x-slack-signature": "v0=" + digest.hexdigest()}
        if delivery.retry_num:
            headers.update({"x-slack-retry-num": str(delivery.retry_num), "x-slack-retry-reason": reason or ""})
        started = time.monotonic()
        try:
            answer = httpx.post(self.events_url, content=raw, headers=headers, timeout=EVENT_TIMEOUT, trust_env=False)
            delivery.status = answer.status_code
        except httpx.HTTPError:
            delivery.status = None
        delivery.seconds = time.monotonic() - started
        with self._lock:
            self.deliveries.append(delivery)
        return delivery

    def deliveries_of(self, event_type: str) -> list[Delivery]:
        with self._lock:
            return [d for d in self.deliveries if d.body["event"].get("type") == event_type]

    # ------------------------------------------------------------------ serving

    def start(self) -> SlackEmulator:
        self._server = ServerThread(self.app).start()
        self.url = self._server.url
        return self

    def stop(self) -> None:
        for thread in self._deliverers:
            thread.join(timeout=EVENT_TIMEOUT + 1)
        if self._server is not None:
            self._server.stop()
            self._server = None

    def __enter__(self) -> SlackEmulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def api_url(self) -> str:
        """Base URL for slack_sdk clients (``base_url=emu.api_url``)."""
        if self.url is None:
            raise RuntimeError("SlackEmulator not started (use `with SlackEmulator() as emu:` or .start())")
        return self.url + "/api/"

    def async_client(self, **kw: Any) -> Any:
        from slack_sdk.web.async_client import AsyncWebClient

        kw.setdefault("token", self.bot_token)
        return AsyncWebClient(base_url=self.api_url, **kw)

    def web_client(self, **kw: Any) -> Any:
        from slack_sdk import WebClient

        kw.setdefault("token", self.bot_token)
        return WebClient(base_url=self.api_url, **kw)

    # ------------------------------------------------------------------ HTTP plumbing

    @staticmethod
    def _json_response(
        body: dict[str, Any], status: int = 200, headers: Mapping[str, str] | None = None
    ) -> Response:
        return Response(
            json.dumps(body, ensure_ascii=False),
            status_code=status,
            headers=dict(headers or {}),
            media_type="application/json; charset=utf-8",
        )

    @staticmethod
    async def _parse_params(request: Request) -> dict[str, Any]:
        params: dict[str, Any] = dict(request.query_params)
        body = await request.body()
        if not body.strip():
            return params
        ctype = request.headers.get("content-type", "").lower()
        if "json" in ctype or body.lstrip()[:1] == b"{":
            try:
                data = json.loads(body)
            except ValueError:
                raise _SlackError("invalid_json") from None
            if not isinstance(data, dict):
                raise _SlackError("invalid_json")
            params.update(data)
        elif "multipart/form-data" in ctype:
            for name, filename, content, _ in _parse_multipart(body, request.headers["content-type"]):
                params[name] = content if filename is not None else content.decode("utf-8", "replace")
        else:
            params.update(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
        return params

    def _common_headers(self, method: str) -> dict[str, str]:
        headers = {"x-oauth-scopes": ",".join(self._scopes)}
        if method in METHOD_SCOPES:
            headers["x-accepted-oauth-scopes"] = ",".join(METHOD_SCOPES[method])
        return headers

    async def _api_endpoint(self, request: Request) -> Response:
        method = request.path_params["method"]
        arrived = self.wall_clock()
        headers = {k.lower(): v for k, v in request.headers.items()}
        auth = headers.get("authorization", "")
        token: str | None = auth[7:].strip() if auth[:7].lower() == "bearer " else None
        parse_error: _SlackError | None = None
        try:
            params = await self._parse_params(request)
        except _SlackError as e:
            params, parse_error = {}, e
        token = token or _str(params.get("token")) or None
        delay = self.latency_by_method.get(method, self.latency)
        if delay:
            await asyncio.sleep(delay)
        base = str(request.base_url).rstrip("/")
        with self._lock:
            if parse_error is not None:
                status, body, extra = 200, parse_error.body, {}
            else:
                status, body, extra = self._handle(method, params, token, base)
            self.calls.append(Call(method, params, headers, request.method, arrived, token, status, body))
            hold = self._holds.get(method)
            released = hold[1] if hold is not None and hold[0](params) else None
        while released is not None and not released.is_set():
            await asyncio.sleep(0.02)
        return self._json_response(body, status, {**self._common_headers(method), **extra})

    def _handle(
        self, method: str, params: dict[str, Any], token: str | None, base: str
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        handler = self._handlers.get(method)
        if handler is None:
            return 200, {"ok": False, "error": "unknown_method", "req_method": method}, {}
        queued = self._ratelimits.get(method)
        if queued:
            retry_after = queued.popleft()
            return 429, {"ok": False, "error": "ratelimited"}, {"Retry-After": str(retry_after)}
        window = self._rate_windows.get(method)
        if window is not None:
            now = self.clock()
            while window.hits and now - window.hits[0] >= window.per_seconds:
                window.hits.popleft()
            if len(window.hits) >= window.limit:
                wait = window.retry_after or max(1, math.ceil(window.per_seconds - (now - window.hits[0])))
                return 429, {"ok": False, "error": "ratelimited"}, {"Retry-After": str(wait)}
            window.hits.append(now)
        failures = self._failures.get(method)
        if failures:
            error, extra = failures.popleft()
            return 200, {"ok": False, "error": error, **extra}, {}
        if not token:
            return 200, {"ok": False, "error": "not_authed"}, {}
        if token != self.bot_token:
            return 200, {"ok": False, "error": "invalid_auth"}, {}
        try:
            needed = METHOD_SCOPES.get(method)
            if needed:
                self._require_scope(*needed)
            return 200, handler(params, base), {}
        except _SlackError as e:
            return 200, e.body, {}

    def _require_scope(self, *needed: str) -> None:
        if self.enforce_scopes and not any(s in self._scopes for s in needed):
            raise _SlackError("missing_scope", needed=",".join(needed), provided=",".join(self._scopes))

    # ------------------------------------------------------------------ ids, clocks

    def _new_id(self, prefix: str) -> str:
        return f"{prefix}{next(self._ids):010d}"

    def _next_ts(self) -> str:
        sec = int(self.wall_clock())
        last_sec, last_seq = self._last_ts
        self._last_ts = (last_sec, last_seq + 1) if sec <= last_sec else (sec, 0)
        return f"{self._last_ts[0]}.{self._last_ts[1]:06d}"

    def _new_hash(self) -> str:
        return f"{int(self.wall_clock())}.{secrets.token_hex(4)}"

    # ------------------------------------------------------------------ channel rules

    def _find_channel(self, channel_ref: Any, *, by_name: bool = False) -> Channel | None:
        ref = _str(channel_ref)
        if not ref:
            return None
        if ref in self.channels:
            return self.channels[ref]
        if by_name:
            name = ref.lstrip("#")
            for ch in self.channels.values():
                if ch.kind != "im" and ch.name == name:
                    return ch
            if ref in self.users:  # posting to a user id lands in the app's DM with them
                return self._dm_with(ref)
        return None

    def _dm_with(self, user_id: str) -> Channel:
        for ch in self.channels.values():
            if ch.kind == "im" and ch.user == user_id:
                return ch
        return self.add_channel("D" + user_id.lstrip("UW"), kind="im", user=user_id, is_member=True)

    def _channel_for_post(self, channel_ref: Any, *, public_scope_ok: bool) -> Channel:
        ch = self._find_channel(channel_ref, by_name=public_scope_ok)
        if ch is None:
            raise _SlackError("channel_not_found")
        if not ch.is_member:
            if ch.kind != "public":
                raise _SlackError("channel_not_found")
            if not (public_scope_ok and "chat:write.public" in self._scopes):
                raise _SlackError("not_in_channel")
        if ch.is_archived:
            raise _SlackError("is_archived")
        return ch

    def _message_content(self, p: Mapping[str, Any], *, require: bool = True) -> dict[str, Any]:
        text = _str(p.get("text"))
        blocks = _json_param(p, "blocks", "invalid_blocks_format")
        attachments = _json_param(p, "attachments", "invalid_attachments")
        if blocks is not None:
            problems = _block_count_messages(blocks, MAX_MESSAGE_BLOCKS, "/blocks")
            if problems:
                raise _SlackError("invalid_blocks", response_metadata={"messages": problems})
        if require and not text and not blocks and not attachments:
            raise _SlackError("no_text")
        if text is not None and len(text) > MAX_TEXT:
            raise _SlackError("msg_too_long")
        content: dict[str, Any] = {"text": text or ""}
        if blocks is not None:
            content["blocks"] = blocks
        if attachments is not None:
            content["attachments"] = attachments
        return content

    def _bot_message(
        self, ts: str, content: Mapping[str, Any], thread_ts: str | None = None
    ) -> dict[str, Any]:
        msg: dict[str, Any] = {
            "type": "message",
            "user": self.bot_user_id,
            "bot_id": self.bot_id,
            "app_id": self.app_id,
            "team": self.team_id,
            "ts": ts,
            **content,
        }
        if thread_ts:
            msg["thread_ts"] = thread_ts
        return msg

    def _store_message(self, ch: Channel, msg: dict[str, Any]) -> None:
        ch.messages.append(msg)
        self.messages.append({**msg, "channel": ch.id})
        if msg.get("bot_id") and ch.kind == "im" and self._subscribed("message.im", "im:history"):
            # the bot's own post comes back as message.im; sent from a thread of its own, as Slack's
            # delivery does not wait for the Web API call that caused it
            event = {**msg, "channel": ch.id, "event_ts": msg["ts"], "channel_type": "im"}
            thread = threading.Thread(target=self._deliver, args=(event,), daemon=True)
            self._deliverers.append(thread)
            thread.start()

    def _find_message(self, ch: Channel, ts: Any) -> dict[str, Any]:
        for msg in ch.messages:
            if msg["ts"] == _str(ts):
                return msg
        raise _SlackError("message_not_found")

    # ------------------------------------------------------------------ methods: auth, chat

    def _auth_test(self, p: dict[str, Any], base: str) -> dict[str, Any]:
        return {
            "ok": True,
            "url": f"https://{self.team_domain}.slack.com/",
            "team": self.team_name,
            "user": self.bot_name,
            "team_id": self.team_id,
            "user_id": self.bot_user_id,
            "bot_id": self.bot_id,
            "is_enterprise_install": False,
        }

    def _chat_post_message(self, p: dict[str, Any], base: str) -> dict[str, Any]:
        ch = self._channel_for_post(p.get("channel"), public_scope_ok=True)
        content = self._message_content(p)
        for key in (
            "metadata",
            "unfurl_links",
            "unfurl_media",
            "mrkdwn",
            "reply_broadcast",
            "icon_emoji",
            "username",
        ):
            if key in p:
                content[key] = p[key]
        msg = self._bot_message(self._next_ts(), content, _str(p.get("thread_ts")))
        self._store_message(ch, msg)
        return {"ok": True, "channel": ch.id, "ts": msg["ts"], "message": msg}

    def _chat_post_ephemeral(self, p: dict[str, Any], base: str) -> dict[str, Any]:
        ch = self._channel_for_post(p.get("channel"), public_scope_ok=True)
        user = _str(p.get("user"))
        if not user or user not in self.users or not ch.has_user(user):
            raise _SlackError("user_not_in_channel")
        content = self._message_content(p)
        ts = self._next_ts()
        self.ephemerals.append(
            {**self._bot_message(ts, content, _str(p.get("thread_ts"))), "channel": ch.id, "to": user}
        )
        return {"ok": True, "message_ts": ts}

    def _chat_update(self, p: dict[str, Any], base: str) -> dict[str, Any]:
        ch = self._find_channel(p.get("channel"))
        if ch is None:
            raise _SlackError("channel_not_found")
        msg = self._find_message(ch, p.get("ts"))
        if msg.get("bot_id") != self.bot_id:
            raise _SlackError("cant_update_message")
        content = self._message_content(p)
        msg.update(content)
        msg["edited"] = {"user": self.bot_user_id, "ts": self._next_ts()}
        for record in self.messages:
            if record["channel"] == ch.id and record["ts"] == msg["ts"]:
                record.update(msg)
        return {"ok": True, "channel": ch.id, "ts": msg["ts"], "text": msg.get("text", ""), "message": msg}

    def _chat_delete(self, p: dict[str, Any], base: str) -> dict[str, Any]:
        ch = self._find_channel(p.get("channel"))
        if ch is None:
            raise _SlackError("channel_not_found")
        msg = self._find_message(ch, p.get("ts"))
        if msg.get("bot_id") != self.bot_id:
            raise _SlackError("cant_delete_message")
        ch.messages.remove(msg)
        self.messages = [m for m in self.messages if not (m["channel"] == ch.id and m["ts"] == msg["ts"])]
        return {"ok": True, "channel": ch.id, "ts": msg["ts"]}

    def _chat_schedule_message(self, p: dict[str, Any], base: str) -> dict[str, Any]:
        ch = self._channel_for_post(p.get("channel"), public_scope_ok=True)
        try:
            post_at = int(str(p.get("post_at")))
        except ValueError:
            raise _SlackError("invalid_time") from None
        now = self.wall_clock()
        if post_at < now:
            raise _SlackError("time_in_past")
        if post_at > now + MAX_SCHEDULE_AHEAD:
            raise _SlackError("time_too_far")
        nearby = [
            s
            for s in self.scheduled_messages
            if s["channel_id"] == ch.id and abs(s["post_at"] - post_at) < 300
        ]
        if len(nearby) >= 30:
            raise _SlackError("restricted_too_many")
        content = self._message_content(p)
        sid = self._new_id("Q")
        msg = self._bot_message("", content, _str(p.get("thread_ts")))
        del msg["ts"]
        self.scheduled_messages.append(
            {
                "id": sid,
                "channel_id": ch.id,
                "post_at": post_at,
                "date_created": int(now),
                "text": content["text"],
                "message": msg,
            }
        )
        return {"ok": True, "channel": ch.id, "scheduled_message_id": sid, "post_at": post_at, "message": msg}

    def _chat_scheduled_messages_list(self, p: dict[str, Any], base: str) -> dict[str, Any]:
        channel = _str(p.get("channel"))
        items = [
            {k: s[k] for k in ("id", "channel_id", "post_at", "date_created", "text")}
            for s in self.scheduled_messages
            if not channel or s["channel_id"] == channel
        ]
        return {"ok": True, "scheduled_messages": items, "response_metadata": {"next_cursor": ""}}

    def _chat_delete_scheduled_message(self, p: dict[str, Any], base: str) -> dict[str, Any]:
        sid, channel = _str(p.get("scheduled_message_id")), _str(p.get("channel"))
        for s in self.scheduled_messages:
            if s["id"] == sid and s["channel_id"] == channel:
                self.scheduled_messages.remove(s)
                return {"ok": True}
        raise _SlackError("invalid_scheduled_message_id")

    # ------------------------------------------------------------------ methods: views

    def _view_param(self, p: Mapping[str, Any]) -> Any:
        return _json_param(p, "view", "invalid_arguments")

    def _check_trigger(self, trigger_id: Any) -> _Trigger | None:
        tid = _str(trigger_id)
        if not tid:
            raise _invalid_arguments("[ERROR] missing required field: trigger_id [json-pointer:/trigger_id]")
        if self._expire_next > 0:
            self._expire_next -= 1
            raise _SlackError("expired_trigger_id")
        if tid in self._exchanged:
            raise _SlackError("exchanged_trigger_id")
        info = self._triggers.get(tid)
        if info is not None:
            if info.expired or self.clock() - info.issued > self.trigger_ttl:
                raise _SlackError("expired_trigger_id")
        elif self.strict_triggers:
            raise _SlackError("invalid_trigger_id")
        return info

    def _render_view(
        self, view: Mapping[str, Any], view_id: str, root_id: str, previous: str | None, state: Any = None
    ) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": view_id,
            "team_id": self.team_id,
            "type": view["type"],
            "blocks": view.get("blocks", []),
            "private_metadata": view.get("private_metadata", ""),
            "callback_id": view.get("callback_id", ""),
            "state": state or {"values": {}},
            "hash": self._new_hash(),
            "title": view.get("title"),
            "clear_on_close": bool(view.get("clear_on_close", False)),
            "notify_on_close": bool(view.get("notify_on_close", False)),
            "close": view.get("close"),
            "submit": view.get("submit"),
            "previous_view_id": previous,
            "root_view_id": root_id,
            "app_id": self.app_id,
            "external_id": view.get("external_id", ""),
            "app_installed_team_id": self.team_id,
            "bot_id": self.bot_id,
        }
        if view["type"] == "home":
            for key in ("title", "close", "submit", "clear_on_close", "notify_on_close", "previous_view_id"):
                out.pop(key)
        return out

    def _check_external_id(self, view: Mapping[str, Any], own_id: str | None = None) -> None:
        ext = view.get("external_id")
        if ext and any(v["external_id"] == ext and vid != own_id for vid, v in self.views.items()):
            raise _SlackError("duplicate_external_id")

    def _views_open(self, p: dict[str, Any], base: str) -> dict[str, Any]:
        self._check_trigger(p.get("trigger_id"))
        view = self._view_param(p)
        validate_view(view, ("modal",))
        self._check_external_id(view)
        self._exchanged.add(str(p["trigger_id"]))
        vid = self._new_id("V")
        rendered = self._render_view(view, vid, vid, None)
        self.views[vid] = rendered
        self.view_stacks[vid] = [vid]
        return {"ok": True, "view": rendered}

    def _views_push(self, p: dict[str, Any], base: str) -> dict[str, Any]:
        info = self._check_trigger(p.get("trigger_id"))
        view = self._view_param(p)
        validate_view(view, ("modal",))
        stack: list[str] | None = None
        if info is not None and info.view_id is not None:
            stack = next((s for s in self.view_stacks.values() if info.view_id in s), None)
        elif self.view_stacks:
            stack = list(self.view_stacks.values())[-1]
        if stack is not None and len(stack) >= MAX_VIEW_STACK:
            raise _SlackError("push_limit_reached")
        self._check_external_id(view)
        self._exchanged.add(str(p["trigger_id"]))
        vid = self._new_id("V")
        if stack is None:
            rendered = self._render_view(view, vid, vid, None)
            self.view_stacks[vid] = [vid]
        else:
            rendered = self._render_view(view, vid, stack[0], stack[-1])
            stack.append(vid)
        self.views[vid] = rendered
        return {"ok": True, "view": rendered}

    def _views_update(self, p: dict[str, Any], base: str) -> dict[str, Any]:
        view_id, external_id = _str(p.get("view_id")), _str(p.get("external_id"))
        if not view_id and not external_id:
            raise _invalid_arguments(
                "[ERROR] either view_id or external_id is required [json-pointer:/view_id]"
            )
        current = (
            self.views.get(view_id or "")
            if view_id
            else next((v for v in self.views.values() if v["external_id"] == external_id), None)
        )
        if current is None:
            raise _SlackError("not_found")
        view = self._view_param(p)
        validate_view(view, (current["type"],))
        self._check_external_id(view, current["id"])
        given_hash = _str(p.get("hash"))
        if given_hash and given_hash != current["hash"]:
            raise _SlackError("hash_conflict")
        rendered = self._render_view(
            view, current["id"], current["root_view_id"], current.get("previous_view_id"), current["state"]
        )
        self.views[current["id"]] = rendered
        for user, home in self.home_views.items():
            if home["id"] == current["id"]:
                self.home_views[user] = rendered
        return {"ok": True, "view": rendered}

    def _views_publish(self, p: dict[str, Any], base: str) -> dict[str, Any]:
        user_id = _str(p.get("user_id"))
        if not user_id:
            raise _invalid_arguments("[ERROR] missing required field: user_id [json-pointer:/user_id]")
        if user_id not in self.users:
            raise _SlackError("user_not_found")
        if not self.home_enabled:
            raise _SlackError("not_enabled")
        view = self._view_param(p)
        validate_view(view, ("home",))
        current = self.home_views.get(user_id)
        given_hash = _str(p.get("hash"))
        if given_hash and (current is None or given_hash != current["hash"]):
            raise _SlackError("hash_conflict")
        vid = current["id"] if current else self._new_id("V")
        rendered = self._render_view(view, vid, vid, None)
        self.views[vid] = rendered
        self.home_views[user_id] = rendered
        return {"ok": True, "view": rendered}

    # ------------------------------------------------------------------ methods: files

    def _file_object(self, up: Upload, base: str, *, shared: bool) -> dict[str, Any]:
        ext = up.filename.rsplit(".", 1)[-1].lower() if "." in up.filename else "binary"
        private = f"{base}/files-pri/{self.team_id}-{up.file_id}/{up.filename}"
        channels = up.channels if shared else []
        public = [c for c in channels if c in self.channels and self.channels[c].kind == "public"]
        others = [c for c in channels if c not in public]
        obj: dict[str, Any] = {
            "id": up.file_id,
            "created": up.created,
            "timestamp": up.created,
            "name": up.filename,
            "title": up.title or up.filename,
            "mimetype": up.mimetype,
            "filetype": ext,
            "pretty_type": ext.upper(),
            "user": self.bot_user_id,
            "user_team": self.team_id,
            "editable": False,
            "size": up.size,
            "mode": "hosted",
            "is_external": False,
            "external_type": "",
            "is_public": bool(public),
            "public_url_shared": False,
            "display_as_bot": False,
            "username": "",
            "url_private": private,
            "url_private_download": private + "?download=1",
            "permalink": f"https://{self.team_domain}.slack.com/files/{self.bot_user_id}/{up.file_id}/{up.filename}",
            "permalink_public": f"https://slack-files.com/{self.team_id}-{up.file_id}-{up.file_id.lower()}",
            "comments_count": 0,
            "is_starred": False,
            "shares": {},
            "channels": list(public),
            "groups": [c for c in others if self.channels.get(c) and self.channels[c].kind != "im"],
            "ims": [c for c in others if self.channels.get(c) and self.channels[c].kind == "im"],
            "has_rich_preview": False,
        }
        if up.alt_txt:
            obj["alt_txt"] = up.alt_txt
        if shared and up.message_ts:
            share = {
                "ts": up.message_ts,
                "channel_name": "",
                "team_id": self.team_id,
                "share_user_id": self.bot_user_id,
            }
            if up.thread_ts:
                share["thread_ts"] = up.thread_ts
            shares: dict[str, dict[str, list[dict[str, Any]]]] = {}
            for c in channels:
                shares.setdefault("public" if c in public else "private", {})[c] = [share]
            obj["shares"] = shares
        return obj

    def _files_get_upload_url_external(self, p: dict[str, Any], base: str) -> dict[str, Any]:
        filename, length = _str(p.get("filename")), _str(p.get("length"))
        if not filename or not length:
            raise _SlackError("missing_argument")
        try:
            size = int(length)
        except ValueError:
            raise _invalid_arguments("[ERROR] must be an integer [json-pointer:/length]") from None
        if size < 1:
            raise _invalid_arguments("[ERROR] must be greater than 0 [json-pointer:/length]")
        fid = self._new_id("F")
        key = secrets.token_urlsafe(18)
        url = f"{base}/upload/v1/{key}"
        self._upload_keys[key] = fid
        self.files[fid] = Upload(
            fid,
            filename,
            size,
            url,
            int(self.wall_clock()),
            _str(p.get("alt_txt")),
            _str(p.get("snippet_type")),
        )
        return {"ok": True, "upload_url": url, "file_id": fid}

    def _files_complete_upload_external(self, p: dict[str, Any], base: str) -> dict[str, Any]:
        items = _json_param(p, "files", "invalid_arguments")
        if not isinstance(items, list) or not items:
            raise _invalid_arguments("[ERROR] missing required field: files [json-pointer:/files]")
        targets: list[str] = []
        channel_id = _str(p.get("channel_id"))
        if channel_id:
            targets.append(channel_id)
        channels = _str(p.get("channels"))
        if channels:
            targets += [c.strip() for c in channels.split(",") if c.strip() and c.strip() not in targets]
        ups: list[tuple[Upload, dict[str, Any]]] = []
        for item in items:
            fid = item.get("id") if isinstance(item, dict) else None
            up = self.files.get(fid) if isinstance(fid, str) else None
            if up is None or not up.uploaded or up.completed or up.deleted:
                raise _SlackError("file_not_found")
            ups.append((up, item))
        for cid in targets:  # file shares need real membership: chat:write.public does not help
            self._channel_for_post(cid, public_scope_ok=False)
        thread_ts, comment = _str(p.get("thread_ts")), _str(p.get("initial_comment"))
        for up, item in ups:
            up.title = _str(item.get("title")) or up.filename
            up.channel_id, up.channels = channel_id, list(targets)
            up.initial_comment, up.thread_ts, up.completed = comment, thread_ts, True
            self.uploads.append(up)
        if targets:
            ts = self._next_ts()
            for up, _ in ups:
                up.message_ts = ts
            for cid in targets:
                files = [self._file_object(up, base, shared=True) for up, _ in ups]
                msg = self._bot_message(
                    ts, {"text": comment or "", "files": files, "upload": True}, thread_ts
                )
                self._store_message(self.channels[cid], msg)
        return {"ok": True, "files": [self._file_object(up, base, shared=False) for up, _ in ups]}

    def _files_info(self, p: dict[str, Any], base: str) -> dict[str, Any]:
        up = self.files.get(_str(p.get("file")) or "")
        if up is None or not up.completed:
            raise _SlackError("file_not_found")
        if up.deleted:
            raise _SlackError("file_deleted")
        return {
            "ok": True,
            "file": self._file_object(up, base, shared=True),
            "comments": [],
            "response_metadata": {"next_cursor": ""},
        }

    def _files_delete(self, p: dict[str, Any], base: str) -> dict[str, Any]:
        up = self.files.get(_str(p.get("file")) or "")
        if up is None or not up.completed:
            raise _SlackError("file_not_found")
        if up.deleted:
            raise _SlackError("file_deleted")
        up.deleted = True
        return {"ok": True}

    async def _upload_endpoint(self, request: Request) -> Response:
        key = request.path_params["upload_key"]
        body = await request.body()
        ctype = request.headers.get("content-type", "")
        data, part_type = body, ctype or None
        if "multipart/form-data" in ctype.lower():
            parts = _parse_multipart(body, ctype)
            chosen = next((pt for pt in parts if pt[1] is not None), parts[0] if parts else None)
            if chosen is not None:
                data, part_type = chosen[2], chosen[3]
        headers = {k.lower(): v for k, v in request.headers.items()}
        with self._lock:
            fid = self._upload_keys.get(key)
            up = self.files.get(fid or "")
            if self._upload_failures:
                status, text = self._upload_failures.popleft()
            elif up is None:
                status, text = 404, "not found"
            elif up.completed:
                status, text = 400, "upload already completed"
            elif self.check_upload_length and len(data) != up.length:
                status, text = 400, f"length mismatch: declared {up.length}, received {len(data)}"
            else:
                up.data, up.content_type = data, part_type
                status, text = 200, f"OK - {len(data)}"
            self.calls.append(
                Call(
                    UPLOAD_METHOD,
                    {"file_id": fid, "size": len(data)},
                    headers,
                    request.method,
                    self.wall_clock(),
                    None,
                    status,
                    {"ok": status == 200, "body": text},
                )
            )
        return Response(text, status_code=status, media_type="text/plain; charset=utf-8")

    def add_user_file(self, filename: str, data: bytes, user_id: str = "") -> dict[str, Any]:
        """A file a person uploaded (a modal's file_input, or a file dropped in a DM): the file object Slack
        hands the app, whose ``url_private_download`` serves ``data`` to the bot token."""
        fid = self._new_id("F")
        up = Upload(fid, filename, len(data), "", int(self.wall_clock()), data=data, completed=True)
        self.files[fid] = up
        obj = self._file_object(up, (self.url or "").rstrip("/"), shared=False)
        obj["user"] = user_id or obj["user"]
        return obj

    async def _download_endpoint(self, request: Request) -> Response:
        team_file = request.path_params["team_file"]
        auth = request.headers.get("authorization", "")
        if auth != f"Bearer {self.bot_token}":
            return Response("unauthorized", status_code=302, headers={"location": "https://slack.com/signin"})
        if "files:read" not in self.scopes:
            # Slack answers a token without files:read (or a stale install) with 200 and its sign-in page,
            # not an error status (the issue's and community reports' observation; not in Slack's reference).
            return Response("<!DOCTYPE html><html><head><title>Slack</title></head><body>Sign in to Slack</body></html>",
                            media_type="text/html; charset=utf-8")
        fid = team_file.split("-", 1)[-1]
        up = self.files.get(fid)
        if up is None or up.data is None or up.deleted:
            return Response("not found", status_code=404, media_type="text/plain")
        return Response(up.data, media_type=up.mimetype)

    # ------------------------------------------------------------------ methods: conversations, users

    def _conversations_join(self, p: dict[str, Any], base: str) -> dict[str, Any]:
        ch = self._find_channel(p.get("channel"))
        if ch is None:
            raise _SlackError("channel_not_found")
        if ch.kind != "public":
            raise _SlackError("method_not_supported_for_channel_type")
        if ch.is_archived:
            raise _SlackError("is_archived")
        if ch.is_member:
            return {
                "ok": True,
                "channel": ch.to_api(),
                "warning": "already_in_channel",
                "response_metadata": {"warnings": ["already_in_channel"]},
            }
        ch.is_member = True
        return {"ok": True, "channel": ch.to_api()}

    def _conversations_info(self, p: dict[str, Any], base: str) -> dict[str, Any]:
        ch = self._find_channel(p.get("channel"))
        if ch is None:
            raise _SlackError("channel_not_found")
        self._require_scope(_CONVERSATION_READ_SCOPE[ch.kind])
        if ch.kind != "public" and not ch.is_member:
            raise _SlackError("channel_not_found")
        info = ch.to_api()
        if _truthy(p.get("include_num_members")) and ch.kind != "im":
            info["num_members"] = len(self.users if ch.members is None else ch.members) + int(ch.is_member)
        if _truthy(p.get("include_locale")):
            info["locale"] = "en-US"
        return {"ok": True, "channel": info}

    def _conversations_list(self, p: dict[str, Any], base: str) -> dict[str, Any]:
        """conversations.list (api.slack.com/methods/conversations.list): ``types`` (default
        public_channel), ``exclude_archived``, ``limit`` (default 100, at most 1000) and ``cursor``
        paging with ``response_metadata.next_cursor`` ("" on the last page). Each requested type needs
        its read scope. Private channels and group DMs appear only when the bot is in them."""
        kinds = {"public_channel": "public", "private_channel": "private", "mpim": "mpim", "im": "im"}
        wanted = [t.strip() for t in (_str(p.get("types")) or "public_channel").split(",") if t.strip()]
        if any(t not in kinds for t in wanted):
            raise _SlackError("invalid_types")
        for t in wanted:
            self._require_scope(_CONVERSATION_READ_SCOPE[kinds[t]])
        try:
            limit = min(max(int(_str(p.get("limit")) or 100), 1), 1000)
        except ValueError:
            raise _SlackError("invalid_limit") from None
        listed = [ch for ch in self.channels.values() if ch.kind in {kinds[t] for t in wanted}
                  and (ch.kind == "public" or ch.is_member)
                  and not (_truthy(p.get("exclude_archived")) and ch.is_archived)]
        cursor = _str(p.get("cursor"))
        start = 0
        if cursor:
            try:
                start = int(base64.b64decode(cursor.encode()).decode().removeprefix("dGVhbTpD"))
            except ValueError:
                raise _SlackError("invalid_cursor") from None
        page = listed[start:start + limit]
        more = start + limit < len(listed)
        next_cursor = base64.b64encode(f"dGVhbTpD{start + limit}".encode()).decode() if more else ""
        return {"ok": True, "channels": [ch.to_api() for ch in page],
                "response_metadata": {"next_cursor": next_cursor}}

    def _conversations_open(self, p: dict[str, Any], base: str) -> dict[str, Any]:
        channel = _str(p.get("channel"))
        if channel:
            ch = self._find_channel(channel)
            if ch is None or (ch.kind != "public" and not ch.is_member):
                raise _SlackError("channel_not_found")
            return {"ok": True, "channel": {"id": ch.id}}
        users = [u.strip() for u in (_str(p.get("users")) or "").split(",") if u.strip()]
        if not users:
            raise _SlackError("users_list_not_supplied")
        if len(users) > 1:
            raise _SlackError("not_supported_in_emulator")
        if users[0] not in self.users:
            raise _SlackError("user_not_found")
        ch = self._dm_with(users[0])
        full = _truthy(p.get("return_im"))
        return {"ok": True, "channel": ch.to_api() if full else {"id": ch.id}}

    def _users_info(self, p: dict[str, Any], base: str) -> dict[str, Any]:
        user = self.users.get(_str(p.get("user")) or "")
        if user is None:
            raise _SlackError("user_not_found")
        return {"ok": True, "user": user.to_api(self.team_id, _truthy(p.get("include_locale")))}
