"""``minpcode chat`` driven through a pipe: the console script reads lines until EOF or ``exit``."""

from __future__ import annotations

import asyncio
import io
import re
import subprocess
import sys
from pathlib import Path

import pytest
import zxingcpp
from PIL import Image
from rich.console import Console

from bot.config import Settings
from bot.sandbox import SANDBOX_APPID
from bot.sandbox.qr import code_url, render
from bot.server import open_service
from handlers.console import chat, decode_qr
from tests.cli.test_cli import COMMAND, clean_env

ID = r"[a-z0-9]{12}"


def session(tmp_path: Path, lines: list[str], *args: str, user: str = "alice") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*COMMAND, "chat", *args], input="\n".join(lines) + "\n", cwd=tmp_path,
        env=clean_env(tmp_path / "data", user), capture_output=True, text=True, encoding="utf-8", timeout=120,
    )


def answers(stdout: str) -> dict[str, str]:
    """Each echoed command ("> line") and the output that follows it."""
    parts = re.split(r"^> (.*)$", stdout, flags=re.MULTILINE)
    return {parts[i]: parts[i + 1] for i in range(1, len(parts) - 1, 2)}


def scan(path: Path) -> str:
    found = zxingcpp.read_barcodes(Image.open(io.BytesIO(path.read_bytes())))
    assert len(found) == 1
    return str(found[0].text)


@pytest.mark.slow
def test_a_piped_session_makes_lists_and_explains_mistakes(tmp_path: Path) -> None:
    done = session(tmp_path, [
        "help",
        "new pages/index/index type=B scene=id=7",
        "新建 pages/index/index type=B scene=id=8 name=海报",
        "",
        "# a comment line is skipped",
        "列表",
        "new",
        "rename onlyanid",
        "frobnicate",
    ])
    assert done.returncode == 0, done.stderr
    out = done.stdout
    banner = out.split("> help")[0]
    assert "sandbox" in banner and "沙盒" in banner and "help" in banner and "Ctrl-D" in banner
    assert "new pages/index/index type=B scene=id=42" in banner

    said = answers(out)
    assert list(said) == ["help", "new pages/index/index type=B scene=id=7",
                          "新建 pages/index/index type=B scene=id=8 name=海报", "列表", "new", "rename onlyanid",
                          "frobnicate"]
    assert "新建｜new <page>" in said["help"] and "改名｜rename <id> <name>" in said["help"]

    made = said["new pages/index/index type=B scene=id=7"]
    assert made.index("码已生成") < made.index("Your code is ready")  # Chinese first by default
    assert "沙盒码" in made and "sandbox code" in made
    code_id = re.search(rf"编号: ({ID})", made).group(1)  # type: ignore[union-attr]
    image = tmp_path / "data" / "out" / f"{code_id}.jpg"
    assert f"Image: {image}" in made
    assert scan(image) == code_url(SANDBOX_APPID, "B", "pages/index/index", "id=7")
    assert "▀" in made and "█" in made  # the QR redrawn in the terminal

    chinese = said["新建 pages/index/index type=B scene=id=8 name=海报"]
    other_id = re.search(rf"ID: ({ID})", chinese).group(1)  # type: ignore[union-attr]
    assert "名称: 海报" in chinese and (tmp_path / "data" / "out" / f"{other_id}.jpg").exists()

    listed = said["列表"]
    assert code_id in listed and other_id in listed and "海报" in listed

    assert said["new"].count("Usage: new <page>") == 1  # said once, after both languages
    assert "Usage: rename <id> <name>" in said["rename onlyanid"]
    assert "There is no command 'frobnicate'" in said["frobnicate"]
    assert out.rstrip().endswith("再见。 / Bye.")


