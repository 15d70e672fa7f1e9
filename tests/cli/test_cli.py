"""``minpcode`` in sandbox mode, each command run in-process through typer's ``CliRunner``.

Each command opens its own service on its own in-process WeChat/GrowingIO emulator (so WeChat's state
resets per command) while the SQLite history under ``MINPCODE_DATA_DIR`` persists between them. A few
tests run the real console script as a child process (marked slow): the entry points themselves, and
``serve`` on a port.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import re
import shlex
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import zxingcpp
from PIL import Image
from typer.testing import CliRunner

import handlers.cli.reports as reports_module
from bot.cli import app
from bot.errors import (
    FieldError,
    InvalidRequest,
    NotFound,
    PermissionDenied,
    QuotaExhausted,
    UpstreamBusy,
    UpstreamRejected,
)
from bot.sandbox import SANDBOX_APPID
from bot.sandbox.qr import code_url
from handlers.cli.output import ExitCode, exit_code

SCRIPT = Path(sys.executable).with_name("minpcode")
COMMAND = [str(SCRIPT)] if SCRIPT.exists() else [sys.executable, "-m", "bot"]
SECRET_PREFIXES = ("WECHAT_", "GIO_", "SLACK_", "WECOM_", "MINPCODE_")
JSON_FIELDS = {"id", "type", "page", "scene", "name", "campaign", "channel", "status", "tracking_url", "error",
               "created_at", "requested_by", "link", "provider", "image_url"}
B_ARGS = ["--page", "pages/index/index", "--type", "B", "--scene", "id=42"]
# quota's link counts (tests/cli/test_links.py): none made
NO_LINKS = {"links_today": 0, "links_per_day": 500_000, "permanent_short_links": 0, "permanent_short_link_cap": 100_000}
GIO_ARGS = ["--page", "pages/index/index", "--campaign", "spring", "--channel", "poster", "--create"]


def clean_env(data_dir: Path, user: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(SECRET_PREFIXES)}
    env.update(MINPCODE_DATA_DIR=str(data_dir), USER=user, PYTHONUTF8="1", **extra)
    return env


@dataclass(frozen=True)
class Ran:
    """One run of ``minpcode``, named as ``subprocess.CompletedProcess`` names it."""

    returncode: int
    stdout: str
    stderr: str


@contextlib.contextmanager
def _own_logging() -> Iterator[None]:
    """A command sets up the root logger as a process would; the next test gets it back as it was."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        yield
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)


def invoke(args: Sequence[str], *, cwd: Path, env: dict[str, str], stdin: str | None = None) -> Ran:
    """``minpcode ARGS`` in this process, as a child would run it: ``env`` is its whole environment
    (a variable not in it is unset for the run) and ``cwd`` its working folder. An exception the app
    does not turn into an exit code is raised here, where a child would have died of it."""
    unset: dict[str, str | None] = {k: None for k in os.environ if k not in env}
    with contextlib.chdir(cwd), _own_logging():
        result = CliRunner().invoke(app, list(args), input=stdin, env=unset | env, prog_name="minpcode")
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return Ran(result.exit_code, result.stdout, result.stderr)


class Cli:
    """Runs ``minpcode …`` in a scratch folder, as some user, in this process."""

    def __init__(self, root: Path) -> None:
        self.cwd = root / "work"
        self.cwd.mkdir()
        self.data = root / "data"

    def run(self, *args: str, user: str = "alice", stdin: str | None = None, **env: str) -> Ran:
        return invoke(args, cwd=self.cwd, env=clean_env(self.data, user, **env), stdin=stdin)

    def ok(self, *args: str, **kw: Any) -> str:
        done = self.run(*args, **kw)
        assert done.returncode == 0, f"exit {done.returncode}\n{done.stdout}\n{done.stderr}"
        return done.stdout

    def json(self, *args: str, **kw: Any) -> Any:
        return json.loads(self.ok(*args, "--json", **kw))


