"""Batches in WeCom: ``批量`` / ``bulk`` then the rows in the same message; a dry-run text; 开始 / 取消.

WeCom has no message to update in place, so progress is a few separate texts: at 25, 50 and 75% and
never more than one every :data:`PROGRESS_EVERY` seconds. The zip comes back as a file message, or as a
download link (bot/batch/links.py) when it is over WeCom's file limit or its upload fails. A member's
batch waiting for 开始 is their newest draft batch in SQLite, so a restart between the dry run and 开始
loses nothing.
"""

from __future__ import annotations

import asyncio
import logging
import time

from bot import links
from bot.batch import report
from bot.batch.engine import BatchEngine, BatchProgress
from bot.batch.links import UploadClaim
from bot.batch.models import Batch, BatchOrigin, BatchStatus
from bot.batch.sheets import MAX_BYTES, Sheet, load_pasted, load_sheet
from bot.errors import MinpcodeError, UpstreamError
from bot.models import Requester
from bot.text import Text

from .client import Target
from .deliver import TEXT_MAX_BYTES, BatchSink, bilingual

log = logging.getLogger("minpcode.wecom.batches")

PROGRESS_EVERY = 30.0
MARKS = (0.25, 0.5, 0.75)
ZIP_MAX_BYTES = 20 * 1024 * 1024  # media/upload's limit for a file
WAITING_LOOK = 20  # the member's newest batches searched for this front-end's draft


def _fit(text: str, limit: int = TEXT_MAX_BYTES) -> str:
    """``text`` cut at a line end so it fits one WeCom text (2048 bytes)."""
    if len(text.encode()) <= limit:
        return text
    lines, kept = text.split("\n"), list[str]()
    for line in lines:
        if len(("\n".join([*kept, line]) + "\n…").encode()) > limit:
            break
        kept.append(line)
    return "\n".join(kept) + "\n…"


