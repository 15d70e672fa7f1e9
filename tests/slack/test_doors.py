"""The bot's DM and @mentions over the real server and the Slack emulator delivering events as Slack does.

The emulator is installed from manifest.yml itself (its scopes, its bot events, its Messages tab), so what
the manifest leaves shut stays shut here: a read-only Messages tab takes no message in the DM, an event
not subscribed (or without its scope) is never delivered.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.emulators.slack import (
    BOT_USER_ID,
    DM_CHANNEL,
    PUBLIC_CHANNEL,
    USER_ID,
    SlackEmulator,
)
from tests.served import free_port
from tests.slack.test_batches import press
from tests.slack.test_e2e import SECRET, Harness, make_harness, scan  # noqa: F401  (make_harness: a fixture)

ROOT = Path(__file__).resolve().parents[2]
ROWS = ("bulk\n"
        "页面,类型,场景,名称\n"
        "pages/index/index,B,id=71,徐汇店\n"
        "pages/index/index,B,id=72,静安店\n")


def manifest() -> dict[str, Any]:
    return dict(yaml.safe_load((ROOT / "manifest.yml").read_text(encoding="utf-8")))


@pytest.fixture
def h(make_harness: Any) -> Harness:  # noqa: F811  (the imported fixture)
    harness: Harness = make_harness()
    harness.emu.install(manifest())
    harness.emu.deliver_events_to(harness.url + "/slack/events", SECRET)
    harness.emu.wait_for("auth.test")  # the bot knows who it is before people write to it
    return harness


def bot_posts(emu: SlackEmulator, channel: str, *, thread_ts: str | None = None) -> list[dict[str, Any]]:
    return [m for m in emu.messages_in(channel) if m.get("bot_id") and m.get("thread_ts") == thread_ts]


def wait_posts(emu: SlackEmulator, channel: str, count: int = 1, *, thread_ts: str | None = None,
               timeout: float = 15.0) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while len(found := bot_posts(emu, channel, thread_ts=thread_ts)) < count:
        if time.monotonic() > deadline:
            raise AssertionError(f"{len(found)} bot message(s) in {channel} thread {thread_ts}; calls: "
                                 f"{[c.method for c in emu.calls]}")
        time.sleep(0.03)
    return found


def settle() -> None:
    time.sleep(0.6)  # long enough for a second answer to have come, had there been one


def dry_run_in_dm(h: Harness, before: int) -> tuple[str, str]:
    """The dry run posted in the starter's DM: its batch id (the Start button's value) and ts."""
    deadline = time.monotonic() + 15
    while True:
        for message in bot_posts(h.emu, DM_CHANNEL)[before:]:
            buttons = [e for b in message.get("blocks") or [] if b["type"] == "actions" for e in b["elements"]]
            if buttons:
                return str(buttons[0]["value"]), str(message["ts"])
        assert time.monotonic() < deadline, [m.get("text") for m in h.emu.messages_in(DM_CHANNEL)]
        time.sleep(0.03)


def wait_upload(h: Harness, name: str, timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for up in h.emu.uploads:
            if up.filename == name and up.completed:
                return up
        time.sleep(0.05)
    raise AssertionError(f"no upload {name}; have {[u.filename for u in h.emu.uploads]}")


# ---------------------------------------------------------------------------------------------- the manifest


def test_the_manifest_lets_people_write_in_the_dm_it_subscribes_to() -> None:
    app = manifest()
    events = app["settings"]["event_subscriptions"]["bot_events"]
    scopes = app["oauth_config"]["scopes"]["bot"]
    home = app["features"]["app_home"]
    # message.im is what people write in the Messages tab: it must be there and writable, and readable
    assert "message.im" in events and "im:history" in scopes
    assert home["messages_tab_enabled"] is True and home["messages_tab_read_only_enabled"] is False
    assert "app_mention" in events and "app_mentions:read" in scopes


# ---------------------------------------------------------------------------------------------- the DM


def test_a_text_in_the_dm_is_the_text_command_answered_in_the_dm(h: Harness) -> None:
    h.emu.user_says(USER_ID, "help")
    [answer] = wait_posts(h.emu, DM_CHANNEL)
    assert "minpcode commands" in answer["text"] and not h.emu.ephemerals  # a message in the DM, not ephemeral
    [delivered] = h.emu.deliveries_of("message")[:1]
    assert delivered.status == 200 and delivered.event["channel_type"] == "im"

    h.emu.user_says(USER_ID, "new pages/shop/index?from=dm&x=1 type=A via=wechat")  # & arrives as &amp;
    [upload] = h.uploads_for("pages/shop/index")
    assert upload.channels == [DM_CHANNEL] and upload.thread_ts is None
    assert scan(upload.data or b"").page == "pages/shop/index?from=dm&x=1"


def test_the_bots_own_messages_edits_and_joins_are_not_commands(h: Harness) -> None:
    h.emu.user_says(USER_ID, "list")
    wait_posts(h.emu, DM_CHANNEL)
    # the bot's answer came back as message.im (with its bot_id) and was not taken as a command
    deadline = time.monotonic() + 5
    while not any(d.event.get("bot_id") for d in h.emu.deliveries_of("message")):
        assert time.monotonic() < deadline, "the bot's own message was never delivered"
        time.sleep(0.03)
    assert all(d.status == 200 for d in h.emu.deliveries)
    for subtype, extra in (("message_changed", {"hidden": True, "message": {"type": "message", "user": USER_ID,
                                                                           "text": "help", "ts": "1.000001"}}),
                           ("channel_join", {"user": USER_ID, "text": "help"})):
        event = {"type": "message", "subtype": subtype, "channel": DM_CHANNEL, "channel_type": "im",
                 "ts": f"{time.time():.6f}", **extra}
        assert h.event(event, event_id=f"Ev{subtype}").status_code == 200
    settle()
    assert len(bot_posts(h.emu, DM_CHANNEL)) == 1


def test_a_retried_event_is_answered_once_and_a_lost_first_delivery_by_its_retry(h: Harness) -> None:
    h.emu.user_says(USER_ID, "quota")
    wait_posts(h.emu, DM_CHANNEL)
    first = h.emu.deliveries_of("message")[0]
    again = h.emu.redeliver(first.event_id)
    assert again.status == 200 and again.retry_num == 1
    settle()
    assert len(bot_posts(h.emu, DM_CHANNEL)) == 1

    real = h.emu.events_url
    assert real is not None
    h.emu.events_url = f"http://127.0.0.1:{free_port()}/slack/events"  # nothing listens there: the delivery is lost
    h.emu.user_says(USER_ID, "help")
    lost = h.emu.deliveries[-1]
    assert lost.status is None
    h.emu.events_url = real
    assert h.emu.redeliver(lost.event_id, "connection_failed").status == 200
    answers = wait_posts(h.emu, DM_CHANNEL, 2)
    assert "minpcode commands" in answers[-1]["text"]
    assert h.emu.redeliver(lost.event_id).status == 200
    settle()
    assert len([m for m in bot_posts(h.emu, DM_CHANNEL) if "minpcode commands" in m["text"]]) == 1


# ---------------------------------------------------------------------------------------------- @mentions


def test_a_mention_in_a_channel_is_answered_in_a_thread_under_it(h: Harness) -> None:
    ts = h.emu.user_says(USER_ID, "@minpcode new pages/index/index type=B scene=mention1", channel=PUBLIC_CHANNEL)
    [delivered] = h.emu.deliveries_of("app_mention")
    assert delivered.event["text"].startswith(f"<@{BOT_USER_ID}> ") and delivered.body["authorizations"]
    [upload] = h.uploads_for("mention1")
    assert upload.channels == [PUBLIC_CHANNEL] and upload.thread_ts == ts
    assert scan(upload.data or b"").scene == "mention1"
    assert bot_posts(h.emu, PUBLIC_CHANNEL) == []  # nothing at the top of the channel

    listed = h.emu.user_says(USER_ID, "@minpcode list", channel=PUBLIC_CHANNEL)
    [answer] = wait_posts(h.emu, PUBLIC_CHANNEL, thread_ts=listed)
    assert "mention1" in answer["text"] or h.service.recent(limit=1)[0].id in answer["text"]


def test_a_mention_inside_a_thread_answers_in_that_thread(h: Harness) -> None:
    parent = h.emu.user_says(USER_ID, "which codes do we have?", channel=PUBLIC_CHANNEL)
    assert h.emu.deliveries == []  # no mention, no message.channels subscription: nothing for the bot
    h.emu.user_says(USER_ID, "@minpcode help new", channel=PUBLIC_CHANNEL, thread_ts=parent)
    [answer] = wait_posts(h.emu, PUBLIC_CHANNEL, thread_ts=parent)
    assert "scene" in answer["text"]


# ---------------------------------------------------------------------------------------------- batches


def test_a_batch_started_in_a_channel_keeps_its_dry_run_private_and_posts_the_zip_there(h: Harness) -> None:
    ack = h.command(ROWS, channel=PUBLIC_CHANNEL)
    assert ack.status_code == 200
    batch_id, ts = dry_run_in_dm(h, 0)
    assert bot_posts(h.emu, PUBLIC_CHANNEL) == [] and h.service.recent(limit=5) == []  # nothing public yet
    press(h, "batch_start", batch_id, ts)
    zipped = wait_upload(h, f"minpcode-{batch_id}.zip")
    manifest_csv = wait_upload(h, f"minpcode-{batch_id}-manifest.csv")
    assert zipped.channels == [PUBLIC_CHANNEL] and manifest_csv.channels == [PUBLIC_CHANNEL]
    [head] = bot_posts(h.emu, PUBLIC_CHANNEL)  # the message the results hang under, naming who ran it
    assert zipped.thread_ts == head["ts"] and f"<@{USER_ID}>" in head["text"] and batch_id in head["text"]
    assert f"<@{USER_ID}>" in (zipped.initial_comment or "")
    note = wait_posts(h.emu, DM_CHANNEL, thread_ts=ts)  # the starter is told where the results went
    assert f"<#{PUBLIC_CHANNEL}>" in note[-1]["text"]
    assert not [u for u in h.emu.uploads if DM_CHANNEL in u.channels]


def test_a_batch_started_by_a_mention_posts_its_results_in_the_mentions_thread(h: Harness) -> None:
    mention = h.emu.user_says(USER_ID, "@minpcode " + ROWS, channel=PUBLIC_CHANNEL)
    batch_id, ts = dry_run_in_dm(h, 0)
    [told] = wait_posts(h.emu, PUBLIC_CHANNEL, thread_ts=mention)
    assert "DM" in told["text"] and "Start" not in str(told.get("blocks"))  # the button stays private
    press(h, "batch_start", batch_id, ts)
    zipped = wait_upload(h, f"minpcode-{batch_id}.zip")
    assert zipped.channels == [PUBLIC_CHANNEL] and zipped.thread_ts == mention
    assert f"<@{USER_ID}>" in (zipped.initial_comment or "")


def test_a_batch_started_in_the_dm_stays_in_the_dm(h: Harness) -> None:
    h.emu.user_says(USER_ID, ROWS)
    batch_id, ts = dry_run_in_dm(h, 0)
    press(h, "batch_start", batch_id, ts)
    zipped = wait_upload(h, f"minpcode-{batch_id}.zip")
    assert zipped.channels == [DM_CHANNEL] and zipped.thread_ts == ts
    assert h.emu.messages_in(PUBLIC_CHANNEL) == []

    # a sheet dropped in the DM with "bulk" (a file_share message) goes the same way
    file = h.emu.add_user_file("drop.csv", "页面,类型,场景\npages/index/index,B,id=73\n".encode(), USER_ID)
    before = len(bot_posts(h.emu, DM_CHANNEL))
    h.emu.user_says(USER_ID, "bulk", files=[file])
    dropped, _ = dry_run_in_dm(h, before)
    assert dropped != batch_id


def test_a_resumed_channel_batch_still_posts_in_its_channel(make_harness: Any) -> None:  # noqa: F811
    from bot.batch.models import BatchOrigin, BatchStatus, RowStatus

    made: list[str] = []

    def left_running(service: Any) -> None:  # what a kill -9 after Start leaves: running, rows ready
        origin = BatchOrigin(user_id=USER_ID, chat="slack", channel_id=PUBLIC_CHANNEL,
                             message_channel_id=DM_CHANNEL, message_id="1700000000.000100", lang="en")
        rows = [(2, {"page": "pages/index/index", "type": "B", "scene": "id=77"}, RowStatus.READY, None, None)]
        batch = service.storage.batches.create(origin, filename="pasted.txt", sha256="1" * 64, encoding="utf-8",
                                               rows=rows)
        service.storage.batches.set_status(batch.id, BatchStatus.RUNNING)
        made.append(batch.id)

    h = make_harness(prepare=left_running)
    zipped = wait_upload(h, f"minpcode-{made[0]}.zip")
    [head] = bot_posts(h.emu, PUBLIC_CHANNEL)
    assert zipped.channels == [PUBLIC_CHANNEL] and zipped.thread_ts == head["ts"] and f"<@{USER_ID}>" in head["text"]
    assert h.service.batches.get(made[0]).origin.thread_id == head["ts"]  # kept: a second resume posts under it
