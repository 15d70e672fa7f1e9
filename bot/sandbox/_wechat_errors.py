"""WeChat errcodes the emulator answers, their errmsg texts, and the JSON error response."""

from __future__ import annotations

import json

from starlette.responses import Response

from bot.sandbox.faults import request_id

# The errmsg texts of WeChat's token, code, Short Link, URL Link and URL Scheme answers. Live servers append
# " rid: ..." so clients must match on errcode. Those of the link errcodes are what developers quote in WeChat's
# community where they do (40165, 40212, 85079), else ours: the pages list meanings, not errmsgs.
ERRMSG: dict[int, str] = {
    -1: "system error",
    40001: "invalid credential, access_token is invalid or not latest, could get access_token by "
    "getStableAccessToken, more details at https://mmbizurl.cn/s/JtxxFh33r",
    40002: "invalid grant_type",
    40013: "invalid appid",
    40014: "invalid access_token",
    40066: "invalid url",
    40097: "invalid args",
    40125: "invalid appsecret",
    40129: "invalid scene",
    40159: "invalid length for path, or the data is not json string",
    40169: "invalid length for scene, or the data is not json string",
    40189: "width invalid",
    40165: "invalid weapp pagepath",
    40212: "invalid query",
    40225: "invalid page title",
    41001: "access_token missing",
    41002: "appid missing",
    41004: "appsecret missing",
    41030: "invalid page",
    42001: "access_token expired",
    43002: "require POST method",
    43104: "this appid does not have permission",
    44990: "reach max api frequency limit per second",
    44993: "reach max daily generate quota limit",
    45009: "reach max api daily quota limit",
    45011: "api minute-quota reach limit  mustslower  retry next minute",
    45029: "qrcode count out of limit",
    47001: "data format error",
    48001: "api unauthorized",
    85079: "miniprogram has no online release",
    85096: "not allow include scancode_time field",
    85400: "reach max long time quota limit",
    85401: "time limit between 1min and 30days",
    85402: "invalid env_version",
}

JSON_CONTENT_TYPE = "application/json; encoding=utf-8"  # sic: "encoding=", as observed live


class WeChatError(Exception):
    """An errcode answer. Raised anywhere inside the emulator, turned into JSON at the edge."""

    def __init__(self, errcode: int, errmsg: str | None = None) -> None:
        self.errcode = errcode
        self.errmsg = errmsg if errmsg is not None else ERRMSG.get(errcode, "unknown error")
        super().__init__(f"{errcode} {self.errmsg}")


def json_response(body: dict[str, object]) -> Response:
    data = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return Response(data, status_code=200, media_type=JSON_CONTENT_TYPE)


def error_response(error: WeChatError) -> Response:
    return json_response({"errcode": error.errcode, "errmsg": f"{error.errmsg} rid: {request_id()}"})
