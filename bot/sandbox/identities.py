"""The one mini program and the one GrowingIO project every emulator knows by default.

Tests, benches and ``sandbox serve`` share them without passing config around. A leaf of its own, so
the emulators import it without importing their package (which would make a circle).
"""

from __future__ import annotations

SANDBOX_APPID = "wxsandbox0000001"
SANDBOX_SECRET = "sandbox-secret"
SANDBOX_APP_NAME = "minpcode沙盒"
SANDBOX_HOME_PAGE = "pages/index/index"

GIO_PROJECT_UID = "sandboxp"
GIO_CLIENT_ID = "sandbox-client-id"
GIO_TOKEN = "sandbox-token"
GIO_PRODUCT_ID = "SbxMinp1"
GIO_ALIP_PRODUCT_ID = "SbxAlip1"
