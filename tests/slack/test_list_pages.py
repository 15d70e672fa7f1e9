"""``list`` in Slack over the real server and the Slack emulator: how many codes, and the next page (issue 23)."""

from __future__ import annotations

import re
import time
from typing import Any

from tests.slack.test_e2e import make_harness  # noqa: F401  (the fixture)


def test_list_in_slack_counts_the_codes_and_pages_through_them(make_harness: Any) -> None:  # noqa: F811
    h = make_harness()
    for n in range(1, 12):
        assert h.command(f"new pages/shop/index type=B scene=s={n:03d}").status_code == 200
    deadline = time.monotonic() + 30
    while len(h.emu.uploads) < 11:  # every code is posted in the channel before it is listed
        assert time.monotonic() < deadline, len(h.emu.uploads)
        time.sleep(0.05)
    assert h.command("list").status_code == 200
    first = h.ephemeral(lambda m: "list page=2" in (m.get("text") or ""))
    assert "11 codes; page 1 of 2" in first["text"]  # the asker's language (this Slack user's is English)
    assert h.command("列表 页=2").status_code == 200
    second = h.ephemeral(lambda m: "page 2 of 2" in (m.get("text") or ""))
    shown = [set(re.findall(r"scene=(s=\d{3})", page["text"])) for page in (first, second)]
    assert len(shown[0]) == 10 and len(shown[1]) == 1 and not shown[0] & shown[1]  # every code once
    assert "(codes 11–11)" in second["text"] and "Next page" not in second["text"]
