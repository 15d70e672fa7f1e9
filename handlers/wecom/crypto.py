"""WeCom callback crypto (WXBizMsgCrypt): signatures, AES-256-CBC envelopes, safe XML.

Algorithm (https://developer.work.weixin.qq.com/document/path/90968):

* ``msg_signature = sha1("".join(sorted([token, timestamp, nonce, encrypt]))).hexdigest()``
* ``AESKey = b64decode(EncodingAESKey + "=")`` (32 bytes), ``IV = AESKey[:16]``
* plaintext = ``random16 ‖ uint32_be(len(msg)) ‖ msg ‖ receive_id``, PKCS#7 padded to **32-byte** blocks,
  AES-256-CBC without library padding, then standard base64.

Errors form a small tree under :class:`WeComCryptoError` (a :class:`~bot.errors.MinpcodeError`, so there is
one error root); each carries the official ``code`` (``-400xx``) as its ``error_code``. No error text ever
contains the token, the key or any plaintext.

Only the XML envelope of self-built apps is handled: the JSON variant (WXBizJsonMsgCrypt, smart bots)
never reaches this app, so a JSON body is refused as :class:`InvalidXml` like any other non-XML body.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import secrets
import string
import struct
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass
from typing import NoReturn
from xml.parsers import expat

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from bot.errors import MinpcodeError

__all__ = [
    "BLOCK_SIZE",
    "DecryptError",
    "EncryptedEnvelope",
    "InvalidAESKey",
    "InvalidPadding",
    "InvalidSignature",
    "InvalidXml",
    "ReceiveIdMismatch",
    "StaleTimestamp",
    "WeComCrypto",
    "WeComCryptoError",
    "cdata",
    "parse_xml",
]

BLOCK_SIZE = 32
"""PKCS#7 block size of WXBizMsgCrypt (not AES's 16)."""

_KEY_RE = re.compile(r"[A-Za-z0-9]{43}")
_RANDOM_ALPHABET = string.ascii_letters + string.digits


# --------------------------------------------------------------------------------------------- errors


class WeComCryptoError(MinpcodeError):
    """Root of every WeCom crypto failure. ``code`` is the official WXBizMsgCrypt error code.

    The callback answers these with a status and a log line; nobody reads the sentence in a chat, but
    it is bilingual like every other error. ``str(exc)`` stays the short English diagnosis.
    """

    code = -40000
    default_message = "WeCom crypto error"

    def __init__(self, message: str | None = None) -> None:
        diagnosis = message or self.default_message
        super().__init__("企业微信回调未通过校验。", f"The WeCom callback failed its check: {diagnosis}.")
        self.args = (diagnosis,)

    @property
    def error_code(self) -> str:
        return str(self.code)


class InvalidSignature(WeComCryptoError):
    """``msg_signature`` does not match SHA1(sorted(token, timestamp, nonce, encrypt))."""

    code = -40001
    default_message = "msg_signature does not match"


class StaleTimestamp(InvalidSignature):
    """The request timestamp is malformed or outside the allowed clock skew (replay protection)."""

    default_message = "timestamp outside the allowed window"


class InvalidXml(WeComCryptoError):
    """The envelope or the decrypted message is not acceptable XML (or carries a DOCTYPE/ENTITY)."""

    code = -40002
    default_message = "malformed or unsafe XML"


class InvalidAESKey(WeComCryptoError):
    """EncodingAESKey is not 43 characters of [A-Za-z0-9] decoding to 32 bytes."""

    code = -40004
    default_message = "EncodingAESKey must be 43 characters [A-Za-z0-9]"


class ReceiveIdMismatch(WeComCryptoError):
    """The receive id trailer (CorpID / suite id / "") differs from the configured one."""

    code = -40005
    default_message = "receive id does not match"


class DecryptError(WeComCryptoError):
    """The ciphertext is not valid base64, not whole AES blocks, or not UTF-8 after decryption."""

    code = -40007
    default_message = "ciphertext cannot be decrypted"


class InvalidPadding(DecryptError):
    """PKCS#7 padding outside 1..32 (or inconsistent), or a length field that overruns the buffer."""

    code = -40008
    default_message = "bad padding or length in decrypted buffer"


# --------------------------------------------------------------------------------------------- XML helpers


def _forbid(*_args: object) -> NoReturn:
    raise InvalidXml("DOCTYPE and entity declarations are not allowed")


