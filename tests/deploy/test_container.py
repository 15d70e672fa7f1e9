"""The container files, tested as far as a machine without a container engine allows.

1. The Dockerfile's instructions, .dockerignore and compose.yaml, parsed and checked: the apt packages the
   image installs are Debian packages apt here can install, and compose.yaml hardens the container as the
   systemd unit does (read-only, no capabilities, no new privileges; writable: the /data volume and /tmp).
2. What the image runs, run for real: the wheel built from this tree, installed into a clean venv
   (no source tree, no PYTHONPATH), with the image's ENV; ``--version``, ``doctor --json`` and then
   ``minpcode serve`` as the image's CMD says, with its data folder from ``MINPCODE_DATA_DIR``, answering
   ``/healthz`` on a loopback port, writing nowhere but its data folder and /tmp. The dependencies are
   lent to that venv by a path file pointing at this interpreter's site-packages, so nothing is
   downloaded; only minpcode itself comes from the wheel."""

from __future__ import annotations

import ipaddress
import json
import os
import re
import shlex
import shutil
import site
import socket
import subprocess
import sys
import tarfile
import time
import tomllib
import zipfile
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml  # type: ignore[import-untyped]

from bot.config import Settings

ROOT = Path(__file__).resolve().parents[2]


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) for each instruction, continuation lines joined, comments dropped."""
    found: list[tuple[str, str]] = []
    pending = ""
    for raw in (ROOT / "Dockerfile").read_text().splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):
            continue
        pending += (" " if pending else "") + line.removesuffix("\\").strip()
        if not line.endswith("\\"):
            word, _, rest = pending.partition(" ")
            found.append((word.upper(), rest.strip()))
            pending = ""
    assert not pending, "a continuation line runs off the end"
    return found


def first(items: list[tuple[str, str]], word: str) -> int:
    return next(i for i, (w, _) in enumerate(items) if w == word)


def test_the_dockerfile_instructions() -> None:
    items = instructions()
    words = [w for w, _ in items]
    # A pinned base: a Python patch release on a named Debian release, with a digest only when one was read.
    assert items[0][0] == "FROM" and re.fullmatch(r"python:3\.11\.\d+-slim-bookworm(@sha256:[0-9a-f]{64})?",
                                                  items[0][1]), items[0]
    users = [args for w, args in items if w == "USER"]
    assert users and users[-1] not in ("root", "0") and max(i for i, w in enumerate(words) if w == "USER") \
        < first(items, "CMD")
    assert ("VOLUME", "/data") in items and ("EXPOSE", "3000") in items
    env = " ".join(args for w, args in items if w == "ENV")
    assert "MINPCODE_DATA_DIR=/data" in env
    trusted = next(word.partition("=")[2] for word in env.split() if word.startswith("MINPCODE_TRUSTED_PROXIES="))
    assert_trusts_the_bridge_gateway(trusted)
    health = next(args for w, args in items if w == "HEALTHCHECK")
    assert "/healthz" in health and "127.0.0.1:3000" in health
    cmd = json.loads(next(args for w, args in items if w == "CMD"))
    assert cmd[:4] == ["minpcode", "serve", "--host", "0.0.0.0"] and cmd[cmd.index("--port") + 1] == "3000"
    # Dependencies in their own layer: exactly uv.lock's, hash-checked, before any source is copied.
    copies = [(i, args) for i, (w, args) in enumerate(items) if w == "COPY"]
    assert copies[0][1].split()[:-1] == ["pyproject.toml", "uv.lock"]
    deps = next(i for i, (w, args) in enumerate(items) if w == "RUN" and "--requirement" in args)
    install = items[deps][1]
    assert "uv export --frozen" in install and "--require-hashes" in install and "--no-emit-project" in install
    assert re.search(r"uv==(\S+)", install)[1] == pinned_uv()  # type: ignore[index]
    source = min(i for i, args in copies if args.split()[0] in ("bot", "handlers", "storage"))
    assert copies[0][0] < deps < source
    # The image has no .git: the commit is a build argument, recorded by setup.py when minpcode is installed.
    app = next(i for i, (w, args) in enumerate(items) if w == "RUN" and "pip install --no-deps ." in args)
    assert ("ARG", "MINPCODE_COMMIT=") in items[deps:app] and any(
        "setup.py" in args.split() for w, args in items[deps:app] if w == "COPY")
    assert len(users) == 1 and first(items, "USER") > source  # installs run as root, the server does not
    assert "useradd" in next(args for w, args in items if w == "RUN" and "useradd" in args)


def pinned_uv() -> str:
    """The uv version scripts/uv pins: the image exports the lock with the same uv that wrote it."""
    found = re.search(r"^UV_VERSION=(\S+)", (ROOT / "scripts" / "uv").read_text(), re.M)
    assert found
    return found[1]


def assert_trusts_the_bridge_gateway(value: str) -> None:
    """The proxy reaches a published port from the bridge's gateway, not 127.0.0.1: its forwarded address counts."""
    settings = Settings(_env_file=None, minpcode_trusted_proxies=value)  # type: ignore[call-arg]
    assert settings.problems("MINPCODE_TRUSTED_PROXIES") == []
    networks = [ipaddress.ip_network(entry) for entry in settings.minpcode_trusted_proxies]
    for gateway in ("172.17.0.1", "172.18.0.1", "192.168.0.1", "10.88.0.1", "127.0.0.1"):  # docker, compose, podman
        assert any(ipaddress.ip_address(gateway) in network for network in networks), gateway
    assert not any(ipaddress.ip_address("203.0.113.7") in network for network in networks)  # a phone is no proxy


