"""The WeChat and GrowingIO emulators on real loopback ports, for tests that run the whole service.

``upstreams`` (a module-scoped fixture in conftest.py) starts one pair per test module.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import SecretStr

from bot import sandbox
from bot.config import Settings
from bot.models import Requester
from bot.sandbox.growingio import GrowingIOEmulator
from bot.sandbox.server import ServerThread
from bot.sandbox.wechat import WeChatEmulator

ALICE = Requester(chat="slack", user_id="U_ALICE", user_name="alice")
BOB = Requester(chat="wecom", user_id="U_BOB", user_name="bob")
ADMIN = Requester(chat="slack", user_id="U_ADMIN", user_name="admin")
PEOPLE = (ALICE, BOB, ADMIN)


class Upstreams:
    def __init__(self) -> None:
        self.wechat = WeChatEmulator()
        self.gio = GrowingIOEmulator(wechat=self.wechat)
        self._servers = [ServerThread(self.wechat.app), ServerThread(self.gio.app)]

    def __enter__(self) -> Upstreams:
        for server in self._servers:
            server.start()
        return self

    def __exit__(self, *exc: object) -> None:
        for server in self._servers:
            server.stop()

    def settings(self, data_dir: Path, **extra: object) -> Settings:
        values: dict[str, object] = dict(
            minpcode_data_dir=data_dir, minpcode_sandbox=False, minpcode_admins=[ADMIN.key],
            wechat_appid=sandbox.SANDBOX_APPID, wechat_secret=SecretStr(sandbox.SANDBOX_SECRET),
            wechat_api_url=self._servers[0].url,
            gio_project_uid=sandbox.GIO_PROJECT_UID, gio_client_id=sandbox.GIO_CLIENT_ID,
            gio_token=SecretStr(sandbox.GIO_TOKEN), gio_product_id=sandbox.GIO_PRODUCT_ID,
            gio_api_url=self._servers[1].url,
        )
        values.update(extra)
        return Settings(_env_file=None, **values)  # type: ignore[arg-type]
