"""The summary chart: codes per day, stacked by campaign or channel, as PNG bytes (matplotlib Agg).

Campaign and channel names are often Chinese, and matplotlib's bundled DejaVu Sans has no CJK
glyphs (they would draw as empty boxes). So the chart loads a CJK font file at first use, in order:

1. ``MINPCODE_CJK_FONT`` — a path to any .ttf/.otf/.ttc an operator wants to use (read by Settings,
   handed in by the process through :func:`use_font_file`);
2. Noto Sans CJK shipped by the ``noto-cjk-sans-otc`` package (a dependency, SIL Open Font License),
   loaded straight from the installed package's ``fonts/`` folder;
3. a CJK font the system already has (``fonts-noto-cjk``, WenQuanYi, Source Han, SimHei ...).

If none is found the chart is still drawn, and a warning is logged once: Chinese names then show
as boxes. Nothing here touches pyplot's global state, so charts can be drawn from worker threads.

A collection (.ttc/.otc, as Noto Sans CJK is) holds one face per region, the Japanese one first; the same
characters differ between them (令 and 直 are drawn the Japanese way by the JP face). Charts, like posters
(bot/posters/fonts.py), use the Simplified Chinese face (:data:`SC_FACES`); matplotlib registers every face of
a collection from 3.11 on, so the face is named by its family.
"""

from __future__ import annotations

import importlib.util
import io
import logging
import threading
from collections.abc import Mapping, Sequence
from datetime import date
from pathlib import Path

log = logging.getLogger("minpcode.chart")

FONT_ENV = "MINPCODE_CJK_FONT"
# Noto Sans CJK (SIL Open Font License), shipped on PyPI as one 15 MB font collection.
FONT_PACKAGE = "noto_cjk_sans_otc"
FONT_DISTRIBUTION = "noto-cjk-sans-otc"
PACKAGE_FONT_FILES = ("NotoSansCJK-Regular.ttc",)
SYSTEM_FONT_NAMES = (
    "Noto Sans CJK SC", "Noto Sans SC", "Source Han Sans SC", "Source Han Sans CN", "WenQuanYi Micro Hei",
    "WenQuanYi Zen Hei", "Microsoft YaHei", "PingFang SC", "SimHei", "Noto Sans CJK JP", "Noto Sans CJK TC",
)
SC_FACES = ("Noto Sans CJK SC", "Source Han Sans SC", "Noto Sans SC", "Source Han Sans CN")
"""The Simplified Chinese faces, preferred in a collection that holds several (charts and posters)."""
MAX_SERIES = 8  # the biggest series get a colour each; the rest are drawn together as "other"
WIDTH_PX, HEIGHT_PX, DPI = 1000, 520, 100
COLOURS = ("#4C78A8", "#F58518", "#54A24B", "#E45756", "#72B7B2", "#EECA3B", "#B279A2", "#FF9DA6", "#9D755D")
OTHER_COLOUR = "#BAB0AC"

_lock = threading.Lock()
_font: tuple[str, Path] | None = None
_font_searched = False
_operator_font: Path | None = None


