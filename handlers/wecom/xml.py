"""WeCom callback XML: decrypted messages/events → pydantic models, and passive replies → XML / envelope.

Inbound (messages https://developer.work.weixin.qq.com/document/path/90239, events
https://developer.work.weixin.qq.com/document/path/90376): :func:`parse_message` turns a decrypted plaintext
into one of :class:`TextMessage`, :class:`ImageMessage`, :class:`EnterAgentEvent`, :class:`MenuClickEvent`,
:class:`TemplateCardEvent`, :class:`EventMessage` (any other event) or :class:`UnknownMessage`
(voice, video, location, ...). Every field is optional except ``MsgType``; the raw top-level fields stay
available in ``fields``.

Outbound (passive replies https://developer.work.weixin.qq.com/document/path/90241, their envelope
https://developer.work.weixin.qq.com/document/path/90968): :class:`TextReply`, :class:`ImageReply`,
:class:`UpdateButtonReply` render with ``to_xml()``; :func:`encrypted_reply` encrypts and signs one into
the response body.
"""

from __future__ import annotations

import time
import xml.etree.ElementTree as ET
from typing import Any, ClassVar, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from bot.text import clip_utf8

from .crypto import EncryptedEnvelope, InvalidXml, WeComCrypto, cdata, parse_xml

__all__ = ["FileMessage", 
    "CARD_TYPES",
    "TEXT_REPLY_MAX_BYTES",
    "CallbackEnvelope",
    "EnterAgentEvent",
    "EventMessage",
    "ImageMessage",
    "ImageReply",
    "InboundMessage",
    "MenuClickEvent",
    "Reply",
    "SelectedItem",
    "TemplateCardEvent",
    "TextMessage",
    "TextReply",
    "UnknownMessage",
    "UpdateButtonReply",
    "encrypted_reply",
    "parse_callback_envelope",
    "parse_message",
    "parse_reply_envelope",
]

CARD_TYPES = ("text_notice", "news_notice", "button_interaction", "vote_interaction", "multiple_interaction")
TEXT_REPLY_MAX_BYTES = 2048


# --------------------------------------------------------------------------------------------- inbound


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, populate_by_name=True, extra="ignore")


class InboundMessage(_Model):
    """Fields common to every decrypted message and event."""

    to_user_name: str = Field("", alias="ToUserName")  # the CorpID
    from_user_name: str = Field("", alias="FromUserName")  # the member's UserID
    create_time: int = Field(0, alias="CreateTime")
    msg_type: str = Field(alias="MsgType")
    agent_id: int | None = Field(None, alias="AgentID")
    fields: dict[str, str] = Field(default_factory=dict, exclude=True)
    """Every top-level leaf element as text, for anything the model does not name."""

    @property
    def dedupe_key(self) -> str:
        """What WeCom retries repeat verbatim: ``MsgId`` for messages, sender + time (+ event) for events."""
        msg_id = self.fields.get("MsgId", "").strip()
        if msg_id:
            return f"msg:{msg_id}"
        parts = [self.from_user_name, str(self.create_time)]
        for name in ("Event", "EventKey", "TaskId"):
            parts.append(self.fields.get(name, ""))
        return "event:" + "|".join(parts)


class TextMessage(InboundMessage):
    content: str = Field("", alias="Content")
    msg_id: int | None = Field(None, alias="MsgId")


class ImageMessage(InboundMessage):
    pic_url: str = Field("", alias="PicUrl")
    media_id: str = Field("", alias="MediaId")
    msg_id: int | None = Field(None, alias="MsgId")


class FileMessage(InboundMessage):
    """``MsgType=file``: not among a self-built app's documented types, but some tenants send it (a sheet
    for a batch); the file is fetched with ``media/get``."""

    media_id: str = Field("", alias="MediaId")
    msg_id: int | None = Field(None, alias="MsgId")


class UnknownMessage(InboundMessage):
    """A message type minpcode does not handle (voice, video, location, link, ...)."""


class EventMessage(InboundMessage):
    """Any event (``MsgType`` = ``event``) without a dedicated model."""

    event: str = Field("", alias="Event")
    event_key: str = Field("", alias="EventKey")


class EnterAgentEvent(EventMessage):
    """The member opened the app's chat."""


class MenuClickEvent(EventMessage):
    """The member tapped a ``click`` menu item; ``event_key`` is the item's key."""


class SelectedItem(_Model):
    question_key: str = Field("", alias="QuestionKey")
    option_ids: tuple[str, ...] = Field((), alias="OptionIds")


class TemplateCardEvent(EventMessage):
    """``template_card_event`` (button / submit) or ``template_card_menu_event`` (card action menu)."""

    EVENTS: ClassVar[tuple[str, ...]] = ("template_card_event", "template_card_menu_event")

    task_id: str = Field("", alias="TaskId")
    card_type: str = Field("", alias="CardType")
    response_code: str = Field("", alias="ResponseCode")
    selected_items: tuple[SelectedItem, ...] = Field((), alias="SelectedItems")

    def selected(self) -> dict[str, list[str]]:
        """``{question_key: [option_id, ...]}`` — always lists, even for a single choice."""
        out: dict[str, list[str]] = {}
        for item in self.selected_items:
            out.setdefault(item.question_key, []).extend(item.option_ids)
        return out


def _text(node: ET.Element | None) -> str:
    return "" if node is None or node.text is None else node.text


def _selected_items(node: ET.Element) -> list[dict[str, Any]]:
    items = []
    for sel in node.findall("SelectedItem"):
        ids_node = sel.find("OptionIds")
        ids = [_text(o) for o in ids_node.findall("OptionId")] if ids_node is not None else []
        items.append({"QuestionKey": _text(sel.find("QuestionKey")), "OptionIds": ids})
    return items


