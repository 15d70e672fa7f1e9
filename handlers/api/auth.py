"""API keys: ``MINPCODE_API_KEYS`` (``name:key,name2:key2``), held as digests and compared in constant time.

One name may have several keys (for rotation). A key is sent as ``Authorization: Bearer <key>``
or ``X-API-Key: <key>``; it is never logged or echoed, and the record's ``requested_by`` is
``api:<the key's name>``.
"""

from __future__ import annotations

import hashlib
import hmac
import logging

from pydantic import SecretStr
from starlette.requests import Request

from handlers.api.errors import KeyRefused, MissingKey

log = logging.getLogger("minpcode.api")


class ApiKeys:
    """The configured keys, held as SHA-256 digests and compared in constant time."""

    def __init__(self, secret: SecretStr | None) -> None:
        self._keys: list[tuple[str, bytes]] = []
        raw = secret.get_secret_value() if secret is not None else ""
        for position, entry in enumerate(raw.split(","), start=1):
            entry = entry.strip()
            if not entry:
                continue
            name, sep, key = (part.strip() for part in entry.partition(":"))
            if not sep or not name or not key or any(ch.isspace() for ch in name):
                # Say where, never what: the entry may be a bare key.
                log.warning("MINPCODE_API_KEYS entry %d is not name:key; ignored", position)
                continue
            self._keys.append((name, _digest(key)))

    def __bool__(self) -> bool:
        return bool(self._keys)

    @property
    def names(self) -> list[str]:
        return sorted({name for name, _ in self._keys})

    def identify(self, presented: str) -> str | None:
        """The name of the key ``presented`` is, or None. Every configured key is compared."""
        digest = _digest(presented)
        found = None
        for name, expected in self._keys:
            if hmac.compare_digest(digest, expected) and found is None:
                found = name
        return found

    def authenticate(self, request: Request) -> str:
        """The name of the caller's key; MissingKey (1001) without one, KeyRefused (1002) for a wrong one."""
        key = presented_key(request)
        if key is None:
            raise MissingKey("缺少 API 密钥：请用 Authorization: Bearer <密钥> 或 X-API-Key 头发送。",
                             "No API key: send it as Authorization: Bearer <key> or X-API-Key.")
        name = self.identify(key)
        if name is None:
            client = request.client.host if request.client else "?"
            log.info("api: refused a request with an unknown key from %s", client)
            if not self:
                raise KeyRefused("HTTP API 未开放（没有设置 MINPCODE_API_KEYS）。",
                                 "The HTTP API is closed (MINPCODE_API_KEYS is not set).")
            raise KeyRefused("这个 API 密钥无效或未获授权。", "This API key is not valid or not allowed.")
        return name


def _digest(key: str) -> bytes:
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).digest()


def presented_key(request: Request) -> str | None:
    """The key from ``Authorization: Bearer <key>`` or ``X-API-Key: <key>`` (Bearer first)."""
    scheme, _, value = request.headers.get("authorization", "").strip().partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    key = request.headers.get("x-api-key", "").strip()
    return key or None


__all__ = ["ApiKeys", "presented_key"]
