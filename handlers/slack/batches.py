"""Batches in Slack: ``bulk`` with rows on the next lines (``/minpcode``, the DM, an @mention), a sheet (the
form, a file in the DM or with a mention), a dry run with Start/Cancel, progress in place, the results.

The dry run is one message in the person's DM with the bot (the Start button is the starter's alone, and a
DM is always a message the bot may update); Start runs the batch through the shared engine and the same
message is updated with ``chat.update`` at most every :data:`EVERY` seconds (Slack's chat.update is Tier 3,
about 50 a minute per workspace: one batch every 2 s stays well inside it). At the end the zip and
manifest.csv go where the batch was started: a batch started in a channel posts them there, in a thread
that names its starter (the thread of the @mention that started it, or under a message saying who ran it),
so the team that asked sees the codes; a batch started in the DM gets them in its dry run's thread. The
channel is kept on the batch (``BatchOrigin.channel_id``), so a batch resumed after a restart posts there too.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Literal, Protocol

from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.web.async_client import AsyncWebClient

from bot import links
from bot.batch import output, report
from bot.batch.engine import BatchEngine, BatchProgress
from bot.batch.links import UploadClaim
from bot.batch.models import Batch, BatchOrigin, BatchStatus
from bot.batch.sheets import Sheet, load_pasted
from bot.errors import MinpcodeError
from bot.models import Requester
from bot.service import Service
from handlers.slack import batch_form, parse
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
    token: str
    api_url: str
    public_url: str | None
    metadata_key: bytes

    def cached_lang(self, user_id: str) -> str | None: ...

    def spawn(self, coro: Coroutine[Any, Any, Any], what: str, *, urgent: bool = False) -> Any: ...
    async def requester(self, origin: Origin) -> tuple[Requester, Literal["zh", "en"] | None]: ...
    async def reply(self, origin: Origin, text: str, *, blocks: list[dict[str, Any]] | None = None) -> None: ...


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
        engine.intake_for("slack", self.from_upload)  # a sheet sent through an upload link comes back here

    async def open_form(self, trigger_id: str, origin: Origin) -> None:
        _, lang = await self.host.requester(origin)
        try:
            link = self.engine.links.issue("slack", origin.user_id, origin.channel_id, lang or "zh")
            # the channel is sealed for this person: the results are posted there
            metadata = parse.dump_metadata(parse.sealed({"c": origin.channel_id}, self.host.metadata_key,
                                                        origin.user_id))
            await self.host.client.views_open(trigger_id=trigger_id, view=batch_form.form_view(
                lang, self.host.service.settings.people_url, metadata, upload_token=link))
        except (SlackApiError, SlackClientError) as exc:
            await self.host.delivery.tell(origin.user_id, origin.channel_id, say(
                lang, f"表单没能打开（{slack_error(exc)}），请再输入一次 /minpcode bulk，或在它后面换行粘贴表格。",
                f"The form did not open ({slack_error(exc)}). Type /minpcode bulk again, or paste the rows on the "
                "lines after it."), response_url=origin.response_url)

    async def from_upload(self, sheet: Sheet, claim: UploadClaim) -> None:
        async def read() -> Sheet:
            return sheet

        await self._dry_run(read, Origin("", claim.user_id, None, claim.channel_id), {})

    async def from_text(self, rows: str, origin: Origin) -> None:
        await self._dry_run(lambda: load_pasted(rows), origin, {})

    async def from_form(self, files: list[dict[str, Any]], rows: str, defaults: dict[str, str], origin: Origin) -> None:
        async def sheet() -> Sheet:
            return await batch_form.read(files, rows, self.host.token, self.host.api_url)

        await self._dry_run(sheet, origin, defaults)

    async def _dry_run(self, read: Callable[[], Awaitable[Sheet]], origin: Origin, defaults: dict[str, str]) -> None:
        requester, lang = await self.host.requester(origin)
        try:
            sheet = batch_form.with_defaults(await read(), defaults)
            dm = await self.host.delivery.dm_channel(origin.user_id)
            # started in a channel: the results go there (in the mention's thread, when one started it)
            started = origin.channel_id or dm
            where = BatchOrigin(user_id=requester.user_id, user_name=requester.user_name, chat="slack",
                                channel_id=started, thread_id=origin.thread_ts if started != dm else None,
                                message_channel_id=dm, lang=lang or "zh")
            plan = await self.engine.dry_run(sheet, where)
        except MinpcodeError as exc:
            await self.host.reply(origin, say(lang, exc.zh, exc.en))
            return
        text = report.dry_run_text(plan).render(lang, both=lang not in ("zh", "en"))
        posted = await self.host.client.chat_postMessage(
            channel=dm, text=text, blocks=_blocks(text, plan.batch.id if plan.ready else None, lang))
        ts = str(posted["ts"])
        # a batch started in the DM keeps its results in the dry run's thread
        self.engine.place(plan.batch.id, message_id=ts, **({"thread_id": ts} if started == dm else {}))
        if not plan.ready:
            self.engine.cancel(plan.batch.id, requester)
        if origin.in_place and started != dm:  # an @mention is answered in its thread: where the dry run went
            await self.host.reply(origin, say(lang, "预检结果和「开始」按钮已私信给你；完成后结果会发在这个话题里。",
                                              "The dry run and its Start button are in your DM with me; the "
                                              "results will be posted in this thread."))

    async def start(self, batch_id: str, origin: Origin) -> None:
        requester, lang = await self.host.requester(origin)
        try:
            batch = self.engine.startable(batch_id, requester)
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
        if not (where.message_channel and where.message_id):
            return
        try:
            await self.host.client.chat_update(channel=where.message_channel, ts=where.message_id, text=text,
                                               blocks=_blocks(text, None, where.lang))
        except (SlackApiError, SlackClientError) as exc:  # progress is a courtesy: the batch goes on
            log.warning("batch %s: chat.update failed: %s", batch.id, slack_error(exc))

    async def _upload(self, batch: Batch) -> None:
        """The zip and manifest.csv where the batch was started: its dry run's thread in the DM, or a thread in
        the channel saying who ran it (what the channel will not take goes to the DM, saying why)."""
        where = batch.origin
        if batch.status is not BatchStatus.DONE or not where.channel_id:
            return
        stem = f"minpcode-{batch.id}"
        files = [{"content": self.engine.result_zip(batch.id), "filename": f"{stem}.zip", "title": f"{stem}.zip"},
                 {"content": self._manifest_csv(batch.id), "filename": f"{stem}-manifest.csv",
                  "title": f"{stem}-manifest.csv"}]
        client, lang, starter = self.host.client, where.lang, where.user_id
        private = where.message_channel or where.channel_id
        try:
            if where.channel_id == private:
                await client.files_upload_v2(channel=private, thread_ts=where.thread_id, file_uploads=files,
                                             initial_comment=say(lang, f"批量任务 {batch.id} 的结果：图片和 manifest。",
                                                                 f"Batch {batch.id}: the images and the manifest."))
                return
            channel, thread = where.channel_id, where.thread_id

            async def share() -> None:
                nonlocal thread
                if thread is None:  # a slash command in the channel: a message to hang the results under
                    done = report.progress_text(self.engine.progress(batch.id)).render(lang, both=lang not in ("zh", "en"))
                    posted = await client.chat_postMessage(channel=channel, unfurl_links=False, text=say(
                        lang, f"<@{starter}> 的批量任务已完成，图片和 manifest 在这条消息的话题里。\n{done}",
                        f"<@{starter}> ran a batch; the images and the manifest are in this thread.\n{done}"))
                    thread = str(posted["ts"])
                    self.engine.place(batch.id, thread_id=thread)  # a resume after a crash posts under it
                await client.files_upload_v2(channel=channel, thread_ts=thread, file_uploads=files, initial_comment=say(
                    lang, f"<@{starter}> 的批量任务 {batch.id} 的结果：图片和 manifest。",
                    f"Batch {batch.id} by <@{starter}>: the images and the manifest."))

            refused = await self.host.delivery.into_channel(channel, share)
            if refused is None:  # the starter's dry run says where the results went
                await self.host.delivery.post(private, say(lang, f"结果已发到 <#{channel}>。",
                                                           f"The results are posted in <#{channel}>."),
                                              thread_ts=where.message_id)
                return
            await client.files_upload_v2(channel=private, thread_ts=where.message_id, file_uploads=files,
                                         initial_comment=self.host.delivery.why_dm(refused, channel, lang))
        except (SlackApiError, SlackClientError) as exc:
            log.warning("batch %s: upload failed: %s", batch.id, slack_error(exc))
            people_url = self.host.service.settings.people_url
            if people_url:  # the same test as the upload link's in the batch form
                link = links.download_url(people_url, self.engine.links.issue_download(batch.id))
                zh, en = f"请在 24 小时内从<{link}|这里>下载。", f"Download it <{link}|here> within 24 hours."
            else:
                zh, en = f"可用 `minpcode batch {batch.id}` 查看。", f"`minpcode batch {batch.id}` shows it."
            await self.host.delivery.tell(starter, where.channel_id, say(
                lang, f"批量任务 {batch.id} 已完成，但结果没能上传（{slack_error(exc)}）。{zh}",
                f"Batch {batch.id} is finished but its results could not be uploaded ({slack_error(exc)}). {en}"))

    def _manifest_csv(self, batch_id: str) -> bytes:
        return output.manifest_csv(self.engine.manifest(batch_id))


def register(app: AsyncApp, host: Host, engine: BatchEngine) -> SlackBatches:
    """The batch listeners (the form's submission, Start and Cancel); returns what runs the batches. A sheet
    sent in a message comes through the message listeners (handlers/slack/listeners.py)."""
    batches = SlackBatches(host, engine)

    @app.view(batch_form.CALLBACK)
    async def on_submit(ack: Any, body: dict[str, Any], view: dict[str, Any]) -> None:
        origin = parse.action_origin(body)
        meta = parse.checked(parse.load_metadata(view), host.metadata_key, origin.user_id)
        origin = Origin(origin.team_id, origin.user_id, origin.user_name, meta.get("c"), None)
        files, rows, defaults = batch_form.submitted((view.get("state") or {}).get("values") or {})
        errors = batch_form.missing(files, rows, host.cached_lang(origin.user_id))
        if errors:
            await ack(response_action="errors", errors=errors)
            return
        await ack()
        host.spawn(batches.from_form(files, rows, defaults, origin), "checking a sheet from the batch form")

    @app.action(re.compile(rf"^({START_ACTION}|{CANCEL_ACTION})$"))
    async def on_button(ack: Any, body: dict[str, Any], action: dict[str, Any]) -> None:
        await ack()
        origin = parse.action_origin(body)
        batch_id = str(action.get("value") or "")
        if action.get("action_id") == START_ACTION:
            host.spawn(batches.start(batch_id, origin), "running a batch")
        else:
            host.spawn(batches.cancel(batch_id, origin), "cancelling a batch", urgent=True)

    return batches


__all__ = ["SlackBatches", "register"]
