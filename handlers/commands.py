"""Text commands → one call of the core → a neutral :class:`Reply` that each chat renders its own way.

Slack's ``/minpcode …``, WeCom text messages and ``minpcode chat`` all come through here, so a
command means the same thing everywhere.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict

from bot import links, media
from bot.codes import UNEXPECTED, Submission
from bot.errors import InvalidRequest, MinpcodeError, UsageError
from bot.fields import POSTER_TEXTS, CodeAsk
from bot.models import CodeRecord, Requester, Status
from bot.posters import SharperCopyNeeded
from bot.posters.service import PosterMade
from bot.quota import Notice
from bot.service import Service
from bot.summary import MAX_DAYS, render_text, summary_chart, summary_for_days
from bot.text import Text
from handlers import grammar, live_commands
from handlers.render import audit_lines, copy_lines, deleted_text, detail_lines, list_table

log = logging.getLogger("minpcode.commands")

LIST_COUNT_CAP = 10_000  # a list counts this far, then says "more than": a page stays quick on a million rows


class Reply(BaseModel):
    """What the bot answers. ``public`` answers (a new code) go to the channel; the rest to the asker."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    ok: bool = True
    zh: str
    en: str
    record: CodeRecord | None = None
    records: list[CodeRecord] = []
    image: bytes | None = None
    image_mime: str | None = None
    public: bool = False
    reused: bool = False
    notices: list[Notice] = []
    data: dict[str, Any] = {}
    poster: PosterMade | None = None  # what a chat posts instead of the bare code, when asked

    def text(self, lang: str = "zh") -> str:
        body = Text(zh=self.zh, en=self.en).render(lang)
        for notice in self.notices:
            body += "\n\n" + notice.text(lang)
        return body

    @property
    def filename(self) -> str:
        return f"minpcode-{self.record.id if self.record else 'code'}.{media.extension(self.image_mime)}"


async def run(service: Service, text: str, requester: Requester) -> Reply:
    """Parse ``text`` and run it; every failure becomes a Reply with ``ok=False``, never an exception."""
    try:
        command = grammar.parse(text)
    except MinpcodeError as exc:
        return failure(exc)
    return await execute(service, command, requester)


async def execute(service: Service, command: grammar.Command, requester: Requester) -> Reply:
    """Run a command a front-end has parsed already (it read the verb first): a Reply, never an exception."""
    try:
        return await dispatch(service, command, requester)
    except MinpcodeError as exc:
        return failure(exc)
    except Exception:
        # A bug must still get the person an answer, never silence or a stack trace.
        log.exception("command failed unexpectedly: %s", command.verb)
        return Reply(ok=False, zh=UNEXPECTED[0], en=UNEXPECTED[1])


def failure(exc: MinpcodeError) -> Reply:
    """The answer to a failed command: every field problem on its own line, else the error's sentence."""
    if isinstance(exc, SharperCopyNeeded):
        return Reply(ok=False, zh=exc.zh + "生成清晰版请在命令后加 sharp=yes（清晰=是）；用现在的图片印请加 sharp=no（清晰=否）。",
                     en=exc.en + " For the sharper copy add sharp=yes to the command; to print the current image add "
                                 "sharp=no.")
    if isinstance(exc, InvalidRequest):
        return Reply(ok=False, zh="请修改后再试：\n" + "\n".join(f"• {e.field}: {e.zh}" for e in exc.errors),
                     en="Please fix and try again:\n" + "\n".join(f"• {e.field}: {e.en}" for e in exc.errors))
    if isinstance(exc, UsageError):
        # The usage line is the same in both languages: said once, after both.
        line = f"用法 Usage: {exc.usage}"
        return Reply(ok=False, zh=exc.reason.zh, en=exc.reason.en, notices=[Notice(zh=line, en=line)])
    return Reply(ok=False, zh=exc.message.zh, en=exc.message.en)