class ConsoleScript(Cli):
    """The same, through the real console script as a child process (its tests are marked slow)."""

    def run(self, *args: str, user: str = "alice", stdin: str | None = None, **env: str) -> Ran:
        done = subprocess.run(
            [*COMMAND, *args], cwd=self.cwd, env=clean_env(self.data, user, **env), input=stdin,
            capture_output=True, text=True, encoding="utf-8", timeout=120,
        )
        return Ran(done.returncode, done.stdout, done.stderr)


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    return Cli(tmp_path)


def scan(path: Path) -> str:
    found = zxingcpp.read_barcodes(Image.open(io.BytesIO(path.read_bytes())))
    assert len(found) == 1, f"expected one QR code in {path}, found {len(found)}"
    return str(found[0].text)


def field_lines(stderr: str, option: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith(f"{option}: ")]


def has_cjk(text: str) -> bool:
    return re.search(r"[\u4e00-\u9fff]", text) is not None


# -- create ------------------------------------------------------------------------------------------
def test_the_issue_example_writes_a_png_that_scans_to_the_b_code(cli: Cli) -> None:
    line = "minpcode create --page pages/index/index --type B --scene id=42 --out code.png"
    out = cli.ok(*shlex.split(line)[1:])
    png = cli.cwd / "code.png"
    assert png.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    assert scan(png) == code_url(SANDBOX_APPID, "B", "pages/index/index", "id=42")
    assert "code.png" in out and "Your code is ready" in out
    assert "sandbox code" in out and "沙盒码" in out


def test_out_converts_by_extension_and_keeps_the_stored_format_otherwise(cli: Cli) -> None:
    cli.ok("create", *B_ARGS, "--out", "code.jpg")
    cli.ok("create", *B_ARGS, "--out", "sub/dir/code.JPEG")
    cli.ok("create", *B_ARGS, "--out", "raw")
    assert (cli.cwd / "code.jpg").read_bytes().startswith(b"\xff\xd8\xff")
    assert (cli.cwd / "sub/dir/code.JPEG").read_bytes().startswith(b"\xff\xd8\xff")
    assert (cli.cwd / "raw").read_bytes().startswith(b"\xff\xd8\xff")  # the sandbox stores B codes as JPEG
    expected = code_url(SANDBOX_APPID, "B", "pages/index/index", "id=42")
    assert scan(cli.cwd / "code.jpg") == scan(cli.cwd / "raw") == expected


def test_json_has_the_contract_fields(cli: Cli) -> None:
    record = cli.json("create", *B_ARGS, "--name", "poster-42")
    assert JSON_FIELDS <= record.keys()
    assert record["type"] == "B" and record["provider"] == "wechat" and record["status"] == "done"
    assert record["page"] == "pages/index/index" and record["scene"] == "id=42" and record["name"] == "poster-42"
    assert record["requested_by"] == "cli:alice" and record["error"] is None and record["reused"] is False
    assert record["image_url"] is None  # no server configured (MINPCODE_PUBLIC_URL unset): no link to nowhere
    assert any("sandbox" in n["en"] for n in record["notices"])

    tracked = cli.json("create", *GIO_ARGS, MINPCODE_PUBLIC_URL="https://codes.example.com/")
    assert tracked["provider"] == "gio" and tracked["campaign"] == "spring" and tracked["channel"] == "poster"
    assert tracked["tracking_url"].startswith("pages/index/index?aid=")
    assert tracked["image_url"] == f"https://codes.example.com/codes/{tracked['id']}.png"


