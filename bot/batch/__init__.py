"""Batches: many codes from one sheet, a dry run first, then a durable, resumable, rate-limited run.

    from bot.batch.sheets import load_sheet, load_pasted  # bytes/text -> Sheet, in a bounded worker
    engine = service.batches                               # the BatchEngine (bot/batch/engine.py), one per process
    plan = await engine.dry_run(sheet, origin)             # a stored draft; nothing is made
    batch = await engine.run(plan.batch.id, on_progress=cb)  # rows become jobs at batch priority
    data = engine.result_zip(batch.id)                     # images + manifest.csv + manifest.xlsx

Submodules are imported explicitly (this package imports nothing), so ``storage`` may use
:mod:`bot.batch.models` without a cycle through the service.
"""
