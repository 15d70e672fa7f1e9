"""The WeChat emulator on a real loopback server, for every test of this package: ``sandbox(**knobs)`` makes
one (a fake clock, a client on its address); ``sb`` is one with the defaults."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack
from typing import Any

import httpx
import pytest

from bot.sandbox.server import ServerThread
from bot.sandbox.wechat import WeChatEmulator
from tests.conftest import FakeClock
from tests.sandbox.test_wechat import Sandbox


@pytest.fixture
def sandbox() -> Iterator[Callable[..., Sandbox]]:
    with ExitStack() as stack:

        def make(**knobs: Any) -> Sandbox:
            clock = FakeClock()
            emu = WeChatEmulator(clock=clock, **knobs)
            server = stack.enter_context(ServerThread(emu.app))
            client = stack.enter_context(httpx.Client(base_url=server.url, timeout=10))
            return Sandbox(emu, client, clock)

        yield make


@pytest.fixture
def sb(sandbox: Callable[..., Sandbox]) -> Sandbox:
    return sandbox()
