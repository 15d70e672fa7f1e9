"""Shared fixtures: emulators on real loopback ports, httpx clients, a fake clock, a QR scanner.

    async def test_x(wechat: Site, wechat_client: WeChatClient, scan) -> None:
        wechat.emu.inject(45009)                  # knobs and faults live on the emulator
        ...
        assert wechat.log.count("/wxa/getwxacode") == 1   # what reached the emulator, with timings

Every server runs in its own thread (``ServerThread``) for one test; it is told to stop at the end
of that test and joined at the end of the session, so stopping costs a test nothing.
"""

from __future__ import annotations

import io
import os
import subprocess
import threading
import time
import traceback
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import zxingcpp
from PIL import Image
from pydantic import SecretStr

from bot.sandbox import GIO_CLIENT_ID, GIO_PROJECT_UID, GIO_TOKEN, SANDBOX_APPID, SANDBOX_SECRET, qr
from bot.sandbox.growingio import GrowingIOEmulator
from bot.sandbox.server import ServerThread
from bot.sandbox.wechat import WeChatEmulator
from bot.upstream.growingio import GrowingIOClient
from bot.upstream.wechat import WeChatClient
from tests.browser import browser, browser_page  # noqa: F401 - the headless browser fixtures, for every module
from tests.databases import BACKENDS, fresh_postgres
from tests.emulators.slack import SlackEmulator
from tests.emulators.upstreams import Upstreams
from tests.emulators.wecom import WeComEmulator

Scope = dict[str, Any]
Receive = Callable[[], Any]
Send = Callable[[dict[str, Any]], Any]


# -- the slow marker ------------------------------------------------------------------------------
# A test that starts a process or a browser is marked ``@pytest.mark.slow`` so that
# ``bash scripts/test --fast`` (``-m "not slow"``) leaves it out. The mark is kept true by the wire
# itself: every child process goes through ``subprocess.Popen`` (asyncio's subprocesses and
# Playwright's driver too), and one started for a test without the mark fails that test.
_running: list[pytest.Item] = []
_AUDIT = os.environ.get("MINPCODE_SLOW_AUDIT")
_popen_child = subprocess.Popen._execute_child  # type: ignore[attr-defined]


# A library probing the system once (ctypes' find_library runs `ldconfig -p` when cairocffi loads,
# matplotlib may run `fc-list`) is not the test starting a process. Nor is the product's own bounded
# worker (bot/workers.py): its children fork from a server started once per test process and cost tens
# of milliseconds, so a test that reads a sheet stays in the fast loop.
_PROBES = (f"ctypes{os.sep}util.py", f"matplotlib{os.sep}font_manager.py", f"{os.sep}platform.py")


def _guarded_child(self: subprocess.Popen[Any], args: Any, *rest: Any, **kwargs: Any) -> Any:
    if any(frame.filename.endswith(_PROBES) for frame in traceback.extract_stack()):
        return _popen_child(self, args, *rest, **kwargs)
    item = _running[-1] if _running else None
    marked = item is not None and item.get_closest_marker("slow") is not None
    if _AUDIT and item is not None:  # a survey of the suite: every test that starts a process, marked or not
        with open(_AUDIT, "a", encoding="utf-8") as out:
            out.write(f"{item.nodeid}\t{'slow' if marked else 'unmarked'}\n")
    elif item is not None and not marked:
        raise RuntimeError(f"{item.nodeid} starts a process ({args!r:.120}) but is not marked "
                           "@pytest.mark.slow; mark it so that `scripts/test --fast` leaves it out")
    return _popen_child(self, args, *rest, **kwargs)


subprocess.Popen._execute_child = _guarded_child  # type: ignore[attr-defined]


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[object]:
    _running.append(item)
    try:
        return (yield)
    finally:
        _running.pop()


