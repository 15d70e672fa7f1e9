"""Summaries through the WeCom group robot: markdown (≤ 4096 bytes), then the chart as an image (≤ 2 MB).

Steps (bot/ports.py): ``wecom.markdown`` and ``wecom.image`` (base64 + md5 of the raw bytes,
re-encoded smaller when over 2 MB). The webhook key is the robot's only credential: it never
appears in an error or a log line.
"""

from __future__ import annotations

import base64
import hashlib
import io
import logging
from typing import Any

import httpx

from bot.announce import step
from bot.config import Settings
from bot.ports import Announcement, OnStep, PostError

from .summary_view import wecom_markdown

log = logging.getLogger("minpcode.wecom.announce")

WECOM_IMAGE_MAX = 2 * 1024 * 1024
TIMEOUT = 20.0
# 93000: the webhook key is wrong; 40008: the message type is not allowed. Retrying cannot help.
_FINAL = (93000, 40008)


def mask_webhook(url: str) -> str:
    """The webhook URL with its key hidden."""
    parsed = httpx.URL(url) if url else None
    return f"{parsed.host}{parsed.path}?key=***" if parsed is not None else "(no webhook)"


class WeComAnnouncer:
    """Posts summaries through one group robot (``WECOM_WEBHOOK_URL``)."""

    name = "wecom"

    def __init__(self, url: str, http: httpx.AsyncClient | None = None) -> None:
        self.url = url
        self.http = http
        self.where = "WeCom group robot" if url else "WeCom (no webhook)"

    async def check(self) -> str | None:
        return None if self.url else "no WECOM_WEBHOOK_URL"

    async def announce(self, announcement: Announcement, *, done: set[str], on_step: OnStep) -> None:
        if self.http is not None:
            await self._announce(self.http, announcement, done, on_step)
            return
        async with httpx.AsyncClient(timeout=TIMEOUT) as http:
            await self._announce(http, announcement, done, on_step)

    async def _announce(self, http: httpx.AsyncClient, announcement: Announcement, done: set[str],
                        on_step: OnStep) -> None:
        try:
            markdown = wecom_markdown(announcement.summary, announcement.lang)
            await step("wecom.markdown", done, on_step, lambda: self._send(http, {
                "msgtype": "markdown", "markdown": {"content": markdown}}))
            png = announcement.png
            if png:
                image = fit_image(png)
                await step("wecom.image", done, on_step, lambda: self._send(http, {"msgtype": "image", "image": {
                    "base64": base64.b64encode(image).decode("ascii"), "md5": hashlib.md5(image).hexdigest()}}))
        except PostError as exc:
            log.warning("summary post to %s (%s) failed: %s", self.where, mask_webhook(self.url), exc.detail)
            raise

    async def _send(self, http: httpx.AsyncClient, body: dict[str, Any]) -> None:
        try:
            response = await http.post(self.url, json=body)
        except httpx.HTTPError as exc:
            raise PostError(f"WeCom: {type(exc).__name__}") from exc
        if response.status_code != 200:
            raise PostError(f"WeCom: HTTP {response.status_code}", retryable=response.status_code >= 500
                            or response.status_code == 429)
        try:
            data = response.json()
        except ValueError as exc:
            raise PostError("WeCom: the answer is not JSON") from exc
        code = data.get("errcode", -1) if isinstance(data, dict) else -1
        if code != 0:
            message = str(data.get("errmsg", "")) if isinstance(data, dict) else ""
            # keep WeCom's own words but not its "hint"/"more info" tail
            message = message.split(", hint:")[0]
            raise PostError(f"WeCom: errcode {code} {message}".strip(), retryable=code not in _FINAL)


def fit_image(data: bytes, max_bytes: int = WECOM_IMAGE_MAX) -> bytes:
    """``data`` if it fits the group robot's 2 MB image limit; otherwise the same picture re-encoded smaller.

    First a 256-colour PNG (charts have few colours), then smaller sizes, then a JPEG as a last resort.
    """
    if len(data) <= max_bytes:
        return data
    from PIL import Image

    with Image.open(io.BytesIO(data)) as opened:
        image = opened.convert("RGB")
    scale = 1.0
    for _ in range(12):
        sized = image if scale == 1.0 else image.resize(
            (max(1, int(image.width * scale)), max(1, int(image.height * scale))), Image.Resampling.LANCZOS)
        out = io.BytesIO()
        sized.quantize(colors=256).save(out, format="PNG", optimize=True)
        if out.tell() <= max_bytes:
            log.info("chart re-encoded from %d to %d bytes for WeCom", len(data), out.tell())
            return out.getvalue()
        scale *= 0.8
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=70, optimize=True)
    if out.tell() > max_bytes:
        raise PostError("the chart is too large for WeCom even re-encoded", retryable=False)
    return out.getvalue()


def wecom_announcer(settings: Settings) -> WeComAnnouncer | None:
    """The summary announcer when WECOM_WEBHOOK_URL is set, else None."""
    url = settings.wecom_webhook_url.get_secret_value().strip() if settings.wecom_webhook_url else ""
    return WeComAnnouncer(url) if url else None


__all__ = ["WECOM_IMAGE_MAX", "WeComAnnouncer", "fit_image", "mask_webhook", "wecom_announcer"]
