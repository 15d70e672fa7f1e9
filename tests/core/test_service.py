"""The core service over the WeChat and GrowingIO emulators on real loopback ports and a real SQLite file."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot import sandbox
from bot.config import Settings
from bot.errors import InputError, InvalidRequest, NotFound, PermissionDenied, QuotaExhausted
from bot.models import Status
from bot.server import open_service
from bot.service import Service
from tests.emulators.upstreams import PEOPLE, Upstreams

ALICE, BOB, ADMIN = PEOPLE


@pytest.fixture
async def service(upstreams: Upstreams, tmp_path: Path, database_url: str | None) -> AsyncIterator[Service]:
    upstreams.wechat.reset_counts()
    async with open_service(upstreams.settings(tmp_path, minpcode_database_url=database_url)) as svc:
        assert svc.storage.dialect == ("postgresql" if database_url else "sqlite")  # the backend asked for
        yield svc


B_CODE = {"type": "B", "page": "pages/index/index", "scene": "id=42"}


async def test_b_code_is_made_recorded_and_stored(service: Service) -> None:
    submission = await service.submit(B_CODE, ALICE)
    record = submission.record
    assert record.status is Status.DONE and not submission.reused
    assert record.provider.value == "wechat" and record.requested_by == "slack:U_ALICE"
    data, mime = service.image(record.id)
    assert mime == "image/jpeg" and data.startswith(b"\xff\xd8\xff")
    assert service.storage.images.count() == 1
    assert [a["action"] for a in service.storage.audit.for_code(record.id)] == ["requested"]


async def test_identical_request_is_reused_without_an_upstream_call(service: Service, upstreams: Upstreams) -> None:
    first = await service.submit(B_CODE, ALICE)
    calls = upstreams.wechat.calls["/wxa/getwxacodeunlimit"]
    again = await service.submit({**B_CODE, "name": "another-name"}, BOB)
    assert again.reused and again.record.id == first.record.id
    assert again.original_by == "alice"
    assert upstreams.wechat.calls["/wxa/getwxacodeunlimit"] == calls
    other_scene = await service.submit({**B_CODE, "scene": "id=43"}, BOB)
    assert not other_scene.reused and other_scene.record.id != first.record.id
    assert "reused" in [a["action"] for a in service.storage.audit.for_code(first.record.id)]


async def test_gio_tracking_link_with_campaign_and_channel(service: Service, upstreams: Upstreams) -> None:
    result = await service.submit({"type": "A", "page": "pages/list/list", "campaign": "双十一推广",
                                   "channel": "今日头条", "medium": "海报"}, ALICE)
    record = result.record
    assert record.status is Status.DONE and record.provider.value == "gio"
    assert record.tracking_url and record.tracking_url.startswith("pages/list/list?aid=")
    assert record.campaign_id and record.channel_id == "jinritoutiao"
    assert service.storage.ledger.used(sandbox.SANDBOX_APPID) == 1


async def test_unknown_campaign_names_the_closest_and_create_makes_it(service: Service) -> None:
    with pytest.raises(NotFound) as info:
        await service.submit({"type": "C", "page": "pages/a/a", "campaign": "双十一", "channel": "今日头条"}, ALICE)
    assert info.value.field == "campaign" and "双十一推广" in info.value.zh and "create=yes" in info.value.en
    assert service.storage.history.count() == 0
    created = await service.submit({"type": "C", "page": "pages/a/a", "campaign": "冬季促销", "channel": "今日头条",
                                    "create_missing": True}, ALICE)
    assert created.record.status is Status.DONE and created.record.campaign == "冬季促销"


async def test_a_campaign_made_by_create_is_offered_by_the_next_form_at_once(service: Service) -> None:
    before = [o.label for o in await service.options("campaign", timeout=5)]
    # a name GrowingIO does not have yet (the emulator outlives one backend's run of this test)
    name = next(n for n in ("秋季上新", "秋季上新二", "秋季上新三") if n not in before)
    assert before and name not in before  # the forms' list is loaded and fresh
    made = await service.submit({"type": "C", "page": "pages/a/a", "campaign": name, "channel": "今日头条",
                                 "create_missing": True}, ALICE)
    assert made.record.status is Status.DONE
    assert name in [o.label for o in await service.options("campaign", timeout=5)]


async def test_a_b_page_with_a_leading_slash_is_accepted_and_is_the_same_code(service: Service) -> None:
    slashed = await service.submit({**B_CODE, "page": "/pages/index/index"}, ALICE)
    assert slashed.record.status is Status.DONE and slashed.record.page == "pages/index/index"
    plain = await service.submit(B_CODE, BOB)
    assert plain.reused and plain.record.id == slashed.record.id


async def test_field_rules_are_enforced_before_any_upstream_call(service: Service, upstreams: Upstreams) -> None:
    before = sum(upstreams.wechat.calls.values())
    with pytest.raises(InvalidRequest) as info:
        await service.submit({"type": "B", "page": "pages/x?y=1", "scene": "x" * 33, "width": 100}, ALICE)
    assert set(info.value.by_field()) == {"page", "scene", "width"}
    with pytest.raises(InvalidRequest) as info:
        await service.submit({"type": "A", "page": "pages/a", "campaign": "a", "channel": "b", "name": "has space"}, ALICE)
    assert "name" in info.value.by_field()
    assert sum(upstreams.wechat.calls.values()) == before
    assert service.storage.history.count() == 0


async def test_upstream_failure_is_recorded_with_its_code_and_a_message(service: Service, upstreams: Upstreams) -> None:
    upstreams.wechat.inject(41030, path="/wxa/getwxacodeunlimit")
    result = await service.submit({**B_CODE, "page": "pages/missing/missing"}, ALICE)
    record = result.record
    assert record.status is Status.FAILED and record.error_code == "41030"
    assert "页面" in (record.error or "") and "page" in (record.error or "")
    # A failed row is not reused: the next identical request tries again.
    retry = await service.submit({**B_CODE, "page": "pages/missing/missing"}, ALICE)
    assert not retry.reused and retry.record.status is Status.DONE


async def test_quota_warnings_and_refusal_at_a_small_cap(upstreams: Upstreams, tmp_path: Path,
                                                         database_url: str | None) -> None:
    async with open_service(upstreams.settings(tmp_path, minpcode_ac_cap=5, minpcode_database_url=database_url)) as svc:
        assert svc.storage.dialect == ("postgresql" if database_url else "sqlite")
        notices = []
        for n in range(5):
            result = await svc.submit({"type": "A", "via": "wechat", "page": f"pages/p{n}/p{n}"}, ALICE)
            assert result.record.status is Status.DONE
            notices.append([x.en for x in result.notices])
        assert notices[2] == [] and "80%" in notices[3][0] and "100%" in notices[4][0]
        with pytest.raises(QuotaExhausted) as info:
            await svc.submit({"type": "C", "via": "wechat", "page": "pages/new/new"}, ALICE)
        assert "B code" in info.value.en
        # identical repeats and B codes still work at the cap
        assert (await svc.submit({"type": "A", "via": "wechat", "page": "pages/p0/p0"}, BOB)).reused
        assert (await svc.submit(B_CODE, BOB)).record.status is Status.DONE
        quota = svc.quota()[0]
        assert (quota.used, quota.left) == (5, 0)


async def test_rename_and_delete_permissions(service: Service) -> None:
    record = (await service.submit(B_CODE, ALICE)).record
    with pytest.raises(PermissionDenied):
        service.rename(record.id, "bobs-name", BOB)
    with pytest.raises(InputError):  # names follow GrowingIO's rules
        service.rename(record.id, "bad name!", ALICE)
    assert service.rename(record.id, "春季-海报", ALICE).name == "春季-海报"
    assert service.rename(record.id, "admin-fixed", ADMIN).name == "admin-fixed"
    with pytest.raises(PermissionDenied):
        service.delete(record.id, BOB)
    assert service.delete(record.id, ALICE).status is Status.DELETED
    with pytest.raises(NotFound):
        service.rename(record.id, "again", ALICE)
    assert record.id not in [r.id for r in service.recent()]
    actions = [a["action"] for a in service.storage.audit.for_code(record.id)]
    assert actions == ["requested", "rename_refused", "renamed", "renamed", "delete_refused", "deleted"]
    refused = service.storage.audit.for_code(record.id)[1]
    assert refused["actor"] == BOB.key and refused["detail"] == {"owner": ALICE.key}


async def test_gio_names_are_unique_but_an_identical_request_still_reuses(service: Service) -> None:
    link = {"type": "A", "page": "pages/list/list", "campaign": "新品上市", "channel": "今日头条", "name": "海报-1"}
    first = await service.submit(link, ALICE)
    again = await service.submit(link, BOB)
    assert again.reused and again.record.id == first.record.id
    with pytest.raises(InvalidRequest) as info:
        await service.submit({**link, "page": "pages/other/other"}, ALICE)
    assert "name" in info.value.by_field()
    assert service.rename(first.record.id, "海报-1", ALICE).name == "海报-1"


async def test_list_search_and_mine(service: Service) -> None:
    await service.submit({**B_CODE, "name": "春节海报"}, ALICE)
    await service.submit({**B_CODE, "scene": "id=7", "name": "summer-poster"}, BOB)
    assert [r.name for r in service.recent(query="春节")] == ["春节海报"]
    assert [r.name for r in service.recent(query="poster")] == ["summer-poster"]
    assert [r.name for r in service.recent(BOB, everyone=False)] == ["summer-poster"]
    assert len(service.recent(ADMIN, everyone=False)) == 2


SCRIPT = textwrap.dedent("""
    import asyncio, os, signal, sys
    from pydantic import SecretStr
    from bot.config import Settings
    from bot.server import open_service
    from bot.models import Requester

    async def main():
        settings = Settings(_env_file=None, minpcode_data_dir=sys.argv[1], minpcode_sandbox=False,
                            wechat_appid=sys.argv[2], wechat_secret=SecretStr(sys.argv[3]), wechat_api_url=sys.argv[4])
        service = open_service(settings)
        # recorded, but the worker never started: the process dies before any upstream call
        submission = await service.submit({"type": "B", "page": "pages/index/index", "scene": "crash=1"},
                                          Requester(user_id="U_ALICE"), wait=False)
        print(submission.record.id, flush=True)
        os.kill(os.getpid(), signal.SIGKILL)

    asyncio.run(main())
