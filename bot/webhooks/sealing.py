"""Webhook secrets sealed at rest: what ``webhook_endpoints.secret`` holds is never the secret itself.

    sealer = Sealer(lambda: storage.secrets.install_key(configured))
    stored = sealer.seal(endpoint_id, secret)    # "v1:" + base64(nonce + AES-256-GCM ciphertext and tag)
    secret = sealer.open(endpoint_id, stored)    # the sender and ``webhooks test`` only

The sender must recover the secret to sign with it, so it is encrypted, not hashed. The key is derived with
HKDF-SHA256 from the install key (storage/secrets.py: ``MINPCODE_SCAN_HASH_KEY`` when set, else the key kept in
the ``secrets`` table) under a label of its own, so it is never the key visitors are hashed under. The endpoint's
id is the associated data: a sealed secret copied onto another endpoint's row does not open.

A database moved to an install without its key (the ``secrets`` table left behind, or ``MINPCODE_SCAN_HASH_KEY``
not set there as it was here) cannot open them: :meth:`Sealer.open` says so, naming both, rather than sign with
something else. HKDF and AES-GCM as the ``cryptography`` package documents them:
https://cryptography.io/en/latest/hazmat/primitives/key-derivation-functions/#hkdf and
https://cryptography.io/en/latest/hazmat/primitives/aead/#cryptography.hazmat.primitives.ciphers.aead.AESGCM
(a 96-bit nonce, random per sealing).
"""

from __future__ import annotations

import base64
import binascii
import os
from collections.abc import Callable

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from bot.errors import NotConfigured

PREFIX = "v1:"
LABEL = b"minpcode webhook secrets v1"
NONCE = 12  # bytes: the 96-bit nonce AES-GCM is made for
TAG = 16


def sealed(stored: str) -> bool:
    """Whether a stored value is sealed (else it is a clear secret written before sealing existed).

    A clear secret that happens to read as "v1:" and base64 of at least a nonce and a tag would be taken for a
    sealed one; the secrets minpcode makes (``token_urlsafe``) never do, and one given by hand is sealed at add."""
    if not stored.startswith(PREFIX):
        return False
    try:
        raw = base64.b64decode(stored[len(PREFIX):], validate=True)
    except (binascii.Error, ValueError):
        return False
    return len(raw) > NONCE + TAG


class Sealer:
    def __init__(self, install_key: Callable[[], bytes]) -> None:
        self._install_key = install_key  # read at first use: opening a service writes no key it never needs
        self._aead: AESGCM | None = None

    def load(self) -> None:
        """Derive the key now: reading the install key may make and store it, a transaction of its own, which must
        not happen inside another one (Webhooks.seal_clear seals under the write lock)."""
        self._cipher()

    def _cipher(self) -> AESGCM:
        if self._aead is None:
            key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=LABEL).derive(self._install_key())
            self._aead = AESGCM(key)
        return self._aead

    def seal(self, endpoint_id: str, secret: str) -> str:
        nonce = os.urandom(NONCE)
        sealed_bytes = self._cipher().encrypt(nonce, secret.encode("utf-8"), endpoint_id.encode("utf-8"))
        return PREFIX + base64.b64encode(nonce + sealed_bytes).decode("ascii")

    def open(self, endpoint_id: str, stored: str) -> str:
        """The endpoint's secret; :class:`NotConfigured` when this install's key cannot open it."""
        if not sealed(stored):
            return stored  # clear, from before sealing: sealed at the next start (Webhooks.seal_clear)
        raw = base64.b64decode(stored[len(PREFIX):])
        try:
            return self._cipher().decrypt(raw[:NONCE], raw[NONCE:], endpoint_id.encode("utf-8")).decode("utf-8")
        except InvalidTag:
            raise NotConfigured(
                f"webhook {endpoint_id} 的签名密钥是用另一个安装密钥加密的，这里打不开：数据库是从别处搬来的吗？"
                "请在这里设置与原处相同的 MINPCODE_SCAN_HASH_KEY，或把原数据库的 secrets 表一并搬来；"
                "否则用 minpcode webhooks remove 删除后重新添加。",
                f"The signing secret of webhook {endpoint_id} was sealed under another install key and cannot be "
                "opened here: was the database moved from elsewhere? Set MINPCODE_SCAN_HASH_KEY as it was set there, "
                "or bring the old database's secrets table along; else remove the webhook and add it again.",
                missing=["MINPCODE_SCAN_HASH_KEY"], field="secret") from None


__all__ = ["LABEL", "PREFIX", "Sealer", "sealed"]
