"""``minpcode webhooks``: register, list, remove and test the signed webhooks (bot/webhooks, docs/webhooks.md).

The terminal's operator runs as the database's owner (bot/permissions.py ``may_administer``), as for the team's
poster templates: these commands are the admins'.
"""

from __future__ import annotations

from typing import Annotated

import typer

from bot.service import Service
from bot.text import local_time
from bot.webhooks import EVENT_TYPES
from bot.webhooks.service import Delivery
from handlers.cli.app import Cli
from handlers.cli.output import ExitCode, out, print_json_out, say
from handlers.cli.terminal import table

EVENTS_HELP = "Events to send, comma-separated (default: all): " + ", ".join(EVENT_TYPES) + "."
JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable output. 机器可读输出。")]


def _outcome(d: Delivery) -> str:
    if d.state == "done":
        return f"delivered 已送达 ({d.last_status})"
    if d.state == "failed":
        return f"failed 失败: {d.last_error or d.last_status}"
    if d.attempts:
        return f"retrying 重试中 ({d.attempts}): {d.last_error or d.last_status}"
    return "pending 待发送"


def _deliveries_table(rows: list[Delivery], service: Service) -> None:
    zone = service.settings.zone
    shown = table("时间 When", "Endpoint", "事件 Event", "Event id", "结果 Outcome")
    for d in rows:
        shown.add_row(local_time(d.updated_at, zone), d.endpoint_id, d.event_type, d.event_id, _outcome(d))
    out.print(shown)


def register(app: typer.Typer, cli: Cli) -> None:
    run, requester = cli.run, cli.requester
    hooks = typer.Typer(help="Signed webhooks: what happens, POSTed to your endpoints (admins). 签名 webhook。",
                        no_args_is_help=True)
    app.add_typer(hooks, name="webhooks")

    @hooks.command("add")
    def add(url: Annotated[str, typer.Argument(metavar="URL", help="Where events are POSTed (https://…).")],
            events: Annotated[str, typer.Option("--events", help=EVENTS_HELP)] = "",
            secret: Annotated[str | None, typer.Option("--secret", help="The signing secret (default: one is "
                                                       "made and printed once).")] = None) -> None:
        """Register an endpoint; its signing secret is printed once, here, and never again.

        Example:

            minpcode webhooks add https://hooks.example.com/minpcode --events code.made,quota.threshold
        """
        async def body(service: Service) -> int:
            added = await service.webhooks.add(url, events.split(","), secret, requester=requester())
            e = added.endpoint
            names = ", ".join(e.events) or "all 全部"
            say(f"已添加 webhook {e.id}：{e.url}（事件：{names}）\nWebhook {e.id} added: {e.url} (events: {names})",
                style="green")
            if added.generated:
                say(f"签名密钥（只显示这一次，请现在保存）/ Signing secret (shown only now; keep it):\n{added.secret}")
            return 0
        run(body)

    @hooks.command("list")
    def list_(as_json: JsonOpt = False,
              last: Annotated[int, typer.Option("--last", min=0, max=100,
                                                help="Deliveries shown per endpoint.")] = 5) -> None:
        """The endpoints (never their secrets) and each one's latest deliveries."""
        async def body(service: Service) -> int:
            who = requester()
            endpoints = service.webhooks.endpoints(who)
            recent = {e.id: service.webhooks.deliveries(who, e.id, last) if last else [] for e in endpoints}
            if as_json:
                print_json_out([{**e.model_dump(mode="json"),
                                 "deliveries": [d.model_dump(mode="json") for d in recent[e.id]]} for e in endpoints])
                return 0
            if not endpoints:
                say("还没有 webhook。\nNo webhooks yet: minpcode webhooks add URL")
                return 0
            shown = table("Id", "URL", "事件 Events", "添加者 Added by")
            for e in endpoints:
                shown.add_row(e.id, e.url, ", ".join(e.events) or "all", e.created_by)
            out.print(shown)
            rows = [d for e in endpoints for d in recent[e.id]]
            if rows:
                _deliveries_table(sorted(rows, key=lambda d: d.id, reverse=True), service)
            return 0
        run(body, as_json=as_json)

    @hooks.command("deliveries")
    def deliveries(endpoint: Annotated[str | None, typer.Argument(metavar="[ID|URL]")] = None,
                   limit: Annotated[int, typer.Option("--limit", min=1, max=500)] = 20,
                   as_json: JsonOpt = False) -> None:
        """The latest deliveries (of one endpoint) and their outcome."""
        async def body(service: Service) -> int:
            rows = service.webhooks.deliveries(requester(), endpoint, limit)
            if as_json:
                print_json_out([d.model_dump(mode="json") for d in rows])
            elif rows:
                _deliveries_table(rows, service)
            else:
                say("还没有投递。\nNo deliveries yet.")
            return 0
        run(body, as_json=as_json)

    @hooks.command("remove")
    def remove(endpoint: Annotated[str, typer.Argument(metavar="ID|URL")]) -> None:
        """Stop sending to an endpoint (what it was still owed is given up)."""
        async def body(service: Service) -> int:
            gone = service.webhooks.remove(endpoint, requester())
            say(f"已删除 webhook {gone.id}（{gone.url}）。\nWebhook {gone.id} removed ({gone.url}).", style="green")
            return 0
        run(body)

    @hooks.command("test")
    def test(endpoint: Annotated[str, typer.Argument(metavar="URL|ID", help="A registered endpoint.")],
             as_json: JsonOpt = False) -> None:
        """Send a signed ping to a registered endpoint now and say how it answered.

        Example:

            minpcode webhooks test https://hooks.example.com/minpcode
        """
        async def body(service: Service) -> int:
            sent = await service.webhooks.test(endpoint, requester())
            if as_json:
                print_json_out(sent.model_dump(mode="json"))
            elif sent.state == "done":
                say(f"ping {sent.event_id} 已送达（HTTP {sent.last_status}）。\nping {sent.event_id} delivered "
                    f"(HTTP {sent.last_status}).", style="green")
            else:
                say(f"ping {sent.event_id} 没有送达：{sent.last_error}\nping {sent.event_id} was not delivered: "
                    f"{sent.last_error}", style="red", to_err=True)
            return ExitCode.OK if sent.state == "done" else ExitCode.UPSTREAM
        run(body, as_json=as_json)


__all__ = ["register"]