def test_an_identical_create_is_reused_and_spends_nothing(cli: Cli) -> None:
    first = cli.json("create", *B_ARGS)
    again = cli.run("create", *B_ARGS)
    assert again.returncode == 0
    assert first["id"] in again.stdout and "reusing it." in again.stdout and "复用" in again.stdout
    assert "quota" not in again.stdout  # a B code never spends quota, so its reuse saves none
    by_bob = cli.json("create", *B_ARGS, user="bob")
    assert by_bob["id"] == first["id"] and by_bob["reused"] is True and by_bob["original_by"] == "alice"

    a_code = cli.json("create", *GIO_ARGS)
    a_again = cli.json("create", *GIO_ARGS, user="bob")
    assert a_again["id"] == a_code["id"] and a_again["reused"] is True and a_again["original_by"] == "alice"
    assert cli.json("quota") == [{"app": SANDBOX_APPID, "used": 1, "cap": 100_000, "left": 99_999,
                                  "ratio": pytest.approx(1e-5), **NO_LINKS}]


@pytest.mark.parametrize(
    ("args", "option", "detail"),
    [
        (["--type", "B", "--scene", "x" * 33], "--scene", "33"),
        (["--type", "B", "--scene", "id=1", "--width", "100"], "--width", "100"),
        (["--campaign", "spring", "--channel", "poster", "--create", "--name", "spring sale"], "--name", "' '"),
    ],
    ids=["scene-33-chars", "width-100", "gio-name-with-space"],
)
def test_bad_input_exits_2_with_each_field_message(cli: Cli, args: list[str], option: str, detail: str) -> None:
    done = cli.run("create", "--page", "pages/index/index", *args)
    assert done.returncode == 2, done.stderr
    zh, en = field_lines(done.stderr, option)
    assert has_cjk(zh) and not has_cjk(en) and detail in zh and detail in en
    assert cli.json("list") == []


def test_every_field_error_is_reported_at_once_chinese_then_english(cli: Cli) -> None:
    done = cli.run("create", "--page", "pages/index/index", "--type", "B", "--scene", "x" * 33,
                   "--width", "100", "--name", "spring sale", "--json")
    assert done.returncode == 2
    lines = done.stderr.splitlines()
    for option in ("--scene", "--width", "--name"):
        zh, en = field_lines(done.stderr, option)
        assert lines.index(en) == lines.index(zh) + 1 and has_cjk(zh) and not has_cjk(en)
    error = json.loads(done.stdout)
    assert error["ok"] is False and error["exit_code"] == 2
    assert [f["field"] for f in error["error"]["fields"]] == ["scene", "width", "name"]


def test_an_upstream_refusal_exits_1_with_the_reason(cli: Cli) -> None:
    done = cli.run("create", "--page", "pages/index/index", "--type", "shortlink", "--title", "casino", "--json")
    assert done.returncode == 1
    record = json.loads(done.stdout)
    assert record["status"] == "failed" and record["error_code"] == "40225" and "Short Link title" in record["error"]
    text = cli.run("create", "--page", "pages/index/index", "--type", "shortlink", "--title", "casino")
    assert text.returncode == 1 and "Could not make the code" in text.stdout


def test_a_short_link_has_no_image_to_write(cli: Cli) -> None:
    done = cli.run("create", "--page", "pages/index/index", "--type", "shortlink", "--out", "x.png")
    assert done.returncode == 2 and field_lines(done.stderr, "--out")
    assert cli.json("list") == []
    link = cli.json("create", "--page", "pages/index/index", "--type", "shortlink", "--title", "春季")
    assert link["link"].startswith("#小程序://") and link["image_url"] is None


