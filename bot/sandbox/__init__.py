"""Local emulators of WeChat's server API and GrowingIO's Open API, plus their fixed identities.

The constants below are the one mini program and the one GIO project every emulator knows by
default, so tests, benches and ``sandbox serve`` can share them without passing config around.
``WeChatEmulator`` and ``GrowingIOEmulator`` are importable from here too; they are loaded lazily
so that ``bot.sandbox.qr`` stays cheap to import.
"""

from __future__ import annotations

from typing import Any

SANDBOX_APPID = "wxsandbox0000001"
SANDBOX_SECRET = "sandbox-secret"
SANDBOX_APP_NAME = "minpcode沙盒"
SANDBOX_HOME_PAGE = "pages/index/index"

GIO_PROJECT_UID = "sandboxp"
GIO_CLIENT_ID = "sandbox-client-id"
GIO_TOKEN = "sandbox-token"
GIO_PRODUCT_ID = "SbxMinp1"
GIO_ALIP_PRODUCT_ID = "SbxAlip1"

__all__ = [
    "GIO_ALIP_PRODUCT_ID",
    "GIO_CLIENT_ID",
    "GIO_PRODUCT_ID",
    "GIO_PROJECT_UID",
    "GIO_TOKEN",
    "SANDBOX_APPID",
    "SANDBOX_APP_NAME",
    "SANDBOX_HOME_PAGE",
    "SANDBOX_SECRET",
    "GrowingIOEmulator",
    "WeChatEmulator",
]


def __getattr__(name: str) -> Any:
    # Lazy so that importing the constants does not pull in Starlette.
    if name == "WeChatEmulator":
        from bot.sandbox.wechat import WeChatEmulator

        return WeChatEmulator
    if name == "GrowingIOEmulator":
        from bot.sandbox.growingio import GrowingIOEmulator

        return GrowingIOEmulator
    raise AttributeError(f"module 'bot.sandbox' has no attribute {name!r}")
