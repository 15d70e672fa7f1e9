"""What a chat attaches to an answer (handlers/attachments.py), decided once for Slack, WeCom and the console."""

from __future__ import annotations

from bot import links
from handlers.attachments import attachment
from handlers.commands import Reply
from tests.slack.test_views import record


def test_a_code_answer_attaches_the_code_and_links_it_only_where_people_can_reach_us() -> None:
    done = record()
    reply = Reply(zh="码已生成。", en="Your code is ready.", record=done, image=b"\xff\xd8jpeg", image_mime="image/jpeg")
    attached = attachment(reply, None)
    assert attached is not None and attached.data == reply.image and attached.mime == "image/jpeg"
    assert attached.filename == f"minpcode-{done.id}.jpg" and not attached.poster
    assert attached.url is None and attached.code_url is None  # no link rather than a dead one
    linked = attachment(reply, "https://qr.example.com/")
    assert linked is not None and linked.url == f"https://qr.example.com/codes/{done.id}.png"
    assert linked.url == links.code_image_url("https://qr.example.com", done.id)


def test_an_answer_without_an_image_attaches_nothing() -> None:
    assert attachment(Reply(zh="已删除。", en="Deleted.", record=record()), "https://qr.example.com") is None
