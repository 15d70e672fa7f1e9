"""Batches in Slack over the real server and the Slack emulator: pasted rows, the dry run with Start/Cancel,
progress by chat.update in place, the zip and manifest in the thread."""

from __future__ import annotations

import csv
import io
import time
import zipfile
from typing import Any

import pytest

from tests.emulators.slack import APP_ID, DM_CHANNEL, PUBLIC_CHANNEL, TEAM_ID, USER_ID, ZH_USER_ID
from tests.slack.test_e2e import Harness, make_harness, scan  # noqa: F401  (make_harness: a fixture)

ROWS = ("bulk\n"
        "页面\t类型\t场景\t名称\n"                         # tab separated, as a range copied from Excel
        "pages/index/index\tB\tid=1\t上海一店\n"
        "pages/index/index\tB\tid=2\t上海二店\n"
        "pages/index/index\tB\tid=this-scene-is-far-too-long-for-wechat\t坏行\n")


@pytest.fixture
def h(make_harness: Any) -> Harness:  # noqa: F811  (the imported fixture)
    return make_harness()


def press(h: Harness, action_id: str, value: str, ts: str, *, user: str = USER_ID) -> None:
    payload: dict[str, Any] = {
        "type": "block_actions", "user": h.user(user), "team": {"id": TEAM_ID}, "api_app_id": APP_ID,
        "trigger_id": h.emu.issue_trigger_id(user_id=user), "channel": {"id": DM_CHANNEL},
        "container": {"type": "message", "message_ts": ts, "channel_id": DM_CHANNEL, "is_ephemeral": False},
        "message": {"ts": ts, "type": "message"},
        "actions": [{"action_id": action_id, "block_id": "b", "type": "button", "value": value,
                     "action_ts": str(time.time())}],
    }
    assert h.interact(payload).status_code == 200


def dry_run(h: Harness, text: str = ROWS, user: str = USER_ID, channel: str = PUBLIC_CHANNEL) -> tuple[str, str, dict[str, Any]]:
    before = len(h.emu.calls_to("chat.postMessage"))
    ack = h.command(text, user=user, channel=channel)
    assert ack.status_code == 200 and ("Checking" in ack.json()["text"] or "检查" in ack.json()["text"])
    call = h.emu.wait_for("chat.postMessage", before + 1, ok=True, timeout=15)[-1]
    buttons = [e for b in call.params["blocks"] if b["type"] == "actions" for e in b["elements"]]
    batch_id = buttons[0]["value"] if buttons else ""
    return batch_id, str(call.response["ts"]), call.params