async def dispatch(service: Service, command: grammar.Command, requester: Requester) -> Reply:
    verb = command.verb
    lang = requester.lang
    if verb == "help":
        topic = command.args[0] if command.args else None
        text = grammar.help_text(lang, topic, requester.chat)
        return Reply(zh=text, en=text)
    if verb == "bulk":
        # Slack and WeCom take bulk before this; what reaches here (the console chat) cannot take a sheet.
        return Reply(ok=False, zh="这个聊天不收表格。请在命令行运行 minpcode bulk 文件.csv（或 .xlsx）。",
                     en="This chat takes no sheet. Run minpcode bulk FILE.csv (or .xlsx) in a terminal.")
    if verb == "new":
        return await new(service, command.ask(), requester)
    if verb == "poster":
        sharp = command.fields.get("sharp")
        return await poster(service, command.args[0], poster_fields(command, command.args[1]),
                            requester, sharper=None if sharp is None else sharp == "yes")
    if verb == "list":
        return list_reply(service, command, requester)
    if verb == "show":
        return show(service, command.args[0])
    if verb == "rename":
        record = service.rename(command.args[0], command.args[1], requester)
        return Reply(zh=f"已改名为「{record.name}」。", en=f"Renamed to '{record.name}'.", record=record)
    if verb == "delete":
        record = service.delete(command.args[0], requester)
        said = deleted_text(record)
        return Reply(zh=said.zh, en=said.en, record=record)
    if verb == "quota":
        return quota(service)
    if verb == "summary":
        return await summary_reply(service, int(command.args[0]) if command.args else None, requester)
    if verb in live_commands.VERBS:
        return Reply(**await live_commands.run_live(service, verb, command.args, requester, command.fields))
    raise AssertionError(f"unhandled verb {verb}")


async def new(service: Service, ask: CodeAsk, requester: Requester) -> Reply:
    """A new code as asked (the text command, Slack's form, WeCom's form); with a poster asked, the poster
    is the answer's file."""
    if ask.poster is None:
        return code_reply(service, await service.submit(dict(ask.fields), requester, long_scene=ask.long_scene))
    both = await service.posters.for_new(dict(ask.fields), ask.poster.data, requester, sharper=ask.poster.sharper,
                                         long_scene=ask.long_scene)
    head = code_reply(service, both.submission)
    if both.poster is not None:
        return poster_reply(service, both.poster, head)
    if both.poster_error is not None:
        why = failure(both.poster_error)
        return head.model_copy(update={"zh": f"{head.zh}\n海报没有做成：{why.zh}",
                                       "en": f"{head.en}\nThe poster was not made: {why.en}"})
    return head


