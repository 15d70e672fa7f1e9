"""A real ``minpcode serve`` process on a loopback port, for tests (and bench/hold.py) about the process.

    proc = Served(tmp_path / "data", env={"SLACK_BOT_TOKEN": ...}).start()
    proc.post("/slack/events", content=b"...")
    proc.rss()          # resident memory in bytes (Linux /proc); proc.peak(): the most it ever held
    answer, wait = probing(proc.url, lambda: proc.post(...))   # the longest /healthz wait meanwhile
    proc.kill()         # SIGKILL, no shutdown of any kind
    proc.log()          # everything it wrote to stdout and stderr

    with held(data_dir):  # another writer holds the database: requests sent now all write at one instant
        ...

The process inherits no upstream or chat secret from the environment: only what ``env`` gives.
"""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import httpx

from storage.db import DB_NAME

SCRIPT = Path(sys.executable).with_name("minpcode")
COMMAND = [str(SCRIPT)] if SCRIPT.exists() else [sys.executable, "-m", "bot"]
_INHERITED_NOT = ("WECHAT_", "GIO_", "SLACK_", "WECOM_", "MINPCODE_", "HTTP_PROXY", "HTTPS_PROXY", "http_proxy",
                  "https_proxy", "ALL_PROXY", "all_proxy")


T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Served:
    def __init__(self, data_dir: Path, env: dict[str, str] | None = None, *, port: int | None = None,
                 log_path: Path | None = None) -> None:
        self.data_dir = data_dir
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path or data_dir.parent / f"serve-{self.port}.log"
        base = {k: v for k, v in os.environ.items() if not k.startswith(_INHERITED_NOT)}
        self.env = {**base, "MINPCODE_DATA_DIR": str(data_dir), "MINPCODE_SANDBOX": "true", "PYTHONUTF8": "1",
                    "MINPCODE_PUBLIC_URL": self.url, **(env or {})}
        self.proc: subprocess.Popen[bytes] | None = None
        self.http = httpx.Client(timeout=30, trust_env=False)

    def start(self, timeout: float = 90.0) -> Served:  # a loaded 2-core CI machine starts serve slowly
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        out = self.log_path.open("ab")
        self.proc = subprocess.Popen([*COMMAND, "serve", "--port", str(self.port)], env=self.env, stdout=out,
                                     stderr=subprocess.STDOUT, cwd=self.log_path.parent)
        out.close()
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"serve exited {self.proc.returncode}:\n{self.log()}")
            try:
                if self.http.get(self.url + "/healthz", timeout=2).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"serve never answered:\n{self.log()}")
            time.sleep(0.1)

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def post(self, path: str, **kw: Any) -> httpx.Response:
        return self.http.post(self.url + path, **kw)

    def get(self, path: str, **kw: Any) -> httpx.Response:
        return self.http.get(self.url + path, **kw)

    def rss(self) -> int:
        return memory(self.pid, "VmRSS")

    def peak(self) -> int:
        """The most resident memory the process has held since it started (VmHWM), in bytes."""
        return memory(self.pid, "VmHWM")

    def log(self) -> str:
        return self.log_path.read_text("utf-8", "replace") if self.log_path.exists() else ""

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()
        self.http.close()

    def __enter__(self) -> Served:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@contextmanager
def held(data_dir: Path) -> Iterator[None]:
    """The write lock on ``data_dir``'s database, taken from outside the servers (as a batch import or a CLI
    command would), until the block ends: identical requests sent meanwhile have each looked for the other
    and found nothing when the database lets their writes in together."""
    db = sqlite3.connect(data_dir / DB_NAME, isolation_level=None, timeout=30)
    try:
        db.execute("BEGIN IMMEDIATE")
        try:
            yield
        finally:
            db.execute("COMMIT")
    finally:
        db.close()



def memory(pid: int, field: str = "VmRSS") -> int:
    """A memory figure of a process from /proc/<pid>/status (VmRSS, VmHWM ...), in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no {field} for {pid}")


def probing(url: str, work: Callable[[], T], every: float = 0.1) -> tuple[T, float]:
    """``work()`` in a thread while ``url``'s /healthz is asked every ``every`` seconds: its result, and the
    longest a health check waited (seconds). A check that fails or times out (5 s) raises."""
    result: list[T] = []
    failed: list[BaseException] = []

    def run() -> None:
        try:
            result.append(work())
        except BaseException as exc:  # handed to the caller below
            failed.append(exc)

    worker = threading.Thread(target=run, daemon=True)
    longest = 0.0
    with httpx.Client(timeout=5, trust_env=False) as http:
        worker.start()
        while worker.is_alive():
            started = time.monotonic()
            status = http.get(url + "/healthz").status_code
            longest = max(longest, time.monotonic() - started)
            if status != 200:
                raise AssertionError(f"/healthz answered {status}")
            time.sleep(every)
    worker.join()
    if failed:
        raise failed[0]
    return result[0], longest


__all__ = ["COMMAND", "Served", "free_port", "held", "memory", "probing"]