def package_font_path() -> Path | None:
    """The CJK font file the ``noto-cjk-sans-otc`` package ships, without importing the package."""
    spec = importlib.util.find_spec(FONT_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        for name in PACKAGE_FONT_FILES:
            path = Path(location) / name
            if path.is_file():
                return path
    return None


def _system_font_path() -> Path | None:
    from matplotlib import font_manager

    wanted = {name.lower(): i for i, name in enumerate(SYSTEM_FONT_NAMES)}
    found = [(wanted[f.name.lower()], Path(f.fname)) for f in font_manager.fontManager.ttflist
             if f.name.lower() in wanted]
    return min(found)[1] if found else None


def _register(path: Path) -> str | None:
    from matplotlib import font_manager

    try:
        font_manager.fontManager.addfont(str(path))
        faces = {f.name for f in font_manager.fontManager.ttflist if Path(f.fname) == path}
        preferred = next((name for name in SC_FACES if name in faces), None)
        return preferred or font_manager.FontProperties(fname=str(path)).get_name()
    except Exception as exc:  # a broken or unreadable file: try the next candidate
        log.warning("could not load the CJK font %s: %s", path, exc)
        return None


def cjk_font() -> tuple[str, Path] | None:
    """(family name, file) of the CJK font charts use, registered with matplotlib; None if there is none."""
    global _font, _font_searched
    with _lock:
        if _font_searched:
            return _font
        candidates: list[Path] = []
        if _operator_font is not None:
            candidates.append(_operator_font.expanduser())
        packaged = package_font_path()
        if packaged:
            candidates.append(packaged)
        system = _system_font_path()
        if system:
            candidates.append(system)
        for path in candidates:
            if not path.is_file():
                log.warning("CJK font %s does not exist; trying the next one", path)
                continue
            name = _register(path)
            if name:
                _font = (name, path)
                break
        else:
            log.warning("no CJK font found: Chinese campaign and channel names in summary charts will show as "
                        "boxes. Install one with `pip install %s` (or set %s to a .ttf/.otf/.ttc file).",
                        FONT_DISTRIBUTION, FONT_ENV)
        _font_searched = True
        return _font


def use_font_file(path: Path | None) -> None:
    """The operator's font file (``MINPCODE_CJK_FONT``, read by Settings), tried before the others."""
    global _operator_font
    with _lock:
        _operator_font = path
    reset_font_cache()


def reset_font_cache() -> None:
    """Forget the chosen font (tests that change ``MINPCODE_CJK_FONT``)."""
    global _font, _font_searched
    with _lock:
        _font, _font_searched = None, False


def _families() -> list[str]:
    found = cjk_font()
    # DejaVu Sans stays as the per-glyph fallback for anything the CJK font lacks.
    return [found[0], "DejaVu Sans"] if found else ["DejaVu Sans"]


def limit_series(series: Mapping[str, Sequence[int]], other_label: str,
                 max_series: int = MAX_SERIES) -> dict[str, list[int]]:
    """The ``max_series`` largest series by total, the rest summed under ``other_label``."""
    ranked = sorted(series.items(), key=lambda item: (-sum(item[1]), item[0]))
    kept = {name: list(values) for name, values in ranked[:max_series]}
    rest = ranked[max_series:]
    if rest:
        length = len(rest[0][1])
        summed = [sum(values[i] for _, values in rest) for i in range(length)]
        kept[f"{other_label} ({len(rest)})"] = summed
    return kept


def daily_chart(days: Sequence[date], series: Mapping[str, Sequence[int]], *, title: str, ylabel: str,
                legend_title: str, other_label: str = "other") -> bytes:
    """A stacked bar chart, one bar per day and one colour per series; PNG bytes."""
    # matplotlib takes long to import: only when a chart is drawn (the CLI and serve start without it)
    import matplotlib
    from matplotlib.backends.backend_agg import FigureCanvasAgg  # drawn without pyplot: no global backend
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    families = _families()
    series = limit_series(series, other_label)
    fig = Figure(figsize=(WIDTH_PX / DPI, HEIGHT_PX / DPI), dpi=DPI)
    FigureCanvasAgg(fig)
    with matplotlib.rc_context({"font.family": families, "axes.unicode_minus": False}):
        ax = fig.add_subplot(1, 1, 1)
        positions = list(range(len(days)))
        bottom = [0] * len(days)
        for index, (name, values) in enumerate(series.items()):
            colour = OTHER_COLOUR if name.startswith(other_label + " (") else COLOURS[index % len(COLOURS)]
            ax.bar(positions, values, bottom=bottom, label=name, color=colour, width=0.7)
            bottom = [b + v for b, v in zip(bottom, values, strict=True)]
        for x, total in zip(positions, bottom, strict=True):
            if total:
                ax.annotate(str(total), (x, total), ha="center", va="bottom", fontsize=8,
                            xytext=(0, 2), textcoords="offset points")
        step = max(1, -(-len(days) // 14))  # at most ~14 date labels
        ax.set_xticks(positions[::step], [d.strftime("%m-%d") for d in days][::step])
        ax.set_xlim(-0.6, len(days) - 0.4)
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylim(0, max(max(bottom, default=0), 1) * 1.15)
        ax.set_ylabel(ylabel)
        ax.set_title(title)
        ax.grid(axis="y", alpha=0.3)
        ax.set_axisbelow(True)
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)
        if series:
            ax.legend(title=legend_title, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=9,
                      title_fontsize=9, frameon=False)
        fig.tight_layout()
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=DPI)
    return buffer.getvalue()


__all__ = ["SC_FACES", "cjk_font", "use_font_file", "daily_chart", "limit_series", "package_font_path", "reset_font_cache"]
