"""What pyproject.toml cannot say: a wheel or an sdist records the commit it was built from.

Everything else about the package is in pyproject.toml; setuptools reads this file beside it (setup.py as
setuptools' configuration is supported, only running it as a command is not:
https://packaging.python.org/en/latest/discussions/setup-py-deprecated/). The commit goes into
``bot/_build.py`` in the build's own folder, never the source tree (git-ignored all the same), and
``bot/version.py`` reads it in an installation, where there is no ``.git`` to ask.

The commit is ``MINPCODE_COMMIT`` when set (the Dockerfile's build argument: the image is built without
``.git``), else the one ``bot/version.py`` finds: the checkout's HEAD, or the recorded one when a wheel is
built from an sdist. An editable install records nothing: it runs from the checkout, which asks git itself.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py
from setuptools.command.sdist import sdist

HERE = Path(__file__).resolve().parent
RECORD = Path("bot") / "_build.py"


def commit() -> str | None:
    given = os.environ.get("MINPCODE_COMMIT", "").strip().lower()
    if given:
        if not re.fullmatch(r"[0-9a-f]{4,64}", given):
            raise SystemExit(f"MINPCODE_COMMIT={given!r} is not a commit hash (e.g. $(git rev-parse --short HEAD))")
        return given
    sys.path.insert(0, str(HERE))  # this tree's bot/version.py, not an installed one
    try:
        from bot.version import __commit__
    finally:
        sys.path.remove(str(HERE))
    return __commit__


def record(folder: Path) -> None:
    found = commit()
    if found is None:
        return
    target = folder / RECORD
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(f'"""Written by setup.py when this was built."""\n\nCOMMIT = {found!r}\n', encoding="utf-8")


class BuildPy(build_py):
    def run(self) -> None:
        super().run()
        if not self.editable_mode:
            record(Path(self.build_lib))


class Sdist(sdist):
    def make_release_tree(self, base_dir: str, files: list[str]) -> None:
        super().make_release_tree(base_dir, files)
        record(Path(base_dir))


setup(cmdclass={"build_py": BuildPy, "sdist": Sdist})
