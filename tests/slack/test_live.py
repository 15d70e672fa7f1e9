"""Live codes in Slack, end to end over the Slack emulator: ``/minpcode new … live=yes``, App Home scans and the
repoint / pause / resume buttons (tests/slack/test_e2e.py's harness: the real server, signed requests)."""

from __future__ import annotations

import json
from typing import Any

from tests.emulators.slack import DM_CHANNEL, USER_ID, ZH_USER_ID
from tests.slack.test_e2e import Harness, _home_where, h, make_harness, state  # noqa: F401 - fixtures


def test_home_shows_scans_and_repoints_pauses_and_resumes(h: Harness) -> None:  # noqa: F811
    h.command("new pages/coupon/get?id=1&from=slack live=yes name=春季海报")
    h.uploads_for("春季海报")
    record = h.service.recent(limit=1)[0]
    assert record.page == "pages/minpcode/router" and record.scene
    for visitor in ("a", "b", "a"):
        assert h.service.live.resolve(record.scene, visitor=visitor) is not None
    h.event({"type": "app_home_opened", "user": USER_ID, "channel": DM_CHANNEL, "tab": "home"}, "EvLive1")
    home = _home_where(h, lambda t: record.id in t)
    text = json.dumps(home, ensure_ascii=False)
    assert "3 scans" in text and "pages/coupon/get?id=1&from=slack" in text
    assert '"home_live_repoint"' in text and '"home_live_pause"' in text

    h.action(home, "home_live_pause", record.id)
    paused = _home_where(h, lambda t: "Paused" in t)
    assert '"home_live_resume"' in json.dumps(paused)
    found = h.service.live.resolve(record.scene)
    assert found is not None and found.paused and found.page == "pages/index/index"
    h.action(paused, "home_live_resume", record.id)
    _home_where(h, lambda t: "Resumed" in t)
    assert not h.service.live.view(record).paused  # type: ignore[union-attr]

    h.action(home, "home_live_repoint", record.id)
    modal: dict[str, Any] = h.emu.views[h.emu.wait_for("views.open", ok=True)[-1].response["view"]["id"]]
    assert modal["callback_id"] == "minpcode_repoint"
    bad = h.submit(modal, state(page="pages/a b"))
    assert bad.json()["response_action"] == "errors" and "page" in bad.json()["errors"]
    good = h.submit(modal, state(page="pages/spring/sale?aid=a9a84ZoB"))
    assert good.status_code == 200 and good.content == b""
    _home_where(h, lambda t: "Re-pointed" in t)
    moved = h.service.live.resolve(record.scene)
    assert moved is not None and (moved.page, moved.query) == ("pages/spring/sale", "aid=a9a84ZoB")


def test_someone_else_cannot_repoint_from_slack(h: Harness) -> None:  # noqa: F811
    h.command("new pages/mine/index live=yes name=mine")
    h.uploads_for("mine")
    record = h.service.recent(limit=1)[0]
    h.command(f"repoint {record.id} pages/theirs/index", user=ZH_USER_ID)
    refused = h.ephemeral(lambda m: "只有创建者" in (m.get("text") or ""))
    assert refused
    view = h.service.live.view(record)
    assert view is not None and view.destination == "pages/mine/index"


def test_the_form_makes_a_live_code(h: Harness) -> None:  # noqa: F811
    form = h.open_form()
    kinds = [o["value"] for o in form["blocks"][[b.get("block_id") for b in form["blocks"]].index("type")]
             ["element"]["options"]]
    assert "wx-live" in kinds
    h.action(form, "type", "wx-live", values=state(type="wx-live"), kind="static_select")
    live_form = _home_where_view(h, form["id"])
    assert "scene" not in {b.get("block_id") for b in live_form["blocks"]}
    done = h.submit(live_form, state(type="wx-live", page="pages/coupon/get?id=7", name="表单活码"))
    assert done.status_code == 200
    h.uploads_for("表单活码")
    record = h.service.recent(limit=1)[0]
    view = h.service.live.view(record)
    assert record.page == "pages/minpcode/router" and view is not None and view.destination == "pages/coupon/get?id=7"


def _home_where_view(harness: Harness, view_id: str) -> dict[str, Any]:
    """The form once views.update has redrawn it for the chosen kind."""
    harness.emu.wait_for("views.update", 1, ok=True)
    return dict(harness.emu.views[view_id])


def test_the_repoint_form_lists_a_codes_routes(h: Harness) -> None:  # noqa: F811
    from bot.live import parse_routes
    from bot.models import Requester

    h.command("new pages/home/index live=yes name=分流海报")
    h.uploads_for("分流海报")
    record = h.service.recent(limit=1)[0]
    h.service.live.repoint(record.id, parse_routes(["pages/a=70", "pages/b=30"], {"ios": "pages/i"},
                                                   h.service.settings.zone), Requester(chat="slack", user_id=USER_ID))
    h.event({"type": "app_home_opened", "user": USER_ID, "channel": DM_CHANNEL, "tab": "home"}, "EvLive9")
    home = _home_where(h, lambda t: record.id in t)
    h.action(home, "home_live_repoint", record.id)
    modal: dict[str, Any] = h.emu.views[h.emu.wait_for("views.open", ok=True)[-1].response["view"]["id"]]
    text = json.dumps(modal, ensure_ascii=False)
    assert "By share: pages/a 70% / pages/b 30%" in text and "按手机: ios→pages/i" in text
    assert "Saving a page here replaces these routes" in text