def list_reply(service: Service, command: grammar.Command, requester: Requester) -> Reply:
    """``list [query] [page=N]``: how many codes there are, one page of them, and the command for the next."""
    query = command.args[0] if command.args else None
    tag = command.fields.get("tag")
    page, size = int(command.fields.get("page", "1")), grammar.LIST_PAGE_SIZE
    total = service.count(requester, query=query, cap=LIST_COUNT_CAP, tag=tag)
    records = service.recent(requester, query=query, limit=size, offset=(page - 1) * size, tag=tag) if total else []
    over = total > LIST_COUNT_CAP
    pages = -(-total // size)
    how_many = f"超过 {LIST_COUNT_CAP:,} 个" if over else f"共 {total:,} 个"
    count_zh = (f"标签「{tag}」" if tag else "") + (f"匹配「{query}」的码{how_many}" if query else f"码{how_many}")
    count_en = (f"More than {LIST_COUNT_CAP:,} codes" if over else f"{total:,} code{'s' if total != 1 else ''}") + \
        (f" tagged {tag!r}" if tag else "") + (f" matching {query!r}" if query else "")
    if not total:
        which = (f"标签「{tag}」" if tag else "") + (f"匹配「{query}」" if query else "")
        return Reply(zh=(f"没有找到{which}的码。" if which else "没有找到码。") + "用 new <页面> 生成一个。",
                     en=(f"No codes found{(f' tagged {tag!r}' if tag else '') + (f' matching {query!r}' if query else '')}."
                         if query or tag else "No codes found.") + " Make one with new <page>.")
    if not records:
        pages_zh, pages_en = ("", "") if over else (f"，共 {pages} 页", f", {pages} page{'s' if pages != 1 else ''} in all")
        return Reply(ok=False, zh=f"没有第 {page} 页：{count_zh}{pages_zh}。", en=f"There is no page {page}: {count_en}{pages_en}.")
    first, last = (page - 1) * size + 1, (page - 1) * size + len(records)
    of_zh, of_en = ("" if over else f"/{pages}"), ("" if over else f" of {pages}")
    head_zh = f"{count_zh}，第 {page}{of_zh} 页（第 {first}–{last} 个）。"
    head_en = f"{count_en}; page {page}{of_en} (codes {first}–{last})."
    # The table's headings are in both languages already, so the whole answer is one bilingual text: a chat
    # that shows both languages shows one table, not one per language.
    text = f"{head_zh}\n{head_en}\n{list_table(records, service.settings.zone, service.live.totals(records))}"
    if over or last < total:
        more = grammar.render(grammar.Command(verb="list", args=[query] if query else [],
                                              fields={**({"tag": tag} if tag else {}), "page": str(page + 1)}))
        text += f"\n下一页 Next page: {more}"
    return Reply(zh=text, en=text, records=records, data={"total": total, "page": page, "pages": None if over else pages})


def code_reply(service: Service, submission: Submission) -> Reply:
    """What a new (or reused) code's answer says."""
    record = submission.record
    zone = service.settings.zone
    image, mime = (service.image(record.id) if record.image_sha256 else (None, None))
    if record.status is Status.DONE:
        head_zh, head_en = reuse_heading(submission) if submission.reused else ("码已生成。", "Your code is ready.")
    elif record.status is Status.PENDING:
        head_zh, head_en = "还在生成中，稍后用 show 查看。", "Still working on it; check again with show."
    else:
        return Reply(ok=False, zh="生成失败。\n" + "\n".join(detail_lines(record, "zh", zone)),
                     en="Could not make the code.\n" + "\n".join(detail_lines(record, "en", zone)), record=record)
    view = service.live.view(record)
    extra = {lang: live_commands.live_lines(view, lang, zone) if view else [] for lang in ("zh", "en")}
    return Reply(zh=head_zh + "\n" + "\n".join(detail_lines(record, "zh", zone) + extra["zh"]),
                 en=head_en + "\n" + "\n".join(detail_lines(record, "en", zone) + extra["en"]),
                 record=record, image=image, image_mime=mime, public=record.status is Status.DONE,
                 reused=submission.reused, notices=submission.notices)


def reuse_heading(submission: Submission) -> tuple[str, str]:
    """What a reused code is told: the quota is mentioned only for A/C codes (B and Short Links never spend)."""
    by = submission.original_by
    if submission.record.type.counts_against_cap:
        return (f"这个码之前已由 {by} 生成，直接复用（不占额度）。", f"{by} already made this code; reusing it (no quota spent).")
    return f"这个码之前已由 {by} 生成，直接复用。", f"{by} already made this code; reusing it."


def show(service: Service, code_id: str) -> Reply:
    record = service.get(code_id)
    zone = service.settings.zone
    image, mime = (service.image(record.id) if record.image_sha256 else (None, None))
    view = service.live.view(record)
    trail = service.audit(record.id)
    posters = service.posters.for_code(record.id)
    base = service.settings.people_url  # links go to people: only an address given (as handlers/attachments.py)
    listed = {"zh": [p.describe("zh") + (f"：{links.poster_url(base, p.id, p.format)}" if base else "") for p in posters],
              "en": [p.describe("en") + (f": {links.poster_url(base, p.id, p.format)}" if base else "") for p in posters]}
    copies = service.copies(record.id)
    tags = service.live.tags(record.id)
    tagged = {"zh": [f"标签: {', '.join(tags)}"] if tags else [], "en": [f"Tags: {', '.join(tags)}"] if tags else []}
    extra = {lang: (live_commands.live_lines(view, lang, zone) if view else []) + tagged[lang] + copy_lines(copies, lang)
             + listed[lang] + audit_lines(trail, lang, zone) for lang in ("zh", "en")}
    data: dict[str, Any] = ({"live": view.model_dump(mode="json")} if view else {}) | ({"tags": tags} if tags else {})
    if posters:
        data["posters"] = [p.model_dump(mode="json") for p in posters]
    return Reply(zh="\n".join(detail_lines(record, "zh", zone) + extra["zh"]),
                 en="\n".join(detail_lines(record, "en", zone) + extra["en"]), record=record, image=image, image_mime=mime,
                 data=data)


def poster_fields(command: grammar.Command, template: str) -> dict[str, Any]:
    """The poster's words of a command as PosterRequest input."""
    fields: dict[str, Any] = {k: command.fields[k] for k in ("title", *POSTER_TEXTS) if k in command.fields}
    return {"template": template, **fields}


async def poster(service: Service, code_id: str, fields: dict[str, Any], requester: Requester, *,
                 sharper: bool | None = None, logo: bytes | None = None) -> Reply:
    """``poster <id> <template> …``: the poster of an existing code (from the store when made before)."""
    made = await service.posters.make(code_id, fields, requester, sharper=sharper, logo=logo)
    return poster_reply(service, made)


def poster_reply(service: Service, made: PosterMade, head: Reply | None = None) -> Reply:
    """A poster as the answer (public: it is what is posted), after ``head``'s text when given."""
    record = made.record
    image, mime = service.image(record.id)
    zh, en = (f"{head.zh}\n", f"{head.en}\n") if head is not None else ("", "")
    zh += ("海报已做好（之前做过，直接取用）：" if made.reused else "海报已做好：") + made.text("zh")
    en += ("Your poster is ready (made before; served as it was): " if made.reused else "Your poster is ready: ") + \
        made.text("en")
    if head is None:
        zone = service.settings.zone
        zh = zh + "\n" + "\n".join(detail_lines(record, "zh", zone))
        en = en + "\n" + "\n".join(detail_lines(record, "en", zone))
    notices = [*(head.notices if head is not None else []), *made.notices]
    return Reply(zh=zh, en=en, record=record, image=image, image_mime=mime, public=True,
                 reused=head.reused if head is not None else True, notices=notices, poster=made)


async def summary_reply(service: Service, days: int | None, requester: Requester, *,
                        now: datetime | None = None) -> Reply:
    """``summary [days]`` in Slack, WeCom and the console: text in both languages, the chart attached."""
    if days is not None and not 1 <= days <= MAX_DAYS:
        return Reply(ok=False, zh=f"天数须在 1 到 {MAX_DAYS} 之间。", en=f"Days must be between 1 and {MAX_DAYS}.")
    summary = summary_for_days(service, days, now=now)
    png = await asyncio.to_thread(summary_chart, summary, requester.lang)
    return Reply(zh=render_text(summary, "zh"), en=render_text(summary, "en"), image=png,
                 image_mime="image/png" if png else None, data={"summary": summary.model_dump(mode="json")})


def quota(service: Service) -> Reply:
    rows = service.quota()
    if not rows:
        return Reply(zh="还没有生成过 A/C 码。", en="No A/C codes made yet.")
    zh = [f"{q.app}: 已用 {q.used} / {q.cap}，剩余 {q.left}（{q.ratio:.1%}）\n  " + q.link_lines().zh.replace("\n", "\n  ")
          for q in rows]
    en = [f"{q.app}: {q.used} of {q.cap} used, {q.left} left ({q.ratio:.1%})\n  " + q.link_lines().en.replace("\n", "\n  ")
          for q in rows]
    notices = [n for q in rows if (n := q.notice())]
    cap = service.settings.minpcode_ac_cap
    return Reply(zh=f"A+C 码终身额度（每个小程序 {cap:,} 个）：\n" + "\n".join(zh),
                 en=f"A+C lifetime quota ({cap:,} per mini program):\n" + "\n".join(en),
                 notices=notices, data={"quota": [q.model_dump() for q in rows]})
