"""Taken means answered, once: kill -9 a real ``minpcode serve`` connected to the AI-bot gateway emulator
while it is making the codes of 30 @-mentions, restart it, and every mention is answered exactly once."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.conftest import Site
from tests.emulators.wecom_aibot import BOT_ID, SECRET, AiBotGateway
from tests.scenarios.test_one_owner_per_job import upstream_env
from tests.served import Served

pytestmark = pytest.mark.slow  # every test here starts a process


def aibot_env(gw: AiBotGateway) -> dict[str, str]:
    return {"WECOM_BOT_ID": BOT_ID, "WECOM_BOT_SECRET": SECRET, "WECOM_BOT_WS_URL": gw.url}


@pytest.mark.parametrize(("redeliver", "per_connection"), [(False, False), (True, False), (False, True)])
def test_mentions_taken_before_a_kill_9_are_answered_once_after_the_restart(redeliver: bool, per_connection: bool,
                                                                             wechat: Site, tmp_path: Path) -> None:
    """The gateway's two unknowns, each way: does it push an unanswered message again after a reconnect
    (redeliver), and does a req_id outlive its connection (per_connection: it does not, so the restarted
    process pushes those answers instead)."""
    wechat.emu.latency = 0.3  # 30 codes on the job workers: seconds of work after they are taken
    with AiBotGateway(redeliver=redeliver) as gw:
        gw.req_ids_per_connection = per_connection
        env = {**aibot_env(gw), **upstream_env(wechat)}
        proc = Served(tmp_path / "data", env).start()
        gw.wait_subscribed(1, timeout=60)
        users = [f"member{n:02d}" for n in range(30)]
        ids = [gw.say(u, f"新建 pages/index/index type=B scene=u={u}", chat="group-1") for u in users]
        assert None not in ids
        time.sleep(0.6)
        proc.kill()
        answered_before = sum(gw.finished(m or "") for m in ids)
        assert answered_before < 30, "everything was answered before the kill: the test proves nothing"

        def pushed(user: str) -> int:
            return sum(1 for m in gw.sent if m["msgtype"] == "markdown" and m["markdown"]["content"].startswith(
                f"<@{user}>"))

        def answered(user: str, msgid: str) -> int:
            return sum(1 for a in gw.answers(msgid) if a["stream"]["finish"]) + pushed(user)

        restarted = Served(tmp_path / "data", env, port=proc.port).start()
        try:
            gw.wait(lambda: all(answered(u, m or "") for u, m in zip(users, ids, strict=True)), timeout=90)
            time.sleep(1.0)  # anything more that was coming
            # one answer each, with its own code
            for user, msgid in zip(users, ids, strict=True):
                finals = [a for a in gw.answers(msgid or "") if a["stream"]["finish"]]
                assert answered(user, msgid or "") == 1, (gw.answers(msgid or ""), pushed(user))
                if finals:
                    assert f"<@{user}>" in finals[0]["stream"]["content"]
                    assert len(finals[0]["stream"].get("msg_item") or []) == 1
            pushes = sum(pushed(u) for u in users)
            assert sum(1 for m in gw.sent if m["msgtype"] == "image") == pushes
            if per_connection:
                assert pushes == 30 - answered_before  # what the killed process had taken
            else:  # no second answer was even tried
                assert gw.refusals == [] and pushes == 0, gw.refusals
        finally:
            restarted.stop()
