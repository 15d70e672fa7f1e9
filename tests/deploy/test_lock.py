"""uv.lock is what gets installed, and CI fails when pyproject.toml and the lock disagree.

The checks run on copies of pyproject.toml, uv.lock and scripts/ in a temporary folder, with the uv that
scripts/uv pins (on PATH, or in .uv/ where scripts/uv or scripts/test put it) and offline: the lock answers
from itself, so nothing is downloaded.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def pinned_uv() -> Path:
    version = re.search(r"^UV_VERSION=(\S+)", (ROOT / "scripts" / "uv").read_text(), re.M)
    assert version
    for candidate in (shutil.which("uv"), ROOT / ".uv" / "bin" / "uv"):
        if candidate and Path(candidate).is_file():
            said = subprocess.run([str(candidate), "--version"], capture_output=True, text=True, timeout=60).stdout
            if said.split()[:2] == ["uv", version[1]]:
                return Path(candidate)
    if os.environ.get("CI"):
        pytest.fail(f"uv {version[1]} is neither on PATH nor in .uv/: scripts/test installs it before the tests")
    pytest.skip(f"uv {version[1]} is not installed here: `bash scripts/uv --version` installs it")


@pytest.fixture
def project(tmp_path: Path) -> Path:
    for name in ("pyproject.toml", "uv.lock", "setup.py", "README.md"):
        shutil.copy(ROOT / name, tmp_path / name)
    shutil.copytree(ROOT / "scripts", tmp_path / "scripts")
    return tmp_path


def run(project: Path, *command: str) -> subprocess.CompletedProcess[str]:
    uv = pinned_uv()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "PYTHONPATH", "UV_"))}
    env.update(PATH=f"{uv.parent}{os.pathsep}{env['PATH']}", UV_OFFLINE="1", PIP_NO_INDEX="1",
               UV_CACHE_DIR=str(project / ".uv-cache"))
    return subprocess.run(list(command), cwd=project, env=env, capture_output=True, text=True, timeout=300)


def add_dependency(project: Path, requirement: str) -> None:
    text = (project / "pyproject.toml").read_text(encoding="utf-8")
    changed = text.replace("dependencies = [\n", f'dependencies = [\n  "{requirement}",\n', 1)
    assert changed != text
    (project / "pyproject.toml").write_text(changed, encoding="utf-8")


def test_the_committed_lock_covers_every_extra() -> None:
    lock = tomllib.loads((ROOT / "uv.lock").read_text(encoding="utf-8"))
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    ours = next(p for p in lock["package"] if p["name"] == "minpcode")  # its version: tests/core/test_version.py
    assert set(ours["optional-dependencies"]) == set(declared["optional-dependencies"])


@pytest.mark.slow
def test_the_lock_check_passes_on_the_lock_and_fails_when_pyproject_outgrows_it(project: Path) -> None:
    assert run(project, "bash", "scripts/uv", "lock", "--check").returncode == 0
    add_dependency(project, "six>=1.16")
    # Offline uv then tries to resolve anew and cannot; --verbose shows why it had to (online, with the same
    # cause, it says "The lockfile at `uv.lock` needs to be updated").
    stale = run(project, "bash", "scripts/uv", "lock", "--check", "--verbose")
    assert stale.returncode != 0
    assert re.search(r"Requirements for `minpcode==[^`]+` differ; added: six>=1\.16", stale.stderr), stale.stderr[-3000:]


@pytest.mark.slow
def test_setup_refuses_a_lock_that_pyproject_has_outgrown(project: Path) -> None:
    add_dependency(project, "six>=1.16")
    refused = run(project, "bash", "scripts/setup")
    assert refused.returncode == 1, refused.stderr
    assert "uv.lock does not match pyproject.toml: run `bash scripts/uv lock`" in refused.stderr
    assert not (project / ".venv" / ".minpcode-installed-base").exists()
