"""The ``/minpcode bulk`` modal: a CSV/XLSX file input, a field to paste rows, a sample sheet, defaults for every row.

Block Kit's ``file_input`` (an input block element, modals only) needs the ``files:read`` scope and takes
files up to 10 MB; its ``filetypes`` filter is a convenience only, so the bytes are checked here. The file
is fetched from ``url_private_download`` with the bot token. Slack answers a token without ``files:read``
(or a stale install) with 200 and an HTML sign-in page: that is recognised and explained, never read as a sheet.
"""

from __future__ import annotations

from typing import Any

import httpx

from bot import links
from bot.batch.sheets import Sheet, SheetError, load_pasted, load_sheet
from bot.errors import UpstreamError
from handlers.slack.deliver import bypass_proxy
from handlers.slack.views import modal, say

CALLBACK = "minpcode_batch_form"
FILE_BLOCK, ROWS_BLOCK = "batch_file", "batch_rows"
DEFAULT_BLOCKS = {"batch_type": "type", "batch_campaign": "campaign", "batch_channel": "channel", "batch_app": "app"}
FILE_MAX_BYTES = 10 * 1024 * 1024  # Slack's file_input limit


def _text_input(block_id: str, label: str, *, multiline: bool = False, placeholder: str = "") -> dict[str, Any]:
    element: dict[str, Any] = {"type": "plain_text_input", "action_id": block_id, "multiline": multiline}
    if placeholder:
        element["placeholder"] = {"type": "plain_text", "text": placeholder[:150]}
    return {"type": "input", "block_id": block_id, "optional": True, "label": {"type": "plain_text", "text": label},
            "element": element}


def form_view(lang: str | None, public_url: str | None, metadata: str, upload_token: str | None = None) -> dict[str, Any]:
    sample = f"<{links.sample_sheet_url(public_url)}|sample.csv>" if public_url else "`page,type,scene,name`"
    upload = say(lang, f" 也可以在 30 分钟内用<{links.upload_url(public_url, upload_token)}|这个链接>上传（只能用一次）。",
                 f" You may also upload it <{links.upload_url(public_url, upload_token)}|here> within "
                 "30 minutes (one use).") if public_url and upload_token else ""
    types = [{"text": {"type": "plain_text", "text": t}, "value": t} for t in ("A", "B", "C", "shortlink", "urllink", "scheme")]
    return modal(
        CALLBACK, say(lang, "批量生成", "Batch of codes"), say(lang, "试运行", "Dry run"), say(lang, "取消", "Cancel"),
        metadata, [
            {"type": "section", "text": {"type": "mrkdwn", "text": say(
                lang, f"上传 CSV/XLSX（第一个工作表），或在下面粘贴表格。表头用和命令一样的字段（页面、类型、场景、名称、"
                      f"推广活动、推广渠道……）。示例：{sample}。先试运行，确认后才生成。",
                f"Upload a CSV/XLSX (its first sheet), or paste the rows below. The header names the same fields "
                f"as the commands (page, type, scene, name, campaign, channel, …). Sample: {sample}. A dry run "
                "comes first; nothing is made before you confirm.") + upload}},
            {"type": "input", "block_id": FILE_BLOCK, "optional": True,
             "label": {"type": "plain_text", "text": say(lang, "表格文件", "Sheet file")},
             "element": {"type": "file_input", "action_id": FILE_BLOCK, "filetypes": ["csv", "xlsx"], "max_files": 1}},
            _text_input(ROWS_BLOCK, say(lang, "或粘贴行", "Or paste rows"), multiline=True,
                        placeholder="page,type,scene,name\npages/index/index,B,id=1,Store 1"),
            {"type": "input", "block_id": "batch_type", "optional": True,
             "label": {"type": "plain_text", "text": say(lang, "默认类型", "Default type")},
             "element": {"type": "static_select", "action_id": "batch_type", "options": types}},
            _text_input("batch_campaign", say(lang, "默认推广活动", "Default campaign")),
            _text_input("batch_channel", say(lang, "默认推广渠道", "Default channel")),
            _text_input("batch_app", say(lang, "默认小程序 appid", "Default mini program appid")),
        ])


def submitted(values: dict[str, Any]) -> tuple[list[dict[str, Any]], str, dict[str, str]]:
    """(files, pasted rows, defaults) from a view_submission's ``state.values``."""
    def entry(block: str) -> dict[str, Any]:
        found = values.get(block, {})
        return next(iter(found.values()), {}) if isinstance(found, dict) else {}

    files = entry(FILE_BLOCK).get("files") or []
    rows = str(entry(ROWS_BLOCK).get("value") or "")
    defaults: dict[str, str] = {}
    for block, key in DEFAULT_BLOCKS.items():
        e = entry(block)
        value = (e.get("selected_option") or {}).get("value") if e.get("type") == "static_select" else e.get("value")
        if value and str(value).strip():
            defaults[key] = str(value).strip()
    return [f for f in files if isinstance(f, dict)], rows, defaults


def missing(files: list[dict[str, Any]], rows: str, lang: str | None) -> dict[str, str] | None:
    """The modal's field errors when there is nothing to read."""
    if files or rows.strip():
        return None
    return {ROWS_BLOCK: say(lang, "请上传表格文件或粘贴行。", "Upload a sheet or paste rows.")}


def with_defaults(sheet: Sheet, defaults: dict[str, str]) -> Sheet:
    """Every row gets the defaults for the fields its own cells leave empty."""
    for row in sheet.rows:
        for key, value in defaults.items():
            row.fields.setdefault(key, value)
    return sheet


async def fetch(file: dict[str, Any], token: str, api_url: str) -> bytes:
    """The file's bytes from ``url_private_download``; a clear refusal for a sign-in page, a size over 10 MB."""
    name = str(file.get("name") or "sheet")
    if int(file.get("size") or 0) > FILE_MAX_BYTES:
        raise SheetError(f"{name} 超过 10 MB。", f"{name} is over 10 MB.")
    url = str(file.get("url_private_download") or file.get("url_private") or "")
    if not url:
        raise SheetError("Slack 没有给出这个文件的下载地址。", "Slack gave no download address for this file.")
    async with httpx.AsyncClient(timeout=30, trust_env=not bypass_proxy(url)) as http:
        response = await http.get(url, headers={"Authorization": f"Bearer {token}"})
    data = response.content[:FILE_MAX_BYTES + 1]
    html = "text/html" in response.headers.get("content-type", "") or data.lstrip()[:15].lower().startswith(
        (b"<!doctype html", b"<html"))
    if response.status_code != 200 or html:
        raise UpstreamError(
            "slack", response.status_code,
            "Slack 没有给出文件，而是给了登录页：应用缺少 files:read 权限或安装已过期。请在应用设置里加上 files:read"
            "（manifest.yml 已列出），然后重新安装到工作区。",
            "Slack answered with its sign-in page instead of the file: the app lacks the files:read scope or its "
            "install is stale. Add files:read to the app's scopes (manifest.yml lists it) and reinstall it to "
            "the workspace.")
    if len(data) > FILE_MAX_BYTES:
        raise SheetError(f"{name} 超过 10 MB。", f"{name} is over 10 MB.")
    return data


async def read(files: list[dict[str, Any]], rows: str, token: str, api_url: str) -> Sheet:
    if files:
        file = files[0]
        return await load_sheet(await fetch(file, token, api_url), str(file.get("name") or "sheet.csv"))
    return await load_pasted(rows)


__all__ = ["CALLBACK", "FILE_MAX_BYTES", "fetch", "form_view", "missing", "read", "submitted",
           "with_defaults"]
