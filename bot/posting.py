"""Posting a rendered summary: Slack (message + chart) and the WeCom group robot (markdown + image).

Each destination is a short sequence of *steps*; every step that succeeds is reported through
``on_step`` at once, and steps named in ``done`` are skipped, so a retry never posts a part twice:

    slack.message   chat.postMessage with Block Kit (joins a public channel on not_in_channel)
    slack.chart     files_upload_v2 of the PNG into the same channel
    wecom.markdown  webhook/send msgtype=markdown (≤ 4096 bytes, trimmed by bot/summary.py)
    wecom.image     webhook/send msgtype=image, base64 + md5 of the raw bytes (≤ 2 MB, re-encoded if larger)

No secret is ever put in an error or a log line: the webhook key is masked.
"""

from __future__ import annotations

import base64
import hashlib
import io
import logging
from collections.abc import Callable
from typing import Any, Literal

import aiohttp
import httpx
from pydantic import BaseModel
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.web.async_client import AsyncWebClient

from bot.config import Settings

log = logging.getLogger("minpcode.posting")

WECOM_IMAGE_MAX = 2 * 1024 * 1024
TIMEOUT = 20.0
Destination = Literal["slack", "wecom"]


class SummaryPost(BaseModel):
    """What gets posted, already rendered."""

    text: str                       # Slack notification / fallback text
    blocks: list[dict[str, Any]]    # Slack Block Kit
    markdown: str                   # WeCom group robot markdown
    png: bytes | None = None        # the chart; None when there is nothing to draw
    filename: str = "minpcode-summary.png"
    title: str = "minpcode summary"


class PostOutcome(BaseModel):
    destination: Destination
    where: str
    ok: bool
    steps: list[str] = []           # steps done by this call
    error: str | None = None
    retryable: bool = True          # False when a retry cannot help (bad token, unknown channel or key)

    def describe(self, lang: str = "zh") -> str:
        if lang == "zh":
            return f"已发到 {self.where}。" if self.ok else f"发到 {self.where} 失败：{self.error}"
        return f"Posted to {self.where}." if self.ok else f"Could not post to {self.where}: {self.error}"


class PostError(Exception):
    """One step failed; ``retryable`` is False for errors a retry cannot fix (bad token, no such channel)."""

    def __init__(self, message: str, *, retryable: bool = True) -> None:
        super().__init__(message)
        self.retryable = retryable


def configured_destinations(settings: Settings) -> list[Destination]:
    """Where scheduled and ``--post`` summaries go."""
    found: list[Destination] = []
    if settings.slack_summary_channel:
        if settings.slack_bot_token:
            found.append("slack")
        else:
            log.warning("SLACK_SUMMARY_CHANNEL is set but SLACK_BOT_TOKEN is not: summaries are not posted to Slack")
    if settings.wecom_webhook_url and settings.wecom_webhook_url.get_secret_value():
        found.append("wecom")
    return found


def slack_client(settings: Settings) -> AsyncWebClient:
    token = settings.slack_bot_token.get_secret_value() if settings.slack_bot_token else None
    base = settings.slack_api_url if settings.slack_api_url.endswith("/") else settings.slack_api_url + "/"
    client = AsyncWebClient(token=token, base_url=base, timeout=int(TIMEOUT))
    client.retry_handlers.append(AsyncRateLimitErrorRetryHandler(max_retry_count=1))
    return client


async def post_summary(settings: Settings, content: SummaryPost, *, done: set[str] | None = None,
                       on_step: Callable[[str], None] | None = None, slack: AsyncWebClient | None = None,
                       http: httpx.AsyncClient | None = None) -> list[PostOutcome]:
    """Post to every configured destination; one outcome each (a failure in one does not stop the other)."""
    done = set(done or ())
    outcomes = []
    for destination in configured_destinations(settings):
        if destination == "slack":
            client = slack or slack_client(settings)
            outcomes.append(await post_to_slack(client, settings.slack_summary_channel or "", content, done, on_step))
        else:
            url = settings.wecom_webhook_url.get_secret_value() if settings.wecom_webhook_url else ""
            if http is not None:
                outcomes.append(await post_to_wecom(http, url, content, done, on_step))
            else:
                async with httpx.AsyncClient(timeout=TIMEOUT) as own:
                    outcomes.append(await post_to_wecom(own, url, content, done, on_step))
    return outcomes