def image_env() -> dict[str, str]:
    """The image's ENV, as the server in it sees its environment."""
    env: dict[str, str] = {}
    for word, args in instructions():
        if word == "ENV":
            env.update(item.partition("=")[::2] for item in shlex.split(args))
    return env


def apt_installs() -> list[tuple[str, list[str]]]:
    """(the RUN's arguments, the packages) for each ``apt-get install`` the Dockerfile runs."""
    found = []
    for word, args in instructions():
        if word == "RUN" and "apt-get install" in args:
            command = args.split("apt-get install", 1)[1].split("&&", 1)[0]
            found.append((args, [w for w in shlex.split(command) if not w.startswith("-")]))
    return found


def test_the_image_installs_the_system_libraries_the_docs_promise() -> None:
    """SVG logos (docs/posters.md) need libcairo, which python:3.11-slim lacks: cairocffi dlopens libcairo.so.2."""
    installs = apt_installs()
    assert any("libcairo2" in packages for _, packages in installs), installs
    items = instructions()
    for args, _ in installs:
        assert "--no-install-recommends" in args and "apt-get update" in args  # one layer, nothing extra
        assert "rm -rf /var/lib/apt/lists/*" in args  # the package lists stay out of the image
        index = next(i for i, (w, a) in enumerate(items) if w == "RUN" and a == args)
        assert index < first(items, "USER")  # installed as root, before the server's user takes over


@pytest.mark.slow
def test_each_apt_package_is_a_debian_package_with_a_candidate() -> None:
    """What the image's apt line names exists in Debian (this machine's apt: bookworm), so the build can install it."""
    if shutil.which("apt-cache") is None:
        pytest.skip("apt-cache is not installed here: the Dockerfile's apt packages cannot be looked up")
    packages = [name for _, names in apt_installs() for name in names]
    assert packages
    for name in packages:
        policy = subprocess.run(["apt-cache", "policy", name], capture_output=True, text=True, timeout=60).stdout
        candidate = next((line.split(":", 1)[1].strip() for line in policy.splitlines()
                          if line.strip().startswith("Candidate:")), None)
        assert candidate not in (None, "(none)"), f"{name}: no installable version in apt here\n{policy}"


