"""The MCP tools: each turns one tool call into one call of the service and renders its answer.

    server = McpTools(service, caller).server()   # an MCPServer of the official SDK (`mcp`), for any transport

``caller`` names who is asking for one call (``--name`` over stdio, the API key's name over HTTP); the
requester is ``mcp:<name>``, a person of its own as ``api:<name>`` is (bot/models.py), so permissions, the
audit log and the quota ledger see the MCP like every other front-end: nothing here reaches past the service.

Answers are structured (``structuredContent``, described by each tool's ``outputSchema``) and repeated as JSON
text for clients that read only text. A refusal is a tool error (``isError``) whose structured content is a
:class:`~handlers.mcp.models.ToolFailure`: the error's stable name, Chinese and English, and every field to
change, so the assistant can correct an argument rather than guess
(https://modelcontextprotocol.io/specification/2025-06-18/server/tools#error-handling: errors of a tool's
execution are reported in the result with ``isError``, protocol errors only for unknown tools and the like).
"""

from __future__ import annotations

import base64
import inspect
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, TypeVar, cast

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError, UnexpectedToolError
from mcp.types import CallToolResult, ContentBlock, ImageContent, TextContent, ToolAnnotations
from pydantic import BaseModel, Field, ValidationError

from bot import links
from bot.errors import FieldError, InvalidRequest, MinpcodeError
from bot.history import HistoryQuery
from bot.models import Requester, Status
from bot.service import Service
from bot.text import Text
from bot.version import __version__
from bot.wording import field_errors
from handlers.api.errors import CodeFailed, StillPending
from handlers.api.models import QRCodeRequest
from handlers.api.routes import WAIT_SECONDS, Api, code_view, make_poster
from handlers.mcp import descriptions
from handlers.mcp.models import (
    CodeIdArgs,
    CodeStats,
    FieldProblem,
    FindCodesArgs,
    FoundCodes,
    LiveChanged,
    MadeCode,
    MadePoster,
    MakeCodeArgs,
    MakePosterArgs,
    NoArgs,
    PauseArgs,
    Quotas,
    RepointArgs,
    ShownCode,
    StatsArgs,
    ToolFailure,
)

log = logging.getLogger("minpcode.mcp")

FRONT_END = "mcp"
Caller = Callable[[Context], str]
A = TypeVar("A", bound=BaseModel)
Run = Callable[[A, Requester], Awaitable[CallToolResult]]


def failure(exc: MinpcodeError) -> CallToolResult:
    """``exc`` as a tool error: its stable name, both languages, each field to change."""
    errors = exc.errors if isinstance(exc, InvalidRequest) else [exc] if isinstance(exc, FieldError) else []
    found = ToolFailure(error=exc.error_code, message=exc.message,
                        fields=[FieldProblem(field=e.field, zh=e.zh, en=e.en) for e in errors])
    return CallToolResult(content=[TextContent(type="text", text=f"{found.error}: {exc.message.render('en')}")],
                          structured_content=found.model_dump(mode="json"), is_error=True)


def answer(result: BaseModel, *extra: ContentBlock) -> CallToolResult:
    data = result.model_dump(mode="json")
    text = TextContent(type="text", text=json.dumps(data, ensure_ascii=False))
    return CallToolResult(content=[text, *extra], structured_content=data)


class _Server(MCPServer[Any]):
    """The SDK's server, with arguments that fail a tool's input schema answered as our field errors (the
    SDK answers them with pydantic's text, which names no rule in our words and in one language only)."""

    async def call_tool(self, name: str, arguments: dict[str, Any],
                        context: Context[Any, Any] | None = None) -> Any:
        try:
            return await super().call_tool(name, arguments, context)
        except ToolError as exc:
            if isinstance(exc, UnexpectedToolError) or not isinstance(exc.__cause__, ValidationError):
                raise
            return failure(InvalidRequest(field_errors(exc.__cause__)))