_INT_FIELDS = ("CreateTime", "AgentID", "MsgId")


def parse_message(plaintext: str | bytes) -> InboundMessage:
    """Parse a decrypted callback plaintext into its model. Raises :class:`InvalidXml`."""
    root = parse_xml(plaintext)
    if root.tag != "xml":
        raise InvalidXml("root element must be <xml>")
    fields: dict[str, str] = {}
    for child in root:
        if len(child) == 0:
            fields[child.tag] = _text(child)
    data: dict[str, Any] = dict(fields)
    for name in _INT_FIELDS:
        if name in data:
            value = data[name].strip()
            if value:
                data[name] = value
            else:
                del data[name]
    msg_type = fields.get("MsgType", "").strip()
    if not msg_type:
        raise InvalidXml("MsgType is missing")
    data["MsgType"] = msg_type
    cls: type[InboundMessage]
    if msg_type == "text":
        cls = TextMessage
    elif msg_type == "image":
        cls = ImageMessage
    elif msg_type == "file":
        cls = FileMessage
    elif msg_type == "event":
        event = fields.get("Event", "").strip()
        data["Event"] = event
        if event == "enter_agent":
            cls = EnterAgentEvent
        elif event == "click":
            cls = MenuClickEvent
        elif event in TemplateCardEvent.EVENTS:
            cls = TemplateCardEvent
            node = root.find("SelectedItems")
            if node is not None:
                data["SelectedItems"] = _selected_items(node)
        else:
            cls = EventMessage
    else:
        cls = UnknownMessage
    data["fields"] = fields
    try:
        return cls.model_validate(data)
    except ValidationError as exc:
        bad = sorted({str(err["loc"][0]) for err in exc.errors() if err.get("loc")})
        raise InvalidXml(f"bad field(s) in message: {', '.join(bad)}") from None


# --------------------------------------------------------------------------------------------- envelopes


class CallbackEnvelope(_Model):
    """What WeCom POSTs: ``<xml><ToUserName/><Encrypt/><AgentID/></xml>`` (AgentID is a string here)."""

    to_user_name: str = ""
    encrypt: str
    agent_id: str = ""


def parse_callback_envelope(body: str | bytes) -> CallbackEnvelope:
    root = parse_xml(body)
    encrypt = _text(root.find("Encrypt")).strip()
    if root.tag != "xml" or not encrypt:
        raise InvalidXml("callback envelope has no Encrypt")
    return CallbackEnvelope(
        to_user_name=_text(root.find("ToUserName")).strip(),
        encrypt=encrypt,
        agent_id=_text(root.find("AgentID")).strip(),
    )


def parse_reply_envelope(body: str | bytes) -> EncryptedEnvelope:
    """Parse a passive-reply envelope (``Encrypt``, ``MsgSignature``, ``TimeStamp``, ``Nonce``)."""
    root = parse_xml(body)
    values = {name: _text(root.find(name)).strip() for name in ("Encrypt", "MsgSignature", "TimeStamp", "Nonce")}
    if root.tag != "xml" or not all(values.values()):
        raise InvalidXml("reply envelope is incomplete")
    return EncryptedEnvelope(values["Encrypt"], values["MsgSignature"], values["TimeStamp"], values["Nonce"])


# --------------------------------------------------------------------------------------------- replies


class Reply(_Model):
    """A passive reply. Addressing is swapped: ``to_user`` = member UserID, ``from_user`` = CorpID."""

    msg_type: ClassVar[str] = ""

    to_user: str
    from_user: str
    create_time: int = Field(default_factory=lambda: int(time.time()))

    @classmethod
    def to(cls, message: InboundMessage, **kwargs: Any) -> Self:
        """A reply addressed back to the sender of ``message``."""
        return cls(to_user=message.from_user_name, from_user=message.to_user_name, **kwargs)

    def _body(self) -> str:
        raise NotImplementedError

    def to_xml(self) -> str:
        return (
            f"<xml><ToUserName>{cdata(self.to_user)}</ToUserName>"
            f"<FromUserName>{cdata(self.from_user)}</FromUserName>"
            f"<CreateTime>{self.create_time}</CreateTime>"
            f"<MsgType>{cdata(self.msg_type)}</MsgType>{self._body()}</xml>"
        )


class TextReply(Reply):
    """Text reply; WeCom truncates beyond 2048 bytes, so we cut at a character boundary first."""

    msg_type: ClassVar[str] = "text"
    content: str

    def _body(self) -> str:
        return f"<Content>{cdata(clip_utf8(self.content, TEXT_REPLY_MAX_BYTES))}</Content>"


class ImageReply(Reply):
    msg_type: ClassVar[str] = "image"
    media_id: str

    def _body(self) -> str:
        return f"<Image><MediaId>{cdata(self.media_id)}</MediaId></Image>"


class UpdateButtonReply(Reply):
    """Answer to a ``template_card_event``: grey out the clicked card's buttons with ``replace_name``."""

    msg_type: ClassVar[str] = "update_button"
    replace_name: str

    def _body(self) -> str:
        return f"<Button><ReplaceName>{cdata(self.replace_name)}</ReplaceName></Button>"


def encrypted_reply(
    crypto: WeComCrypto,
    reply: Reply | str,
    *,
    nonce: str | int | None = None,
    timestamp: str | int | None = None,
) -> str:
    """The HTTP response body for a passive reply: the encrypted, signed envelope XML
    (https://developer.work.weixin.qq.com/document/path/90968)."""
    plaintext = reply if isinstance(reply, str) else reply.to_xml()
    return crypto.encrypt(plaintext, nonce=nonce, timestamp=timestamp).xml