def writable_paths(service: dict[str, Any]) -> set[str]:
    """Where a container of this service can write: its volumes not mounted read-only, its tmpfs mounts,
    and everything when the root filesystem is writable."""
    paths = {"/"} if service.get("read_only") is not True else set()
    for volume in service.get("volumes", []):
        parts = volume.split(":") if isinstance(volume, str) else [volume["source"], volume["target"]]
        if not (isinstance(volume, str) and parts[-1] == "ro" or isinstance(volume, dict) and volume.get("read_only")):
            paths.add(parts[1])
    tmpfs = service.get("tmpfs", [])
    paths.update(entry.split(":", 1)[0] for entry in ([tmpfs] if isinstance(tmpfs, str) else tmpfs))
    return paths


def test_compose_hardens_the_container_as_the_systemd_unit_does() -> None:
    service = yaml.safe_load((ROOT / "compose.yaml").read_text())["services"]["minpcode"]
    assert service["read_only"] is True
    assert service["cap_drop"] == ["ALL"] and not service.get("cap_add")
    assert "no-new-privileges:true" in service["security_opt"] and not service.get("privileged")
    assert isinstance(service["pids_limit"], int) and service["pids_limit"] > 0
    assert writable_paths(service) == {"/data", "/tmp"}  # the history's volume and scratch space, nothing else
    # what minpcode writes lands in one of them
    env = image_env() | service["environment"]
    assert env["MINPCODE_DATA_DIR"] == "/data" and env["MPLCONFIGDIR"].startswith("/tmp/")
    assert "user" not in service  # the image's own unprivileged user (uid 10001) owns /data


def test_dockerignore_keeps_secrets_and_local_state_out() -> None:
    ignored = {line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()
               if line.strip() and not line.startswith("#")}
    assert {".env", ".git", ".venv", "data", "tests"} <= ignored
    for needed in ("pyproject.toml", "uv.lock", "setup.py", "README.md", "LICENSE", "bot", "handlers", "storage"):
        assert needed not in ignored and (ROOT / needed).exists()


def test_compose_file() -> None:
    service = yaml.safe_load((ROOT / "compose.yaml").read_text())["services"]["minpcode"]
    assert service["build"] == "." and any(e["path"] == ".env" for e in service["env_file"])
    assert service["environment"]["MINPCODE_DATA_DIR"] == "/data"
    assert_trusts_the_bridge_gateway(service["environment"]["MINPCODE_TRUSTED_PROXIES"])
    assert all(p.startswith("127.0.0.1:") for p in service["ports"])  # only the host's proxy comes from the gateway
    assert any(v.split(":")[1] == "/data" for v in service["volumes"])
    assert any(p.endswith(":3000") for p in service["ports"])


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def source_copy(into: Path) -> Path:
    """What the image copies of this tree (a copy, so the tree stays clean; no .git, as in the image)."""
    tree = into / "tree"
    tree.mkdir(parents=True)
    for name in ("pyproject.toml", "setup.py", "README.md", "LICENSE"):
        shutil.copy(ROOT / name, tree / name)
    for package in ("bot", "handlers", "storage"):
        shutil.copytree(ROOT / package, tree / package,
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "_build.py"))
    return tree


def build(tree: Path, into: Path, hook: str = "build_wheel", **env: str) -> Path:
    """A wheel (or an sdist) of ``tree``, built offline with the setuptools already installed."""
    into.mkdir(exist_ok=True)
    script = f"from setuptools import build_meta; print(build_meta.{hook}({str(into)!r}))"
    base = {k: v for k, v in os.environ.items() if not k.startswith(("GIT_", "MINPCODE_COMMIT"))}
    done = subprocess.run([sys.executable, "-c", script], cwd=tree, capture_output=True, text=True, timeout=300,
                          env={**base, **env})
    assert done.returncode == 0, done.stderr[-3000:]
    return into / done.stdout.strip().splitlines()[-1]


