"""``minpcode create --poster``, ``poster``, ``posters`` and the admin commands, in-process (sandbox)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pypdf
import pytest
from PIL import Image

from bot.sandbox.qr import parse_code_url
from tests.cli.test_cli import Cli, scan
from tests.posters.test_engine import svg_bomb

B = ["--page", "pages/shop/index", "--type", "B", "--scene", "s=1001", "--name", "徐汇店"]


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    return Cli(tmp_path)


A = ["--page", "pages/shop/index?id=7", "--type", "A", "--via", "wechat"]


def test_create_with_a_poster_writes_the_format_its_extension_asks_for(cli: Cli) -> None:
    png = cli.cwd / "poster.png"
    said = cli.ok("create", *B, "--poster", "a4", "--title", "春季大促", "--subtitle", "扫码领券", "--footer", "{name}",
                  "--out", str(png))
    assert "海报已做好" in said and "Your poster is ready" in said
    img = Image.open(png)
    assert img.size == (2480, 3508) and round(img.info["dpi"][0]) == 300
    scanned = parse_code_url(scan(png))
    assert (scanned.kind, scanned.page, scanned.scene) == ("B", "pages/shop/index", "s=1001")

    pdf = cli.cwd / "poster.pdf"
    data = cli.json("create", *B, "--poster", "a4", "--title", "春季大促", "--out", str(pdf))
    assert data["reused"] is True and data["poster"]["format"] == "pdf" and data["poster"]["out"] == str(pdf)
    page = pypdf.PdfReader(io.BytesIO(pdf.read_bytes())).pages[0]
    assert (round(float(page.mediabox.width), 2), round(float(page.mediabox.height), 2)) == (595.28, 841.89)

    wrong = cli.run("create", *B, "--poster", "a4", "--out", str(cli.cwd / "poster.jpg"))
    assert wrong.returncode == 2 and ".png" in wrong.stderr
    lonely = cli.run("create", *B, "--footer", "{name}")
    assert lonely.returncode == 2 and "--poster" in lonely.stderr


def test_poster_of_an_existing_a_code_asks_before_spending(cli: Cli) -> None:
    code = cli.json("create", *A)
    out = cli.cwd / "a.png"
    refused = cli.run("poster", code["id"], "--template", "a4", "--out", str(out))
    assert refused.returncode == 2 and "--sharper" in refused.stderr and "1 个 A/C 码额度" in refused.stderr
    assert not out.exists()
    assert [q["used"] for q in cli.json("quota")] == [1]  # the refusal spent nothing
    made = cli.json("poster", code["id"], "--template", "a4", "--sharper", "--out", str(out))
    assert made["sharper_copy"] and made["poster"]["reused"] is False
    assert parse_code_url(scan(out)).page == "pages/shop/index?id=7"
    again = cli.json("poster", code["id"], "--template", "a4", "--out", str(out))
    assert again["poster"]["reused"] is True  # no second question, no second code
    assert [q["used"] for q in cli.json("quota")] == [2]


def test_templates_are_listed_and_a_team_template_and_logo_are_added(cli: Cli) -> None:
    listed = cli.json("posters")
    assert [t["name"] for t in listed] == ["a4", "a5-tent", "sticker-60", "moments"]
    assert listed[0]["pixels"] == [2480, 3508]
    layout = cli.cwd / "shop.json"
    layout.write_text(json.dumps({"width": 100, "height": 100, "code": {"x": 20, "y": 200, "size": 60},
                                  "texts": [{"field": "title", "box": {"x": 5, "y": 5, "w": 90, "h": 10},
                                             "size": 20, "colour": "blue"}]}))
    bad = cli.run("poster-template", "add", "shop", str(layout))
    assert bad.returncode == 2 and "shop.json: " in bad.stderr and "texts[0].colour" in bad.stderr
    layout.write_text(json.dumps({"width": 100, "height": 100, "code": {"x": 20, "y": 200, "size": 60}}))
    off = cli.run("poster-template", "add", "shop", str(layout))
    assert off.returncode == 2 and "code box runs off the page" in off.stderr
    layout.write_text(json.dumps({"width": 100, "height": 100, "code": {"x": 20, "y": 30, "size": 60},
                                  "texts": [{"field": "title", "box": {"x": 5, "y": 5, "w": 90, "h": 20}, "size": 20}]}))
    art = cli.cwd / "art.png"
    Image.new("RGB", (1181, 1181), "#2E7D32").save(art)
    cli.ok("poster-template", "add", "shop", str(layout), "--background", str(art))
    table = cli.ok("posters")
    assert "shop" in table and "100×100 mm" in table
    logo = cli.cwd / "logo.png"
    Image.new("RGB", (300, 300), "#1E88E5").save(logo)
    cli.ok("poster-logo", "set", str(logo))
    out = cli.cwd / "shop.png"
    # a square C code carries the logo small enough to decode (a round code's logo covers the avatar,
    # which the sandbox's square stand-in for a round code cannot survive)
    cli.ok("create", "--page", "pages/shop/index?id=9", "--type", "C", "--via", "wechat", "--poster", "shop",
           "--title", "店", "--out", str(out))
    assert Image.open(out).size == (1181, 1181)
    assert parse_code_url(scan(out)).page == "pages/shop/index?id=9"
    cli.ok("poster-logo", "clear")
    cli.ok("poster-template", "remove", "shop")
    assert "shop" not in cli.ok("posters")


@pytest.mark.slow  # it waits out the logo's 10-second budget
def test_a_logo_bomb_is_stopped_at_its_budget_and_refused_in_both_languages(cli: Cli) -> None:
    bomb = cli.cwd / "logo.svg"
    bomb.write_bytes(svg_bomb())
    refused = cli.run("poster-logo", "set", str(bomb))
    assert refused.returncode == 2, refused.stderr
    assert "标志处理超过 10 秒上限" in refused.stderr and "the 10-second limit" in refused.stderr
    out = cli.cwd / "poster.png"
    again = cli.run("create", *B, "--poster", "a4", "--logo", str(bomb), "--out", str(out))
    assert again.returncode == 2 and "the 10-second limit" in again.stderr
    assert not out.exists() and cli.json("list") == []  # refused before the code was asked for


def test_long_scene_is_kept_when_the_code_comes_with_a_poster(cli: Cli) -> None:
    # --long-scene with --poster was dropped without a word: the long scene was refused as too long.
    long = ["--page", "pages/shop/index", "--type", "B", "--scene", "store=徐汇区漕溪北路店&from=poster&campaign=spring"]
    refused = cli.run("create", *long, "--poster", "a4", "--out", str(cli.cwd / "refused.png"))
    assert refused.returncode == 2
    png = cli.cwd / "long.png"
    data = cli.json("create", *long, "--long-scene", "--poster", "a4", "--out", str(png))
    assert data["poster"]["out"] == str(png)
    scanned = parse_code_url(scan(png))
    assert scanned.scene is not None and scanned.scene.startswith("k=")
