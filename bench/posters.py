"""Posters for a 300-row batch on ``a4``: posters per second (PNG and PDF) and peak memory.

    .venv/bin/python bench/posters.py [--rows 300] [--template a4] [--store]

Each row is its own B code (the sandbox's generator, 1280 px as WeChat's largest) with the store's
name in the footer; rows are rendered one after another, as the batch engine does, and each
poster's bytes are dropped (or written to a temporary store with ``--store``) before the next.
Memory is the process's resident set (Pillow's pixels live outside Python's allocator, so
tracemalloc alone would not see them): its peak over the run, against the size of one canvas.
Target: the peak grows by no more than a few posters' canvases, however many rows.
"""

from __future__ import annotations

import argparse
import gc
import resource
import statistics
import tempfile
import time
import tracemalloc

from bot.models import CodeRequest, CodeType, Requester
from bot.posters import PosterRequest, find_template, record_values, render_poster
from bot.sandbox import SANDBOX_APPID, qr
from storage import Storage

STORES = ["上海徐汇店", "北京朝阳大悦城店", "广州天河城店", "深圳万象城店", "杭州西湖银泰店", "成都太古里店"]


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 1024 / 1024


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run(rows: int, template_name: str, fmt: str, store: Storage | None) -> None:
    template = find_template(template_name)
    request = PosterRequest.parse({"template": template_name, "title": "春季大促 Spring Sale",
                                   "subtitle": "扫码领券 · 满100减20", "footer": "{name}", "format": fmt})
    times, sizes = [], []
    tracemalloc.start()
    before = rss_mb()
    for i in range(rows):
        scene = f"s={i:04d}"
        code = qr.render(qr.code_url(SANDBOX_APPID, "B", "pages/shop/index", scene), 1280)
        values = {"name": f"{STORES[i % len(STORES)]}{i:03d}", "campaign": "spring", "channel": "store",
                  "page": "pages/shop/index", "scene": scene}
        t0 = time.perf_counter()
        data = render_poster(code, CodeType.B, template, request.fields, record_values=values, fmt=request.format)
        times.append(time.perf_counter() - t0)
        sizes.append(len(data))
        if store is not None:
            code_request = CodeRequest(type=CodeType.B, page="pages/shop/index", scene=scene, name=f"shop{i}")
            record = store.history.save_pending(code_request, Requester(), key=code_request.reuse_key(),
                                                app=SANDBOX_APPID, sandbox=True).record
            key = request.key(record.id, template.fingerprint(), record_values(record))
            width, height = template.pixel_size()
            store.posters.save(record.id, key, template=template.name, fmt=request.format, data=data,
                               mime=request.mime, width_px=width, height_px=height, dpi=template.dpi,
                               request=request.model_dump())
        del data, code
    _, py_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    gc.collect()
    total = sum(times)
    w, h = template.pixel_size()
    canvas_mb = w * h * 3 / 1024 / 1024
    print(f"{template_name} {fmt.upper()}: {rows} posters in {total:.1f} s = {rows / total:.2f} posters/s "
          f"(median {statistics.median(times) * 1000:.0f} ms, worst {max(times) * 1000:.0f} ms); "
          f"median file {statistics.median(sizes) / 1024:.0f} KB")
    print(f"  memory: RSS {before:.0f} MB before, {rss_mb():.0f} MB after, process peak {peak_rss_mb():.0f} MB; "
          f"Python-heap peak {py_peak / 1024 / 1024:.1f} MB; one {w}×{h} RGB canvas = {canvas_mb:.1f} MB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=300)
    parser.add_argument("--template", default="a4")
    parser.add_argument("--store", action="store_true", help="also save each poster to a temporary database")
    args = parser.parse_args()
    print(f"baseline RSS (Python, Pillow, zxing, font lookup loaded): {rss_mb():.0f} MB")
    with tempfile.TemporaryDirectory() as tmp:
        store = Storage.open(tmp) if args.store else None
        # warm: the font file and the first sizes load once per process, not per poster
        render_poster(qr.render(qr.code_url(SANDBOX_APPID, "B", "pages/x", "w"), 1280), CodeType.B,
                      find_template(args.template), PosterRequest(template=args.template, title="x").fields,
                      record_values={})
        print(f"after one warm-up poster: RSS {rss_mb():.0f} MB, peak {peak_rss_mb():.0f} MB")
        for fmt in ("png", "pdf"):
            run(args.rows, args.template, fmt, store)
        if store is not None:
            print(f"stored {store.posters.count()} posters")
            store.close()


if __name__ == "__main__":
    main()