def _arguments_of(model: type[BaseModel], output: type[BaseModel], tool: Callable[..., Any]) -> None:
    """Give ``tool`` (which takes ``ctx`` and ``**arguments``) the fields of ``model`` as its parameters, so the
    SDK publishes the HTTP API's own field names, types, bounds and descriptions as the tool's input schema
    (one declaration: the API's wire model), and ``output`` as its output schema."""
    params = [inspect.Parameter("ctx", inspect.Parameter.KEYWORD_ONLY, annotation=Context)]
    hints: dict[str, Any] = {"ctx": Context}
    for name, field in model.model_fields.items():
        # The FieldInfo's bounds are in its metadata; the default goes on the parameter (pydantic takes no
        # default inside Annotated).
        about = Field(description=field.description, examples=field.examples)
        hint = cast(Any, Annotated)[(field.annotation, *field.metadata, about)]  # built at run time: Any to mypy
        default = inspect.Parameter.empty if field.is_required() else field.get_default(call_default_factory=True)
        params.append(inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=hint))
        hints[name] = hint
    returns = Annotated[CallToolResult, output]
    tool.__signature__ = inspect.Signature(params, return_annotation=returns)  # type: ignore[attr-defined]
    tool.__annotations__ = hints | {"return": returns}


class McpTools:
    """The eight tools of the contract around one service; ``caller`` names who asks for each call."""

    def __init__(self, service: Service, caller: Caller) -> None:
        self.service = service
        self.caller = caller
        self.public_url = service.settings.minpcode_public_url.rstrip("/")

    def requester(self, ctx: Context) -> Requester:
        name = self.caller(ctx)
        return Requester(chat=FRONT_END, user_id=name, user_name=name)

    def server(self) -> MCPServer[Any]:
        server = _Server(name="minpcode", version=__version__, instructions=descriptions.INSTRUCTIONS,
                         warn_on_duplicate_tools=False)
        self._add(server, "make_code", MakeCodeArgs, MadeCode, self.make_code, read_only=False)
        self._add(server, "find_codes", FindCodesArgs, FoundCodes, self.find_codes)
        self._add(server, "show_code", CodeIdArgs, ShownCode, self.show_code)
        self._add(server, "make_poster", MakePosterArgs, MadePoster, self.make_poster, read_only=False)
        self._add(server, "repoint_live_code", RepointArgs, LiveChanged, self.repoint, read_only=False)
        self._add(server, "pause_live_code", PauseArgs, LiveChanged, self.pause, read_only=False)
        self._add(server, "code_stats", StatsArgs, CodeStats, self.stats)
        self._add(server, "quota", NoArgs, Quotas, self.quota)
        return server

    def _add(self, server: MCPServer[Any], name: str, model: type[A], output: type[BaseModel], run: Run[A], *,
             read_only: bool = True) -> None:
        async def tool(ctx: Context, **arguments: Any) -> CallToolResult:
            try:
                return await run(model.model_validate(arguments), self.requester(ctx))
            except ValidationError as exc:
                return failure(InvalidRequest(field_errors(exc)))
            except MinpcodeError as exc:
                return failure(exc)

        tool.__name__ = name
        _arguments_of(model, output, tool)
        # Nothing here deletes; a live code's change is undone by the same tool, so none is destructive.
        hints = ToolAnnotations(read_only_hint=read_only, destructive_hint=False,
                                idempotent_hint=name != "make_poster", open_world_hint=name == "make_code")
        server.add_tool(tool, name=name, title=descriptions.TITLES[name], description=descriptions.TOOLS[name],
                        annotations=hints)

    # -- the tools --------------------------------------------------------------------------------------------
    async def make_code(self, args: MakeCodeArgs, requester: Requester) -> CallToolResult:
        submission = await self.service.submit(code_fields(args), requester, wait=True, timeout=WAIT_SECONDS,
                                               long_scene=args.long_scene == "key")
        record = submission.record
        log.info("mcp: %s asked for %s code %s (%s)", requester.key, record.type.value, record.id,
                 "reused" if submission.reused else record.status.value)
        if record.status is Status.PENDING:
            raise StillPending()
        if record.status is not Status.DONE:
            message = record.error_message or Text(zh="生成失败。", en="The code could not be made.")
            raise CodeFailed(message.zh, message.en)
        extra: list[ContentBlock] = []
        if args.include_image and record.image_sha256:
            data, mime = self.service.image(record.id)
            extra.append(ImageContent(type="image", data=base64.b64encode(data).decode("ascii"), mime_type=mime))
        made = MadeCode(code=code_view(self.service, self.public_url, record), reused=submission.reused,
                        original_by=submission.original_by, notices=list(submission.notices))
        return answer(made, *extra)

    async def find_codes(self, args: FindCodesArgs, requester: Requester) -> CallToolResult:
        page = self.service.history(HistoryQuery(
            text=args.q, type=args.type, status=args.status, requested_by=args.requested_by, mine=args.mine,
            limit=args.limit, offset=args.offset), requester)
        live = self.service.live.totals(page.items)
        return answer(FoundCodes.of(page, [code_view(self.service, self.public_url, r, live.get(r.id))
                                           for r in page.items]))

    async def show_code(self, args: CodeIdArgs, requester: Requester) -> CallToolResult:
        record = self.service.get(args.id)
        return answer(ShownCode(code=code_view(self.service, self.public_url, record),
                                live_code=self.service.live.view(record)))

    async def make_poster(self, args: MakePosterArgs, requester: Requester) -> CallToolResult:
        made = await make_poster(self.service, args, requester)
        info = made.info
        return answer(MadePoster(
            id=info.id, code_id=info.code_id, url=links.poster_url(self.public_url, info.id, info.format),
            template=info.template, format=info.format, mime=info.mime, width_px=info.width_px,
            height_px=info.height_px, dpi=info.dpi, size=info.size, reused=made.reused,
            sharper_copy=made.sharper_copy.id if made.sharper_copy else None, notices=list(made.notices)))

    async def repoint(self, args: RepointArgs, requester: Requester) -> CallToolResult:
        return answer(LiveChanged(live_code=self.service.live.repoint(args.id, args.page, requester)))

    async def pause(self, args: PauseArgs, requester: Requester) -> CallToolResult:
        live = self.service.live
        view = (live.pause if args.paused else live.resume)(args.id, requester)
        return answer(LiveChanged(live_code=view))

    async def stats(self, args: StatsArgs, requester: Requester) -> CallToolResult:
        view, per_day = self.service.live.stats(args.id, args.days)
        return answer(CodeStats(live_code=view, days=per_day))

    async def quota(self, args: NoArgs, requester: Requester) -> CallToolResult:
        rows = self.service.quota()
        return answer(Quotas(apps=rows, notices=[n for q in rows if (n := q.notice())]))


