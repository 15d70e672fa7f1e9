"""The signature on every delivery, in the way Slack and Stripe sign theirs: an HMAC-SHA256 of the timestamp
and the raw body under the endpoint's secret, the timestamp sent beside it so a receiver can refuse old replays.

    X-Minpcode-Timestamp: 1765152000
    X-Minpcode-Signature: v1=<hex HMAC-SHA256 of "1765152000.<raw body>">

Models: https://api.slack.com/authentication/verifying-requests-from-slack (``v0:<ts>:<body>``, a five-minute
window) and https://docs.stripe.com/webhooks#verify-manually (``<ts>.<body>``, ``v1=``). The scheme's version
prefix lets a later one be sent beside it.
"""

from __future__ import annotations

import hashlib
import hmac

TIMESTAMP_HEADER = "X-Minpcode-Timestamp"
SIGNATURE_HEADER = "X-Minpcode-Signature"
VERSION = "v1"


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """``v1=<hex>`` for ``body`` sent at ``timestamp`` (unix seconds)."""
    mac = hmac.new(secret.encode("utf-8"), f"{timestamp}.".encode("ascii") + body, hashlib.sha256)
    return f"{VERSION}={mac.hexdigest()}"


def headers(secret: str, timestamp: int, body: bytes) -> dict[str, str]:
    return {TIMESTAMP_HEADER: str(timestamp), SIGNATURE_HEADER: signature(secret, timestamp, body)}


__all__ = ["SIGNATURE_HEADER", "TIMESTAMP_HEADER", "VERSION", "headers", "signature"]