# -- history -----------------------------------------------------------------------------------------
def test_list_show_rename_delete_with_permissions(cli: Cli) -> None:
    made = cli.json("create", *B_ARGS)
    other = cli.json("create", "--page", "pages/item/item", "--type", "B", "--scene", "sku=7", user="bob")

    listed = cli.json("list")
    assert [r["id"] for r in listed] == [other["id"], made["id"]]
    assert [r["id"] for r in cli.json("list", "--query", "sku=7")] == [other["id"]]
    assert len(cli.json("list", "--limit", "1")) == 1
    table = cli.ok("list")
    assert made["id"] in table and other["id"] in table

    shown = cli.json("show", made["id"], "--out", "shown.png")
    assert shown["id"] == made["id"] and shown["out"] == "shown.png"
    assert scan(cli.cwd / "shown.png") == code_url(SANDBOX_APPID, "B", "pages/index/index", "id=42")
    assert made["id"] in cli.ok("show", made["id"])

    refused = cli.run("rename", made["id"], "bobs-name", user="bob")
    assert refused.returncode == 2 and "Only its creator" in refused.stderr and "只有创建者" in refused.stderr
    assert cli.run("delete", made["id"], user="bob").returncode == 2

    renamed = cli.run("rename", made["id"], "春季-海报")
    assert renamed.returncode == 0 and "Renamed to '春季-海报'" in renamed.stdout
    assert cli.json("show", made["id"])["name"] == "春季-海报"
    bad_name = cli.run("rename", made["id"], "has space")
    assert bad_name.returncode == 2 and "spaces are not allowed" in bad_name.stderr

    deleted = cli.run("delete", made["id"])
    assert deleted.returncode == 0 and "keep working" in deleted.stdout
    assert cli.json("show", made["id"])["status"] == "deleted"
    assert [r["id"] for r in cli.json("list")] == [other["id"]]
    assert cli.run("delete", made["id"]).returncode == 2


def test_an_admin_may_rename_and_delete_anyones_code(cli: Cli) -> None:
    made = cli.json("create", *B_ARGS)
    assert cli.run("rename", made["id"], "by-admin", user="bob").returncode == 2
    assert cli.run("rename", made["id"], "by-admin", user="bob", MINPCODE_ADMINS="cli:carol,cli:bob").returncode == 0
    assert cli.json("show", made["id"])["name"] == "by-admin"
    # a bare id could be anyone's on any front-end: refused, with the fix
    bare = cli.run("delete", made["id"], user="bob", MINPCODE_ADMINS="bob")
    assert bare.returncode == 2 and "MINPCODE_ADMINS" in bare.stderr and "cli:bob" in bare.stderr
    assert cli.json("show", made["id"])["status"] == "done"
    assert cli.run("delete", made["id"], user="bob", MINPCODE_ADMINS="cli:bob").returncode == 0


def test_unknown_ids_are_bad_input(cli: Cli) -> None:
    for args in (["show", "nosuchcode00"], ["rename", "nosuchcode00", "x"], ["delete", "nosuchcode00"]):
        done = cli.run(*args)
        assert done.returncode == 2 and "There is no code with id nosuchcode00" in done.stderr
    assert json.loads(cli.run("show", "nosuchcode00", "--json").stdout)["error"]["kind"] == "NotFound"


def test_quota_counts_a_and_c_codes_only(cli: Cli) -> None:
    assert cli.json("quota") == [{"app": SANDBOX_APPID, "used": 0, "cap": 100_000, "left": 100_000, "ratio": 0.0,
                                  **NO_LINKS}]
    cli.ok("create", *B_ARGS)
    cli.ok("create", *GIO_ARGS)
    cli.ok("create", "--page", "pages/index/index?from=poster", "--type", "C", "--via", "wechat")
    assert cli.json("quota")[0]["used"] == 2
    table = cli.ok("quota")
    assert SANDBOX_APPID in table and "99998" in table


# -- bulk --------------------------------------------------------------------------------------------
BULK_CSV = (
    "page,type,scene,name,width\n"
    "pages/index/index,B,id=1,row-one,\n"
    "pages/index/index,B,id=this-scene-is-far-too-long-for-wechat,,\n"
    "pages/index/index,B,id=1,row-one-again,\n"
    "pages/index/index,B,id=2,,100\n"
)


