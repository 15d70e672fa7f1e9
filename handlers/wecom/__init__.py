"""WeCom (企业微信): the self-built app's callback (a ``FrontEnd``), its crypto and message XML, and the
group robot that posts summaries (an ``Announcer``).

    wecom_front_end(service)   -> FrontEnd | None   (callback.py; None when WECOM_* are not all set)
    wecom_announcer(settings)  -> Announcer | None  (announce.py; None without WECOM_WEBHOOK_URL)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .crypto import (
    DecryptError,
    EncryptedEnvelope,
    InvalidAESKey,
    InvalidPadding,
    InvalidSignature,
    InvalidXml,
    ReceiveIdMismatch,
    StaleTimestamp,
    WeComCrypto,
    WeComCryptoError,
)
from .xml import (
    EnterAgentEvent,
    EventMessage,
    ImageMessage,
    ImageReply,
    InboundMessage,
    MenuClickEvent,
    SelectedItem,
    TemplateCardEvent,
    TextMessage,
    TextReply,
    UnknownMessage,
    UpdateButtonReply,
    encrypted_reply,
    parse_message,
)

if TYPE_CHECKING:
    from bot.config import Settings
    from bot.ports import Announcer, FrontEnd
    from bot.service import Service


def wecom_front_end(service: Service) -> FrontEnd | None:
    """The callback front end, or None (one log line says why) when WeCom is not configured."""
    from .callback import wecom_front_end as build

    return build(service)


def wecom_announcer(settings: Settings) -> Announcer | None:
    """Posts summaries through WECOM_WEBHOOK_URL; None when it is not set."""
    from .announce import wecom_announcer as build

    return build(settings)


__all__ = [
    "DecryptError",
    "EncryptedEnvelope",
    "EnterAgentEvent",
    "EventMessage",
    "ImageMessage",
    "ImageReply",
    "InboundMessage",
    "InvalidAESKey",
    "InvalidPadding",
    "InvalidSignature",
    "InvalidXml",
    "MenuClickEvent",
    "ReceiveIdMismatch",
    "SelectedItem",
    "StaleTimestamp",
    "TemplateCardEvent",
    "TextMessage",
    "TextReply",
    "UnknownMessage",
    "UpdateButtonReply",
    "WeComCrypto",
    "WeComCryptoError",
    "encrypted_reply",
    "parse_message",
    "wecom_announcer",
    "wecom_front_end",
]
