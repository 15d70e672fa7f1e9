"""Webhooks from a real ``minpcode serve`` (tests/served.py), the endpoint added with the real ``minpcode webhooks``
command on the same data folder, and a receiver on 127.0.0.1 that checks the signature its own way.

A code made through the API is delivered once, signed right; a serve killed (SIGKILL) after the change and before
the delivery delivers it once after its restart.
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from storage import Storage
from tests.served import COMMAND, Served, free_port
from tests.webhooks.receiver import Receiver

KEY = "cms-served-hooks-7a1f3c9e5b2d"
SECRET = "whsec-served-test-0123456789abcdef"


def served(data: Path, **extra: str) -> Served:
    return Served(data, env={"MINPCODE_API_KEYS": f"cms:{KEY}", "MINPCODE_WEBHOOKS_ALLOW_PRIVATE": "1", **extra})


def cli(proc: Served, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*COMMAND, *args], env=proc.env, capture_output=True, text=True, timeout=120)


def make_code(proc: Served, scene: str) -> str:
    answer = proc.post("/api/weapp/qrcode", json={"path": "pages/shop/index", "scene": scene},
                       headers={"Authorization": f"Bearer {KEY}"})
    assert answer.status_code == 200 and answer.json()["code"] == 0, answer.text
    return str(answer.json()["id"])


@pytest.mark.slow
def test_a_code_made_through_serve_is_delivered_once_signed_right(tmp_path: Path) -> None:
    receiver = Receiver(SECRET).start()
    proc = served(tmp_path / "data")
    try:
        added = cli(proc, "webhooks", "add", receiver.url, "--events", "code.made", "--secret", SECRET)
        assert added.returncode == 0, added.stderr
        assert SECRET not in added.stdout  # given, not made: nothing to show
        listed = cli(proc, "webhooks", "list", "--json")
        assert SECRET not in listed.stdout and json.loads(listed.stdout)[0]["url"] == receiver.url
        with proc:
            code_id = make_code(proc, "sku=1")
            (got,) = receiver.wait(1)
            assert got.verified and got.status == 200
            assert got.event["type"] == "code.made" and got.event["data"]["code"]["id"] == code_id
            time.sleep(2.5)
            assert len(receiver.received) == 1
        shown = json.loads(cli(proc, "webhooks", "deliveries", "--json").stdout)
        assert [(d["event_type"], d["state"], d["attempts"]) for d in shown] == [("code.made", "done", 1)]
    finally:
        proc.stop()
        receiver.stop()


@pytest.mark.slow
def test_a_serve_killed_before_the_delivery_delivers_it_once_after_the_restart(tmp_path: Path) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}/hooks/minpcode"  # nobody listens there yet: the receiver is down
    data = tmp_path / "data"
    first = served(data, MINPCODE_WEBHOOKS_RETRY="1,1,1,1,1,1,1,1")
    assert cli(first, "webhooks", "add", url, "--secret", SECRET).returncode == 0
    first.start()
    try:
        code_id = make_code(first, "sku=2")
        store = Storage.open(data)
        try:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                rows = store.webhooks.recent()
                if rows and rows[0].attempts >= 1:
                    break
                time.sleep(0.05)
            assert rows and rows[0].state == "pending" and rows[0].attempts >= 1, rows
        finally:
            store.close()
        first.kill()  # SIGKILL: no shutdown of any kind, the delivery still owed
    finally:
        first.stop()

    receiver = Receiver(SECRET, port=port).start()
    second = served(data, MINPCODE_WEBHOOKS_RETRY="1,1,1,1,1,1,1,1")
    try:
        with second:
            (got,) = receiver.wait(1)
            assert got.verified and got.event["type"] == "code.made" and got.event["data"]["code"]["id"] == code_id
            time.sleep(3)  # past two more retry waits: nothing is sent again
            assert len(receiver.received) == 1
        shown = json.loads(cli(second, "webhooks", "deliveries", "--json").stdout)
        assert [(d["event_id"], d["state"]) for d in shown] == [(got.event["id"], "done")]
    finally:
        second.stop()
        receiver.stop()


def test_the_receiver_refuses_a_forged_signature() -> None:
    # The receiver needs no serve: its own check refuses a forged signature (so a test passing on "verified"
    # means the signature was right).
    receiver = Receiver(SECRET).start()
    try:
        body = b'{"id":"evt_x","type":"ping","data":{},"created_at":"2026-01-01T00:00:00Z"}'
        stamp = str(int(time.time()))
        with httpx.Client(trust_env=False) as client:
            client.post(receiver.url, content=body, headers={"X-Minpcode-Timestamp": stamp,
                                                             "X-Minpcode-Signature": "v1=" + "0" * 64})
        (got,) = receiver.wait(1)
        assert not got.verified and got.status == 401
    finally:
        receiver.stop()