def test_bulk_dry_run_reports_each_bad_row_by_line_and_makes_nothing(cli: Cli) -> None:
    (cli.cwd / "codes.csv").write_text(BULK_CSV, encoding="utf-8")
    done = cli.run("bulk", "codes.csv", "--dry-run", COLUMNS="200")
    assert done.returncode == 2
    assert "reuse line 2" in done.stdout  # line 4 asks for the very code line 2 makes
    assert "line 3:" in done.stderr and "line 5:" in done.stderr and "line 2:" not in done.stderr
    line3 = done.stderr.split("line 3:")[1].split("line 5:")[0]
    assert "scene:" in line3 and "1 to 32 characters" in line3 and has_cjk(line3)
    assert "width:" in done.stderr.split("line 5:")[1]
    assert "Dry run: 2 row(s) ready, 2 with problems" in done.stdout and "Nothing was made" in done.stdout
    assert cli.json("list") == []


def test_bulk_makes_valid_rows_reuses_identical_ones_and_writes_images(cli: Cli) -> None:
    (cli.cwd / "codes.csv").write_text(BULK_CSV, encoding="utf-8")
    done = cli.run("bulk", "codes.csv", "--yes", "--out", "images")
    assert done.returncode == 2, done.stderr  # two rows were invalid
    assert "Done: 1 made, 1 reused, 0 failed, 2 invalid" in done.stdout
    records = cli.json("list")
    assert len(records) == 1 and records[0]["name"] == "row-one"
    image = cli.cwd / "images" / f"{records[0]['id']}.jpg"
    assert scan(image) == code_url(SANDBOX_APPID, "B", "pages/index/index", "id=1")
    assert records[0]["id"] in done.stdout

    (cli.cwd / "good.csv").write_text("\ufeffPage,Type,Scene\npages/index/index,B,id=1\n\n"
                                      "pages/index/index,b,id=3\n", encoding="utf-8")
    again = cli.run("bulk", "good.csv", "--yes")
    assert again.returncode == 0, again.stderr
    assert "Done: 1 made, 1 reused, 0 failed, 0 invalid" in again.stdout
    assert len(list((cli.data / "out").glob("*.jpg"))) == 2


def test_bulk_rows_the_upstream_refuses_exit_1(cli: Cli) -> None:
    (cli.cwd / "links.csv").write_text("page,type,title,permanent\npages/index/index,shortlink,春季,no\n"
                                       "pages/index/index,shortlink,casino,yes\n", encoding="utf-8")
    done = cli.run("bulk", "links.csv", "--yes")
    assert done.returncode == 1
    assert "Done: 1 made, 0 reused, 1 failed, 0 invalid" in done.stdout
    assert "line 3:" in done.stderr and "Short Link title" in done.stderr
    by_status = {r["status"]: r for r in cli.json("list")}
    assert by_status.keys() == {"done", "failed"} and by_status["done"]["link"].startswith("#小程序://")


def test_bulk_refuses_unknown_columns_and_bad_flags(cli: Cli) -> None:
    (cli.cwd / "odd.csv").write_text("page,colour\npages/index/index,red\n", encoding="utf-8")
    done = cli.run("bulk", "odd.csv", "--yes")
    assert done.returncode == 2 and "Unknown column(s): colour" in done.stderr
    (cli.cwd / "flags.csv").write_text("page,type,transparent\npages/index/index,A,maybe\n", encoding="utf-8")
    done = cli.run("bulk", "flags.csv", "--dry-run")
    assert done.returncode == 2 and "line 2:" in done.stderr and "transparent: must be yes or no" in done.stderr
    assert cli.run("bulk", "missing.csv").returncode == 2


# -- the program itself ------------------------------------------------------------------------------
COMMANDS = ("serve", "chat", "create", "list", "show", "rename", "delete", "bulk", "summary", "quota")


@pytest.mark.slow
def test_python_m_bot_is_the_same_program(cli: Cli) -> None:
    done = subprocess.run([sys.executable, "-m", "bot", "--help"], capture_output=True, text=True,
                          encoding="utf-8", env=clean_env(cli.data, "alice", COLUMNS="200"), cwd=cli.cwd)
    assert done.returncode == 0
    for command in COMMANDS:
        assert re.search(rf"│ {command}\s", done.stdout), command


