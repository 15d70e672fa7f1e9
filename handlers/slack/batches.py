"""Batches in Slack: ``/minpcode bulk`` with rows on the next lines, a dry run with Start/Cancel, progress in place.

The dry run is one message in the person's DM with the bot (batches are personal, and a DM is always a
message the bot may update); Start runs the batch through the shared engine and the same message is
updated with ``chat.update`` at most every :data:`EVERY` seconds (Slack's chat.update is Tier 3, about
50 a minute per workspace: one batch every 2 s stays well inside it). At the end the zip and
manifest.csv are uploaded into that message's thread.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Coroutine
from typing import Any, Literal, Protocol

from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.web.async_client import AsyncWebClient

from bot.batch import output, report
from bot.batch.engine import BatchEngine, BatchProgress
from bot.batch.models import Batch, BatchOrigin, BatchStatus
from bot.batch.sheets import read_pasted
from bot.errors import MinpcodeError, PermissionDenied
from bot.models import Requester
from bot.service import Service
from handlers.slack import parse
from handlers.slack.deliver import Delivery
from handlers.slack.errors import slack_error
from handlers.slack.parse import Origin
from handlers.slack.views import say

log = logging.getLogger("minpcode.slack.batches")

START_ACTION, CANCEL_ACTION = "batch_start", "batch_cancel"
EVERY = 2.0
_MAX_TEXT = 2900  # a section block's text is at most 3000 characters


class Host(Protocol):
    service: Service
    client: AsyncWebClient
    delivery: Delivery

    def spawn(self, coro: Coroutine[Any, Any, Any], what: str, *, urgent: bool = False) -> Any: ...
    async def requester(self, origin: Origin) -> tuple[Requester, Literal["zh", "en"] | None]: ...


def _blocks(text: str, batch_id: str | None, lang: str | None) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = [{"type": "section", "text": {"type": "mrkdwn", "text": text[:_MAX_TEXT]}}]
    if batch_id is not None:
        blocks.append({"type": "actions", "block_id": f"batch_{batch_id}", "elements": [
            {"type": "button", "action_id": START_ACTION, "value": batch_id, "style": "primary",
             "text": {"type": "plain_text", "text": say(lang, "开始", "Start")}},
            {"type": "button", "action_id": CANCEL_ACTION, "value": batch_id, "style": "danger",
             "text": {"type": "plain_text", "text": say(lang, "取消", "Cancel")}},
        ]})
    return blocks


class SlackBatches:
    def __init__(self, host: Host, engine: BatchEngine) -> None:
        self.host = host
        self.engine = engine
        engine.runner_for("slack", self.run)  # after a restart, serve resumes Slack's batches through us

    async def from_text(self, rows: str, origin: Origin) -> None:
        requester, lang = await self.host.requester(origin)
        delivery = self.host.delivery
        if not rows.strip():
            text = say(lang, "用法：`/minpcode bulk` 后换行粘贴表格（第一行是表头，如 页面,类型,场景，之后每行一个码；"
                             "从 Excel 复制的制表符分隔也可以）。",
                       "Usage: `/minpcode bulk` then the rows on the next lines (a header line such as "
                       "page,type,scene, then one line per code; a range copied from Excel works as it is).")
            await delivery.tell(origin.user_id, origin.channel_id, text, response_url=origin.response_url)
            return
        try:
            sheet = read_pasted(rows)
            channel = await delivery.dm_channel(origin.user_id)
            where = BatchOrigin(user_id=requester.user_id, user_name=requester.user_name, chat="slack",
                                channel_id=channel, lang=lang or "zh")
            plan = await self.engine.dry_run(sheet, where)
        except MinpcodeError as exc:
            await delivery.tell(origin.user_id, origin.channel_id, say(lang, exc.zh, exc.en),
                                response_url=origin.response_url)
            return
        text = report.dry_run_text(plan).render(lang, both=lang not in ("zh", "en"))
        posted = await self.host.client.chat_postMessage(
            channel=channel, text=text, blocks=_blocks(text, plan.batch.id if plan.ready else None, lang))
        self.engine.place(plan.batch.id, message_id=str(posted["ts"]), thread_id=str(posted["ts"]))
        if not plan.ready:
            self.engine.cancel(plan.batch.id, requester)

    async def start(self, batch_id: str, origin: Origin) -> None:
        requester, lang = await self.host.requester(origin)
        try:
            batch = self.engine.get(batch_id)
            if batch.origin.key != requester.key and not self.host.service.is_admin(requester):
                raise PermissionDenied("只有发起人或管理员可以开始这个批量任务。",
                                       "Only its starter or an admin may start this batch.")
        except MinpcodeError as exc:
            await self.host.delivery.tell(origin.user_id, origin.channel_id, say(lang, exc.zh, exc.en))
            return
        if batch.status is not BatchStatus.DRAFT:
            return  # a second press, or already cancelled: the message already says so
        await self.run(batch)

    async def run(self, batch: Batch) -> None:
        """Run (or go on with) ``batch``, updating its message; ``serve`` calls this for resumed batches too."""
        final = await self.engine.run(batch.id, on_progress=self.updater(batch), every=EVERY)
        await self._upload(final)

    def updater(self, batch: Batch) -> Any:
        lang = batch.origin.lang

        async def update(p: BatchProgress) -> None:
            await self._update(batch, report.progress_text(p).render(lang, both=lang not in ("zh", "en")))

        return update

    async def cancel(self, batch_id: str, origin: Origin) -> None:
        requester, lang = await self.host.requester(origin)
        try:
            batch = self.engine.cancel(batch_id, requester)
        except MinpcodeError as exc:
            await self.host.delivery.tell(origin.user_id, origin.channel_id, say(lang, exc.zh, exc.en))
            return
        await self._update(batch, report.progress_text(self.engine.progress(batch_id))
                           .render(lang, both=lang not in ("zh", "en")))

    async def _update(self, batch: Batch, text: str) -> None:
        where = batch.origin
        if not (where.channel_id and where.message_id):
            return
        try:
            await self.host.client.chat_update(channel=where.channel_id, ts=where.message_id, text=text,
                                               blocks=_blocks(text, None, where.lang))
        except (SlackApiError, SlackClientError) as exc:  # progress is a courtesy: the batch goes on
            log.warning("batch %s: chat.update failed: %s", batch.id, slack_error(exc))

    async def _upload(self, batch: Batch) -> None:
        where = batch.origin
        if batch.status is not BatchStatus.DONE or not where.channel_id:
            return
        stem = f"minpcode-{batch.id}"
        try:
            await self.host.client.files_upload_v2(
                channel=where.channel_id, thread_ts=where.thread_id,
                initial_comment=say(where.lang, f"批量任务 {batch.id} 的结果：图片和 manifest。",
                                    f"Batch {batch.id}: the images and the manifest."),
                file_uploads=[{"content": self.engine.result_zip(batch.id), "filename": f"{stem}.zip",
                               "title": f"{stem}.zip"},
                              {"content": self._manifest_csv(batch.id), "filename": f"{stem}-manifest.csv",
                               "title": f"{stem}-manifest.csv"}])
        except (SlackApiError, SlackClientError) as exc:
            log.warning("batch %s: upload failed: %s", batch.id, slack_error(exc))
            await self.host.delivery.tell(where.user_id, where.channel_id, say(
                where.lang, f"批量任务 {batch.id} 已完成，但结果没能上传（{slack_error(exc)}）。可用 `minpcode batch {batch.id}` 查看。",
                f"Batch {batch.id} is finished but its results could not be uploaded ({slack_error(exc)}). "
                f"`minpcode batch {batch.id}` shows it."))

    def _manifest_csv(self, batch_id: str) -> bytes:
        return output.manifest_csv(self.engine.manifest(batch_id))


def register(app: AsyncApp, host: Host, batches: SlackBatches) -> None:
    @app.action(re.compile(rf"^({START_ACTION}|{CANCEL_ACTION})$"))
    async def on_button(ack: Any, body: dict[str, Any], action: dict[str, Any]) -> None:
        await ack()
        origin = parse.action_origin(body)
        batch_id = str(action.get("value") or "")
        if action.get("action_id") == START_ACTION:
            host.spawn(batches.start(batch_id, origin), "running a batch")
        else:
            host.spawn(batches.cancel(batch_id, origin), "cancelling a batch", urgent=True)


__all__ = ["SlackBatches", "register"]
