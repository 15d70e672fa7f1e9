"""Local emulators of WeChat's server API and GrowingIO's Open API, plus their fixed identities.

    from bot.sandbox import SANDBOX_APPID, GIO_PRODUCT_ID   # the identities (bot/sandbox/identities.py)
    from bot.sandbox.wechat import WeChatEmulator           # the emulators, each in its own module
    from bot.sandbox.growingio import GrowingIOEmulator

Importing the package loads only the identities, not Starlette.
"""

from __future__ import annotations

from bot.sandbox.identities import (
    GIO_ALIP_PRODUCT_ID,
    GIO_CLIENT_ID,
    GIO_PRODUCT_ID,
    GIO_PROJECT_UID,
    GIO_TOKEN,
    SANDBOX_APP_NAME,
    SANDBOX_APPID,
    SANDBOX_HOME_PAGE,
    SANDBOX_SECRET,
)

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
]