@pytest.mark.slow
def test_a_second_session_renames_shows_and_deletes_and_stops_at_exit(tmp_path: Path) -> None:
    first = session(tmp_path, ["new pages/index/index type=B scene=id=9"])
    code_id = re.search(rf"ID: ({ID})", first.stdout).group(1)  # type: ignore[union-attr]

    refused = session(tmp_path, [f"rename {code_id} 不是我的"], user="bob")
    assert "Only its creator (alice)" in refused.stdout

    done = session(tmp_path, [f"rename {code_id} 春季 海报", f"改名 {code_id} 春季-海报", f"show {code_id}",
                              f"delete {code_id}", "list", "exit", "list"], "--lang", "en")
    assert done.returncode == 0, done.stderr
    said = answers(done.stdout)
    spaced = said[f"rename {code_id} 春季 海报"]
    assert "spaces are not allowed" in spaced
    assert spaced.index("The name may") < spaced.index("名称只能")  # --lang en: English first
    assert "Renamed to '春季-海报'" in said[f"改名 {code_id} 春季-海报"]
    assert "Name: 春季-海报" in said[f"show {code_id}"]
    assert (tmp_path / "data" / "out" / f"{code_id}.jpg").exists()
    assert f"Deleted {code_id}" in said[f"delete {code_id}"]
    assert "No codes found" in said["list"]
    assert list(said).count("list") == 1  # nothing runs after exit
    assert done.stdout.rstrip().endswith("Bye. / 再见。")


def test_an_unexpected_failure_is_reported_and_the_session_goes_on(tmp_path: Path, monkeypatch) -> None:
    import handlers.console as console_module

    async def broken(service: object, text: str, requester: object) -> object:
        if text == "boom":
            raise RuntimeError("bug")
        return await real_run(service, text, requester)  # type: ignore[arg-type]

    real_run = console_module.run
    monkeypatch.setattr(console_module, "run", broken)
    buffer = io.StringIO()
    settings = Settings(_env_file=None, minpcode_data_dir=tmp_path, minpcode_sandbox=True)  # type: ignore[call-arg]
    code = asyncio.run(chat(open_service(settings), stdin=io.StringIO("boom\nquota\n"), console=Console(file=buffer, width=120),
                            user_id="alice"))
    text = buffer.getvalue()
    assert code == 0 and "Something unexpected went wrong (RuntimeError)" in text
    assert "No A/C codes made yet" in text or "A+C" in text


def test_round_codes_are_not_redrawn_but_qr_codes_are() -> None:
    assert decode_qr(render("https://example.com/x", fmt="PNG", transparent=True)) == "https://example.com/x"
    blank = io.BytesIO()
    Image.new("RGB", (430, 430), "white").save(blank, format="JPEG")
    assert decode_qr(blank.getvalue()) is None
    assert decode_qr(b"not an image") is None


@pytest.mark.slow
def test_chat_runs_under_python_m_bot_too(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "bot", "chat"], input="额度\n", cwd=tmp_path,
                          env=clean_env(tmp_path / "data", "alice"), capture_output=True, text=True,
                          encoding="utf-8", timeout=120)
    assert done.returncode == 0 and "A+C" in done.stdout


@pytest.mark.slow
def test_the_console_lists_bulk_truthfully_and_sends_sheets_to_the_cli(tmp_path: Path) -> None:
    from bot.batch.sheets import COLUMNS

    done = session(tmp_path, ["help", "help 批量", "bulk", "page,type,scene"])
    assert done.returncode == 0, done.stderr
    said = answers(done.stdout)
    overview, detail = said["help"], said["help 批量"]
    assert "批量｜bulk\n" in overview and "minpcode bulk FILE" in overview
    for text in (overview, detail):  # one command a line here: no rows after bulk, no file, no upload link
        assert "⏎" not in text and "DM" not in text and "upload" not in text
    assert all(f"  {key}" in detail for key in COLUMNS) and "--dry-run" in detail
    assert "minpcode bulk FILE.csv" in said["bulk"]  # typed anyway: told where it works
    assert "没有「page,type,scene」这个命令" in said["page,type,scene"]
