"""One history per installation: the default data folder is the user's, not the working directory."""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

import pytest

from bot.config import Settings, default_data_dir
from storage import Storage
from tests.cli.test_cli import invoke


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


def test_an_old_dot_data_history_is_pointed_out_not_silently_left(tmp_path: Path) -> None:
    Storage.open(tmp_path / "data").close()  # where earlier versions kept it
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WECHAT_", "GIO_", "SLACK_", "WECOM_"))}
    env.pop("MINPCODE_DATA_DIR", None)
    env.update(XDG_DATA_HOME=str(tmp_path / "xdg"), PYTHONUTF8="1")
    done = invoke(["list"], cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stderr
    assert f"MINPCODE_DATA_DIR={tmp_path / 'data'}" in done.stderr and "earlier version" in done.stderr
    env["MINPCODE_DATA_DIR"] = str(tmp_path / "data")
    quiet = invoke(["list"], cwd=tmp_path, env=env)
    assert quiet.returncode == 0 and "earlier version" not in quiet.stderr
