"""What a chat attaches to an answer: decided here once for Slack, WeCom and the console.

An answer with a poster attaches the poster, and says where the bare code is (a link, when people can
reach this server); any other answer with an image attaches that image (a code, or a summary's chart).
Each chat then renders the :class:`Attachment` its own way: Slack posts it with a comment, WeCom sends
it as an image or a file, the console writes it to a file.
"""

from __future__ import annotations

from pydantic import BaseModel

from bot import links
from handlers.commands import Reply


class Attachment(BaseModel):
    """The file an answer carries, and the links a chat may say beside it."""

    data: bytes
    mime: str | None  # None: the store did not say (a chat picks its default)
    filename: str
    poster: bool = False  # the poster of the answer's code, rather than the code (or chart) itself
    url: str | None = None  # where people can fetch this same file (said when the chat would not take it)
    code_url: str | None = None  # with a poster: the bare code's image, a link away


def attachment(reply: Reply, public_url: str | None) -> Attachment | None:
    """The file to attach to ``reply``, or None; links only with ``public_url`` (``Settings.people_url``):
    no link rather than one a phone cannot open."""
    record = reply.record
    code_url = links.code_image_url(public_url, record.id) if public_url and record is not None else None
    if reply.poster is not None:
        info = reply.poster.info
        return Attachment(data=reply.poster.data, mime=info.mime, filename=info.filename, poster=True,
                          url=links.poster_url(public_url, info.id, info.format) if public_url else None,
                          code_url=code_url)
    if reply.image is None:
        return None
    return Attachment(data=reply.image, mime=reply.image_mime, filename=reply.filename, url=code_url)


__all__ = ["Attachment", "attachment"]