def wait_upload(h: Harness, name: str, timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for up in h.emu.uploads:
            if up.filename == name and up.completed:
                return up
        time.sleep(0.05)
    raise AssertionError(f"no upload {name}; have {[u.filename for u in h.emu.uploads]}")


def test_pasted_rows_dry_run_then_start_updates_in_place_and_uploads_the_zip(h: Harness) -> None:
    batch_id, ts, message = dry_run(h, channel=DM_CHANNEL)
    assert message["channel"] == DM_CHANNEL
    text = message["text"]
    assert "3 row(s), 2 ready" in text and "Line 4" in text and "Start" in str(message["blocks"])
    assert h.service.recent(limit=10) == []  # the dry run made nothing

    press(h, "batch_start", batch_id, ts)
    zipped = wait_upload(h, f"minpcode-{batch_id}.zip")
    manifest = wait_upload(h, f"minpcode-{batch_id}-manifest.csv")
    # started in the DM: the results come in the dry run's thread (tests/slack/test_doors.py: a channel's)
    assert zipped.thread_ts == ts and manifest.thread_ts == ts and zipped.channels == [DM_CHANNEL]
    with zipfile.ZipFile(io.BytesIO(zipped.data or b"")) as z:
        images = sorted(n for n in z.namelist() if not n.startswith("manifest."))
        assert [n.rsplit(".", 1)[0] for n in images] == ["上海一店", "上海二店"]
        assert [scan(z.read(n)).scene for n in images] == ["id=1", "id=2"]
    rows = list(csv.DictReader(io.StringIO((manifest.data or b"").decode("utf-8-sig"))))
    assert [(r["row"], r["status"]) for r in rows] == [("2", "done"), ("3", "done"), ("4", "invalid")]

    updates = [c for c in h.emu.calls_to("chat.update", ok=True) if c.params.get("ts") == ts]
    assert updates and "finished" in updates[-1].params["text"]
    assert all(b["type"] != "actions" for b in updates[-1].params["blocks"])  # no buttons once started

    press(h, "batch_start", batch_id, ts)  # a second press makes nothing again
    time.sleep(0.5)
    assert len(h.service.recent(limit=10)) == 2


def test_cancel_and_only_the_starter_may_start(h: Harness) -> None:
    batch_id, ts, _ = dry_run(h)
    before = len(h.emu.calls_to("chat.postEphemeral")) + len(h.emu.calls_to("chat.postMessage"))
    press(h, "batch_start", batch_id, ts, user=ZH_USER_ID)
    deadline = time.monotonic() + 10
    while len(h.emu.calls_to("chat.postEphemeral")) + len(h.emu.calls_to("chat.postMessage")) == before:
        assert time.monotonic() < deadline, "the other person was not told"
        time.sleep(0.05)
    assert h.service.recent(limit=10) == []

    press(h, "batch_cancel", batch_id, ts)
    deadline = time.monotonic() + 10
    while not any("cancelled" in c.params.get("text", "") for c in h.emu.calls_to("chat.update", ok=True)):
        assert time.monotonic() < deadline, "the message was not updated"
        time.sleep(0.05)
    press(h, "batch_start", batch_id, ts)
    time.sleep(0.5)
    assert h.service.recent(limit=10) == []


def test_a_sheet_that_cannot_be_read_is_refused_in_words(h: Harness) -> None:
    ack = h.command("bulk\nnot_a_column,type\nx,B")
    assert ack.status_code == 200
    message = h.ephemeral(lambda m: "not_a_column" in (m.get("text") or ""))
    assert "Unknown column" in message["text"] or "不认识的列" in message["text"]


def test_serve_resumes_a_slack_batch_and_still_uploads_into_its_thread(make_harness: Any) -> None:  # noqa: F811
    from bot.batch.models import BatchOrigin, BatchStatus, RowStatus

    made: list[str] = []

    def left_running(service: Any) -> None:  # what a kill -9 after Start leaves: running, rows ready
        origin = BatchOrigin(user_id=USER_ID, chat="slack", channel_id=DM_CHANNEL, message_id="1700000000.000100",
                             thread_id="1700000000.000100", lang="en")
        rows = [(2, {"page": "pages/index/index", "type": "B", "scene": "id=7"}, RowStatus.READY, None, None)]
        batch = service.storage.batches.create(origin, filename="pasted.txt", sha256="0" * 64, encoding="utf-8",
                                               rows=rows)
        service.storage.batches.set_status(batch.id, BatchStatus.RUNNING)
        made.append(batch.id)

    h = make_harness(prepare=left_running)
    zipped = wait_upload(h, f"minpcode-{made[0]}.zip")
    assert zipped.thread_ts == "1700000000.000100" and zipped.channels == [DM_CHANNEL]
    assert [r.scene for r in h.service.recent(limit=5)] == ["id=7"]


def open_batch_form(h: Harness) -> dict[str, Any]:
    before = len(h.emu.calls_to("views.open"))
    assert h.command("bulk").status_code == 200
    call = h.emu.wait_for("views.open", before + 1, ok=True)[-1]
    return h.emu.views[call.response["view"]["id"]]


def form_values(files: list[dict[str, Any]] | None = None, rows: str = "", **defaults: str) -> dict[str, Any]:
    values: dict[str, Any] = {
        "batch_file": {"batch_file": {"type": "file_input", "files": files or []}},
        "batch_rows": {"batch_rows": {"type": "plain_text_input", "value": rows or None}},
        "batch_type": {"batch_type": {"type": "static_select", "selected_option":
                                      {"value": defaults["type"]} if "type" in defaults else None}},
    }
    for key in ("campaign", "channel", "app"):
        values[f"batch_{key}"] = {f"batch_{key}": {"type": "plain_text_input", "value": defaults.get(key)}}
    return {"values": values}


def test_the_form_takes_an_xlsx_file_with_defaults_for_every_row(h: Harness) -> None:
    from openpyxl import Workbook

    view = open_batch_form(h)
    kinds = [b.get("element", {}).get("type") for b in view["blocks"] if b["type"] == "input"]
    assert "file_input" in kinds and "plain_text_input" in kinds
    assert "/batches/sample.csv" in str(view["blocks"])
    sample = h.http.get(h.url + "/batches/sample.csv")
    assert sample.status_code == 200 and sample.content.startswith("\ufeff页面".encode())

    book = Workbook()
    sheet = book.active
    sheet.append(["页面", "场景", "名称"])  # no type column: the form's default gives it
    sheet.append(["pages/index/index", "id=11", "北京一店"])
    sheet.append(["pages/index/index", "id=12", "北京二店"])
    buffer = io.BytesIO()
    book.save(buffer)
    file = h.emu.add_user_file("stores.xlsx", buffer.getvalue(), USER_ID)
    before = len(h.emu.calls_to("chat.postMessage"))
    assert h.submit(view, form_values([file], type="B")).status_code == 200
    call = h.emu.wait_for("chat.postMessage", before + 1, ok=True, timeout=15)[-1]
    assert "stores.xlsx" in call.params["text"] and "2 row(s), 2 ready" in call.params["text"]
    batch_id = next(e["value"] for b in call.params["blocks"] if b["type"] == "actions" for e in b["elements"])
    press(h, "batch_start", batch_id, str(call.response["ts"]))
    zipped = wait_upload(h, f"minpcode-{batch_id}.zip")
    with zipfile.ZipFile(io.BytesIO(zipped.data or b"")) as z:
        scenes = sorted(scan(z.read(n)).scene for n in z.namelist() if not n.startswith("manifest."))
    assert scenes == ["id=11", "id=12"]


def test_the_form_wants_a_file_or_rows(h: Harness) -> None:
    view = open_batch_form(h)
    answer = h.submit(view, form_values())
    assert answer.status_code == 200 and answer.json()["response_action"] == "errors"
    assert "batch_rows" in answer.json()["errors"]


def test_a_sign_in_page_instead_of_the_file_says_what_to_fix(make_harness: Any) -> None:  # noqa: F811
    h = make_harness()
    view = open_batch_form(h)
    file = h.emu.add_user_file("stores.csv", b"page,type,scene\npages/index/index,B,id=1\n", USER_ID)
    h.emu.scopes = [s for s in h.emu.scopes if s != "files:read"]  # the app was installed before files:read
    assert h.submit(view, form_values([file])).status_code == 200
    message = h.ephemeral(lambda m: "files:read" in (m.get("text") or ""))
    assert "sign-in page" in message["text"] or "登录页" in message["text"]
    assert h.service.storage.batches.recent() == []  # nothing was read as a sheet


def test_the_forms_upload_link_takes_a_sheet_and_the_dry_run_comes_to_the_dm(h: Harness) -> None:
    import re

    view = open_batch_form(h)
    match = re.search(r"/batches/upload/([^|>]+)", str(view["blocks"]))
    assert match is not None
    before = len(h.emu.calls_to("chat.postMessage"))
    answer = h.http.post(h.url + "/batches/upload/" + match.group(1), headers={"X-Filename": "s.csv"},
                         content=b"page,type,scene\npages/index/index,B,id=41\n")
    assert answer.status_code == 200 and answer.json()["ok"] is True
    call = h.emu.wait_for("chat.postMessage", before + 1, ok=True, timeout=15)[-1]
    assert call.params["channel"] == DM_CHANNEL and "s.csv" in call.params["text"] and "1 ready" in call.params["text"]


def test_a_sheet_dropped_in_the_dm_with_bulk_starts_the_same_dry_run(h: Harness) -> None:
    file = h.emu.add_user_file("drop.csv", "页面,类型,场景\npages/index/index,B,id=51\n".encode(), USER_ID)
    before = len(h.emu.calls_to("chat.postMessage"))
    event = {"type": "message", "subtype": "file_share", "channel": DM_CHANNEL, "channel_type": "im",
             "user": USER_ID, "text": "bulk please", "files": [file], "ts": "1700000001.000200"}
    assert h.event(event, event_id="EvDrop1").status_code == 200
    call = h.emu.wait_for("chat.postMessage", before + 1, ok=True, timeout=15)[-1]
    assert "drop.csv" in call.params["text"] and "1 ready" in call.params["text"]
    other = {**event, "text": "just a file", "ts": "1700000002.000300"}  # no "bulk": not a batch
    assert h.event(other, event_id="EvDrop2").status_code == 200
    time.sleep(0.5)
    assert len(h.emu.calls_to("chat.postMessage")) == before + 1


def test_bulk_in_the_dm_is_read_as_the_grammar_reads_words(h: Harness) -> None:
    # Full-width letters and a leading slash or prefix are the same word to the grammar, so to the DM too.
    for n, text in enumerate(("/ＢＵＬＫ", "minpcode 批量")):
        file = h.emu.add_user_file(f"w{n}.csv", f"页面,类型,场景\npages/index/index,B,id=6{n}\n".encode(), USER_ID)
        before = len(h.emu.calls_to("chat.postMessage"))
        event = {"type": "message", "subtype": "file_share", "channel": DM_CHANNEL, "channel_type": "im",
                 "user": USER_ID, "text": text, "files": [file], "ts": f"170000001{n}.000200"}
        assert h.event(event, event_id=f"EvWords{n}").status_code == 200
        call = h.emu.wait_for("chat.postMessage", before + 1, ok=True, timeout=15)[-1]
        assert f"w{n}.csv" in call.params["text"] and "1 ready" in call.params["text"]


def test_help_lists_bulk_and_help_bulk_gives_the_columns(h: Harness) -> None:
    from bot.batch.sheets import COLUMNS, MAX_ROWS

    h.command("help")
    overview = h.ephemeral(lambda m: "minpcode commands" in m["text"])
    text = overview["text"]
    assert "• 批量｜bulk ⏎ <header> ⏎ <row> …" in text
    assert "a CSV/XLSX in the DM with the bot, saying bulk" in text and "bulk alone opens a form" in text
    assert "upload link" not in text  # WeCom's way, not Slack's
    assert all(len(b["text"]["text"]) <= 3000 for b in overview.get("blocks") or [] if b.get("text"))
    h.command("help 批量")
    detail = h.ephemeral(lambda m: m["text"].startswith("bulk（批量）"))["text"]
    assert [line.split()[0] for line in detail.splitlines() if line.startswith("  ")] == list(COLUMNS)
    assert f"{MAX_ROWS} rows" in detail and "Start and Cancel" in detail and "manifest.csv" in detail
    assert "/minpcode bulk alone for a form" in detail


def test_a_failed_zip_upload_offers_the_download_link(h: Harness) -> None:
    import re

    batch_id, ts, _ = dry_run(h)
    h.emu.fail_next("files.getUploadURLExternal", "internal_error")
    press(h, "batch_start", batch_id, ts)
    call = h.emu.wait_for("chat.postEphemeral", 1, ok=True, timeout=30)[-1]
    text = call.params["text"]
    assert "could not be uploaded" in text and "within 24 hours" in text
    match = re.search(r"<http://[^/]+(/batches/[^/|>]+\.zip)\|", text)  # MINPCODE_PUBLIC_URL's port is not ours
    assert match is not None, text
    got = h.http.get(h.url + match.group(1))
    assert got.status_code == 200 and got.headers["content-disposition"] == f'attachment; filename="minpcode-{batch_id}.zip"'
    with zipfile.ZipFile(io.BytesIO(got.content)) as z:
        assert "manifest.csv" in z.namelist() and len([n for n in z.namelist() if not n.startswith("manifest.")]) == 2
