"""MINPCODE_TRUSTED_PROXIES over a real ``minpcode serve``: the proxies whose X-Forwarded-For names the client.

From a trusted proxy, the address it names is the one the resolver's per-address limit counts and the access
lines show; from any other address the header is ignored, so a client cannot pick its own bucket.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.served import Served

UNKNOWN = "/api/scenes/k=0000000000"


def forwarded(served: Served, address: str) -> int:
    return served.get(UNKNOWN, headers={"X-Forwarded-For": f"{address}, 127.0.0.1"}).status_code


@pytest.mark.slow
def test_a_trusted_proxys_forwarded_address_is_counted_and_logged_and_nobody_elses(tmp_path: Path) -> None:
    # MINPCODE_RESOLVER_RATE=60: bursts of 10 lookups of keys that do not exist per address
    with Served(tmp_path / "default", {"MINPCODE_RESOLVER_RATE": "60"}) as served:  # trusts 127.0.0.1 (and ::1)
        phones = [forwarded(served, f"203.0.113.{n}") for n in range(1, 31)]
        assert phones == [404] * 30  # thirty phones behind the proxy: a bucket each
        one_phone = [forwarded(served, "198.51.100.9") for _ in range(30)]
        assert 429 in one_phone  # one phone guessing keys is limited
        log = served.log()
    assert '203.0.113.17 "GET /api/scenes/k=0000000000" 404' in log
    assert '198.51.100.9 "GET /api/scenes/k=0000000000" 429' in log

    with Served(tmp_path / "other", {"MINPCODE_RESOLVER_RATE": "60",
                                     "MINPCODE_TRUSTED_PROXIES": "10.0.0.0/8,192.168.0.0/16"}) as served:
        spoofed = [forwarded(served, f"203.0.113.{n}") for n in range(1, 31)]
        log = served.log()
    assert 429 in spoofed  # 127.0.0.1 is no trusted proxy here: its header names nobody, one bucket for all
    assert '127.0.0.1 "GET /api/scenes/k=0000000000" 429' in log and "203.0.113." not in log
