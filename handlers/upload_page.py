"""The batch upload page: ``GET /batches/upload/<token>`` (a small page), ``POST`` the same address (the file);
and ``GET /batches/<token>.zip``, a finished batch's zip by its signed download link.

A chat answers ``bulk`` with a one-time link (bot/batch/links.py) for people whose chat cannot send files
(WeCom's self-built apps). The page works without a framework in WeCom's and WeChat's built-in browsers and
on a desktop: one file input, the file POSTed as the body (no multipart), the answer shown under it. The
sheet is checked here and the dry run continues in the chat the link came from.
"""

from __future__ import annotations

import html
import logging
import math
import time
import urllib.parse

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import BaseRoute, Route

from bot import links
from bot.batch.links import TTL_SECONDS, LinkError, LinkExpired, UploadClaim
from bot.batch.models import BatchStatus
from bot.batch.sheets import BLANK_NAMES, COLUMNS, MAX_BYTES, load_sheet
from bot.errors import InputError, MinpcodeError, NotFound
from bot.fields import ALIASES
from bot.service import Service
from handlers.http import BodyTooLarge, read_limited

log = logging.getLogger("minpcode.upload")


_PAGE = """<!DOCTYPE html>
<html lang="zh"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>上传表格 · Upload a sheet</title>
<style>body{{font-family:system-ui,sans-serif;max-width:32rem;margin:2rem auto;padding:0 1rem;line-height:1.5}}
button{{font-size:1.1rem;padding:.5rem 1.5rem}} #result{{margin-top:1rem;white-space:pre-wrap}}</style></head>
<body><h1>上传表格 · Upload a sheet</h1>
<p>选择 CSV 或 XLSX（最多 5 MB、5000 行），试运行结果会发回聊天。<br>
Choose a CSV or XLSX (up to 5 MB and 5,000 rows); the dry run comes back in the chat.</p>
{help}<form id="form"><input id="file" type="file" accept=".csv,.xlsx,text/csv,application/vnd.openxmlformats-officedocument.spreadsheetml.sheet" required>
<p><button id="send" type="submit">上传 · Upload</button></p></form>
<div id="result" role="status">{notice}</div>
<script>
document.getElementById("form").addEventListener("submit", function (event) {{
  event.preventDefault();
  var file = document.getElementById("file").files[0], result = document.getElementById("result");
  if (!file) {{ return; }}
  if (file.size > {max_bytes}) {{ result.textContent = "文件超过 5 MB。\\nThe file is over 5 MB."; return; }}
  document.getElementById("send").disabled = true;
  result.textContent = "上传中… Uploading…";
  fetch(location.href, {{method: "POST", body: file, headers: {{"X-Filename": encodeURIComponent(file.name)}}}})
    .then(function (r) {{ return r.json(); }})
    .then(function (answer) {{ result.textContent = answer.message;
      if (!answer.ok) {{ document.getElementById("send").disabled = false; }} }})
    .catch(function () {{ result.textContent = "上传失败，请重试。\\nThe upload failed; try again.";
      document.getElementById("send").disabled = false; }});
}});
</script></body></html>
"""


def _both(zh: str, en: str) -> str:
    return f"{zh}\n{en}"


def _columns() -> str:
    """Each known column with its Chinese header where it has one: ``page（页面）``."""
    shown = []
    for key in COLUMNS:
        aliases = ALIASES.get(key) or tuple(name for name, k in BLANK_NAMES.items() if k == key)  # blank: the sheet's own
        chinese = next((a for a in aliases if not a.isascii()), None)
        shown.append(f"{key}（{chinese}）" if chinese else key)
    return ", ".join(shown)


def _help(claim: UploadClaim, sample: str) -> str:
    """What a person needs before picking a file: how long the link lasts, the columns, a sample sheet."""
    left = max(1, math.ceil((claim.expires - time.time()) / 60))
    ttl = TTL_SECONDS // 60
    return (f'<p id="expires">这个链接 {ttl} 分钟内有效，只能用一次，还剩约 {left} 分钟。<br>'
            f"This link is good for {ttl} minutes and one upload; about {left} min left.</p>\n"
            f'<p id="columns">第一行写列名，可用的列：{html.escape(_columns())}。<br>'
            f"The first row names the columns; known columns: {html.escape(', '.join(COLUMNS))}.<br>"
            f'示例表格 · Sample sheet: <a href="{html.escape(sample)}">sample.csv</a></p>\n')


def _closed(zh: str, en: str, status: int, headers: dict[str, str]) -> Response:
    """The page without its form: nothing to pick a file for."""
    return HTMLResponse(_PAGE.format(notice=html.escape(_both(zh, en)), help="", max_bytes=MAX_BYTES)
                        .replace('<form id="form">', '<form id="form" hidden>'), status_code=status, headers=headers)


_USED = ("这个链接已经用过了。请在聊天里重新发送「批量」。", "This link was already used. Send bulk in the chat again.")


