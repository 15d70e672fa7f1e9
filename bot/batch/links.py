"""One-time upload links for a batch's sheet: signed, bound to a person and a conversation, 30 minutes.

A chat answers ``bulk`` with ``/batches/upload/<token>``; the page served there (handlers/upload_page.py)
takes one file for the person and conversation the token names, and the dry run continues in that chat.
The token is ``payload.signature`` (base64url JSON, HMAC-SHA256 under a key derived from the install's
hash key); its nonce is spent on the first upload (``Outbox.first_seen``, shared by every process).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Callable

from pydantic import BaseModel, ValidationError

from bot.errors import InputError

TTL_SECONDS = 30 * 60


class LinkError(InputError):
    """The link is forged, expired or already used."""


class UploadClaim(BaseModel):
    chat: str
    user_id: str
    channel_id: str | None = None
    lang: str = "zh"
    nonce: str
    expires: float


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class UploadLinks:
    def __init__(self, install_key: bytes, *, ttl: float = TTL_SECONDS, clock: Callable[[], float] = time.time) -> None:
        self._key = hmac.new(install_key, b"minpcode batch upload link", hashlib.sha256).digest()
        self.ttl = ttl
        self.clock = clock

    def _sign(self, payload: str) -> str:
        return _b64(hmac.new(self._key, payload.encode(), hashlib.sha256).digest())

    def issue(self, chat: str, user_id: str, channel_id: str | None = None, lang: str = "zh") -> str:
        claim = UploadClaim(chat=chat, user_id=user_id, channel_id=channel_id, lang=lang,
                            nonce=secrets.token_urlsafe(12), expires=self.clock() + self.ttl)
        payload = _b64(claim.model_dump_json().encode())
        return f"{payload}.{self._sign(payload)}"

    def verify(self, token: str) -> UploadClaim:
        """The claim of a genuine, unexpired token (its one use is checked by the caller); LinkError otherwise."""
        payload, _, signature = token.partition(".")
        if not payload or not hmac.compare_digest(signature, self._sign(payload)):
            raise LinkError("这个上传链接无效。请在聊天里重新发送「批量」获取新链接。",
                            "This upload link is not valid. Send bulk in the chat again for a new one.")
        try:
            claim = UploadClaim.model_validate(json.loads(_unb64(payload)))
        except (ValueError, ValidationError):
            raise LinkError("这个上传链接无效。", "This upload link is not valid.") from None
        if claim.expires < self.clock():
            raise LinkError("这个上传链接已过期（30 分钟）。请在聊天里重新发送「批量」。",
                            "This upload link has expired (30 minutes). Send bulk in the chat again.")
        return claim


__all__ = ["TTL_SECONDS", "LinkError", "UploadClaim", "UploadLinks"]
