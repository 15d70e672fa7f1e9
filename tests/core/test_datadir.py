"""One history per installation: the default data folder is the user's, not the working directory."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from bot.config import Settings, default_data_dir
from storage import Storage
from tests.cli.test_cli import invoke
from tests.served import COMMAND, Served, free_port


def test_default_is_the_user_data_folder_and_the_env_overrides(monkeypatch: pytest.MonkeyPatch,
                                                               tmp_path: Path) -> None:
    monkeypatch.delenv("MINPCODE_DATA_DIR", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    monkeypatch.chdir(tmp_path)
    if sys.platform.startswith("linux"):
        assert default_data_dir() == tmp_path / "xdg" / "minpcode"
    assert Settings(_env_file=None).minpcode_data_dir == default_data_dir()  # type: ignore[call-arg]
    assert not Settings(_env_file=None).minpcode_data_dir.is_relative_to(tmp_path / "data")  # type: ignore[call-arg]
    monkeypatch.setenv("MINPCODE_DATA_DIR", str(tmp_path / "elsewhere"))
    assert Settings(_env_file=None).minpcode_data_dir == tmp_path / "elsewhere"  # type: ignore[call-arg]


def test_a_new_data_folder_is_owner_only(tmp_path: Path) -> None:
    folder = tmp_path / "new" / "minpcode"
    Storage.open(folder).close()
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert stat.S_IMODE((folder / "minpcode.db").stat().st_mode) == 0o600


def test_two_working_folders_share_one_history(tmp_path: Path) -> None:
    """The bug the default fixes: ``minpcode create`` from another folder used to start a new ledger."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WECHAT_", "GIO_", "SLACK_", "WECOM_"))}
    env.pop("MINPCODE_DATA_DIR", None)
    env.update(XDG_DATA_HOME=str(tmp_path / "xdg"), HOME=str(tmp_path / "home"), PYTHONUTF8="1")
    ids = []
    for folder in ("one", "two"):
        (tmp_path / folder).mkdir()
        done = invoke(["create", "--page", "pages/index/index", "--type", "B", "--scene", f"id={folder}", "--json"],
                      cwd=tmp_path / folder, env=env)
        assert done.returncode == 0, done.stderr
        ids.append(done.stdout)
    listed = invoke(["list", "--json"], cwd=tmp_path, env=env)
    assert listed.returncode == 0, listed.stderr
    assert "id=one" in listed.stdout and "id=two" in listed.stdout
    assert (tmp_path / "xdg" / "minpcode" / "minpcode.db").exists()
    assert not (tmp_path / "one" / "data").exists() and not (tmp_path / "two" / "data").exists()


def _old_history(tmp_path: Path) -> dict[str, str]:
    """An earlier version's history, ``./data`` in ``tmp_path`` holding one code, and the environment of a
    command run there after the upgrade: no MINPCODE_DATA_DIR, the user's folders under ``tmp_path``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WECHAT_", "GIO_", "SLACK_", "WECOM_", "MINPCODE_"))}
    env.update(XDG_DATA_HOME=str(tmp_path / "xdg"), HOME=str(tmp_path / "home"), PYTHONUTF8="1",
               MINPCODE_SANDBOX="true")
    made = invoke(["create", "--page", "pages/index/index", "--type", "B", "--scene", "id=old"], cwd=tmp_path,
                  env=env | {"MINPCODE_DATA_DIR": str(tmp_path / "data")})
    assert made.returncode == 0, made.stderr
    return env


def test_commands_refuse_to_hide_an_old_dot_data_history(tmp_path: Path) -> None:
    env = _old_history(tmp_path)
    old, new = tmp_path / "data", tmp_path / "xdg" / "minpcode"
    Storage.open(new).close()  # what any command run once after the upgrade left: a database without a code
    for args in (["list"], ["create", "--page", "pages/index/index", "--type", "B", "--scene", "id=new"], ["quota"]):
        refused = invoke(args, cwd=tmp_path, env=env)
        assert refused.returncode == 2, (args, refused.stdout, refused.stderr)
        assert "No codes" not in refused.stdout and "id=new" not in refused.stdout
        [line] = refused.stderr.strip().splitlines()  # one line, naming both folders and what to set
        assert str(old) in line and str(new) in line and f"MINPCODE_DATA_DIR={old}" in line, line
    assert "id=new" not in invoke(["list", "--json"], cwd=tmp_path, env=env | {"MINPCODE_DATA_DIR": str(new)}).stdout

    chosen = invoke(["list", "--json"], cwd=tmp_path, env=env | {"MINPCODE_DATA_DIR": "./data"})  # a choice wins, silently
    assert chosen.returncode == 0 and "id=old" in chosen.stdout, chosen.stderr
    assert "MINPCODE_DATA_DIR" not in chosen.stderr, chosen.stderr


def test_an_old_dot_data_history_beside_a_used_one_is_a_note(tmp_path: Path) -> None:
    env = _old_history(tmp_path)
    new = tmp_path / "xdg" / "minpcode"
    made = invoke(["create", "--page", "pages/index/index", "--type", "B", "--scene", "id=new"], cwd=tmp_path,
                  env=env | {"MINPCODE_DATA_DIR": str(new)})
    assert made.returncode == 0, made.stderr
    done = invoke(["list", "--json"], cwd=tmp_path, env=env)  # two histories in use: not ours to choose between
    assert done.returncode == 0, done.stderr
    assert "id=new" in done.stdout and "id=old" not in done.stdout
    assert f"MINPCODE_DATA_DIR={tmp_path / 'data'}" in done.stderr and "earlier version" in done.stderr


def test_doctor_fails_on_an_old_dot_data_history(tmp_path: Path) -> None:
    env = _old_history(tmp_path)
    done = invoke(["doctor", "--json"], cwd=tmp_path, env=env)
    assert done.returncode == 1, done.stdout
    rows = json.loads(done.stdout)["checks"]
    [row] = [r for r in rows if r["part"] == "data" and r["name"] == "old history"]
    assert row["status"] == "failed" and row["setting"] == "MINPCODE_DATA_DIR"
    assert f"MINPCODE_DATA_DIR={tmp_path / 'data'}" in row["fix"]["en"]
    chosen = invoke(["doctor", "--json"], cwd=tmp_path, env=env | {"MINPCODE_DATA_DIR": "./data"})
    assert not [r for r in json.loads(chosen.stdout)["checks"] if r["name"] == "old history"]


@pytest.mark.slow
def test_serve_refuses_to_start_on_an_empty_folder_while_dot_data_holds_the_history(tmp_path: Path) -> None:
    env = _old_history(tmp_path)
    old, new = tmp_path / "data", tmp_path / "xdg" / "minpcode"
    ran = subprocess.run([*COMMAND, "serve", "--port", str(free_port())], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=90)
    assert ran.returncode == 2, ran.stdout + ran.stderr
    [line] = ran.stderr.strip().splitlines()
    assert str(old) in line and str(new) in line and f"MINPCODE_DATA_DIR={old}" in line, line
    assert not (new / "minpcode.db").exists()  # nothing opened, nothing created

    with Served(old, env={"MINPCODE_DATA_DIR": "./data", "XDG_DATA_HOME": env["XDG_DATA_HOME"]}) as proc:
        assert proc.get("/readyz").status_code == 200
        assert proc.get("/healthz").json()["ok"] is True
    assert "MINPCODE_DATA_DIR=" not in proc.log()
