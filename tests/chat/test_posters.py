"""Posters in the text grammar and the console chat (``minpcode chat`` through a pipe, the sandbox)."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pypdf
import pytest
import zxingcpp
from PIL import Image

from bot.errors import UsageError
from bot.sandbox.qr import parse_code_url
from handlers import grammar
from tests.scenarios.test_console import answers, session

ID = r"[a-z0-9]{12}"


def test_new_takes_the_poster_words_and_title_is_the_posters() -> None:
    command = grammar.parse('new pages/shop/index type=B scene=s=1 poster=a4 title=春季大促 subtitle="扫码领券" '
                            "footer={name} format=pdf sharp=yes")
    assert command.fields == {"type": "B", "scene": "s=1", "poster": "a4", "title": "春季大促", "subtitle": "扫码领券",
                              "footer": "{name}", "format": "pdf", "sharp": "yes"}
    assert grammar.parse(grammar.render(command)) == command


def test_poster_command_and_its_chinese_alias() -> None:
    command = grammar.parse("海报 abcdefghijkl a5-tent 标题=开业 底部文字={name} 格式=PDF 清晰=是")
    assert command.verb == "poster" and command.args == ["abcdefghijkl", "a5-tent"]
    assert command.fields == {"title": "开业", "footer": "{name}", "format": "pdf", "sharp": "yes"}
    with pytest.raises(UsageError) as missing:
        grammar.parse("poster abcdefghijkl")
    assert "<template>" in missing.value.en or "<template>" in str(missing.value.usage)
    with pytest.raises(UsageError):
        grammar.parse("poster abcdefghijkl a4 format=jpg")
    with pytest.raises(UsageError):
        grammar.parse("poster abcdefghijkl a4 scene=x")  # a poster has no code fields
    assert "poster" in grammar.help_text("en") and "海报" in grammar.help_text("zh")


def decode(data: bytes) -> str:
    found = zxingcpp.read_barcodes(Image.open(io.BytesIO(data)))
    assert len(found) == 1
    return str(found[0].text)


@pytest.mark.slow
def test_console_writes_the_poster_and_show_lists_it(tmp_path: Path) -> None:
    first = session(tmp_path, [
        "new pages/shop/index type=B scene=s=1001 name=徐汇店 poster=a4 title=春季大促 subtitle=\"扫码领券\" footer={name}",
        "new pages/shop/index type=B scene=s=1002 subtitle=x",
        "new pages/shop/index type=B scene=s=1003 poster=a4 footer={campaign}",
    ])
    assert first.returncode == 0, first.stderr
    said = answers(first.stdout)
    made = next(v for k, v in said.items() if "s=1001" in k)
    code_id = re.search(rf"\b({ID})\b", made)
    assert code_id is not None and "海报已做好" in made, made
    poster = re.search(r"(?:海报|Poster): (\S+\.png)", made)
    assert poster is not None, made
    data = Path(poster.group(1)).read_bytes()
    img = Image.open(io.BytesIO(data))
    assert img.size == (2480, 3508) and round(img.info["dpi"][0]) == 300
    scanned = parse_code_url(decode(data))
    assert (scanned.page, scanned.scene) == ("pages/shop/index", "s=1001")
    lonely = next(v for k, v in said.items() if "s=1002" in k)
    assert "poster=" in lonely  # subtitle without a poster is explained
    unknown = next(v for k, v in said.items() if "s=1003" in k)
    assert "campaign" in unknown and "Traceback" not in first.stdout + first.stderr

    second = session(tmp_path, [f"海报 {code_id.group(1)} sticker-60 格式=pdf 标题=贴纸", f"show {code_id.group(1)}", "list"])
    assert second.returncode == 0, second.stderr
    said = answers(second.stdout)
    pdf_path = re.search(r"(?:海报|Poster): (\S+\.pdf)", next(v for k, v in said.items() if k.startswith("海报")))
    assert pdf_path is not None
    page = pypdf.PdfReader(io.BytesIO(Path(pdf_path.group(1)).read_bytes())).pages[0]
    assert round(float(page.mediabox.width) * 25.4 / 72, 1) == 60.0
    shown = next(v for k, v in said.items() if k.startswith("show"))
    # No MINPCODE_PUBLIC_URL: the posters are listed, with no link to an address no one reaches
    assert "a4" in shown and "sticker-60" in shown and "/posters/" not in shown
    listed = next(v for k, v in said.items() if k == "list")
    assert "s=1001" in listed and "s=1003" not in listed  # a bad placeholder spent nothing
