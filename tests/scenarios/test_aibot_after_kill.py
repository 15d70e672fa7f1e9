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


@pytest.mark.parametrize("redeliver", [False, True])
def test_mentions_taken_before_a_kill_9_are_answered_once_after_the_restart(redeliver: bool, wechat: Site,
                                                                             tmp_path: Path) -> None:
    wechat.emu.latency = 0.3  # 30 codes on the job workers: seconds of work after they are taken
    with AiBotGateway(redeliver=redeliver) as gw:
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

        restarted = Served(tmp_path / "data", env, port=proc.port).start()
        try:
            gw.wait(lambda: all(gw.finished(m or "") for m in ids), timeout=90)
            time.sleep(1.0)  # anything more that was coming
            # one finished stream each, with its own code, and no second answer was even tried
            for user, msgid in zip(users, ids, strict=True):
                finals = [a for a in gw.answers(msgid or "") if a["stream"]["finish"]]
                assert len(finals) == 1 and f"<@{user}>" in finals[0]["stream"]["content"], gw.answers(msgid or "")
                assert len(finals[0]["stream"].get("msg_item") or []) == 1
            assert gw.refusals == [], gw.refusals
        finally:
            restarted.stop()
