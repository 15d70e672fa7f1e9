"""Block Kit builders, payload parsing and the app manifest, without a server."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from slack_sdk.errors import SlackObjectFormationError
from slack_sdk.models.blocks import Block, Option
from slack_sdk.models.views import View

from bot.errors import FieldError
from bot.models import CodeRecord, CodeRequest, CodeType, Provider, Status
from handlers.slack import parse, settings_problem, views
from handlers.slack.deliver import bypass_proxy
from handlers.slack.home import home_view, thumbnails_possible

ROOT = Path(__file__).resolve().parents[2]
# Slack publishes the JSON schema of app manifests in slackapi/manifest-schema
# (https://github.com/slackapi/manifest-schema/blob/main/manifest.schema.json); version 1, which our
# manifest.yml uses, is
# https://raw.githubusercontent.com/slackapi/manifest-schema/v0.0.0/schemas/manifest.schema.1.0.0.json.
# It is not vendored here. Where a copy sits at SCHEMA the manifest is validated against it, else that
# one test is skipped.
SCHEMA = Path("/work/shared/schemas/slack-manifest.schema.1.0.0.json")


def valid(view: dict[str, Any]) -> dict[str, Any]:
    View(**view).validate_json()
    for block in Block.parse_all(view["blocks"]):
        assert block is not None
        block.validate_json()
    return view


def record(**kw: Any) -> CodeRecord:
    now = datetime(2025, 3, 1, 8, 30, tzinfo=UTC)
    data: dict[str, Any] = dict(id="abc123def456", type=CodeType.A, provider=Provider.GIO, status=Status.DONE,
                                page="pages/index/index?x=1", name="双十一推广-微博-pages_index_index",
                                campaign="双十一推广", channel="微博", tracking_url="https://gio.example/t/1",
                                image_sha256="f" * 64, image_mime="image/jpeg", requested_by="U1",
                                requested_by_name="alice", request_key="k", created_at=now, updated_at=now)
    data.update(kw)
    return CodeRecord(**data)


# ---------------------------------------------------------------------------------------------- the form


@pytest.mark.parametrize("kind", list(views.KINDS))
def test_form_for_every_kind_is_valid_block_kit(kind: str) -> None:
    view = valid(views.code_form(kind=kind, kinds=views.kinds_for(True), metadata='{"c":"C1"}',
                                 apps=[("wx1", "App one"), ("wx2", "App two")], suggestion="a-b-c",
                                 notice="🧪 sandbox"))
    blocks = {b.get("block_id") for b in view["blocks"]}
    type_, via, _, _ = views.KINDS[kind]
    assert ("scene" in blocks) == (type_ == "B" and kind != views.LIVE_VALUE)  # a live code's scene is our key
    assert ("title" in blocks) == (type_ == "shortlink")
    assert ("campaign" in blocks) == ("channel" in blocks) == (via == "gio")
    assert ("width" in blocks) == ("transparent" in blocks) == (via == "wechat" and type_ in ("A", "B", "C"))
    assert "app" in blocks and "name" in blocks and "comments" in blocks
    for block in view["blocks"]:
        if block["type"] == "input":
            assert " / " in block["label"]["text"]  # bilingual, Chinese first
            assert block["label"]["text"][0] > "\u2e80" or block["label"]["text"].startswith("scene")


def test_form_without_growingio_or_a_second_app() -> None:
    view = valid(views.code_form(kind="wechat:A", kinds=views.kinds_for(False), apps=[("wx1", "one")],
                                 metadata="{}"))
    kinds = [o["value"] for o in view["blocks"][0]["element"]["options"]]
    assert kinds == ["wechat:A", "wechat:B", "wx-live", "wechat:C", "wechat:shortlink", "wx-urllink", "wx-scheme"]
    assert "app" not in {b.get("block_id") for b in view["blocks"]}


def test_a_broken_view_is_caught_by_the_models() -> None:
    view = views.code_form(kind="wechat:A", kinds=views.kinds_for(False), apps=[], metadata="{}")
    view["title"] = {"type": "plain_text", "text": "x" * 30}
    with pytest.raises(SlackObjectFormationError):
        View(**view).validate_json()


def test_other_modals_and_home_are_valid() -> None:
    done = record()
    valid(views.reuse_view(done, parse.dump_metadata({"c": "C1", "id": done.id})))
    valid(views.rename_view(done, done.id))
    rows = [done, record(id="pending00001", status=Status.PENDING, image_sha256=None),
            record(id="failed000001", status=Status.FAILED, image_sha256=None, error_zh="坏了", error_en="broken"),
            record(id="shortlink001", type=CodeType.SHORTLINK, provider=Provider.WECHAT, link="#小程序://x/y",
                   image_sha256=None, campaign=None, channel=None, tracking_url=None)]
    plain = valid(home_view(rows, offset=8, more=True, admin=True, public_url="http://127.0.0.1:3000",
                            banner="🗑 Deleted"))
    assert not any(b.get("accessory") for b in plain["blocks"])
    thumbs = valid(home_view(rows * 2, offset=0, more=False, admin=False, public_url="https://qr.example.com"))
    assert sum(1 for b in thumbs["blocks"] if b.get("accessory")) == 2
    assert len(thumbs["blocks"]) <= 100
    valid(home_view([], offset=0, more=False, admin=False, public_url="http://localhost"))
    for blocks in (views.code_link_blocks("text", done, "http://h"), [views.section("x" * 5000)]):
        for block in Block.parse_all(blocks):
            block.validate_json()


def test_without_an_address_people_reach_there_is_no_link_to_follow() -> None:
    # Settings.people_url is None when MINPCODE_PUBLIC_URL was not given: a button to serve's loopback
    # address would look right in Slack and lead nowhere.
    done = record()
    home = valid(home_view([done], offset=0, more=False, admin=False, public_url=None))
    assert "/codes/" not in str(home) and not any(b.get("accessory") for b in home["blocks"])
    assert any(e.get("action_id") == "home_rename" for b in home["blocks"] for e in b.get("elements", []))
    assert len(views.code_link_blocks("text", done, None)) == 1  # the answer, no Download button
    assert views.poster_line("A4 poster", None, "en") == "A4 poster"
    linked = views.code_link_blocks("text", done, "https://qr.example.com")
    assert linked[1]["elements"][0]["url"] == f"https://qr.example.com/codes/{done.id}.png"
    assert not thumbnails_possible(None)


def test_thumbnails_need_a_public_https_address() -> None:
    assert thumbnails_possible("https://qr.example.com/base")
    assert not thumbnails_possible("http://qr.example.com")
    assert not thumbnails_possible("https://127.0.0.1:3000")


def test_suggestions_filter_and_offer_to_create() -> None:
    names = ["双十一推广", "新品上市", "spring-sale", "Spring-2"]
    options = views.suggestion_options(names, "spr")
    assert [o["value"] for o in options] == ["c:spr", "n:Spring-2", "n:spring-sale"]
    assert [o["value"] for o in views.suggestion_options(names, "新品上市")] == ["n:新品上市"]
    assert len(views.suggestion_options([f"c{i}" for i in range(300)], "")) == views.MAX_OPTIONS
    long = views.suggestion_options([], "x" * 200)
    for option in long:
        Option(**option).validate_json()
        assert len(option["value"]) <= 150


def test_field_errors_land_beside_present_fields_in_the_users_language() -> None:
    errors = [FieldError("scene", "中文", "english"), FieldError("via", "方式", "provider"),
              FieldError("page", "页", "page")]
    out = views.field_errors(errors, ["type", "page", "scene"], "en")
    assert out == {"scene": "english", "type": "via: provider", "page": "page"}
    assert views.field_errors(errors[:1], ["scene"], None) == {"scene": "中文\nenglish"}


def test_result_comment_names_everything() -> None:
    done = record()
    zh = views.result_comment(done, "U9", "zh", notes=["沙盒"])
    for part in (done.name, "推广活动: 双十一推广", "推广渠道: 微博", "https://gio.example/t/1", done.id, "<@U9>", "_沙盒_"):
        assert part in zh
    en = views.result_comment(record(type=CodeType.B, provider=Provider.WECHAT, scene="s=1", page="pages/a",
                                     campaign=None, channel=None, tracking_url=None), "U9", "en", reused=True)
    assert "Scene: `s=1`" in en and "reusing the code alice made" in en and "Campaign" not in en


# ---------------------------------------------------------------------------------------------- parsing


def _values(**fields: Any) -> dict[str, Any]:
    out = {}
    for name, value in fields.items():
        if name in ("type", "app", "campaign", "channel"):
            entry = {"type": "external_select" if name in ("campaign", "channel") else "static_select",
                     "selected_option": {"value": value} if value else None}
        elif name == "transparent":
            entry = {"type": "checkboxes", "selected_options": [{"value": v} for v in value]}
        else:
            entry = {"type": "plain_text_input", "value": value}
        out[name] = {name: entry}
    return out


def test_form_state_becomes_request_fields() -> None:
    values = _values(type="gio:A", page=" pages/a?x=1 ", campaign="n:双十一推广", channel="c:新渠道", medium="",
                     name=None, comments="hi")
    fields = parse.form_fields(values)
    assert fields == {"type": "A", "via": "gio", "page": "pages/a?x=1", "campaign": "双十一推广", "channel": "新渠道",
                      "create_missing": True, "comments": "hi"}
    assert CodeRequest.parse(fields).create_missing
    b = parse.form_fields(_values(type="wechat:B", scene="id=1", width="300", transparent=["yes"]))
    assert b == {"type": "B", "via": "wechat", "page": "", "scene": "id=1", "width": 300, "transparent": True}
    assert parse.form_fields(_values(type="wechat:A", width="wide"))["width"] == "wide"
    assert parse.form_fields({}, "wechat:C")["type"] == "C"
    assert parse.form_kind(_values(type="nonsense"), "wechat:A") == "wechat:A"


def test_slash_body_with_the_word_payload_is_read_as_a_form() -> None:
    raw = "command=%2Fminpcode&text=new+pages%2Fpayload&user_id=U1&team_id=T1"
    assert parse.slash_body_from_raw(raw) == {"command": "/minpcode", "text": "new pages/payload", "user_id": "U1",
                                              "team_id": "T1"}
    assert parse.slash_body_from_raw("payload=%7B%7D") is None
    assert parse.slash_body_from_raw("command=%2Fx&text=hello") is None  # Bolt reads this one itself
    assert parse.slash_body_from_raw('{"payload": 1}') is None


def test_metadata_fits_in_3000_characters() -> None:
    big = {"c": "C1", "r": "https://hooks.slack.com/x", "id": "abc", "f": {"comments": "长" * 3000}}
    text = parse.dump_metadata(big)
    assert len(text) <= 3000 and json.loads(text) == {"c": "C1", "r": "https://hooks.slack.com/x", "id": "abc"}
    assert parse.load_metadata({"private_metadata": text})["id"] == "abc"
    assert parse.load_metadata({"private_metadata": "not json"}) == {}


def test_origins() -> None:
    origin = parse.command_origin({"team_id": "T", "user_id": "U", "channel_id": "C", "response_url": ""})
    assert (origin.team_id, origin.user_id, origin.channel_id, origin.response_url) == ("T", "U", "C", None)
    origin = parse.action_origin({"user": {"id": "U", "username": "u", "team_id": "T"}, "team": None})
    assert (origin.team_id, origin.user_id, origin.user_name, origin.channel_id) == ("T", "U", "u", None)


def test_settings_problems() -> None:
    assert "SLACK_BOT_TOKEN" in (settings_problem(None, "s", None) or "")
    assert "SLACK_SIGNING_SECRET" in (settings_problem("xoxb-1", None, None) or "")
    assert settings_problem("xoxb-1", None, "xapp-1") is None
    assert settings_problem("xoxb-1", "s", None) is None


def test_loopback_bypasses_proxy_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NO_PROXY", "internal.example")
    assert bypass_proxy("http://127.0.0.1:9000/api/") and bypass_proxy("http://localhost/api/")
    assert bypass_proxy("https://slack.internal.example/api/")
    assert not bypass_proxy("https://slack.com/api/")


# ---------------------------------------------------------------------------------------------- manifest


@pytest.mark.skipif(not SCHEMA.exists(), reason=f"no copy of Slack's manifest schema at {SCHEMA}")
def test_manifest_is_valid_against_slacks_schema() -> None:
    manifest = yaml.safe_load((ROOT / "manifest.yml").read_text(encoding="utf-8"))
    jsonschema.validate(manifest, json.loads(SCHEMA.read_text(encoding="utf-8")))


def test_manifest_is_complete() -> None:
    manifest = yaml.safe_load((ROOT / "manifest.yml").read_text(encoding="utf-8"))
    [command] = manifest["features"]["slash_commands"]
    assert command["command"] == "/minpcode" and command["url"].endswith("/slack/events")
    assert manifest["features"]["app_home"]["home_tab_enabled"] is True
    settings = manifest["settings"]
    assert settings["event_subscriptions"]["bot_events"] == ["app_home_opened", "message.im", "app_mention"]
    assert settings["interactivity"]["is_enabled"] is True
    assert settings["interactivity"]["message_menu_options_url"].endswith("/slack/events")
    from handlers.slack.app import REQUIRED_SCOPES

    assert set(manifest["oauth_config"]["scopes"]["bot"]) == set(REQUIRED_SCOPES)


# ---------------------------------------------------------------------------------------------- boundaries


def test_slack_failures_are_named_by_slack_or_by_us_never_by_a_library_class() -> None:
    from slack_sdk.errors import SlackApiError, SlackClientError
    from slack_sdk.web.slack_response import SlackResponse

    from bot.errors import MinpcodeError
    from handlers.slack.errors import SLACK_FAILURES, SlackFailure, slack_error

    refused = SlackApiError("refused", SlackResponse(client=None, http_verb="POST", api_url="http://127.0.0.1/x",
                                                     req_args={}, data={"ok": False, "error": "not_in_channel"},
                                                     headers={}, status_code=200))
    assert slack_error(refused) == "not_in_channel"
    assert slack_error(TimeoutError()) == "timeout"
    assert slack_error(SlackClientError("boom")) == "unreachable"
    assert slack_error(ConnectionRefusedError()) == "unreachable"
    assert all(isinstance(e, SLACK_FAILURES) for e in (refused, TimeoutError(), ConnectionRefusedError()))
    failure = SlackFailure.of(refused)
    assert isinstance(failure, MinpcodeError) and failure.error_code == "not_in_channel"
    assert "not_in_channel" in failure.message.zh and "not_in_channel" in failure.message.en


def test_thumbnails_need_a_public_https_host_not_any_loopback() -> None:
    assert not thumbnails_possible("https://localhost/base")
    assert not thumbnails_possible("https://127.0.0.2:8443")
    assert not thumbnails_possible("https://[::1]/")


def test_form_kinds_come_from_the_one_kind_table() -> None:
    from bot.kinds import kind_of

    for value, (type_, via, zh, en) in views.KINDS.items():
        kind = kind_of(value)
        assert kind is not None and (kind.type, kind.label.zh, kind.label.en) == (type_, zh, en)
        assert via == (kind.via or "wechat")
    assert views.default_kind(True) == "gio:A" and views.default_kind(False) == "wechat:A"
