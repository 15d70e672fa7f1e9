"""Bench the quick start's set-up: a fresh clone, then ``bash scripts/setup``, timed, per installer.

    python3 bench/setup.py [--installers uv,pip] [--extras base,test]

For each installer it clones this repository (its committed HEAD) into a scratch folder and times
``bash scripts/setup`` there with empty download caches, as a newcomer's first ``bash scripts/run``
would (uv: bootstrapped from PyPI into ``.uv/`` unless ``uv`` is on PATH; pip: ``MINPCODE_INSTALLER=pip``).
Then it times the same again on a second clone with the caches the first run left (a second
checkout on the same machine). Prints seconds per case. Needs the package registry; the numbers
depend on the network and the machine's load, so it prints the load average too.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def timed_setup(scratch: Path, name: str, env: dict[str, str]) -> float:
    clone = scratch / name
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(clone)], check=True)
    started = time.perf_counter()
    done = subprocess.run(["bash", "scripts/setup"], cwd=clone, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{name}: scripts/setup failed\n{done.stderr[-2000:]}")
    return elapsed


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
                cold = timed_setup(scratch, "cold", env)
                warm = timed_setup(scratch, "warm", env)
                print(f"{installer:>3} {extras:<5} first set-up, empty caches: {cold:6.1f} s   "
                      f"second clone, warm caches: {warm:6.1f} s")
                shutil.rmtree(scratch / "cold", ignore_errors=True)


if __name__ == "__main__":
    main()