class WeComBatches:
    """The batches of one WeCom front-end: ``front`` is ``wecom`` (the self-built app) or ``wecom_aibot`` (the
    AI bot). Both speak for the same person (``wecom:<userid>``); each batch remembers its front-end
    (:attr:`BatchOrigin.front`), which alone reports it, also after a restart."""

    def __init__(self, deliver: BatchSink, engine: BatchEngine, *, every: float = PROGRESS_EVERY,
                 front: str = "wecom") -> None:
        self.deliver = deliver
        self.engine = engine
        self.every = every
        self.front = front
        self.zip_max_bytes = ZIP_MAX_BYTES  # an attribute so a test can see the link path with a small batch
        self.tasks: set[asyncio.Task[None]] = set()
        engine.runner_for(front, self.run)  # after a restart, serve resumes this front-end's batches through us
        engine.intake_for(front, self.from_upload)  # a sheet sent through our upload link comes back here

    def waiting(self, requester: Requester) -> Batch | None:
        """The member's batch waiting for 开始 / 取消 here: their newest made through this front-end, if it is
        still a draft (a dry run in the other WeCom front-end is started there, where its results go)."""
        mine = [b for b in self.engine.recent(requester.key, limit=WAITING_LOOK)
                if b.origin.front_end == self.front]
        return mine[0] if mine and mine[0].status is BatchStatus.DRAFT else None

    async def dry_run(self, rows: str, target: Target, requester: Requester) -> None:
        if not rows.strip():
            link = ""
            if self.deliver.public_url:
                token = self.engine.links.issue(self.front, requester.user_id, target.chat_id, requester.lang)
                link = links.upload_url(self.deliver.public_url, token)
            await self.deliver.say(
                target, "发送「批量」后换行粘贴表格（第一行是表头，如 页面,类型,场景，之后每行一个码）"
                        + (f"，或在 30 分钟内用这个链接上传 CSV/XLSX（只能用一次）：{link}" if link else
                           "。（上传链接要等管理员设置 MINPCODE_PUBLIC_URL。）"),
                "Send bulk with the rows on the next lines (a header line such as page,type,scene, then one line "
                "per code)" + (f", or upload a CSV/XLSX within 30 minutes here (one use): {link}" if link else
                               ". (An upload link needs MINPCODE_PUBLIC_URL, set by whoever runs the bot.)"))
            return
        await self._dry_run(await load_pasted(rows), target, requester)

    async def from_file(self, media_id: str, target: Target, requester: Requester) -> None:
        """A file message (``MsgType=file``, when a tenant sends one): the sheet by ``media/get`` (the AI bot:
        downloaded from the message's link)."""
        data, name = await self.deliver.fetch(media_id, MAX_BYTES)
        await self._dry_run(await load_sheet(data, name), target, requester)

    async def from_upload(self, sheet: Sheet, claim: UploadClaim) -> None:
        target = Target(claim.user_id, claim.channel_id)
        requester = Requester(chat="wecom", user_id=claim.user_id, channel_id=claim.channel_id,
                              lang="en" if claim.lang == "en" else "zh")
        await self._dry_run(sheet, target, requester)

    async def _dry_run(self, sheet: Sheet, target: Target, requester: Requester) -> None:
        where = BatchOrigin(user_id=requester.user_id, user_name=requester.user_name, chat="wecom",
                            channel_id=target.chat_id, lang=requester.lang, front=self.front)
        plan = await self.engine.dry_run(sheet, where)
        text = report.dry_run_text(plan)
        if plan.ready:
            text += Text(zh="\n回复「开始」生成，「取消」放弃。", en="\nReply start to make them, or cancel.")
        else:
            self.engine.cancel(plan.batch.id, requester)
        await self.deliver.text(target, _fit(text.render("zh")))

    async def start(self, batch: Batch, target: Target) -> None:
        """Say so, then run it behind the message (the member may go on sending commands meanwhile)."""
        await self.deliver.say(target, f"开始生成批量任务 {batch.id}（{batch.total} 行），完成后发回压缩包。",
                               f"Batch {batch.id} started ({batch.total} rows); the zip comes back when done.")
        task = asyncio.create_task(self._guarded(batch), name=f"{self.front}-batch-{batch.id}")
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _guarded(self, batch: Batch) -> None:
        try:
            await self.run(batch)
        except Exception:  # the rows' state is stored; the log says why this run stopped
            log.exception("wecom: batch %s stopped", batch.id)

    async def cancel(self, batch: Batch, target: Target, requester: Requester) -> None:
        self.engine.cancel(batch.id, requester)
        await self.deliver.say(target, f"已取消批量任务 {batch.id}，什么都没有生成。",
                               f"Batch {batch.id} cancelled; nothing was made.")

    async def run(self, batch: Batch) -> None:
        """Run (or go on with) ``batch``: a few progress texts, then the result and the zip as a file."""
        target = Target(batch.origin.user_id, batch.origin.channel_id)
        marks, last = list(MARKS), [time.monotonic()]

        async def progress(p: BatchProgress) -> None:
            done = report.share(p)
            passed = [m for m in marks if done >= m]
            if p.finished or not passed or time.monotonic() - last[0] < self.every:
                return
            for m in passed:
                marks.remove(m)
            last[0] = time.monotonic()
            await self.deliver.text(target, report.progress_text(p).render("zh"))

        final = await self.engine.run(batch.id, on_progress=progress, every=1.0)
        await self.deliver.text(target, report.progress_text(self.engine.progress(final.id)).render("zh"))
        if final.status is BatchStatus.DONE:
            await self._send_zip(final, target)

    async def _send_zip(self, batch: Batch, target: Target) -> None:
        data = self.engine.result_zip(batch.id)
        size = len(data)
        try:
            if size > self.zip_max_bytes:
                raise UpstreamError("wecom", None, "压缩包超过企业微信 20 MB 的文件上限。",
                                    "The zip is over WeCom's 20 MB file limit.")
            await self.deliver.media(target, data, f"minpcode-{batch.id}.zip", "application/zip", "file")
        except MinpcodeError as exc:
            log.warning("wecom: batch %s zip not sent: %s", batch.id, type(exc).__name__)
            await self._offer_link(batch, target, size, exc)

    async def _offer_link(self, batch: Batch, target: Target, size: int, exc: MinpcodeError) -> None:
        mb = f"{size / (1024 * 1024):.1f}"
        if not self.deliver.public_url:  # the same test as the upload link's: no address, no link
            await self.deliver.say(
                target, f"压缩包没能发出（{exc.zh}），且没有设置 MINPCODE_PUBLIC_URL，无法给出下载链接。"
                        f"可在命令行用 minpcode batch {batch.id} 查看结果。",
                f"The zip could not be sent ({exc.en}) and MINPCODE_PUBLIC_URL is not set, so there is no download "
                f"link. `minpcode batch {batch.id}` shows the results.")
            return
        link = links.download_url(self.deliver.public_url, self.engine.links.issue_download(batch.id))
        if size > self.zip_max_bytes:
            zh = f"压缩包有 {mb} MB，超过企业微信 20 MB 的文件上限，请在 24 小时内从这里下载：{link}"
            en = f"The zip is {mb} MB, over WeCom's 20 MB file limit; download it within 24 hours: {link}"
        else:
            zh = f"压缩包（{mb} MB）没能作为文件发出（{exc.zh}），请在 24 小时内从这里下载：{link}"
            en = f"The zip ({mb} MB) could not be sent as a file ({exc.en}); download it within 24 hours: {link}"
        await self.deliver.text(target, _fit(bilingual(zh, en)))  # a long upstream reason cuts the English, not the link

__all__ = ["WeComBatches"]