def _spent(claim: UploadClaim) -> str:
    """The one-time key a taken sheet spends (storage/outbox.py's seen memory)."""
    return f"batch-upload:{claim.nonce}"


class UploadPage:
    """The page as a front-end of ``minpcode serve`` (routes only; nothing to start)."""

    name = "batch-upload"

    def __init__(self, service: Service) -> None:
        self.service = service
        self.engine = service.batches

    def routes(self) -> list[BaseRoute]:
        return [Route(links.UPLOAD_ROUTE, self.page, methods=["GET"]),
                Route(links.UPLOAD_ROUTE, self.upload, methods=["POST"]),
                Route(links.DOWNLOAD_ROUTE, self.download, methods=["GET"])]

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    def _claim(self, token: str) -> UploadClaim:
        return self.engine.links.verify(token)

    async def page(self, request: Request) -> Response:
        headers = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer", "X-Content-Type-Options": "nosniff"}
        try:
            claim = self._claim(request.path_params["token"])
        except LinkExpired as exc:
            return _closed(exc.zh, exc.en, 410, headers)
        except LinkError as exc:
            return _closed(exc.zh, exc.en, 403, headers)
        if self.service.outbox.seen(_spent(claim)):
            return _closed(*_USED, 410, headers)
        base = self.service.settings.people_url
        sample = links.sample_sheet_url(base) if base else links.SAMPLE_SHEET_ROUTE  # same server as this page
        return HTMLResponse(_PAGE.format(notice="", help=_help(claim, sample), max_bytes=MAX_BYTES), headers=headers)

    async def upload(self, request: Request) -> Response:
        try:
            claim = self._claim(request.path_params["token"])
        except LinkError as exc:
            return _answer(False, exc.zh, exc.en, 403)
        try:
            data = await read_limited(request, MAX_BYTES)
        except BodyTooLarge:
            return _answer(False, "文件超过 5 MB。", "The file is over 5 MB.", 413)
        name = urllib.parse.unquote(request.headers.get("x-filename", "")) or "sheet.csv"
        take = self.engine.intake(claim.chat)
        if take is None:
            return _answer(False, "这个聊天现在不可用，请稍后再试。", "That chat is not available now; try again later.", 503)
        try:
            sheet = await load_sheet(data, name)
        except MinpcodeError as exc:
            return _answer(False, exc.zh, exc.en, 400)
        spent = _spent(claim)
        if not self.service.outbox.first_seen(spent, TTL_SECONDS):
            return _answer(False, *_USED, 409)
        try:
            await take(sheet, claim)
        except BaseException as exc:
            # The link is spent only by a sheet the chat took: after our own failure the person retries with it.
            self.service.outbox.forget(spent)
            if isinstance(exc, InputError):
                return _answer(False, exc.zh, exc.en, 400)
            if isinstance(exc, MinpcodeError):
                return _answer(False, f"{exc.zh} 表格没有收下，可以稍后用同一个链接再传。",
                               f"{exc.en} The sheet was not taken; upload it again with this link later.", 502)
            raise
        return _answer(True, "已收到，试运行结果已发回聊天。", "Received: the dry run is in the chat.", 200)

    async def download(self, request: Request) -> Response:
        """The zip of the batch the token names, built afresh; a plain bilingual page when it cannot be had."""
        try:
            claim = self.engine.links.verify_download(request.path_params["token"])
            batch = self.engine.get(claim.batch_id)
        except LinkExpired as exc:
            return _refusal(exc.zh, exc.en, 410)
        except (LinkError, NotFound):
            return _refusal("这个下载链接无效。", "This download link is not valid.", 404)
        if batch.status is not BatchStatus.DONE:
            return _refusal(f"批量任务 {batch.id} 还没有完成。", f"Batch {batch.id} is not finished.", 404)
        data = self.engine.result_zip(batch.id)
        return Response(data, media_type="application/zip", headers={
            "Content-Disposition": f'attachment; filename="minpcode-{batch.id}.zip"',
            "Cache-Control": "private, no-store", "Referrer-Policy": "no-referrer", "X-Content-Type-Options": "nosniff"})


def _refusal(zh: str, en: str, status: int) -> Response:
    body = f'<!DOCTYPE html><html lang="zh"><head><meta charset="utf-8"><title>下载 · Download</title></head>' \
           f"<body><p>{html.escape(zh)}</p><p>{html.escape(en)}</p></body></html>"
    return HTMLResponse(body, status_code=status, headers={"Cache-Control": "no-store"})


def _answer(ok: bool, zh: str, en: str, status: int) -> Response:
    return JSONResponse({"ok": ok, "message": _both(zh, en)}, status_code=status,
                        headers={"Cache-Control": "no-store"}, media_type="application/json")


def upload_front_end(service: Service) -> UploadPage:
    return UploadPage(service)


__all__ = ["UploadPage", "upload_front_end"]