""")


@pytest.mark.slow
async def test_pending_row_survives_a_killed_process_and_is_resumed(upstreams: Upstreams, tmp_path: Path) -> None:
    settings = upstreams.settings(tmp_path)
    before = upstreams.wechat.calls["/wxa/getwxacodeunlimit"]
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tmp_path), sandbox.SANDBOX_APPID, sandbox.SANDBOX_SECRET,
         settings.wechat_api_url], capture_output=True, text=True, timeout=60, env={**os.environ},
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    code_id = proc.stdout.strip()
    assert upstreams.wechat.calls["/wxa/getwxacodeunlimit"] == before
    async with open_service(settings) as svc:
        record = await svc.wait(code_id, timeout=20)
        assert record.status is Status.DONE
        assert svc.storage.history.pending() == []
    assert upstreams.wechat.calls["/wxa/getwxacodeunlimit"] == before + 1


async def test_sandbox_answers_say_so(tmp_path: Path) -> None:
    async with open_service(Settings(_env_file=None, minpcode_data_dir=tmp_path)) as svc:
        assert svc.sandbox
        result = await svc.submit(B_CODE, ALICE)
        assert result.record.sandbox and any("sandbox" in n.en for n in result.notices)


async def test_retry_after_a_link_landed_upstream_adopts_it(service: Service, upstreams: Upstreams) -> None:
    """A link GrowingIO made though we never heard back: the retry finds it instead of a 'duplicate name'."""
    fields = {"type": "C", "page": "pages/late/late", "campaign": "新品上市", "channel": "今日头条", "name": "late-link"}
    gio = service.upstream.gio
    assert gio is not None
    from bot.upstream.growingio import MinpLinkCreate

    campaign = await gio.resolve_campaign("新品上市", create=False, product_id=None)
    channel = await gio.resolve_channel("今日头条", create=False)
    await gio.create_minplink(MinpLinkCreate(name="late-link", productId=sandbox.GIO_PRODUCT_ID,
                                             redirectUrl="pages/late/late", campaignId=campaign.id,
                                             channelId=channel.id, codeType="C"))
    result = await service.submit(fields, ALICE)
    assert result.record.status is Status.DONE and result.record.name == "late-link"
    with pytest.raises(InvalidRequest):
        await service.submit({**fields, "page": "pages/other/other"}, ALICE)


async def test_identical_requests_at_once_make_one_code(service: Service, upstreams: Upstreams) -> None:
    import asyncio

    before = upstreams.wechat.calls["/wxa/getwxacodeunlimit"]
    results = await asyncio.gather(*(service.submit({**B_CODE, "scene": "burst=1"}, ALICE) for _ in range(8)))
    assert len({r.record.id for r in results}) == 1 and sum(not r.reused for r in results) == 1
    assert upstreams.wechat.calls["/wxa/getwxacodeunlimit"] == before + 1


async def test_control_characters_and_lone_surrogates_are_refused(service: Service) -> None:
    for bad in ("pages/a\x00", "pages/\ud800"):
        with pytest.raises(InvalidRequest) as info:
            await service.submit({"type": "A", "via": "wechat", "page": bad}, ALICE)
        assert "page" in info.value.by_field()


# -- long scenes behind keys, the same for every front-end that asks ----------------------------------------------------------------
LONG = "城市=上海&门店=静安寺&活动=双十一"


async def test_long_scenes_go_behind_a_key_when_asked(service: Service, upstreams: Upstreams) -> None:
    from bot import scenes

    prepared = await service.prepare({"type": "b", "page": "pages/a", "scene": "城市=北京", "comments": "x"},
                                     long_scene=True)
    assert prepared.scene and scenes.is_key(prepared.scene)
    assert prepared.comments and prepared.comments.startswith("x; scene k=")
    assert service.scene_params(prepared.scene) == "城市=北京"
    plain = await service.prepare({"type": "A", "via": "wechat", "page": "pages/a"}, long_scene=True)
    assert plain.scene is None and plain.comments is None
    fits = await service.prepare({**B_CODE, "scene": "id=7"}, long_scene=True)
    assert fits.scene == "id=7" and fits.comments is None

    # A chat's submit gets the same key the API would, and a prepared request keeps a single note.
    first = await service.submit({**B_CODE, "scene": LONG}, ALICE, long_scene=True)
    key = first.record.scene
    assert key and scenes.is_key(key) and first.record.status is Status.DONE
    assert service.scene_params(key) == LONG and first.record.comments == scenes.note(key, LONG)
    again = await service.submit(await service.prepare({**B_CODE, "scene": LONG}, long_scene=True), BOB,
                                 long_scene=True)
    assert again.reused and again.record.id == first.record.id
    by_key = await service.submit({**B_CODE, "scene": key}, BOB, long_scene=True)
    assert by_key.reused and by_key.record.id == first.record.id


async def test_a_refused_request_leaves_no_scene_row(service: Service) -> None:
    with pytest.raises(InvalidRequest) as info:  # a B page cannot carry a ?query
        await service.submit({"type": "B", "page": "pages/a?x=1", "scene": "城市=广州"}, ALICE, long_scene=True)
    assert "page" in info.value.by_field()
    assert service.storage.scenes.key_for("城市=广州") is None
    with pytest.raises(InvalidRequest) as info:  # not asked for: WeChat's own rule applies
        await service.submit({**B_CODE, "scene": "城市=广州"}, ALICE)
    assert "scene" in info.value.by_field()
    assert service.storage.scenes.key_for("城市=广州") is None
    with pytest.raises(InvalidRequest) as info:  # every problem at once: the scene's and the page's
        await service.submit({"type": "B", "page": "pages/a?x=1", "scene": "x" * 2000}, ALICE, long_scene=True)
    assert {"scene", "page"} <= set(info.value.by_field())


async def test_a_key_shaped_scene_must_be_a_key_we_gave(service: Service) -> None:
    with pytest.raises(InputError) as info:
        await service.submit({**B_CODE, "scene": "k=AAAAAAAAAA"}, ALICE, long_scene=True)
    assert "k=AAAAAAAAAA" in info.value.en


async def test_identical_long_scenes_at_once_make_one_key_and_one_code(service: Service, upstreams: Upstreams) -> None:
    import asyncio

    before = upstreams.wechat.calls["/wxa/getwxacodeunlimit"]
    results = await asyncio.gather(*(service.submit({**B_CODE, "scene": "门店=徐家汇"}, ALICE, long_scene=True) for _ in range(6)))
    assert len({r.record.id for r in results}) == 1 and len({r.record.scene for r in results}) == 1
    assert upstreams.wechat.calls["/wxa/getwxacodeunlimit"] == before + 1


async def test_a_key_drawn_while_the_same_parameters_were_stored_gives_way(service: Service) -> None:
    from bot import scenes

    placed = scenes.place(service.storage, "门店=陆家嘴")
    assert placed.new and placed.params == "门店=陆家嘴" and service.storage.scenes.key_for("门店=陆家嘴") is None
    meanwhile = scenes.shorten(service.storage, "门店=陆家嘴", "someone-else")
    kept = scenes.keep(service.storage, placed, "U_ALICE")
    assert kept == scenes.Placed(meanwhile, "门店=陆家嘴") and not kept.new
    assert scenes.keep(service.storage, kept) == kept  # nothing new to store
    assert scenes.place(service.storage, "门店=陆家嘴") == kept