# What the HTTP API's body can say; anything beyond it is read by the core's rules alone.
_BEYOND_API = frozenset(MakeCodeArgs.model_fields) - frozenset(QRCodeRequest.model_fields) - {"include_image"}


def code_fields(args: MakeCodeArgs) -> dict[str, Any]:
    """``make_code``'s arguments as CodeRequest input.

    What the HTTP API can say (no type, or urllink/scheme, and none of the fields it lacks) is read exactly as
    ``POST /api/weapp/qrcode`` reads it (:meth:`handlers.api.routes.Api.fields`): B with a scene, else a plain
    WeChat A code. Anything more (A, B, C or shortlink named, GrowingIO's fields …) goes to the core's rules
    as given, which check every field (bot/models.py) and answer every problem at once."""
    # Defaults left out: the SDK hands every argument over, given or not.
    asked = args.model_dump(exclude_defaults=True, exclude={"include_image"})
    if args.type in (None, "urllink", "scheme") and not (asked.keys() & _BEYOND_API):
        return Api.fields(asked)
    fields: dict[str, Any] = {
        "type": args.type or ("B" if args.scene or args.live else "A"), "page": args.path, "scene": args.scene,
        "via": args.via, "name": args.name, "campaign": args.campaign, "channel": args.channel,
        "medium": args.medium, "content": args.content, "term": args.term, "comments": args.comments,
        "create_missing": args.create_missing or None, "width": args.width, "transparent": args.transparent or None,
        "title": args.title, "permanent": args.permanent or None, "plain": args.plain or None,
        "expire_days": args.expire_days, "live": args.live or None, "expires": args.expires,
        "env_version": args.env_version if args.env_version != "release" else None,
        "check_path": False if not args.check_path else None, "tags": args.tags or None,
    }
    return {k: v for k, v in fields.items() if v is not None}


__all__ = ["FRONT_END", "Caller", "McpTools", "answer", "code_fields", "failure"]
