"""Sending answers in WeCom: the code image first, then the text; errors as Chinese with English under.

* An image is uploaded with ``media/upload`` (temporary media) and sent as an ``image`` message. Codes are
  small; anything over :data:`IMAGE_MAX_BYTES` (WeCom's older 2 MB image limit, the safe one) is sent as a
  ``file`` instead (20 MB), so the person still gets it untouched.
* Text goes as ``text`` messages (they render everywhere, including WeChat's WeCom plugin where markdown
  does not). WeCom cuts text beyond 2048 bytes, so a longer answer is split at line ends into several
  messages rather than silently trimmed.
* If the image cannot be sent, the text still goes, with the image's download link when the server has a
  public URL.
* **Once, after a crash too**: in an outbox delivery (bot/outbox.py) the media_id of an upload is kept with
  the row before it is sent. A delivery run again after a crash sends the same bytes under the same
  media_id, and WeCom's duplicate check (client.py) drops it if the member already has it; a new request
  uploads afresh, so it is never taken for a repeat. Text is sent again in that case (at least once).
"""

from __future__ import annotations

import hashlib
import logging
from typing import TYPE_CHECKING, Any, Protocol

from bot import outbox
from bot.errors import MinpcodeError, UpstreamError
from bot.text import Text, clip_utf8
from handlers.attachments import attachment
from handlers.commands import Reply

from .client import SendResult, Target, WeComClient

if TYPE_CHECKING:
    from .xml import TemplateCardEvent

__all__ = ["IMAGE_MAX_BYTES", "TEXT_MAX_BYTES", "BatchSink", "Deliverer", "Sink", "bilingual", "split_text"]

log = logging.getLogger("minpcode.wecom.deliver")

TEXT_MAX_BYTES = 2048
IMAGE_MAX_BYTES = 2 * 1024 * 1024


def bilingual(zh: str, en: str) -> str:
    """Chinese first, English under it (WeCom does not say a member's language)."""
    return Text(zh=zh, en=en).render(None)


def split_text(text: str, limit: int = TEXT_MAX_BYTES) -> list[str]:
    """``text`` in pieces of at most ``limit`` UTF-8 bytes, cut at line ends where possible."""
    pieces: list[str] = []
    current = ""
    for line in text.split("\n"):
        while len(line.encode("utf-8")) > limit:  # one very long line: cut at a character boundary
            head = clip_utf8(line, limit)
            if current:
                pieces.append(current)
                current = ""
            pieces.append(head)
            line = line[len(head):]
        candidate = f"{current}\n{line}" if current else line
        if len(candidate.encode("utf-8")) > limit:
            pieces.append(current)
            current = line
        else:
            current = candidate
    if current.strip():
        pieces.append(current)
    return [p for p in pieces if p.strip()] or [text[:1] or " "]


class Sink(Protocol):
    """What the conversation (conversation.py) sends through: the self-built app's :class:`Deliverer`, or the
    AI bot's (handlers/wecom_aibot/front.py), which answers on its long connection instead."""

    async def text(self, target: Target, text: str) -> None: ...

    async def say(self, target: Target, zh: str, en: str) -> None: ...

    async def reply(self, target: Target, reply: Reply) -> None: ...

    async def card(self, user: str, card: dict[str, Any]) -> object: ...

    async def close_card(self, event: TemplateCardEvent, label: str) -> None: ...


class BatchSink(Sink, Protocol):
    """What batches (batches.py) send and fetch through, besides the conversation's sink."""

    public_url: str | None

    async def media(self, target: Target, data: bytes, filename: str, mime: str, media_type: str) -> None: ...

    async def fetch(self, ref: str, limit: int) -> tuple[bytes, str]:
        """A file a member sent (``ref``: what its message names it by): its bytes (at most ``limit``), its name."""
        ...


class Deliverer:
    """Everything the WeCom front-end sends goes through here."""

    def __init__(self, client: WeComClient, public_url: str | None = None) -> None:
        self.client = client
        self.public_url = public_url.rstrip("/") if public_url else None

    async def text(self, target: Target, text: str) -> None:
        for piece in split_text(text):
            await self.client.send_text(target, piece)

    async def say(self, target: Target, zh: str, en: str) -> None:
        await self.text(target, bilingual(zh, en))

    async def error(self, target: Target, exc: MinpcodeError) -> None:
        await self.text(target, exc.text("zh"))

    async def card(self, user: str, card: dict[str, Any]) -> SendResult:
        return await self.client.send_card(user, card)

    async def fetch(self, ref: str, limit: int) -> tuple[bytes, str]:
        return await self.client.get_media(ref, limit)

    async def close_card(self, event: TemplateCardEvent, label: str) -> None:
        """Grey the clicked card out for the member who clicked (one use of the event's response code)."""
        await self.client.update_card(event.response_code, [event.from_user_name], replace_name=label)

    async def image(self, target: Target, data: bytes, mime: str | None, filename: str) -> None:
        """An image message; a file when it is over the image limit or not an image (a PDF poster)."""
        mime = mime or "image/jpeg"
        if len(data) > IMAGE_MAX_BYTES or not mime.startswith("image/"):
            await self.media(target, data, filename, mime, "file")
        else:
            await self.media(target, data, filename, mime, "image")

    async def media(self, target: Target, data: bytes, filename: str, mime: str, media_type: str) -> None:
        """Upload ``data`` and send it as a ``media_type`` message; in an outbox delivery, the upload of these
        bytes that an earlier run of it made is sent instead (see the module's notes)."""
        run = outbox.attempt()
        key = f"wecom-media:{media_type}:{hashlib.sha256(data).hexdigest()}"
        media_id = run.recall(key) if run is not None else None
        if media_id is not None:
            try:
                await self.client.send(target, media_type, {"media_id": media_id})
                return
            except UpstreamError as exc:
                if exc.code != 40007:  # only an expired upload (3 days) is uploaded again
                    raise
                log.info("wecom: the upload kept for %s has expired; uploading again", target)
        media_id = await self.client.upload_media(data, filename, mime, media_type=media_type)
        if run is not None:
            run.remember(key, media_id)
        await self.client.send(target, media_type, {"media_id": media_id})

    async def reply(self, target: Target, reply: Reply) -> None:
        """A command's answer: its image (if any), then its text with any notices."""
        note = ""
        attached = attachment(reply, self.public_url)
        if attached is not None and attached.code_url and attached.poster:
            note = "\n" + bilingual(f"只要码：{attached.code_url}", f"Bare code: {attached.code_url}")
        if attached is not None and attached.data:
            try:
                await self.image(target, attached.data, attached.mime, attached.filename)
            except UpstreamError as exc:
                log.warning("wecom: image for %s not sent: %s %s", target, type(exc).__name__, exc.code)
                note = "\n\n" + bilingual("（图片没能发出。）", "(The image could not be sent.)")
                if attached.url:
                    note = "\n\n" + bilingual(f"（图片没能发出，可在这里下载：{attached.url}）",
                                              f"(The image could not be sent; download it here: {attached.url})")
        await self.text(target, reply.text("zh") + note)
