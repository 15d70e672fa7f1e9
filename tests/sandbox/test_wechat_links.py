"""The WeChat emulator's URL Link (``/wxa/generate_urllink``) and URL Scheme (``/wxa/generatescheme``) over
real loopback HTTP, as WeChat's pages describe them:
https://developers.weixin.qq.com/miniprogram/dev/server/API/qrcode-link/url-link/api_generateurllink.html and
https://developers.weixin.qq.com/miniprogram/dev/server/API/qrcode-link/url-scheme/api_generatescheme; the
shared daily 500,000 on https://developers.weixin.qq.com/miniprogram/dev/framework/open-ability/url-link.html."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest

from tests.sandbox.test_wechat import Sandbox, errcode

URLLINK, SCHEME = "/wxa/generate_urllink", "/wxa/generatescheme"
DAY = 86400


def test_url_link_by_days_and_by_time(sb: Sandbox) -> None:
    answer = sb.call(URLLINK, {"path": "pages/a/a", "query": "id=1&from=sms", "expire_type": 1,
                               "expire_interval": 7}).json()
    assert answer["errcode"] == 0 and re.fullmatch(r"https://wxaurl\.cn/[0-9A-Za-z]+", answer["url_link"])
    made = sb.emu.links[-1]
    assert (made["kind"], made["path"], made["query"], made["env_version"]) == ("urllink", "pages/a/a",
                                                                               "id=1&from=sms", "release")
    assert made["expires_at"] == sb.clock() + 7 * DAY
    # expire_type 0 (the default) takes an expire_time; an empty path is the home page.
    answer = sb.call(URLLINK, {"expire_time": int(sb.clock()) + 3600, "env_version": "trial"}).json()
    assert answer["errcode"] == 0 and sb.emu.links[-1]["path"] == "" and sb.emu.links[-1]["env_version"] == "trial"


def test_url_scheme_takes_jump_wxa(sb: Sandbox) -> None:
    answer = sb.call(SCHEME, {"jump_wxa": {"path": "pages/a/a", "query": "id=1"}, "expire_type": 1,
                              "expire_interval": 30}).json()
    assert answer["errcode"] == 0 and re.fullmatch(r"weixin://dl/business/\?t=[0-9A-Za-z]+", answer["openlink"])
    assert sb.emu.links[-1]["kind"] == "scheme" and sb.emu.links[-1]["expires_at"] == sb.clock() + 30 * DAY
    # The examples still send the old is_expire: taken and ignored (every link expires).
    assert sb.call(SCHEME, {"jump_wxa": {"path": "pages/a/a"}, "is_expire": True, "expire_type": 1,
                            "expire_interval": 1}).json()["errcode"] == 0


@pytest.mark.parametrize(("body", "code"), [
    ({"path": "pages/a/a?id=1", "expire_type": 1, "expire_interval": 1}, 40165),  # "不可携带 query"
    ({"path": "pages/a/a", "query": "名=1", "expire_type": 1, "expire_interval": 1}, 40212),
    ({"path": "pages/a/a", "query": "a=1 b", "expire_type": 1, "expire_interval": 1}, 40212),
    ({"path": "pages/a/a", "query": "a" * 1025, "expire_type": 1, "expire_interval": 1}, 40212),
    ({"path": "pages/a/a", "expire_type": 1, "expire_interval": 31}, 85401),  # "最长间隔天数为30天"
    ({"path": "pages/a/a", "expire_type": 1, "expire_interval": 0}, 85401),
    ({"path": "pages/a/a", "expire_type": 1}, 85401),  # "expire_type 为 1 必填"
    ({"path": "pages/a/a"}, 85401),  # expire_type 0: expire_time required
    ({"path": "pages/a/a", "env_version": "beta", "expire_type": 1, "expire_interval": 1}, 85402),
    ({"path": "pages/a/a", "expire_type": "1", "expire_interval": 1}, 47001),
    ({"path": "pages/a/a", "expire_type": 1, "expire_interval": 1, "scene": "x"}, 47001),
])
def test_url_link_rules(sb: Sandbox, body: dict[str, Any], code: int) -> None:
    assert errcode(sb.call(URLLINK, body)) == code
    assert not sb.emu.links


def test_the_expiry_is_one_minute_to_thirty_days_away(sb: Sandbox) -> None:
    now = int(sb.clock())
    for when, code in ((now + 30, 85401), (now + 30 * DAY + 1, 85401), (now + 61, 0), (now + 30 * DAY, 0)):
        answer = sb.call(SCHEME, {"jump_wxa": {"path": "pages/a/a"}, "expire_time": when})
        assert (errcode(answer) if code else answer.json()["errcode"]) == code


def test_the_page_must_exist_in_the_released_version(sandbox: Callable[..., Sandbox]) -> None:
    sb = sandbox(pages={"pages/a/a"})
    assert sb.call(URLLINK, {"path": "pages/a/a", "expire_type": 1, "expire_interval": 1}).json()["errcode"] == 0
    assert errcode(sb.call(URLLINK, {"path": "pages/b/b", "expire_type": 1, "expire_interval": 1})) == 40165
    assert errcode(sb.call(SCHEME, {"jump_wxa": {"path": "pages/b/b"}, "expire_type": 1, "expire_interval": 1})) == 40165


def test_personal_and_unreleased_mini_programs(sandbox: Callable[..., Sandbox]) -> None:
    body = {"path": "pages/a/a", "expire_type": 1, "expire_interval": 1}
    assert errcode(sandbox(links_allowed=False).call(URLLINK, body)) == 40002
    assert errcode(sandbox(released=False).call(SCHEME, {"jump_wxa": {}, "expire_type": 1, "expire_interval": 1})) == 85079


def test_url_link_and_url_scheme_share_the_daily_count(sandbox: Callable[..., Sandbox]) -> None:
    sb = sandbox(links_per_day=2)
    link = {"path": "pages/a/a", "expire_type": 1, "expire_interval": 1}
    assert sb.call(URLLINK, link).json()["errcode"] == 0
    assert sb.call(SCHEME, {"jump_wxa": {"path": "pages/a/a"}, "expire_type": 1, "expire_interval": 1}).json()["errcode"] == 0
    assert errcode(sb.call(URLLINK, link)) == 44993
    assert errcode(sb.call(SCHEME, {"jump_wxa": {}, "expire_type": 1, "expire_interval": 1})) == 44993
    sb.clock.advance(DAY)  # Beijing's next day
    assert sb.call(URLLINK, link).json()["errcode"] == 0


def test_a_hundred_a_second(sandbox: Callable[..., Sandbox]) -> None:
    sb = sandbox(links_per_second=2)
    link = {"path": "pages/a/a", "expire_type": 1, "expire_interval": 1}
    assert [sb.call(URLLINK, link).json()["errcode"] for _ in range(2)] == [0, 0]
    assert errcode(sb.call(URLLINK, link)) == 44990
    sb.clock.advance(1.0)
    assert sb.call(URLLINK, link).json()["errcode"] == 0
