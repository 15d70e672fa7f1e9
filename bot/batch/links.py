"""Signed links for batches: a one-time upload link for a sheet, and a download link for a finished batch's zip.

A chat answers ``bulk`` with ``/batches/upload/<token>``; the page served there (handlers/upload_page.py)
takes one file for the person and conversation the token names, and the dry run continues in that chat.
Its nonce is spent on the first upload (``Outbox.first_seen``, shared by every process).

A finished batch whose zip a chat cannot carry (WeCom's 20 MB file message) is offered as
``/batches/<token>.zip``: bound to the batch id, usable again until it expires.

A token is ``payload.signature`` (base64url JSON, HMAC-SHA256 under a key derived from the install key, kept in
the database so every process and host verifies what another signed: storage/secrets.py); the payload's
``kind`` keeps an upload token from opening a download and the other way round.
The links around the tokens are bot/links.py's, with every other public link.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Callable
from typing import Literal, TypeVar

from pydantic import BaseModel, ValidationError

from bot.errors import InputError

TTL_SECONDS = 30 * 60
# A day: long enough to fetch the zip on a phone after a meeting or the next morning, short enough that a
# forwarded chat message does not hand out the batch's codes for good. The link may be used again meanwhile
# (a phone download can fail halfway), so there is no nonce to spend.
DOWNLOAD_TTL_SECONDS = 24 * 60 * 60


class LinkError(InputError):
    """The link is forged, expired or already used."""


class LinkExpired(LinkError):
    """The link was genuine but its time is up."""


class UploadClaim(BaseModel):
    kind: Literal["upload"] = "upload"
    chat: str  # the front-end that issued the link, whose intake takes the sheet (BatchEngine.intake_for)
    user_id: str
    channel_id: str | None = None
    lang: str = "zh"
    nonce: str
    expires: float


class DownloadClaim(BaseModel):
    kind: Literal["download"] = "download"
    batch_id: str
    expires: float


Claim = TypeVar("Claim", UploadClaim, DownloadClaim)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class UploadLinks:
    """Issues and checks both kinds of token (one key, one signer)."""

    def __init__(self, install_key: bytes, *, ttl: float = TTL_SECONDS, download_ttl: float = DOWNLOAD_TTL_SECONDS,
                 clock: Callable[[], float] = time.time) -> None:
        self._key = hmac.new(install_key, b"minpcode batch upload link", hashlib.sha256).digest()
        self.ttl = ttl
        self.download_ttl = download_ttl
        self.clock = clock

    def _sign(self, payload: str) -> str:
        return _b64(hmac.new(self._key, payload.encode(), hashlib.sha256).digest())

    def _token(self, claim: BaseModel) -> str:
        payload = _b64(claim.model_dump_json().encode())
        return f"{payload}.{self._sign(payload)}"

    def _open(self, token: str, model: type[Claim], invalid: tuple[str, str]) -> Claim:
        payload, _, signature = token.partition(".")
        # Bytes: compare_digest refuses a str with a non-ASCII character (a link bent to ``…%C3%A9``).
        if not payload or not hmac.compare_digest(signature.encode(), self._sign(payload).encode()):
            raise LinkError(*invalid)
        try:
            return model.model_validate(json.loads(_unb64(payload)))
        except (ValueError, ValidationError):
            raise LinkError(*invalid) from None

    def issue(self, chat: str, user_id: str, channel_id: str | None = None, lang: str = "zh") -> str:
        return self._token(UploadClaim(chat=chat, user_id=user_id, channel_id=channel_id, lang=lang,
                                       nonce=secrets.token_urlsafe(12), expires=self.clock() + self.ttl))

    def verify(self, token: str) -> UploadClaim:
        """The claim of a genuine, unexpired upload token (its one use is checked by the caller); LinkError otherwise."""
        claim = self._open(token, UploadClaim, (
            "这个上传链接无效。请在聊天里重新发送「批量」获取新链接。",
            "This upload link is not valid. Send bulk in the chat again for a new one."))
        if claim.expires < self.clock():
            raise LinkExpired("这个上传链接已过期（30 分钟）。请在聊天里重新发送「批量」。",
                              "This upload link has expired (30 minutes). Send bulk in the chat again.")
        return claim

    def issue_download(self, batch_id: str) -> str:
        return self._token(DownloadClaim(batch_id=batch_id, expires=self.clock() + self.download_ttl))

    def verify_download(self, token: str) -> DownloadClaim:
        """The claim of a genuine, unexpired download token; LinkError (LinkExpired when late) otherwise."""
        claim = self._open(token, DownloadClaim, ("这个下载链接无效。", "This download link is not valid."))
        if claim.expires < self.clock():
            raise LinkExpired(
                f"这个下载链接已过期（24 小时）。可在命令行用 minpcode batch {claim.batch_id} 查看结果。",
                f"This download link has expired (24 hours). `minpcode batch {claim.batch_id}` shows the results.")
        return claim


__all__ = ["DOWNLOAD_TTL_SECONDS", "TTL_SECONDS", "DownloadClaim", "LinkError", "LinkExpired", "UploadClaim",
           "UploadLinks"]
