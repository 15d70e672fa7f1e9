"""Live codes through ``minpcode`` (in-process, a fresh service per command, one SQLite history)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from bot.config import Settings
from bot.sandbox.qr import parse_code_url
from bot.server import open_service
from tests.cli.test_cli import Cli, scan


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    return Cli(tmp_path)


def scan_in_process(data: Path, key: str, visitors: list[str | None]) -> None:
    """Scans as the resolver counts them, through a service on the same history (closed cleanly)."""
    async def go() -> None:
        settings = Settings(_env_file=None, minpcode_sandbox=True, minpcode_data_dir=data)
        async with open_service(settings) as service:
            for visitor in visitors:
                assert service.live.resolve(key, visitor=visitor) is not None
    asyncio.run(go())


def test_create_live_repoint_pause_resume_stats_and_json(cli: Cli, tmp_path: Path) -> None:
    made = cli.json("create", "--page", "pages/coupon/get?id=1", "--live", "--expires", "2099-12-31",
                    "--out", str(tmp_path / "code.png"))
    assert (made["live"], made["destination"], made["paused"], made["scans"]) == (True, "pages/coupon/get?id=1", False, 0)
    assert (made["type"], made["page"]) == ("B", "pages/minpcode/router")
    scanned = parse_code_url(scan(tmp_path / "code.png"))
    assert (scanned.page, scanned.scene) == ("pages/minpcode/router", made["scene"])

    out = cli.ok("repoint", made["id"], "pages/spring/sale?from=poster")
    assert "pages/spring/sale?from=poster" in out
    refused = cli.run("pause", made["id"], user="bob")
    assert refused.returncode == 2 and "alice" in refused.stderr
    cli.ok("pause", made["id"])
    assert cli.json("show", made["id"])["paused"] is True
    cli.ok("resume", made["id"])

    scan_in_process(cli.data, made["scene"], ["v1", "v2", "v1", None])
    stats = cli.json("stats", made["id"], "--days", "7")
    assert stats["live"]["scans"] == {"total": 4, "today": 4, "last_7_days": 4, "unique": 2, "tests": 0}
    assert len(stats["days"]) == 7 and stats["days"][-1]["scans"] == 4
    assert [d["page"] for d in stats["live"]["destinations"]] == ["pages/coupon/get?id=1", "pages/spring/sale?from=poster"]
    shown = cli.json("show", made["id"])
    assert (shown["live"], shown["scans"], shown["live_code"]["expires_on"]) == (True, 4, "2099-12-31")
    listed = {r["id"]: r for r in cli.json("list")}
    assert (listed[made["id"]]["live"], listed[made["id"]]["scans"]) == (True, 4)
    text = cli.ok("stats", made["id"], "--chart", str(tmp_path / "scans.png"))
    assert "独立访客 2" in text and (tmp_path / "scans.png").read_bytes()[:4] == b"\x89PNG"
    plain = cli.json("create", "--page", "pages/p/index", "--type", "B", "--scene", "x=1")
    assert (plain["live"], plain["destination"], plain["scans"]) == (False, None, None)
    assert cli.run("stats", plain["id"]).returncode == 2


def test_verify_file_is_stored_for_the_server(cli: Cli, tmp_path: Path) -> None:
    good = tmp_path / "a1B2c3D4e5.txt"
    good.write_bytes(b"4f8c1e2d9b7a6c5e")
    assert "a1B2c3D4e5.txt" in cli.ok("verify-file", str(good))
    bad = tmp_path / "not allowed.txt"
    bad.write_text("x")
    assert cli.run("verify-file", str(bad)).returncode == 2


def test_bulk_makes_one_live_code_per_row(cli: Cli, tmp_path: Path) -> None:
    sheet = tmp_path / "live.csv"
    sheet.write_text("page,live,name,expires\n"
                     "pages/shop/index?store=1,yes,门店1,2099-06-30\n"
                     "pages/shop/index?store=1,yes,门店1b,\n"
                     "pages/shop/index?store=2,yes,门店2,\n", encoding="utf-8")
    cli.ok("bulk", str(sheet), "--yes", "--out", str(tmp_path / "codes"))
    listed = [r for r in cli.json("list") if r["live"]]
    assert len(listed) == 3  # identical rows still make their own live code: each can be re-pointed alone
    assert {r["destination"] for r in listed} == {"pages/shop/index?store=1", "pages/shop/index?store=2"}
    assert len({r["scene"] for r in listed}) == 3 and all(r["page"] == "pages/minpcode/router" for r in listed)


def test_verify_file_says_where_wechat_checks_it_and_what_the_rule_needs(cli: Cli, tmp_path: Path) -> None:
    file = tmp_path / "a1b2c3d4e5.txt"
    file.write_bytes(b"0f9e8d7c6b5a")
    done = cli.run("verify-file", str(file), MINPCODE_PUBLIC_URL="https://codes.example.com")
    assert done.returncode == 0 and done.stderr == "", done.stderr
    # WeChat checks the rule's last directory: /q/ for the rule https://codes.example.com/q/
    assert "https://codes.example.com/q/a1b2c3d4e5.txt" in done.stdout
    assert "https://codes.example.com/a1b2c3d4e5.txt" in done.stdout and "https://codes.example.com/q/ " in done.stdout
    for need in ("pages/minpcode/router", "published", "test links", "an http link does not match an https rule",
                 "personal subject", "request合法域名", "ICP"):
        assert need in done.stdout, need

    plain = cli.run("verify-file", str(file), MINPCODE_PUBLIC_URL="http://203.0.113.7:3000")
    assert plain.returncode == 0 and "http://203.0.113.7:3000/q/a1b2c3d4e5.txt" in plain.stdout
    assert "https request合法域名" in plain.stderr and "never an IP address" in plain.stderr
    unset = cli.run("verify-file", str(file))
    assert unset.returncode == 0 and "MINPCODE_PUBLIC_URL is not set" in unset.stderr


def test_repoint_with_routes_and_stats_as_csv(cli: Cli, tmp_path: Path) -> None:
    made = cli.json("create", "--page", "pages/home/index", "--live", "--out", str(tmp_path / "code.png"))
    out = cli.ok("repoint", made["id"], "pages/home/index", "--ios", "pages/x/ios")
    assert "pages/home/index" in out
    refused = cli.run("repoint", made["id"], "pages/a=70", "pages/b=20")
    assert refused.returncode == 2 and "100" in refused.stderr
    refused = cli.run("repoint", made["id"], "pages/s", "--from", "2099-12-13", "--until", "2099-12-12")
    assert refused.returncode == 2 and "until" in refused.stderr

    async def go() -> None:
        settings = Settings(_env_file=None, minpcode_sandbox=True, minpcode_data_dir=cli.data)
        async with open_service(settings) as service:
            for platform in ("ios", "android", None):
                assert service.live.resolve(made["scene"], visitor="oRaw-openid-1", platform=platform) is not None
    asyncio.run(go())

    stats = cli.json("stats", made["id"], "--days", "7")
    assert stats["live"]["routes"]["platforms"] == {"ios": "pages/x/ios"}
    assert stats["breakdown"]["pages"] == {"pages/home/index": 2, "pages/x/ios": 1}
    assert stats["breakdown"]["platforms"] == {"android": 1, "ios": 1, "unknown": 1}
    text = cli.ok("stats", made["id"])
    assert "Last 30 days by destination: pages/home/index 2 · pages/x/ios 1" in text and "Route · By phone: ios → pages/x/ios" in text
    exported = cli.ok("stats", made["id"], "--csv")
    lines = exported.splitlines()
    assert lines[0] == "time,destination,platform,source,visitor,test" and len(lines) == 4
    assert "oRaw-openid-1" not in exported and lines[1].split(",")[1:4] == ["pages/x/ios", "ios", "wxa"]
    assert lines[1].split(",")[0].endswith("+08:00")


def test_blank_codes_tags_and_a_selection_dry_run_then_yes(cli: Cli, tmp_path: Path) -> None:
    blank = cli.json("create", "--live", "--name", "sticker-001", "--tag", "门店,VIP")
    assert (blank["live"], blank["destination"], blank["type"]) == (True, "", "B")
    assert "空码 blank" in cli.ok("list", "--tag", "vip")
    assert cli.run("create", "--type", "B").returncode == 2  # only a live code goes without --page
    assert "门店" in cli.ok("tag", blank["id"], "春节")
    assert "春节" not in cli.ok("untag", blank["id"], "春节")
    other = cli.json("create", "--page", "pages/shop/index?s=2", "--live", "--tag", "门店")
    bobs = cli.json("create", "--page", "pages/shop/index?s=3", "--live", "--tag", "门店", user="bob")

    dry = cli.ok("repoint", "--tag", "门店", "pages/store/open")
    assert "2 个码" in dry and "--yes" in dry and bobs["id"] in dry  # a dry run: bob's code is listed as refused
    assert [r["destination"] for r in cli.json("list", "--tag", "门店") if r["id"] != bobs["id"]] == [
        "pages/shop/index?s=2", ""]
    done = cli.ok("repoint", "--tag", "门店", "pages/store/open", "--yes")
    assert "2 个码" in done
    listed = {r["id"]: r["destination"] for r in cli.json("list", "--tag", "门店")}
    assert listed == {blank["id"]: "pages/store/open", other["id"]: "pages/store/open",
                      bobs["id"]: "pages/shop/index?s=3"}
    cli.ok("pause", blank["id"], other["id"], "--yes")
    assert all(r["paused"] for r in cli.json("list", "--tag", "vip"))
