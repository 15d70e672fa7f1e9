"""HTTP helpers every front-end's routes share: a body read that stops at a limit, loopback hosts."""

from __future__ import annotations

from starlette.requests import ClientDisconnect, Request

from bot.net import is_loopback  # one copy, shared with the core (doctor, /metrics)
from bot.text import Lang


def accept_lang(header: str) -> Lang:
    """The caller's language from an Accept-Language value (its first entry): Chinese unless English."""
    first = header.split(",")[0].strip().lower()
    return "en" if first.startswith("en") else "zh"


def request_lang(request: Request) -> Lang:
    return accept_lang(request.headers.get("accept-language", ""))


def client_of(request: Request) -> str:
    """The client's address as uvicorn gives it (the phone's, behind a proxy uvicorn trusts)."""
    return request.client.host if request.client else "-"


class BodyTooLarge(Exception):
    """The body is over the route's limit (answer 413); nothing past the limit was read."""

    def __init__(self, limit: int) -> None:
        super().__init__(limit)
        self.limit = limit  # the route's own, for the answer to name (routes differ: 16 KB, 1.5 MB, 5 MB)


async def read_limited(request: Request, max_bytes: int) -> bytes:
    """The request body, read only up to ``max_bytes``: a declared or streamed excess raises BodyTooLarge.

    A client that disconnects mid-body gives ``b""`` (there is nobody to answer).
    """
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise BodyTooLarge(max_bytes)
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > max_bytes:
                raise BodyTooLarge(max_bytes)
            chunks.append(chunk)
    except ClientDisconnect:
        return b""
    return b"".join(chunks)


__all__ = ["BodyTooLarge", "accept_lang", "client_of", "is_loopback", "read_limited", "request_lang"]
