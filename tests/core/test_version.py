"""The version has one source (pyproject.toml) and the commit is known where it can be, never guessed.

bot/version.py is loaded from copies of itself placed in temporary folders laid out as a checkout, an
installation or a bare copy; the runs that ask git or start ``minpcode`` are marked slow.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from types import ModuleType

import pytest

import bot.version

ROOT = Path(__file__).resolve().parents[2]
DECLARED = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["version"]


def version_module(root: Path, pyproject: str | None = None, record: str | None = None) -> ModuleType:
    """bot/version.py as it runs from ``root``/bot, with that folder's pyproject.toml and bot/_build.py."""
    (root / "bot").mkdir(parents=True, exist_ok=True)
    shutil.copy(ROOT / "bot" / "version.py", root / "bot" / "version.py")
    if pyproject is not None:
        (root / "pyproject.toml").write_text(pyproject, encoding="utf-8")
    if record is not None:
        (root / "bot" / "_build.py").write_text(record, encoding="utf-8")
    spec = importlib.util.spec_from_file_location(f"version_copy_{abs(hash(root))}", root / "bot" / "version.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_checkout_names_the_version_its_pyproject_declares(tmp_path: Path) -> None:
    # The installed metadata (here: whatever this venv was installed with) must not win over the tree's
    # own pyproject.toml, or a tree bumped since its install would name the old version.
    bumped = (ROOT / "pyproject.toml").read_text(encoding="utf-8").replace(
        f'version = "{DECLARED}"', 'version = "9.9.9"', 1)
    assert 'version = "9.9.9"' in bumped
    assert version_module(tmp_path / "ours", pyproject=bumped).__version__ == "9.9.9"
    assert bot.version.__version__ == DECLARED
    # Another project's pyproject.toml beside an installed copy is not ours.
    other = version_module(tmp_path / "other", pyproject='[project]\nname = "other"\nversion = "7.0"\n')
    assert other.__version__ != "7.0"


def test_an_installation_reads_the_commit_recorded_at_build_time(tmp_path: Path) -> None:
    module = version_module(tmp_path, record='"""Written by setup.py when this was built."""\n\nCOMMIT = \'1a2b3c4\'\n')
    assert module.__commit__ == "1a2b3c4"
    assert module.describe() == f"{module.__version__} (commit 1a2b3c4)"


@pytest.mark.parametrize("record", [None, "COMMIT = 'not a commit'\n", "COMMIT = None\n"])
def test_without_a_commit_nothing_is_guessed(tmp_path: Path, record: str | None) -> None:
    module = version_module(tmp_path, record=record)  # no .git beside it: git is not asked
    assert module.__commit__ is None
    assert module.describe() == module.__version__


def test_the_version_is_written_in_one_place() -> None:
    """pyproject.toml holds it; uv.lock and the CHANGELOG's newest release follow it; no code or script repeats it."""
    lock = tomllib.loads((ROOT / "uv.lock").read_text(encoding="utf-8"))
    assert next(p for p in lock["package"] if p["name"] == "minpcode")["version"] == DECLARED  # relocked
    changelog = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    headings = re.findall(r"^## \[([^\]]+)\](.*)$", changelog, re.M)
    assert headings[0] == ("Unreleased", "")
    releases = headings[1:]
    assert releases and all(re.fullmatch(r" - \d{4}-\d{2}-\d{2}", date) for _, date in releases), releases
    numbers = [tuple(int(n) for n in name.split(".")) for name, _ in releases]
    assert numbers == sorted(numbers, reverse=True) and releases[0][0] == DECLARED
    repeated = []
    for folder in ("bot", "handlers", "storage", "scripts", ".ci"):
        for path in (ROOT / folder).rglob("*"):
            if path.is_file() and path.suffix in ("", ".py", ".sh") and f'"{DECLARED}"' in path.read_text("utf-8"):
                repeated.append(path)
    for name in ("setup.py", "Dockerfile", "compose.yaml"):
        if f"{DECLARED}" in (ROOT / name).read_text(encoding="utf-8"):
            repeated.append(ROOT / name)
    assert not repeated, repeated


def git(*args: str, cwd: Path) -> str:
    env = {name: value for name, value in os.environ.items() if not name.startswith("GIT_")}
    return subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, text=True, check=True,
                          timeout=60).stdout.strip()


@pytest.mark.slow
def test_version_from_a_checkout_names_its_head(tmp_path: Path) -> None:
    if not (ROOT / ".git").exists():
        pytest.skip("the tests run from a copy, not a git checkout")
    head = git("rev-parse", "--short", "HEAD", cwd=ROOT)
    env = {name: value for name, value in os.environ.items() if not name.startswith(("GIT_", "PYTHONPATH"))}
    done = subprocess.run([sys.executable, "-m", "bot", "--version"], cwd=tmp_path,  # run from elsewhere
                          env={**env, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"minpcode {DECLARED} (commit {head})"
    assert bot.version.__commit__ == head


@pytest.mark.slow
def test_only_the_checkout_the_package_sits_in_is_asked(tmp_path: Path) -> None:
    # A copy of the package inside some other repository (a vendored folder, a home directory kept in git)
    # is no checkout of minpcode: that repository's HEAD is not our commit.
    outer = tmp_path / "outer"
    git("init", "--quiet", str(outer), cwd=tmp_path)
    (outer / "notes.txt").write_text("x")
    git("add", "-A", cwd=outer)
    git("-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "--quiet", "-m", "x", cwd=outer)
    assert version_module(outer / "vendor").__commit__ is None
    inner = version_module(outer)  # bot/ beside .git: this is the checkout
    assert inner.__commit__ == git("rev-parse", "--short", "HEAD", cwd=outer)
