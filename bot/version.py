"""The running minpcode's version and, when the installation knows it, the commit it was made from.

The version has one source, ``version`` in pyproject.toml's ``[project]`` table, raised with each release
section of CHANGELOG.md (docs/developing.md, "Releasing"). A checkout reads it there, so a tree whose
installed metadata is older still names itself; an installed wheel reads its metadata, written from that line.

The commit is found once, at import, and never guessed:

- in a git checkout (``.git`` beside the package folders): ``git rev-parse --short HEAD``;
- in a wheel or an image built from a checkout: the commit ``setup.py`` recorded at build time in
  ``bot/_build.py`` (from git, or from ``MINPCODE_COMMIT`` where the build has no ``.git``, as in the
  Dockerfile); the file exists only in what was built, never in the source tree;
- otherwise None: ``--version``, ``/healthz``, ``minpcode_build_info`` and a backup's manifest then say
  only the version.
"""

from __future__ import annotations

import os
import re
import subprocess
import tomllib
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

_ROOT = Path(__file__).resolve().parent.parent  # the checkout, or site-packages in an installation
_SHORT_HASH = re.compile(r"[0-9a-f]{4,64}")
_RECORDED = re.compile(r"^COMMIT = ['\"]([0-9a-f]{4,64})['\"]$", re.M)  # the line setup.py writes


def _declared_version() -> str:
    try:
        project = tomllib.loads((_ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
        if project.get("name") == "minpcode":
            return str(project["version"])
    except (OSError, tomllib.TOMLDecodeError, KeyError):
        pass  # not a checkout of minpcode: the installed metadata says
    try:
        return version("minpcode")
    except PackageNotFoundError:  # a copy of the source that was never installed
        return "0+unknown"


def _checkout_commit() -> str | None:
    if not (_ROOT / ".git").exists():  # a folder (a clone) or a file (a git worktree)
        return None
    # GIT_DIR and friends (set inside a git hook, say) would point git at another repository.
    env = {name: value for name, value in os.environ.items() if not name.startswith("GIT_")}
    try:
        done = subprocess.run(["git", "-C", str(_ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, timeout=5, env=env, check=False)
    except (OSError, subprocess.SubprocessError):  # no git installed, or it hung
        return None
    found = done.stdout.strip()
    return found if done.returncode == 0 and _SHORT_HASH.fullmatch(found) else None


def _built_commit() -> str | None:
    # Read beside this file rather than imported: the record is data, and it must be this installation's.
    try:
        text = (Path(__file__).resolve().parent / "_build.py").read_text(encoding="utf-8")
    except OSError:
        return None
    found = _RECORDED.search(text)
    return found.group(1) if found else None


__version__ = _declared_version()
__commit__ = _checkout_commit() or _built_commit()


def describe() -> str:
    """``0.2.0 (commit 1a2b3c4)``, or ``0.2.0`` when the commit is not known: what ``--version`` prints."""
    return f"{__version__} (commit {__commit__})" if __commit__ else __version__


__all__ = ["__commit__", "__version__", "describe"]
