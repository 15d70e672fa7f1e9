"""The CLI's batch commands: ``bulk`` (a sheet of rows), ``batches`` and ``batch ID [--cancel]``.

The sheet reading and the engine live in bot/batch/; this is only the terminal around them.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from bot.batch.engine import BatchEngine, BatchProgress, DryRun, RowProblem
from bot.batch.models import Batch, BatchOrigin, BatchRow, BatchStatus, RowStatus
from bot.batch.output import POSTERS_DIR, ManifestRow
from bot.batch.sheets import load_sheet
from bot.media import extension
from bot.service import Service
from handlers.cli.app import Cli, Say
from handlers.cli.output import ExitCode, err, out, say
from handlers.cli.output import print_json_out as print_json
from handlers.cli.terminal import table as _table
from handlers.cli.terminal import write_image

OK, UPSTREAM, INPUT = ExitCode.OK, ExitCode.UPSTREAM, ExitCode.INPUT

_LABEL = {"done": "新建 made", "reused": "复用 reused", "failed": "失败 failed", "invalid": "有误 invalid",
          "skipped": "未生成 skipped", "queued": "生成中 pending", "ready": "未开始 not started"}


@dataclass
class _Term:
    say: Say
    out: Console
    err: Console
    print_json: Callable[[Any], None]

    def problems(self, problems: Iterable[RowProblem]) -> None:
        by_line: dict[int, list[RowProblem]] = {}
        for problem in problems:
            by_line.setdefault(problem.line, []).append(problem)
        for line, found in sorted(by_line.items()):
            self.say(f"第 {line} 行 line {line}:", style="red", to_err=True)
            for p in found:
                prefix = f"{p.field}: " if p.field else ""
                self.say(f"  {prefix}{p.zh}", to_err=True)
                self.say(f"  {prefix}{p.en}", to_err=True)

    def plan(self, plan: DryRun, rows: list[BatchRow]) -> None:
        table = _table("行 Line", "类型 Type", "方式 Via", "页面 Page", "scene", "名称 Name", "检查 Check")
        for row in rows:
            line = row.line
            request = plan.requests.get(line)
            if request is None:
                check = "有误 invalid" if row.status is RowStatus.INVALID else row.status.value
                table.add_row(str(line), "", "", str(row.fields.get("page", "")), "", "", check)
                continue
            if line in plan.reuse_ids:
                check = f"复用 reuse {plan.reuse_ids[line]}"
            elif line in plan.reuse_sheet:
                check = f"复用第 {plan.reuse_sheet[line]} 行 reuse line {plan.reuse_sheet[line]}"
            elif row.status is RowStatus.SKIPPED:
                check = "超出额度 over quota"
            else:
                check = "新建 new"
            table.add_row(str(line), request.type.value, request.provider.value, request.page or "-",
                          request.scene or "-", request.name or "-", check)
        self.out.print(table)
        for kind, zh in (("campaign", "推广活动"), ("channel", "推广渠道")):
            for value, lines in plan.unknown.get(kind, {}).items():
                where = ", ".join(map(str, lines))
                self.say(f"GrowingIO 没有{zh}「{value}」（第 {where} 行）/ GrowingIO has no {kind} '{value}' "
                         f"(lines {where})", style="yellow", to_err=True)
        for app, left in plan.quota_left.items():
            self.say(f"A/C 额度 quota {app}: 将用 would spend {plan.new_ac.get(app, 0)}，剩余 left {left}")
        if plan.posters:
            where = ", ".join(map(str, plan.poster_lines))
            self.say(f"海报 Posters: 将做 {plan.posters} 张（第 {where} 行）/ would make {plan.posters} (lines {where})")

    def confirm(self, yes: bool, count: int) -> bool:
        if yes:
            return True
        if not (sys.stdin.isatty() and sys.stdout.isatty()):
            self.say("没有终端可以确认：无人值守时请加 --yes。\nNo terminal to confirm on: add --yes to run unattended.",
                     style="red", to_err=True)
            return False
        return typer.confirm(f"开始生成这 {count} 行？ / Make these {count} row(s) now?", default=False)

    async def run_with_bar(self, engine: BatchEngine, batch_id: str, *, quiet: bool) -> Batch:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        if quiet:
            return await engine.run(batch_id)
        with Progress(TextColumn("生成 making"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[detail]}"),
                      TimeRemainingColumn(), console=self.err, transient=True) as bar:
            first = engine.progress(batch_id)
            task = bar.add_task("bulk", total=first.total - first.invalid, detail="")

            def show(p: BatchProgress) -> None:
                bar.update(task, completed=p.total - p.invalid - p.left,
                           detail=f"done {p.done} reused {p.reused} failed {p.failed}")

            return await engine.run(batch_id, on_progress=show, every=0.2)

    def results(self, engine: BatchEngine, service: Service, batch_id: str, rows: list[ManifestRow], where: Path,
                as_json: bool) -> None:
        if where.suffix.lower() == ".zip":
            where.parent.mkdir(parents=True, exist_ok=True)
            where.write_bytes(engine.result_zip(batch_id))
        else:
            for row in rows:
                if row.id and row.image_sha256:
                    data, mime = service.image(row.id)
                    write_image(data, mime, where / f"{row.id}.{extension(mime)}")
                if row.poster and row.poster_id:
                    _, data = service.posters.get(row.poster_id)
                    (where / POSTERS_DIR).mkdir(parents=True, exist_ok=True)
                    (where / POSTERS_DIR / row.poster).write_bytes(data)  # as rendered: PNG or PDF
        if as_json:
            self.print_json([r.model_dump(exclude={"image_sha256"}) for r in rows])
            return
        posters = engine.get(batch_id).posters
        wanted = posters.get("wanted", 0)
        table = _table("行 Line", "编号 ID", "类型 Type", "结果 Result", "名称 Name", "链接 Link",
                       *(("海报 Poster",) if wanted else ()))
        table.columns[1].no_wrap = True
        for r in rows:
            table.add_row(str(r.row), r.id or "-", r.type or "", _LABEL[r.status.value], r.name or "-",
                          r.link or r.tracking_url or "-", *((r.poster or "-",) if wanted else ()))
        self.out.print(table)
        # Failed and skipped rows, and made rows whose poster was not made (the code stays made).
        self.problems(RowProblem(line=r.row, zh=(r.error or "").split(" / ")[0],
                                 en=" / ".join((r.error or "").split(" / ")[1:]))
                      for r in rows if r.status in (RowStatus.FAILED, RowStatus.SKIPPED, RowStatus.DONE,
                                                    RowStatus.REUSED) and r.error)
        n = {s: sum(r.status is s for r in rows) for s in RowStatus}
        made, failed = posters.get("made", 0), posters.get("failed", 0)
        self.say(f"完成：新建 {n[RowStatus.DONE]}，复用 {n[RowStatus.REUSED]}，失败 {n[RowStatus.FAILED]}，"
                 f"有误 {n[RowStatus.INVALID]}{f'；海报 {made} 张，海报失败 {failed}' if wanted else ''}。结果在 {where}\n"
                 f"Done: {n[RowStatus.DONE]} made, {n[RowStatus.REUSED]} reused, {n[RowStatus.FAILED]} failed, "
                 f"{n[RowStatus.INVALID]} invalid{f'; {made} poster(s) made, {failed} failed' if wanted else ''}. "
                 f"Results in {where}")


def bulk_exit(rows: list[BatchRow], *, dry: bool) -> int:
    """0 every row done or reused; 2 some row invalid; otherwise 1 when some row failed or is not made."""
    if any(r.status is RowStatus.INVALID for r in rows):
        return INPUT
    unfinished = (RowStatus.FAILED, RowStatus.SKIPPED) if dry else (RowStatus.FAILED, RowStatus.SKIPPED,
                                                                     RowStatus.READY, RowStatus.QUEUED)
    return UPSTREAM if any(r.status in unfinished for r in rows) else OK


def batch_json(batch: Batch) -> dict[str, Any]:
    return {"id": batch.id, "status": batch.status.value, "user": batch.origin.user_id, "chat": batch.origin.chat,
            "filename": batch.filename, "encoding": batch.encoding, "rows": batch.total, "counts": batch.counts,
            "left": batch.left, "posters": batch.posters, "created_at": batch.created_at.isoformat()}


def register(app: typer.Typer, cli: Cli) -> None:
    run, requester, data_dir = cli.run, cli.requester, cli.data_dir
    term = _Term(say=say, out=out, err=err, print_json=print_json)

    @app.command()
    def bulk(
        sheet_file: Annotated[Path, typer.Argument(metavar="FILE.csv|FILE.xlsx", exists=True, dir_okay=False,
                                                   readable=True, help="A sheet whose header names create's "
                                                   "options (page,type,... or 页面,类型,...).")],
        dry_run: Annotated[bool, typer.Option("--dry-run", help="Only check every row; make nothing.")] = False,
        yes: Annotated[bool, typer.Option("--yes", "-y", help="Start without asking (needed with no terminal).")]
        = False,
        out_path: Annotated[Path | None, typer.Option(
            "--out", help="PATH.zip for a zip of images + manifest; or a folder for the images "
                          "(default DATA_DIR/out).")] = None,
        as_json: Annotated[bool, typer.Option("--json", help="Print the manifest rows as JSON.")] = False,
    ) -> None:
        """Make many codes from a CSV or XLSX sheet. Every row is checked first (a dry run), then made at
        batch priority; identical codes are reused; an interrupted run resumes when run again.
        Exit 2 if any row was invalid (the valid rows are still made), else 1 if any failed.

        Example (codes.csv with the header `page,type,scene,name`):

            minpcode bulk codes.csv --dry-run
            minpcode bulk codes.xlsx --yes --out codes.zip
        """
        where = out_path or data_dir() / "out"

        async def body(service: Service) -> int:
            engine = service.batches
            sheet = await load_sheet(sheet_file.read_bytes(), sheet_file.name)
            who = requester()
            origin = BatchOrigin(user_id=who.user_id, user_name=who.user_name, chat="cli")
            batch = engine.find_open(sheet.sha256, origin.key)
            if batch is not None and batch.status is BatchStatus.RUNNING and not dry_run:
                say(f"继续上次中断的批量任务 {batch.id}（还剩 {batch.left} 行）。\n"
                    f"Resuming batch {batch.id} of this file ({batch.left} row(s) left).", style="yellow",
                    to_err=as_json)
            else:
                plan = await engine.dry_run(sheet, origin)
                batch = plan.batch
                if not as_json:
                    term.plan(plan, engine.rows(batch.id))
                term.problems(plan.problems)
                say(f"编码 Encoding: {sheet.encoding}", to_err=True)
                bad = plan.invalid + len(plan.over_cap)
                say(f"试运行：{plan.ready} 行可以生成，{bad} 行有误；将占用 A/C 额度 {plan.spend} 个，"
                    f"将做海报 {plan.posters} 张。{'什么都没有生成。' if dry_run else ''}\n"
                    f"Dry run: {plan.ready} row(s) ready, {bad} with problems; would spend {plan.spend} of the "
                    f"A/C quota and make {plan.posters} poster(s).{' Nothing was made.' if dry_run else ''}  "
                    f"[batch {batch.id}]", to_err=as_json)
                if dry_run:
                    return bulk_exit(engine.rows(batch.id), dry=True)
                if plan.ready and not term.confirm(yes, plan.ready):
                    engine.cancel(batch.id, who)
                    return INPUT
            batch = await term.run_with_bar(engine, batch.id, quiet=as_json)
            term.results(engine, service, batch.id, engine.manifest(batch.id), where, as_json)
            return bulk_exit(engine.rows(batch.id), dry=False)

        run(body, worker=not dry_run, as_json=as_json)

    @app.command()
    def batches(
        limit: Annotated[int, typer.Option("--limit", min=1, max=500, help="How many, newest first.")] = 20,
        as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    ) -> None:
        """List batches: id, who, rows, done/failed/left, status."""

        async def body(service: Service) -> int:
            found = service.batches.recent(limit=limit)
            if as_json:
                print_json([batch_json(b) for b in found])
                return OK
            table = _table("编号 ID", "发起人 Who", "文件 File", "行 Rows", "完成 Done", "复用 Reused", "失败 Failed",
                           "有误 Invalid", "剩余 Left", "状态 Status")
            for b in found:
                c = b.counts
                table.add_row(b.id, b.origin.user_name or b.origin.user_id, b.filename, str(b.total),
                              str(c.get("done", 0)), str(c.get("reused", 0)), str(c.get("failed", 0)),
                              str(c.get("invalid", 0)), str(b.left), b.status.value)
            out.print(table)
            return OK

        run(body, as_json=as_json)

    @app.command()
    def batch(
        batch_id: Annotated[str, typer.Argument(metavar="ID", help="The batch id (see `minpcode batches`).")],
        cancel: Annotated[bool, typer.Option("--cancel", help="Cancel it: rows not yet made are skipped.")] = False,
        as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    ) -> None:
        """Show one batch and its rows, or cancel it (its starter or an admin; rows made stay made)."""

        async def body(service: Service) -> int:
            engine = service.batches
            found = engine.cancel(batch_id, requester()) if cancel else engine.get(batch_id)
            rows = engine.manifest(found.id)
            if as_json:
                print_json(batch_json(found) | {"manifest": [r.model_dump(exclude={"image_sha256"}) for r in rows]})
                return OK
            posters = found.posters
            made = (f", 海报 posters {posters.get('made', 0)}/{posters['wanted']} (失败 failed {posters.get('failed', 0)})"
                    if posters.get("wanted") else "")
            say(f"批量任务 batch {found.id}: {found.status.value}, {found.total} 行 rows, 剩余 left {found.left}{made} "
                f"({found.filename}, {found.encoding})")
            table = _table("行 Line", "编号 ID", "结果 Status", "名称 Name", "页面 Page", "海报 Poster", "错误 Error")
            for r in rows:
                table.add_row(str(r.row), r.id or "-", r.status.value, r.name or "-", r.page or "-", r.poster or "-",
                              r.error or "")
            out.print(table)
            if cancel:
                say("已取消；已生成的码保留。\nCancelled; codes already made stay made.")
            return OK

        run(body, as_json=as_json)
