"""Address helpers shared by the core and the front-ends (a leaf: imports nothing of ours)."""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit


def is_loopback(url_or_host: str) -> bool:
    """True for localhost and loopback addresses (given as a URL or a bare host)."""
    host = urlsplit(url_or_host).hostname if "//" in url_or_host else url_or_host
    host = (host or "").strip("[]").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


__all__ = ["is_loopback"]