# -- Slack ------------------------------------------------------------------------------------------------


async def post_to_slack(client: AsyncWebClient, channel: str, content: SummaryPost, done: set[str],
                        on_step: Callable[[str], None] | None) -> PostOutcome:
    where = f"Slack {channel}"
    steps: list[str] = []
    try:
        if "slack.message" not in done:
            await _in_channel(client, channel, lambda: client.chat_postMessage(
                channel=channel, text=content.text, blocks=content.blocks, unfurl_links=False, unfurl_media=False))
            _step("slack.message", steps, on_step)
        if content.png and "slack.chart" not in done:
            await _in_channel(client, channel, lambda: client.files_upload_v2(
                channel=channel, file=content.png, filename=content.filename, title=content.title,
                alt_txt=content.title))
            _step("slack.chart", steps, on_step)
    except PostError as exc:
        log.warning("summary post to %s failed: %s", where, exc)
        return PostOutcome(destination="slack", where=where, ok=False, steps=steps, error=str(exc),
                           retryable=exc.retryable)
    return PostOutcome(destination="slack", where=where, ok=True, steps=steps)


_SLACK_FINAL = {"invalid_auth", "not_authed", "account_inactive", "token_revoked", "channel_not_found",
                "is_archived", "missing_scope", "access_denied", "posting_to_channel_denied"}


async def _in_channel(client: AsyncWebClient, channel: str, call: Callable[[], Any]) -> None:
    """Run a Slack call; on ``not_in_channel`` join the (public) channel and try once more."""
    try:
        await _slack(call)
    except PostError as exc:
        if "not_in_channel" not in str(exc):
            raise
        await _slack(lambda: client.conversations_join(channel=channel))
        await _slack(call)


async def _slack(call: Callable[[], Any]) -> None:
    try:
        await call()
    except SlackApiError as exc:
        error = str(exc.response.get("error") or exc.response.status_code)
        raise PostError(f"Slack: {error}", retryable=error not in _SLACK_FINAL) from exc
    except (SlackClientError, aiohttp.ClientError, TimeoutError, OSError) as exc:
        raise PostError(f"Slack: {type(exc).__name__}: {exc}") from exc


# -- WeCom group robot ----------------------------------------------------------------------------------------


def mask_webhook(url: str) -> str:
    """The webhook URL with its key hidden (the key is the robot's only credential)."""
    parsed = httpx.URL(url) if url else None
    return f"{parsed.host}{parsed.path}?key=***" if parsed is not None else "(no webhook)"


async def post_to_wecom(http: httpx.AsyncClient, url: str, content: SummaryPost, done: set[str],
                        on_step: Callable[[str], None] | None) -> PostOutcome:
    where = "WeCom group robot" if url else "WeCom (no webhook)"
    steps: list[str] = []
    try:
        if "wecom.markdown" not in done:
            await _webhook(http, url, {"msgtype": "markdown", "markdown": {"content": content.markdown}})
            _step("wecom.markdown", steps, on_step)
        if content.png and "wecom.image" not in done:
            image = fit_image(content.png)
            await _webhook(http, url, {"msgtype": "image", "image": {
                "base64": base64.b64encode(image).decode("ascii"), "md5": hashlib.md5(image).hexdigest()}})
            _step("wecom.image", steps, on_step)
    except PostError as exc:
        log.warning("summary post to %s (%s) failed: %s", where, mask_webhook(url), exc)
        return PostOutcome(destination="wecom", where=where, ok=False, steps=steps, error=str(exc),
                           retryable=exc.retryable)
    return PostOutcome(destination="wecom", where=where, ok=True, steps=steps)


async def _webhook(http: httpx.AsyncClient, url: str, body: dict[str, Any]) -> None:
    try:
        response = await http.post(url, json=body)
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
        raise PostError(f"WeCom: errcode {code} {message}".strip(), retryable=code not in (93000, 40008))


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


def _step(name: str, steps: list[str], on_step: Callable[[str], None] | None) -> None:
    steps.append(name)
    if on_step is not None:
        on_step(name)


__all__ = ["PostError", "PostOutcome", "SummaryPost", "configured_destinations", "fit_image", "mask_webhook",
           "post_summary", "post_to_slack", "post_to_wecom", "slack_client"]