def tree_state(folders: list[Path]) -> dict[str, tuple[int, int, int]]:
    """Every file and folder under ``folders``: (mode, size, mtime): a write anywhere changes it."""
    state = {}
    for folder in folders:
        for path in [folder, *folder.rglob("*")]:
            info = path.lstat()
            state[str(path)] = (info.st_mode, info.st_size, info.st_mtime_ns)
    return state


def set_writable(folders: list[Path], writable: bool) -> None:
    for folder in folders:
        for path in [folder, *folder.rglob("*")]:
            if not path.is_symlink():
                mode = path.stat().st_mode
                path.chmod(mode | 0o200 if writable else mode & ~0o222)


def build_wheel(into: Path, **env: str) -> Path:
    return build(source_copy(into), into, **env)


def recorded_commit(wheel: Path) -> str | None:
    with zipfile.ZipFile(wheel) as archive:
        if "bot/_build.py" not in archive.namelist():
            return None
        found = re.search(r"^COMMIT = '([0-9a-f]+)'$", archive.read("bot/_build.py").decode(), re.M)
        return found[1] if found else None


@pytest.mark.slow
def test_a_wheel_built_from_a_checkout_carries_its_commit_also_through_an_sdist(tmp_path: Path) -> None:
    tree = source_copy(tmp_path)
    git = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    for args in (["init", "--quiet"], ["add", "-A"],
                 ["-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "--quiet", "-m", "release"]):
        subprocess.run(["git", *args], cwd=tree, env=git, check=True, capture_output=True, timeout=60)
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=tree, env=git, capture_output=True,
                          text=True, check=True, timeout=60).stdout.strip()
    assert recorded_commit(build(tree, tmp_path / "wheel")) == head
    assert not (tree / "bot" / "_build.py").exists()  # recorded in the build, never in the source tree
    # `uv build` and `python -m build` make the wheel from the sdist, unpacked where there is no .git.
    sdist = build(tree, tmp_path / "sdist", "build_sdist")
    with tarfile.open(sdist) as archive:
        archive.extractall(tmp_path / "unpacked", filter="data")
    unpacked = next((tmp_path / "unpacked").iterdir())
    assert not (unpacked / ".git").exists()
    assert recorded_commit(build(unpacked, tmp_path / "from-sdist")) == head
    # No .git and no MINPCODE_COMMIT: nothing is recorded, so nothing is claimed.
    assert recorded_commit(build(source_copy(tmp_path / "bare"), tmp_path / "bare-wheel")) is None


@pytest.mark.slow
def test_the_image_command_runs_from_a_wheel_in_a_clean_venv(tmp_path: Path) -> None:
    """The image as far as a machine without a container engine can run it: the wheel in a clean venv, the image's
    ENV, and what compose.yaml makes writable: only the data folder (/data) and scratch space (/tmp). The venv,
    the working folder (/app) and HOME are made read-only (a root user ignores that, so their files are also
    compared before and after): ``--version``, ``doctor --json`` and ``serve`` write nothing there.

    It runs as the current user: an unprivileged one cannot be made to run it here, since this interpreter (the
    venv's base) lives under /root, which only root may enter."""
    wheel = build_wheel(tmp_path, MINPCODE_COMMIT="0a1b2c3")  # as the Dockerfile's build argument passes it
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    py = venv / "bin" / "python"
    subprocess.run([str(py), "-m", "pip", "install", "--quiet", "--no-index", "--no-deps", str(wheel)],
                   check=True, timeout=300,
                   # without PYTHONPATH: a checkout on it holds minpcode.egg-info, which pip takes as installed
                   env={**{k: v for k, v in os.environ.items() if not k.startswith("PYTHON")},
                        "PIP_CONFIG_FILE": os.devnull})
    own = subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                         capture_output=True, text=True, check=True).stdout.strip()
    (Path(own) / "lent-dependencies.pth").write_text("\n".join(site.getsitepackages()) + "\n")

    app, home, data, scratch = (tmp_path / name for name in ("app", "home", "data", "tmp"))
    for folder in (app, home, scratch):
        folder.mkdir()
    data.mkdir(mode=0o700)  # as the Dockerfile makes /data: empty, the server's user's, 0700
    image = image_env()
    assert image["MINPCODE_DATA_DIR"] == "/data" and image["MPLCONFIGDIR"].startswith("/tmp/")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WECHAT_", "GIO_", "SLACK_", "WECOM_",
                                                                    "MINPCODE_", "PYTHON", "PIP_"))}
    env.update(image)  # the image's settings, with its two writable places moved here
    env.update(MINPCODE_DATA_DIR=str(data), MPLCONFIGDIR=str(scratch / "matplotlib"), TMPDIR=str(scratch),
               HOME=str(home))
    frozen = [venv, app, home]
    set_writable(frozen, False)
    before = tree_state(frozen)
    try:
        where = subprocess.run([str(py), "-c", "import bot.server, storage; print(bot.server.__file__, storage.__file__)"],
                               cwd=app, env=env, capture_output=True, text=True, timeout=120)
        assert where.returncode == 0, where.stderr
        assert all(path.startswith(own) for path in where.stdout.split()), where.stdout  # the wheel's copy
        version = subprocess.run([str(venv / "bin" / "minpcode"), "--version"], cwd=app, env=env,
                                 capture_output=True, text=True, timeout=120)
        declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
        assert version.stdout.strip() == f"minpcode {declared} (commit 0a1b2c3)", version.stderr

        doctor = subprocess.run([str(venv / "bin" / "minpcode"), "doctor", "--json"], cwd=app, env=env,
                                capture_output=True, text=True, timeout=180)
        rows = {(r["part"], r["name"]): r for r in json.loads(doctor.stdout)["checks"]}
        failed = [r for r in rows.values() if r["status"] == "failed"]
        assert doctor.returncode == 0 and not failed, failed or doctor.stderr[-3000:]
        assert rows["data", "folder"]["status"] == "ok" and str(data) in rows["data", "folder"]["detail"]["en"]
        assert rows["posters", "svg logos"]["status"] == "ok"  # libcairo, as the image's apt line installs it
        assert rows["font", "cjk font"]["status"] == "ok"

        port = free_port()
        command = shlex.split(f"minpcode serve --host 127.0.0.1 --port {port}")  # the image's CMD, on loopback
        process = subprocess.Popen([str(venv / "bin" / command[0]), *command[1:]], cwd=app, env=env,
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    answer = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
                    break
                except httpx.TransportError:
                    assert process.poll() is None and time.monotonic() < deadline, process.communicate()[0][-3000:]
                    time.sleep(0.2)
            assert answer.status_code == 200 and answer.json()["commit"] == "0a1b2c3"
            assert (data / "minpcode.db").is_file() and oct(data.stat().st_mode & 0o777) == "0o700"
            # The image's MINPCODE_TRUSTED_PROXIES reaches uvicorn: a proxy's X-Forwarded-For names the client
            # (127.0.0.1 stands in for the bridge's gateway, which the same setting lists).
            scan = httpx.get(f"http://127.0.0.1:{port}/api/scenes/k=0000000000",
                             headers={"X-Forwarded-For": "203.0.113.7"}, timeout=10)
            assert scan.status_code == 404
        finally:
            process.terminate()
            output = process.communicate(timeout=30)[0]
        assert "Traceback" not in output, output[-3000:]
        assert '203.0.113.7 "GET /api/scenes/k=0000000000" 404' in output, output[-3000:]
        after = tree_state(frozen)
    finally:
        set_writable(frozen, True)  # so that pytest can remove them
    written = sorted(set(after.items()) ^ set(before.items()))
    assert not written, f"written outside the data folder and /tmp: {written[:10]}"
