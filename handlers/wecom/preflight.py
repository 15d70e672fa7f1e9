"""WeCom's ``minpcode doctor`` rows: ``gettoken`` (corp id and secret), the app (``agent/get``: AgentId,
and 60020 when this server's IP is not among the app's trusted IPs, with the IP to add).

Only reads; the group robot (WECOM_WEBHOOK_URL) is not called, since its only method posts a message.
"""

from __future__ import annotations

import httpx
from pydantic import SecretStr

from bot.config import Settings
from bot.errors import MinpcodeError, UpstreamError
from bot.messages import caller_ip
from bot.ports import Check, CheckStatus
from handlers.wecom.client import WeComClient

TIMEOUT = httpx.Timeout(10.0, connect=5.0)
_FIXES: dict[int, tuple[str, tuple[str, str]]] = {
    40013: ("WECOM_CORP_ID", ("把「我的企业 → 企业信息」里的企业 ID 填到 WECOM_CORP_ID。",
                              "Put the corp ID (My Company → Company Info) in WECOM_CORP_ID.")),
    40001: ("WECOM_SECRET", ("把这个应用的 Secret（应用管理 → 应用 → Secret）填到 WECOM_SECRET。",
                             "Put this app's Secret (App Management → the app → Secret) in WECOM_SECRET.")),
    40056: ("WECOM_AGENT_ID", ("把应用的 AgentId 填到 WECOM_AGENT_ID。", "Put the app's AgentId in WECOM_AGENT_ID.")),
}
_FIXES[40091] = _FIXES[40001]
_FIXES[301002] = ("WECOM_AGENT_ID", ("WECOM_AGENT_ID 和 WECOM_SECRET 不是同一个应用的：让两者属于同一个应用。",
                                     "WECOM_AGENT_ID and WECOM_SECRET belong to different apps: make them the same app's."))


def _row(name: str, status: CheckStatus, zh: str, en: str, *, fix: tuple[str, str] | None = None,
         setting: str | None = None) -> Check:
    return Check.of("wecom", name, status, zh, en, fix=fix, setting=setting)


def _failed(name: str, exc: MinpcodeError, agent_id: str) -> Check:
    code = exc.code if isinstance(exc, UpstreamError) else None
    said = f"（{code}）" if code not in (None, "") else ""
    if code == 60020:
        ip = _trusted_ip(exc) or "这台服务器的出口 IP / this server's egress IP"
        return _row(name, "failed", f"企业微信拒绝了来自 {ip} 的调用：它不在应用的「企业可信IP」里（60020）。",
                    f"WeCom refused the call from {ip}: it is not among the app's trusted IPs (60020).",
                    setting="WeCom trusted IP",
                    fix=(f"管理后台 → 应用管理 → 应用（AgentId {agent_id}）→ 企业可信IP → 添加 {ip}。",
                         f"Admin console → App Management → the app (AgentId {agent_id}) → Trusted IPs → add {ip}."))
    if isinstance(code, int) and code in _FIXES:
        setting, fix = _FIXES[code]
        return _row(name, "failed", exc.zh + said, exc.en + said.replace("（", " (").replace("）", ")"),
                    setting=setting, fix=fix)
    return _row(name, "failed", exc.zh + said, exc.en + said.replace("（", " (").replace("）", ")"),
                setting="WECOM_API_URL", fix=("检查网络和 WECOM_API_URL。", "Check the network and WECOM_API_URL."))


def _trusted_ip(exc: MinpcodeError) -> str | None:
    return caller_ip(exc.raw) if isinstance(exc, UpstreamError) else None


class WeComPreflight:
    name = "wecom"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    async def checks(self) -> list[Check]:
        s = self.settings
        if not (s.wecom_corp_id or s.wecom_agent_id or s.wecom_secret or s.wecom_token or s.wecom_aes_key):
            rows = [_row("configured", "skipped", "没有配置企业微信应用（WECOM_*）。", "The WeCom app is not configured (WECOM_*).")]
        elif problems := s.problems("WECOM_APP"):
            setting = problems[0].split(" ", 1)[0].rstrip(",")
            rows = [_row("settings", "failed", problems[0], problems[0], setting=setting,
                         fix=("按这一行的说明修改。", "Change it as the line says."))]
        else:
            rows = await self._live(s)
        if s.wecom_webhook_url:
            rows.append(_row("group robot", "skipped", "群机器人只能发消息，不检查（WECOM_WEBHOOK_URL 已设置）。",
                             "The group robot can only post, so it is not called (WECOM_WEBHOOK_URL is set)."))
        return rows

    async def _live(self, s: Settings) -> list[Check]:
        agent_id = (s.wecom_agent_id or "").strip()
        async with httpx.AsyncClient(timeout=TIMEOUT) as http:
            client = WeComClient(http, s.wecom_api_url, (s.wecom_corp_id or "").strip(), int(agent_id),
                                 s.wecom_secret or SecretStr(""))
            try:
                await client.token()
            except MinpcodeError as exc:
                return [_failed("gettoken", exc, agent_id)]
            rows = [_row("gettoken", "ok", f"企业 {client.corp_id} 的 access_token 获取成功。",
                         f"Got an access token for corp {client.corp_id}.")]
            try:
                answer = await client.call("GET", "agent/get", params={"agentid": agent_id})
            except MinpcodeError as exc:
                return [*rows, _failed("agent", exc, agent_id)]
        name = answer.get("name") or agent_id
        if answer.get("close"):
            return [*rows, _row("agent", "failed", f"应用「{name}」已停用。", f"The app '{name}' is disabled.",
                                setting="WECOM_AGENT_ID", fix=("在管理后台启用这个应用。", "Enable the app in the admin console."))]
        return [*rows, _row("agent", "ok", f"应用「{name}」（AgentId {agent_id}）可以调用。",
                            f"The app '{name}' (AgentId {agent_id}) answers.")]


def wecom_preflight(settings: Settings) -> WeComPreflight:
    return WeComPreflight(settings)


__all__ = ["WeComPreflight", "wecom_preflight"]