def test_every_command_has_an_example(cli: Cli) -> None:
    for command in COMMANDS:
        page = cli.ok(command, "--help", COLUMNS="200")
        examples = [line for line in page.splitlines() if f"minpcode {command}" in line and "Usage" not in line]
        assert "Example" in page and examples, command


@pytest.mark.slow
def test_the_console_script_makes_lists_and_says_its_version(tmp_path: Path) -> None:
    script = ConsoleScript(tmp_path)
    version = script.run("--version")
    assert version.returncode == 0 and version.stdout.startswith("minpcode ")
    made = script.json("create", *B_ARGS)
    assert made["status"] == "done"
    assert [r["id"] for r in script.json("list")] == [made["id"]]


@pytest.mark.parametrize(("setting", "value", "advice"), [
    ("MINPCODE_TIMEZONE", "Mars/Olympus", "put an IANA name there, such as Asia/Shanghai"),
    ("MINPCODE_SUMMARY_CRON", "every monday", "put five fields there"),
    ("MINPCODE_TRUSTED_PROXIES", "172.17.0.1/16", "is not an address or a CIDR range (a range starts at its network"),
])
def test_serve_refuses_a_bad_setting_at_start_with_one_clear_line(cli: Cli, setting: str, value: str,
                                                                  advice: str) -> None:
    done = cli.run("serve", "--port", "9", **{setting: value})
    assert done.returncode == 2 and done.stdout == ""
    [line] = done.stderr.strip().splitlines()
    assert line.startswith(f"{setting}={value!r}") and advice in line and "Traceback" not in done.stderr
    # the rest check only what they use: a bad cron does not stop a listing
    if setting == "MINPCODE_SUMMARY_CRON":
        assert cli.run("list", **{setting: value}).returncode == 0


@pytest.mark.slow
def test_serve_says_sandbox_and_answers_on_its_url(cli: Cli) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    proc = subprocess.Popen([*COMMAND, "serve", "--port", str(port)], cwd=cli.cwd, env=clean_env(cli.data, "alice"),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, encoding="utf-8")
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        assert f"http://127.0.0.1:{port}" in first and "SANDBOX" in first
        deadline = time.monotonic() + 20
        while True:
            try:
                answer = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2, trust_env=False)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "serve never answered"
                time.sleep(0.1)
        assert answer.json()["sandbox"] is True
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def test_summary_hands_its_options_to_bot_announce(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[dict[str, Any]] = []

    async def cli_summary(service: object, announcers: object, *, days: int, post: bool,
                          as_json: bool) -> tuple[str, int]:
        calls.append({"days": days, "post": post, "as_json": as_json})
        return ("Summary of 30 days / 30 天汇总", 1)

    monkeypatch.setattr(reports_module, "cli_summary", cli_summary)  # the summary command lives there
    for key in list(os.environ):
        if key.startswith(SECRET_PREFIXES):
            monkeypatch.delenv(key)
    monkeypatch.setenv("MINPCODE_DATA_DIR", str(tmp_path))
    result = CliRunner().invoke(app, ["summary", "--days", "30", "--post"])
    assert result.exit_code == 1 and "Summary of 30 days" in result.output
    assert calls == [{"days": 30, "post": True, "as_json": False}]
    assert CliRunner().invoke(app, ["summary", "--days", "0"]).exit_code == 2


def test_outcomes_map_to_exit_codes_in_one_place() -> None:
    field = FieldError("scene", "中", "en")
    assert exit_code() is ExitCode.OK
    for error in (field, InvalidRequest([field]), NotFound("中", "en"), PermissionDenied("中", "en")):
        assert exit_code(error) is ExitCode.INPUT
    for error in (QuotaExhausted("中", "en"), UpstreamRejected("wechat", 40129, "中", "en"),
                  UpstreamBusy("gio", 503, "中", "en")):
        assert exit_code(error) is ExitCode.UPSTREAM
