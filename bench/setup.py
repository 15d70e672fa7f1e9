"""Bench the quick start's set-up: a fresh clone, then ``bash scripts/setup`` from uv.lock, timed, per installer.

    python3 bench/setup.py [--installers uv,pip] [--extras base,test]

For each installer it clones this repository (its committed HEAD) into a scratch folder and times
``bash scripts/setup`` there with empty download caches, as a newcomer's first ``bash scripts/run``
would (uv: ``uv sync --locked`` with the uv scripts/uv pins, taken from PATH or bootstrapped from PyPI
into ``.uv/``; pip: ``MINPCODE_INSTALLER=pip``, held to the lock by constraints). Then it times the same
again on a second clone with the caches the first run left (a second checkout on the same machine).
For each case it prints the seconds, the size of the installed ``.venv`` and its package count, and checks
that every installed package is at a version ``uv.lock`` holds. Needs the package registry; the numbers
depend on the network and the machine's load, so it prints the load average too.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import tempfile
import time
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
INSTALLED = "import importlib.metadata as m, json; print(json.dumps({d.metadata['Name']: d.version for d in m.distributions()}))"


def folder_size(path: Path) -> int:
    return sum(p.lstat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def normal(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")


def off_the_lock(clone: Path) -> list[str]:
    """Installed packages at a version uv.lock does not hold (minpcode itself, and pip's own tools, aside)."""
    locked: dict[str, set[str]] = {}
    for package in tomllib.loads((clone / "uv.lock").read_text(encoding="utf-8"))["package"]:
        locked.setdefault(normal(package["name"]), set()).add(package["version"])
    done = subprocess.run([str(clone / ".venv" / "bin" / "python"), "-c", INSTALLED], capture_output=True, text=True,
                          check=True)
    installed = {normal(name): version for name, version in json.loads(done.stdout).items()}
    return sorted(f"{name} {version}" for name, version in installed.items()
                  if name not in ("minpcode", "setuptools", "wheel") and version not in locked.get(name, set()))


def timed_setup(scratch: Path, name: str, env: dict[str, str]) -> tuple[float, int, int, list[str]]:
    clone = scratch / name
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(clone)], check=True)
    started = time.perf_counter()
    done = subprocess.run(["bash", "scripts/setup"], cwd=clone, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{name}: scripts/setup failed\n{done.stderr[-2000:]}")
    venv = clone / ".venv"
    packages = len(list(venv.glob("lib/python*/site-packages/*.dist-info")))
    return elapsed, folder_size(venv), packages, off_the_lock(clone)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--installers", default="uv,pip")
    parser.add_argument("--extras", default="base")
    args = parser.parse_args()
    print(f"load average {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f}, {os.cpu_count()} cores")
    for installer in args.installers.split(","):
        for extras in args.extras.split(","):
            with tempfile.TemporaryDirectory(prefix="minpcode-bench-setup-") as tmp:
                scratch = Path(tmp)
                env = {k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "PYTHONPATH"))}
                env.update(UV_CACHE_DIR=str(scratch / "uv-cache"), PIP_CACHE_DIR=str(scratch / "pip-cache"))
                if installer == "pip":
                    env["MINPCODE_INSTALLER"] = "pip"
                    env["PATH"] = os.pathsep.join(p for p in env["PATH"].split(os.pathsep)
                                                  if not (Path(p) / "uv").exists())
                if extras != "base":
                    env["EXTRAS"] = extras
                for case, label in (("cold", "first set-up, empty caches"), ("warm", "second clone, warm caches")):
                    seconds, size, packages, off = timed_setup(scratch, case, env)
                    lock = "all at uv.lock's versions" if not off else f"NOT at uv.lock's versions: {', '.join(off)}"
                    print(f"{installer:>3} {extras:<5} {label}: {seconds:6.1f} s, .venv {size / 1e6:5.0f} MB, "
                          f"{packages} packages, {lock}")
                shutil.rmtree(scratch / "cold", ignore_errors=True)


if __name__ == "__main__":
    main()