class FakeClock:
    """A clock a test moves by hand: ``clock()`` is the time, ``clock.advance(s)`` moves it."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class Recorded:
    """One HTTP request as the server saw it; times are ``time.monotonic()`` in the server thread."""

    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes
    started: float
    ended: float = 0.0
    status: int = 0


class Recorder:
    """ASGI wrapper that records every HTTP request reaching ``app`` (before the app sees it).

    Like a buffering reverse proxy (nginx's default) it reads the whole request body before handing
    the request on, so an app that is slow to start still sees the body of a client that timed out
    and hung up meanwhile, and acts on it as a real server would.
    """

    def __init__(self, app: Any) -> None:
        self.app = app
        self.requests: list[Recorded] = []
        self._lock = threading.Lock()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        entry = Recorded(
            method=scope["method"], path=scope["path"], query=scope.get("query_string", b"").decode("latin-1"),
            headers={k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]},
            body=b"", started=time.monotonic(),
        )
        with self._lock:
            self.requests.append(entry)
        buffered: list[dict[str, Any]] = []
        while True:
            message = await receive()
            if message["type"] != "http.request":
                buffered.append(message)
                break
            entry.body += message.get("body", b"")
            if not message.get("more_body", False):
                buffered.append({"type": "http.request", "body": entry.body, "more_body": False})
                break

        async def recv() -> Any:
            return buffered.pop(0) if buffered else await receive()

        async def snd(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                entry.status = int(message["status"])
            await send(message)
            if message["type"] == "http.response.body" and not message.get("more_body", False):
                entry.ended = time.monotonic()

        await self.app(scope, recv, snd)

    def to(self, path: str, method: str | None = None) -> list[Recorded]:
        """Requests whose path is ``path`` or ends with it (``"minplinks"``)."""
        with self._lock:
            items = list(self.requests)
        return [r for r in items if (r.path == path or r.path.endswith("/" + path.lstrip("/")))
                and (method is None or r.method == method)]

    def count(self, path: str, method: str | None = None) -> int:
        return len(self.to(path, method))

    def clear(self) -> None:
        with self._lock:
            self.requests.clear()


@dataclass
class Site:
    """An emulator running on a loopback port: ``emu`` (knobs), ``url``, ``log`` (what it received)."""

    emu: Any
    url: str
    log: Recorder
    extra: dict[str, Any] = field(default_factory=dict)


@pytest.fixture(scope="session")
def _server_reaper() -> Iterator[list[threading.Thread]]:
    stopping: list[threading.Thread] = []
    yield stopping
    for thread in stopping:
        thread.join(timeout=15)


@pytest.fixture
def serve(_server_reaper: list[threading.Thread]) -> Iterator[Callable[[Any], str]]:
    """``serve(asgi_app) -> base URL``: run the app on 127.0.0.1 until the test ends."""
    servers: list[ServerThread] = []

    def start(app: Any) -> str:
        server = ServerThread(app).start()
        servers.append(server)
        return server.url

    yield start
    for server in servers:
        thread = threading.Thread(target=server.stop, daemon=True)
        thread.start()
        _server_reaper.append(thread)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def wechat(serve: Callable[[Any], str], clock: FakeClock) -> Site:
    """The WeChat emulator on a port, on the fake ``clock``; change knobs on ``wechat.emu``."""
    emu = WeChatEmulator(clock=clock)
    log = Recorder(emu.app)
    return Site(emu=emu, url=serve(log), log=log)


@pytest.fixture
def gio(serve: Callable[[Any], str], wechat: Site) -> Site:
    """The GrowingIO emulator on a port, spending ``wechat``'s A+C quota; real clock (10/s is real)."""
    emu = GrowingIOEmulator(wechat=wechat.emu)
    log = Recorder(emu.app)
    return Site(emu=emu, url=serve(log), log=log)


def new_http(timeout: float = 10.0) -> httpx.AsyncClient:
    return httpx.AsyncClient(timeout=timeout, trust_env=False)


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with new_http() as client:
        yield client


@pytest.fixture
def wechat_client(http: httpx.AsyncClient, wechat: Site) -> WeChatClient:
    return WeChatClient(http, wechat.url, SANDBOX_APPID, SecretStr(SANDBOX_SECRET))


@pytest.fixture
def gio_client(http: httpx.AsyncClient, gio: Site) -> GrowingIOClient:
    return GrowingIOClient(http, gio.url, GIO_PROJECT_UID, GIO_CLIENT_ID, SecretStr(GIO_TOKEN))


def scan_image(image: bytes) -> qr.ScannedCode:
    """Decode the one QR code in ``image`` with zxing-cpp and parse the sandbox URL it holds."""
    found = zxingcpp.read_barcodes(Image.open(io.BytesIO(image)))
    assert len(found) == 1, f"expected one code, found {len(found)}"
    return qr.parse_code_url(found[0].text)


@pytest.fixture
def scan() -> Callable[[bytes], qr.ScannedCode]:
    return scan_image


# -- chat emulators shared by the summary and scheduler tests (a test file may define its own) ------------


@pytest.fixture
def slack() -> Iterator[SlackEmulator]:
    """Slack's Web API emulator on a loopback port."""
    with SlackEmulator() as emu:
        yield emu


@pytest.fixture
def wecom() -> Iterator[tuple[WeComEmulator, str]]:
    """The WeCom emulator on a loopback port, and its group robot's webhook URL."""
    emu = WeComEmulator()
    with ServerThread(emu.app) as server:
        yield emu, server.url + "/cgi-bin/webhook/send?key=robot-key"


# -- one history per installation: never the developer's own ---------------------------------------------


@pytest.fixture(autouse=True, scope="session")
def _scratch_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """A test that builds ``Settings()`` without a data dir gets a scratch one, not the user's data folder."""
    import os

    saved = os.environ.get("MINPCODE_DATA_DIR")
    os.environ.setdefault("MINPCODE_DATA_DIR", str(tmp_path_factory.mktemp("minpcode-data")))
    yield
    if saved is None:
        os.environ.pop("MINPCODE_DATA_DIR", None)


@pytest.fixture(scope="module")
def upstreams() -> Iterator[Upstreams]:
    """The WeChat and GrowingIO emulators on loopback ports, one pair per test module."""
    with Upstreams() as running:
        yield running


@pytest.fixture
def root_logger_restored() -> Iterator[None]:
    """For tests that install the process's log handlers: the root logger as it was, afterwards."""
    import logging

    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


# -- the backends ---------------------------------------------------------------------------------------
@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest) -> Iterator[str | None]:
    """Once per backend: None (SQLite in the test's folder), then a fresh PostgreSQL database's URL
    (tests/databases.py: skipped without a server, failed under CI)."""
    if request.param == "sqlite":
        yield None
        return
    with fresh_postgres() as url:
        yield url
