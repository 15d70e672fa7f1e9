"""``minpcode chat``: the bot in a terminal, with the very text commands of Slack and WeCom.

Each line goes through :func:`handlers.commands.run`, so ``new``, ``list``, ``改名`` … mean here what
they mean in every chat. Images are written to ``MINPCODE_DATA_DIR/out/<id>.<ext>``; a QR code is
also redrawn in the terminal (a round A/B code from real WeChat cannot be decoded: then just the
path). Lines come from the keyboard or from a pipe, until ``exit``, ``quit`` or end of input.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import itertools
import logging
import queue
import sys
import threading
from collections.abc import AsyncGenerator
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO, cast

import segno
import zxingcpp
from PIL import Image
from rich.console import Console
from rich.panel import Panel
from rich.text import Text

from bot import media
from bot.models import Requester
from bot.service import Service
from bot.text import bilingual
from handlers.attachments import attachment
from handlers.commands import Reply, run

__all__ = ["EXIT_WORDS", "ChatSession", "chat", "decode_qr", "read_lines"]

log = logging.getLogger("minpcode.console")

EXIT_WORDS = frozenset({"exit", "quit", "退出", "/exit", "/quit"})
PROMPT = "minpcode> "
EXAMPLES = (
    "new pages/index/index type=B scene=id=42",
    "新建 pages/index/index campaign=春季大促 channel=公众号 create=yes",
    "list",
)


def decode_qr(image: bytes) -> str | None:
    """The text of the QR code in ``image``, or None (a round sunflower code, a broken image)."""
    try:
        picture = Image.open(io.BytesIO(image)).convert("RGBA")
        flat = Image.alpha_composite(Image.new("RGBA", picture.size, "white"), picture).convert("L")
        found = zxingcpp.read_barcodes(flat, formats=zxingcpp.BarcodeFormats(zxingcpp.BarcodeFormat.QRCode))
    except Exception:  # an undecodable image is not an error worth more than the file path
        log.debug("could not decode image", exc_info=True)
        return None
    for barcode in found:
        if barcode.text:
            return str(barcode.text)
    return None


async def read_lines(stream: TextIO, prompt: str | None = None) -> AsyncGenerator[str, None]:
    """Lines from ``stream`` without blocking the event loop, one at a time, until end of input.

    A daemon thread reads (so Ctrl-C or the end of the program never waits on the keyboard) and
    asks for the next line only when the previous one has been handled, so the prompt shows after
    the answer. With ``prompt`` it reads through :func:`input` (line editing on a terminal).
    """
    loop = asyncio.get_running_loop()
    wanted: queue.SimpleQueue[bool] = queue.SimpleQueue()
    lines: asyncio.Queue[str | None] = asyncio.Queue()

    def deliver(line: str | None) -> None:
        try:
            loop.call_soon_threadsafe(lines.put_nowait, line)
        except RuntimeError:  # the loop is gone: the session has ended
            pass

    def reader() -> None:
        while wanted.get():
            try:
                if prompt is not None:
                    line: str | None = input(prompt)
                else:
                    raw = stream.readline()
                    line = raw.rstrip("\r\n") if raw else None
            except (EOFError, OSError, ValueError):
                line = None
            deliver(line)
            if line is None:
                return

    threading.Thread(target=reader, name="minpcode-stdin", daemon=True).start()
    try:
        while True:
            wanted.put(True)
            line = await lines.get()
            if line is None:
                return
            yield line
    finally:
        wanted.put(False)


class ChatSession:
    """One person at the terminal: runs their lines and shows the answers."""

    def __init__(self, service: Service, console: Console, requester: Requester, out_dir: Path,
                 *, echo: bool = False) -> None:
        self.service = service
        self.console = console
        self.requester = requester
        self.out_dir = out_dir
        self.echo = echo

    @property
    def lang(self) -> str:
        return self.requester.lang

    def pair(self, zh: str, en: str, sep: str = " / ") -> str:
        return bilingual(zh, en, self.lang, sep=sep)

    def say(self, text: str, style: str | None = None) -> None:
        self.console.print(text, markup=False, soft_wrap=True, style=style)

    def banner(self) -> None:
        settings = self.service.settings
        if self.service.sandbox:
            mode = self.pair("沙盒模式：内置微信/GrowingIO 模拟器，生成的码不是真的",
                             "sandbox mode: built-in WeChat/GrowingIO emulators, codes are not real")
        else:
            where = ", ".join(p for p in (
                f"WeChat {settings.wechat_appid}" if settings.wechat_configured else "",
                f"GrowingIO {settings.gio_project_uid}" if settings.gio_configured else "",
            ) if p)
            mode = self.pair("正式模式", "live") + f": {where}"
        lines = [
            f"minpcode chat · {mode}",
            "",
            self.pair("试试这些命令：", "Try:", " "),
            *(f"  {example}" for example in EXAMPLES),
            "",
            self.pair("help 查看全部命令；exit、quit 或 Ctrl-D 退出",
                      "help lists every command; exit, quit or Ctrl-D to leave"),
        ]
        self.console.print(Panel(Text("\n".join(lines)), expand=False))

    async def handle(self, line: str) -> bool:
        """Run one line; False when the person wants to leave."""
        text = line.strip()
        if not text or text.startswith("#"):
            return True
        if self.echo:
            self.say(f"> {text}", style="dim")
        if text.lower() in EXIT_WORDS:
            return False
        try:
            reply = await run(self.service, text, self.requester)
        except Exception as exc:  # a bug must not end the session; the person is told plainly
            log.debug("command failed unexpectedly", exc_info=True)
            self.say(self.pair(f"出现意外错误（{type(exc).__name__}），请稍后再试或联系管理员。",
                               f"Something unexpected went wrong ({type(exc).__name__}); try again later "
                               "or tell an admin.", "\n"), style="red")
            return True
        self.show(reply)
        return True

    def show(self, reply: Reply) -> None:
        self.say(reply.text(self.lang), style=None if reply.ok else "red")
        attached = attachment(reply, None)  # a terminal keeps both files: the poster, then the bare code below
        if attached is not None and attached.poster:
            poster = self.out_dir / attached.filename
            poster.parent.mkdir(parents=True, exist_ok=True)
            poster.write_bytes(attached.data)
            self.say(self.pair("海报", "Poster", " ") + f": {poster}", style="green")
        if reply.image is None:
            return
        path = self.save_image(reply)
        self.say(self.pair("图片", "Image", " ") + f": {path}", style="green")
        text = decode_qr(reply.image)
        if text is not None:
            segno.make(text, micro=False).terminal(out=cast(TextIO, self.console.file), compact=True)
            self.console.file.flush()

    def save_image(self, reply: Reply) -> Path:
        assert reply.image is not None
        ext = media.extension(reply.image_mime)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        if reply.record is not None:
            path = self.out_dir / f"{reply.record.id}.{ext}"
            path.write_bytes(reply.image)
            return path
        # A chart (no record): its own file each time, never overwriting the last one.
        stem = f"summary-{datetime.now(UTC):%Y%m%d-%H%M%S}"
        for n in itertools.count(1):
            path = self.out_dir / f"{stem}{'' if n == 1 else f'-{n}'}.{ext}"
            try:
                with path.open("xb") as file:
                    file.write(reply.image)
                return path
            except FileExistsError:
                continue
        raise AssertionError("unreachable")


async def chat(service: Service, *, lang: str = "zh", stdin: TextIO | None = None,
               console: Console | None = None, user_id: str | None = None) -> int:
    """Start the service the process composed, greet, and run lines from ``stdin`` until exit or end of input."""
    stdin = stdin or sys.stdin
    console = console or Console(highlight=False)
    interactive = stdin.isatty() and console.is_terminal
    if interactive:
        try:
            import readline  # noqa: F401  (line editing and history for input())
        except ImportError:  # pragma: no cover - not on every platform
            pass
    settings = service.settings
    login = user_id or settings.user or "local"
    requester = Requester(chat="console", user_id=login, user_name=login, lang="en" if lang == "en" else "zh")
    async with service:
        session = ChatSession(service, console, requester, settings.minpcode_data_dir / "out",
                              echo=not interactive)
        session.banner()
        async with contextlib.aclosing(read_lines(stdin, PROMPT if interactive else None)) as lines:
            async for line in lines:
                if not await session.handle(line):
                    break
        session.say(session.pair("再见。", "Bye."))
    return 0
