"""What a chat says about a batch, in both languages: the dry run, progress, the end.

Shared by every chat front-end (Slack, WeCom) so the words and figures are the same everywhere; each
front-end only lays them out (Block Kit, a WeCom text or card).
"""

from __future__ import annotations

from bot.batch.engine import BatchProgress, DryRun
from bot.batch.models import BatchStatus
from bot.text import Text

FIRST_PROBLEMS = 8  # a chat message lists this many problems; the rest are counted


def dry_run_text(plan: DryRun, *, first: int = FIRST_PROBLEMS) -> Text:
    """Counts, A/C quota against what is left, unknown campaigns/channels, the first problems by line."""
    b = plan.batch
    bad = plan.invalid + len(plan.over_cap)
    reuse = plan.reuse_history + len(plan.reuse_sheet)
    zh = [f"试运行 {b.id}（{b.filename}，{b.encoding}）：共 {b.total} 行，{plan.ready} 行可以生成（其中复用 {reuse}），"
          f"{bad} 行有误。将占用 A/C 额度 {plan.spend} 个。"]
    en = [f"Dry run {b.id} ({b.filename}, {b.encoding}): {b.total} row(s), {plan.ready} ready ({reuse} reused), "
          f"{bad} with problems. Would spend {plan.spend} of the A/C quota."]
    if plan.posters:
        zh.append(f"将做 {plan.posters} 张海报（每张在它的码做好后生成）。")
        en.append(f"Would make {plan.posters} poster(s) (each once its code is made).")
    for app, left in plan.quota_left.items():
        zh.append(f"额度 {app}：将用 {plan.new_ac.get(app, 0)}，剩余 {left}。")
        en.append(f"Quota {app}: would spend {plan.new_ac.get(app, 0)}, {left} left.")
    for kind, word in (("campaign", "推广活动"), ("channel", "推广渠道")):
        for value, lines in plan.unknown.get(kind, {}).items():
            where = ", ".join(map(str, lines[:20])) + ("…" if len(lines) > 20 else "")
            zh.append(f"GrowingIO 没有{word}「{value}」（第 {where} 行）。")
            en.append(f"GrowingIO has no {kind} '{value}' (lines {where}).")
    shown = plan.problems[:first]
    for p in shown:
        prefix = f"{p.field}: " if p.field else ""
        zh.append(f"第 {p.line} 行：{prefix}{p.zh}")
        en.append(f"Line {p.line}: {prefix}{p.en}")
    if len(plan.problems) > len(shown):
        more = len(plan.problems) - len(shown)
        zh.append(f"……还有 {more} 个问题（完成后见 manifest.csv）。")
        en.append(f"…and {more} more problem(s) (see manifest.csv at the end).")
    if plan.ready:
        zh.append("确认后开始生成；有误的行不会生成。")
        en.append("Start to make them; rows with problems are not made.")
    else:
        zh.append("没有可以生成的行。")
        en.append("No row can be made.")
    return Text(zh="\n".join(zh), en="\n".join(en))


def _eta(seconds: float | None) -> tuple[str, str]:
    if seconds is None:
        return "估算中", "estimating"
    if seconds < 90:
        return f"约 {round(seconds)} 秒", f"about {round(seconds)} s"
    return f"约 {round(seconds / 60)} 分钟", f"about {round(seconds / 60)} min"


def progress_text(p: BatchProgress) -> Text:
    """One status line: done, reused, failed, left, a text bar and the time left (or the end)."""
    bar = p.bar()
    counts_zh = f"新建 {p.done}，复用 {p.reused}，失败 {p.failed}，有误 {p.invalid}"
    counts_en = f"{p.done} made, {p.reused} reused, {p.failed} failed, {p.invalid} invalid"
    if p.posters.get("wanted"):
        counts_zh += f"；海报 {p.posters.get('made', 0)}/{p.posters['wanted']}，海报失败 {p.posters.get('failed', 0)}"
        counts_en += f"; posters {p.posters.get('made', 0)}/{p.posters['wanted']}, {p.posters.get('failed', 0)} poster(s) failed"
    if p.status is BatchStatus.CANCELLED:
        return Text(zh=f"批量任务 {p.batch_id} 已取消（已生成的码保留）。{counts_zh}，未生成 {p.skipped + p.left}。",
                    en=f"Batch {p.batch_id} cancelled (codes made stay made). {counts_en}, "
                       f"{p.skipped + p.left} not made.")
    if p.finished:
        return Text(zh=f"批量任务 {p.batch_id} 完成：{counts_zh}。{bar}",
                    en=f"Batch {p.batch_id} finished: {counts_en}. {bar}")
    eta_zh, eta_en = _eta(p.eta_seconds)
    return Text(zh=f"批量任务 {p.batch_id} 生成中：{bar}\n{counts_zh}，剩余 {p.left}，还需{eta_zh}。",
                en=f"Batch {p.batch_id} running: {bar}\n{counts_en}, {p.left} left, {eta_en} to go.")


def share(p: BatchProgress) -> float:
    """How much of the work is behind us, 0..1 (rows that need no work count as done)."""
    todo = p.total - p.invalid
    return 1.0 if todo <= 0 else (todo - p.left) / todo


__all__ = ["FIRST_PROBLEMS", "dry_run_text", "progress_text", "share"]
