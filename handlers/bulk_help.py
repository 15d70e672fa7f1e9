"""What ``help`` says about ``bulk`` / ``批量``, per chat: each front-end takes sheets its own way.

Slack takes rows after the command (``/minpcode``, the DM, an @mention), a CSV/XLSX dropped in the DM with the
bot, or the modal; WeCom takes
rows after 批量 or an upload link; the console chat reads one command a line, so it takes no sheet and
points to the CLI's ``minpcode bulk FILE``. The columns and limits are read from bot/batch/sheets.py, so
the help cannot drift from what the sheet reader accepts.
"""

from __future__ import annotations

from bot.batch.sheets import BLANK_NAMES, COLUMNS, MAX_BYTES, MAX_ROWS
from bot.fields import FLAGS, header_names

USAGE = "bulk ⏎ <header> ⏎ <row> …"

_ROWS_ZH = "下一行起粘贴表头和每行一个码"
_ROWS_EN = "next lines: a header, then one line per code"
_CLI_ZH = "这个聊天不收表格，请在命令行运行 minpcode bulk 文件.csv|.xlsx"
_CLI_EN = "this chat takes no sheet; run minpcode bulk FILE.csv|.xlsx"

# chat -> (how a sheet is sent, zh; en), said in the overview: short, so the list stays one message.
_WAYS = {
    "slack": (f"{_ROWS_ZH}；或在与机器人的私信里发 CSV/XLSX 并写 bulk；只发 bulk 打开表单",
              f"{_ROWS_EN}; or a CSV/XLSX in the DM with the bot, saying bulk; bulk alone opens a form"),
    "wecom": (f"{_ROWS_ZH}；只发「批量」得到上传表格的链接", f"{_ROWS_EN}; bulk alone: an upload link"),
}
_CLI_WAY = (_CLI_ZH, _CLI_EN)

# chat -> (after the dry run, zh; en)
_AFTER = {
    "slack": ("预检结果发到你与机器人的私信，带「开始」「取消」按钮；完成后 zip（图片 + manifest.csv/.xlsx）和 "
              "manifest.csv 发在发起批量的地方：频道里发起的发在那个频道的话题里（注明发起人），私信里发起的发在预检消息的话题里。",
              "The dry run comes to your DM with the bot with Start and Cancel buttons; at the end a zip "
              "(images + manifest.csv/.xlsx) and the manifest.csv are posted where the batch was started: in a "
              "thread of that channel, naming who ran it, or in the dry run's thread in the DM."),
    "wecom": ("预检结果发回这里；回复「开始」生成，「取消」放弃；完成后发回 zip（图片 + manifest.csv/.xlsx）。",
              "The dry run comes back here: reply start or cancel; at the end a zip (images + "
              "manifest.csv/.xlsx) comes back."),
}
_CLI_AFTER = ("minpcode bulk 文件 先预检再询问是否开始（--dry-run 只预检，--yes 直接开始，--out 结果.zip 保存 "
              "zip：图片 + manifest.csv/.xlsx）。",
              "minpcode bulk FILE checks first, then asks to start (--dry-run only checks, --yes starts without "
              "asking, --out result.zip saves a zip of images + manifest.csv/.xlsx).")

_FILES = {
    "slack": ("发送方式：/minpcode bulk（或私信里的 bulk、频道里的 @minpcode bulk）后换行粘贴；或在与机器人的私信里"
              "上传 CSV/XLSX，消息里写 bulk；或只发 /minpcode bulk 打开表单（可选文件、粘贴、每行的默认值）。",
              "How: paste the rows on the lines after /minpcode bulk (or bulk in the DM, @minpcode bulk in a "
              "channel); or upload a CSV/XLSX in the DM with the bot with bulk in the message; or send "
              "/minpcode bulk alone for a form (a file, pasted rows, defaults for every row)."),
    "wecom": ("发送方式：「批量」后换行粘贴；或只发「批量」，用回复里的一次性链接（30 分钟内）上传 CSV/XLSX"
              "（需机器人有公网地址）。",
              "How: paste the rows on the lines after bulk, or send bulk alone for a one-time link to upload "
              "a CSV/XLSX (30 minutes; the bot needs a public address)."),
}


def overview(chat: str | None) -> tuple[str, str, str]:
    """The usage shown in the command list, and the one-line summary (zh, en) for ``chat``."""
    if chat in _WAYS:
        return (USAGE, *_WAYS[chat])
    return ("bulk", *_CLI_WAY)


def columns() -> list[str]:
    """Each column a sheet may have with its other headers (Chinese ones included), in the reader's order."""
    names = header_names() | BLANK_NAMES
    return [" ".join([key, *(n for n, k in names.items() if k == key and n != key)]) for key in COLUMNS]


def detail(chat: str | None) -> list[tuple[str, str]]:
    """The lines of ``help bulk`` for ``chat``, each as (zh, en)."""
    mb = MAX_BYTES // (1024 * 1024)
    flags = ", ".join(FLAGS)
    lines = [_FILES[chat] if chat in _FILES else (_CLI_ZH + "。", _CLI_EN[:1].upper() + _CLI_EN[1:] + ".")]
    lines += [
        # said in few words: with every column (blank and tag too) this help is still one WeCom text
        ("表格：CSV（UTF-8/GBK）或 XLSX，粘贴用逗号或 Tab 分隔；首行是列名（同 new 的参数）：",
         "The sheet: CSV (UTF-8/GBK) or XLSX, pasted comma or tab separated; the first line names the "
         "columns (as new's options):"),
        (f"{flags} 填 yes 或 no；空格子用默认值。", f"{flags}: yes or no; an empty cell keeps the default."),
        (f"上限：每次最多 {MAX_ROWS} 行、{mb} MB。", f"Limits: at most {MAX_ROWS} rows and {mb} MB at a time."),
        ("先预检：每行按单个码的规则检查，算出复用和额度，什么都不生成。",
         "First a dry run: each row checked as one code is, reuse and quota counted; nothing made."),
        _AFTER.get(chat or "", _CLI_AFTER),
    ]
    return lines


__all__ = ["USAGE", "columns", "detail", "overview"]