def parse_xml(data: str | bytes) -> ET.Element:
    """Parse XML safely into an ElementTree element: any DOCTYPE, entity declaration or external
    reference is refused (defends against billion-laughs and XXE).

    Raises :class:`InvalidXml` on any problem; the message never echoes the input.
    """
    raw = data.encode("utf-8") if isinstance(data, str) else bytes(data)
    builder = ET.TreeBuilder()
    parser = expat.ParserCreate()
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    parser.StartDoctypeDeclHandler = _forbid
    parser.EntityDeclHandler = _forbid
    parser.UnparsedEntityDeclHandler = _forbid
    parser.ExternalEntityRefHandler = _forbid
    parser.StartElementHandler = builder.start
    parser.EndElementHandler = builder.end
    parser.CharacterDataHandler = builder.data
    parser.buffer_text = True
    try:
        parser.Parse(raw, True)
        return builder.close()
    except InvalidXml:
        raise
    except (expat.ExpatError, ValueError, TypeError, AssertionError) as exc:
        raise InvalidXml(f"malformed XML ({type(exc).__name__})") from None


def cdata(text: str) -> str:
    """Wrap ``text`` in CDATA; a literal ``]]>`` is split across two sections."""
    return "<![CDATA[" + text.replace("]]>", "]]]]><![CDATA[>") + "]]>"


# --------------------------------------------------------------------------------------------- envelope


@dataclass(frozen=True, slots=True)
class EncryptedEnvelope:
    """An encrypted passive reply: the four fields of WeCom's reply envelope
    (https://developer.work.weixin.qq.com/document/path/90968)."""

    encrypt: str
    msg_signature: str
    timestamp: str
    nonce: str

    @property
    def xml(self) -> str:
        """The reply body: ``<xml><Encrypt/><MsgSignature/><TimeStamp/><Nonce/></xml>``."""
        return (
            "<xml>\n"
            f"<Encrypt>{cdata(self.encrypt)}</Encrypt>\n"
            f"<MsgSignature>{cdata(self.msg_signature)}</MsgSignature>\n"
            f"<TimeStamp>{self.timestamp}</TimeStamp>\n"
            f"<Nonce>{cdata(self.nonce)}</Nonce>\n"
            "</xml>"
        )

    def __str__(self) -> str:
        return self.xml


# --------------------------------------------------------------------------------------------- crypto


