"""Which URLs a webhook may call: http(s) to a public address, unless the operator allows private ones.

A webhook URL is typed by an admin, but the process calls it from inside the operator's network: refused are
loopback, private (RFC 1918, unique-local), link-local (the cloud metadata address 169.254.169.254 among them),
multicast, reserved and unspecified addresses, unless ``MINPCODE_WEBHOOKS_ALLOW_PRIVATE=1``. The host is
resolved and every address it resolves to is checked, at ``add`` and again before each delivery (its DNS may
have changed since). What remains: a name that resolves to a public address at the check and a private one a
moment later at the connection (DNS rebinding within one delivery).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from urllib.parse import urlsplit

from bot.errors import FieldError

MAX_URL = 2048


def _refused(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return (address.is_private or address.is_loopback or address.is_link_local or address.is_multicast
            or address.is_reserved or address.is_unspecified or not address.is_global)


def parse(url: str) -> tuple[str, int]:
    """The host and port of a webhook URL; a URL that is not http(s) with a host is refused."""
    if len(url) > MAX_URL:
        raise FieldError("url", f"网址最长 {MAX_URL} 个字符。", f"A URL may have at most {MAX_URL} characters.")
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise FieldError("url", "网址应以 https:// 或 http:// 开头并带主机名，例如 https://hooks.example.com/minpcode。",
                         "The URL should start with https:// or http:// and name a host, e.g. "
                         "https://hooks.example.com/minpcode.")
    if parts.username or parts.password:
        raise FieldError("url", "网址里不能带用户名或密码（签名已能证明来源）。",
                         "The URL may not carry a user name or password (the signature proves where it came from).")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise FieldError("url", "网址的端口不对。", "The URL's port is not valid.") from None
    return parts.hostname, port


async def check(url: str, *, allow_private: bool) -> None:
    """Refuse ``url`` (FieldError, bilingual) when it is malformed or, unless ``allow_private``, when its host
    resolves to an address inside a private network, or does not resolve at all."""
    host, port = parse(url)
    if allow_private:
        return
    try:
        found = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError:
        raise FieldError("url", f"无法解析主机名 {host}。", f"The host name {host} does not resolve.") from None
    for *_, sockaddr in found:
        address = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        if _refused(address):
            raise FieldError(
                "url", f"{host} 指向内网、本机或保留地址（{address}），不能作为 webhook 地址；接收端确在内网时，"
                       "请设置 MINPCODE_WEBHOOKS_ALLOW_PRIVATE=1。",
                f"{host} points at a private, loopback or reserved address ({address}) and may not receive "
                "webhooks; set MINPCODE_WEBHOOKS_ALLOW_PRIVATE=1 when the receiver is inside your network.")


__all__ = ["MAX_URL", "check", "parse"]
