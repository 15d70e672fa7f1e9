"""A channel in ``private_metadata`` is used only when it is where this person opened the form."""

from __future__ import annotations

import json

from tests.emulators.slack import OTHER_PUBLIC_CHANNEL, PUBLIC_CHANNEL, ZH_USER_ID
from tests.slack.test_e2e import Harness, h, make_harness, state  # noqa: F401  (fixtures)


def test_a_sealed_channel_is_answered_in(h: Harness) -> None:  # noqa: F811
    view = h.open_form()
    h.submit(view, state(type="wechat:B", page="pages/index/index", scene="meta=1"))
    [upload] = h.uploads_for("meta")
    assert upload.channel_id == PUBLIC_CHANNEL


def test_a_forged_or_borrowed_channel_is_not_used(h: Harness) -> None:  # noqa: F811
    view = h.open_form()
    forged = {**view, "private_metadata": json.dumps({**json.loads(view["private_metadata"]),
                                                      "c": OTHER_PUBLIC_CHANNEL})}
    h.submit(forged, state(type="wechat:B", page="pages/index/index", scene="meta=2"))
    [upload] = h.uploads_for("meta")
    assert upload.channel_id != OTHER_PUBLIC_CHANNEL  # delivered to the person instead (DM)

    # a form opened by one person, submitted by another: the first one's channel is not the second's
    theirs = h.open_form(channel=PUBLIC_CHANNEL)
    h.submit(theirs, state(type="wechat:B", page="pages/index/index", scene="meta=3"), user=ZH_USER_ID)
    uploads = h.uploads_for("meta", count=2)
    assert uploads[-1].channel_id != PUBLIC_CHANNEL
