"""WeCom's AI bot (智能机器人) over its long connection: @-mentions in groups and 1:1 chats, no public URL.

    wecom_aibot_front_end(service) -> FrontEnd | None   (front.py; None without WECOM_BOT_ID/WECOM_BOT_SECRET)

A second WeCom front-end beside the self-built app (handlers/wecom): the same person (``wecom:<userid>``),
the same commands (handlers/commands.py). The protocol and its limits are in protocol.py, the connection
in gateway.py.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bot.ports import FrontEnd
    from bot.service import Service


def wecom_aibot_front_end(service: Service) -> FrontEnd | None:
    from .front import wecom_aibot_front_end as build

    return build(service)


__all__ = ["wecom_aibot_front_end"]
