"""``minpcode create --type urllink|scheme [--plain] [--expire-days N]``, ``show``, ``list --json``, ``quota`` and a
batch sheet with link rows, in sandbox mode through typer's ``CliRunner`` (tests/cli/test_cli.py's harness)."""

from __future__ import annotations

import json
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.cli.test_cli import Cli, field_lines


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    return Cli(tmp_path)


def days_away(stamp: str, days: int) -> bool:
    return abs(datetime.fromisoformat(stamp) - (datetime.now(UTC) + timedelta(days=days))) < timedelta(minutes=1)


def test_create_a_url_link_and_a_url_scheme(cli: Cli) -> None:
    link = cli.json("create", "--page", "/pages/goods/goods?id=9", "--type", "urllink", "--expire-days", "7")
    assert link["type"] == "urllink" and link["link"].startswith("https://wxaurl.cn/") and link["image_url"] is None
    assert days_away(link["expires_at"], 7) and link["permanent"] is False and link["plain"] is False
    scheme = cli.json("create", "--page", "pages/goods/goods", "--type", "scheme")
    assert scheme["link"].startswith("weixin://dl/business/?t=") and days_away(scheme["expires_at"], 30)
    shown = cli.ok("show", link["id"])
    assert "Expires" in shown and "SMS, email, web pages" in shown
    listed = {r["id"]: r for r in cli.json("list")}
    assert days_away(listed[link["id"]]["expires_at"], 7)
    codes = cli.json("create", "--page", "pages/index/index", "--type", "B", "--scene", "x")
    assert codes["expires_at"] is None and codes["permanent"] is None


def test_a_short_link_says_whether_it_is_permanent(cli: Cli) -> None:
    temporary = cli.json("create", "--page", "pages/index/index", "--type", "shortlink")
    assert temporary["permanent"] is False and days_away(temporary["expires_at"], 30)
    lasting = cli.json("create", "--page", "pages/index/index", "--type", "shortlink", "--permanent")
    assert lasting["permanent"] is True and lasting["expires_at"] is None
    assert "opens inside WeChat only" in cli.ok("show", temporary["id"])


def test_plain_needs_the_declaration(cli: Cli) -> None:
    refused = cli.run("create", "--page", "pages/coupon/get?id=3", "--type", "scheme", "--plain")
    assert refused.returncode == 2 and "MINPCODE_PLAIN_SCHEME" in refused.stderr and "明文 scheme 拉起此小程序" in refused.stderr
    made = cli.json("create", "--page", "pages/coupon/get?id=3", "--type", "scheme", "--plain",
                    MINPCODE_PLAIN_SCHEME="1")
    assert made["link"].startswith("weixin://dl/business/?appid=") and "query=id%3D3" in made["link"]
    assert made["expires_at"] is None and made["permanent"] is True and made["plain"] is True


def test_bad_link_options_exit_2_naming_the_option(cli: Cli) -> None:
    done = cli.run("create", "--page", "pages/a/a", "--type", "urllink", "--expire-days", "31")
    assert done.returncode == 2 and field_lines(done.stderr, "--expire-days")
    done = cli.run("create", "--page", "pages/a/a", "--type", "urllink", "--out", "x.png")
    assert done.returncode == 2 and field_lines(done.stderr, "--out")


def test_quota_shows_the_link_counts(cli: Cli) -> None:
    cli.ok("create", "--page", "pages/a/a", "--type", "urllink")
    cli.ok("create", "--page", "pages/a/a", "--type", "shortlink", "--permanent")
    [row] = cli.json("quota")
    assert (row["links_today"], row["links_per_day"]) == (1, 500_000)
    assert (row["permanent_short_links"], row["permanent_short_link_cap"]) == (1, 100_000)
    shown = cli.ok("quota")
    assert "URL Links + URL Schemes made today (Beijing time): 1 of 500,000" in shown and "永久短链已生成 1 / 100,000" in shown


def test_a_sheet_of_links(cli: Cli) -> None:
    (cli.cwd / "links.csv").write_text(
        "page,type,expire-days,plain\npages/a/a?id=1,urllink,7,\npages/b/b,scheme,,\npages/c/c,scheme,,yes\n"
        "pages/d/d,urllink,40,\n", encoding="utf-8")
    dry = cli.run("bulk", "links.csv", "--dry-run", MINPCODE_PLAIN_SCHEME="1")
    assert dry.returncode == 2 and "line 5:" in dry.stderr and "expire_days" in dry.stderr
    (cli.cwd / "links.csv").write_text(
        "页面,类型,有效天数,明文\npages/a/a?id=1,urllink,7,\npages/b/b,scheme,,\npages/c/c,scheme,,yes\n", encoding="utf-8")
    done = cli.run("bulk", "links.csv", "--yes", "--out", "links.zip", MINPCODE_PLAIN_SCHEME="1")
    assert done.returncode == 0, done.stderr
    by_page = {r["page"]: r for r in cli.json("list")}
    assert days_away(by_page["pages/a/a?id=1"]["expires_at"], 7) and by_page["pages/a/a?id=1"]["type"] == "urllink"
    assert by_page["pages/c/c"]["plain"] is True and by_page["pages/c/c"]["expires_at"] is None
    with zipfile.ZipFile(cli.cwd / "links.zip") as archive:
        manifest = archive.read("manifest.csv").decode("utf-8-sig").splitlines()
    assert "expires_at" in manifest[0].split(",")
    assert json.dumps(by_page["pages/b/b"]["link"])[1:-1] in "\n".join(manifest)