class WeComCrypto:
    """WXBizMsgCrypt for one callback configuration.

    ``receive_id`` is the CorpID for a self-built app, the suite id for third-party suites and ``""`` for
    a smart bot. ``max_skew`` (seconds), when set, makes every signed call also reject timestamps further
    than that from ``clock()`` (:class:`StaleTimestamp`); it is off by default because the official test
    vectors are years old. Replay of identical ``(timestamp, nonce)`` pairs is the caller's dedupe job.
    """

    __slots__ = ("_aes_key", "_clock", "_iv", "_token", "max_skew", "receive_id")

    def __init__(
        self,
        token: str,
        encoding_aes_key: str,
        receive_id: str,
        *,
        max_skew: float | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not isinstance(token, str) or not token:
            raise ValueError("token must be a non-empty string")
        if not isinstance(encoding_aes_key, str) or not _KEY_RE.fullmatch(encoding_aes_key):
            raise InvalidAESKey()
        try:
            key = base64.b64decode(encoding_aes_key + "=", validate=True)
        except (binascii.Error, ValueError):  # pragma: no cover - excluded by the regex
            raise InvalidAESKey() from None
        if len(key) != 32:  # pragma: no cover - 43 base64 chars always give 32 bytes
            raise InvalidAESKey()
        self._token = token
        self._aes_key = key
        self._iv = key[:16]
        self.receive_id = receive_id
        self.max_skew = max_skew
        self._clock = clock

    def __repr__(self) -> str:  # never show token or key
        return f"WeComCrypto(receive_id={self.receive_id!r})"

    # ---- signatures

    def signature(self, timestamp: str | int, nonce: str | int, encrypted: str) -> str:
        """Lower-case hex SHA1 over the byte-wise sorted ``[token, timestamp, nonce, encrypted]``."""
        parts = sorted((self._token, str(timestamp), str(nonce), encrypted), key=lambda s: s.encode("utf-8"))
        return hashlib.sha1("".join(parts).encode("utf-8")).hexdigest()

    def check_signature(self, msg_signature: str, timestamp: str | int, nonce: str | int, encrypted: str) -> None:
        """Raise :class:`InvalidSignature` (or :class:`StaleTimestamp`) unless the signature is right.

        The comparison is constant-time.
        """
        expected = self.signature(timestamp, nonce, encrypted).encode("ascii")
        given = (msg_signature or "").encode("utf-8", "replace")
        if not hmac.compare_digest(expected, given):
            raise InvalidSignature()
        if self.max_skew is not None:
            ts = str(timestamp)
            if not ts.isascii() or not ts.isdigit():
                raise StaleTimestamp("timestamp is not a decimal number")
            # past 12 digits it is no time of ours (and a 400-digit one would overflow a float)
            if len(ts) > 12 or abs(self._clock() - int(ts)) > self.max_skew:
                raise StaleTimestamp()

    # ---- raw AES layer

    def encrypt_raw(self, plaintext: str | bytes, random16: str | bytes | None = None) -> str:
        """Encrypt one message to the base64 ``Encrypt`` string (no signature)."""
        msg = plaintext.encode("utf-8") if isinstance(plaintext, str) else bytes(plaintext)
        if random16 is None:
            prefix = "".join(secrets.choice(_RANDOM_ALPHABET) for _ in range(16)).encode("ascii")
        else:
            prefix = random16.encode("utf-8") if isinstance(random16, str) else bytes(random16)
            if len(prefix) != 16:
                raise ValueError("random16 must be exactly 16 bytes")
        raw = prefix + struct.pack(">I", len(msg)) + msg + self.receive_id.encode("utf-8")
        pad = BLOCK_SIZE - len(raw) % BLOCK_SIZE  # 1..32; a full block when already aligned
        raw += bytes([pad]) * pad
        enc = Cipher(algorithms.AES(self._aes_key), modes.CBC(self._iv)).encryptor()
        return base64.b64encode(enc.update(raw) + enc.finalize()).decode("ascii")

    def decrypt_raw(self, encrypted: str) -> str:
        """Decrypt a base64 ``Encrypt`` string (no signature check) and return the message text.

        Strict: rejects bad base64, partial blocks, padding outside 1..32 or inconsistent, length
        overruns, a receive id other than ours, and non-UTF-8 messages.
        """
        try:
            data = base64.b64decode(encrypted, validate=True)
        except (binascii.Error, ValueError, TypeError):
            raise DecryptError("ciphertext is not valid base64") from None
        if not data or len(data) % 16:
            raise DecryptError("ciphertext is not a whole number of AES blocks")
        dec = Cipher(algorithms.AES(self._aes_key), modes.CBC(self._iv)).decryptor()
        padded = dec.update(data) + dec.finalize()
        pad = padded[-1]
        if not 1 <= pad <= BLOCK_SIZE or pad > len(padded) or padded[-pad:] != bytes([pad]) * pad:
            raise InvalidPadding("bad PKCS#7 padding")
        body = padded[:-pad]
        if len(body) < 20:
            raise InvalidPadding("decrypted buffer too short")
        (length,) = struct.unpack(">I", body[16:20])
        if length > len(body) - 20:
            raise InvalidPadding("length field overruns the buffer")
        msg = body[20 : 20 + length]
        rid = body[20 + length :]
        if not hmac.compare_digest(rid, self.receive_id.encode("utf-8")):
            raise ReceiveIdMismatch()
        try:
            return msg.decode("utf-8")
        except UnicodeDecodeError:
            raise DecryptError("decrypted message is not UTF-8") from None

    # ---- protocol operations

    def verify_url(self, msg_signature: str, timestamp: str | int, nonce: str | int, echostr: str) -> str:
        """URL verification (GET): check the signature over the **URL-decoded** ``echostr``, decrypt it
        and return the bare echo plaintext to send back as the response body."""
        self.check_signature(msg_signature, timestamp, nonce, echostr)
        return self.decrypt_raw(echostr)

    def decrypt(self, msg_signature: str, timestamp: str | int, nonce: str | int, encrypted: str) -> str:
        """Check the signature over ``encrypted`` (the ``<Encrypt>`` text) and return the plaintext."""
        self.check_signature(msg_signature, timestamp, nonce, encrypted)
        return self.decrypt_raw(encrypted)

    def decrypt_body(self, msg_signature: str, timestamp: str | int, nonce: str | int, body: str | bytes) -> str:
        """Decrypt a callback POST body, the XML envelope ``<xml><Encrypt/>…</xml>``; returns the plaintext XML."""
        node = parse_xml(body).find("Encrypt")
        encrypted = node.text if node is not None else None
        if not isinstance(encrypted, str) or not encrypted:
            raise InvalidXml("body has no Encrypt field")
        return self.decrypt(msg_signature, timestamp, nonce, encrypted.strip())

    def encrypt(
        self,
        plaintext: str | bytes,
        nonce: str | int | None = None,
        timestamp: str | int | None = None,
        random16: str | bytes | None = None,
    ) -> EncryptedEnvelope:
        """Encrypt a passive reply and sign it. ``.xml`` of the result is the HTTP response body.

        ``nonce``/``timestamp`` default to fresh values (you may reuse the request's); ``random16`` is
        only for deterministic tests.
        """
        ts = str(int(self._clock())) if timestamp is None else str(timestamp)
        nn = str(secrets.randbelow(9_000_000_000) + 1_000_000_000) if nonce is None else str(nonce)
        encrypted = self.encrypt_raw(plaintext, random16)
        return EncryptedEnvelope(encrypted, self.signature(ts, nn, encrypted), ts, nn)
