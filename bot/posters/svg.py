"""cairosvg, when the system has libcairo: None when it cannot be loaded.

Only the worker processes draw SVG (:func:`bot.posters.images.checked_logo`), so this is imported once in the
workers' fork server (``workers.preload``: loading cairosvg and libcairo takes 0.7 s, which each logo would
otherwise pay out of its budget) and never in the serving process. The fork server's preload survives only
an ImportError, and a missing libcairo is an OSError, hence this guard rather than preloading cairosvg.
"""

from __future__ import annotations

from types import ModuleType


def _load() -> ModuleType | None:
    try:
        import cairosvg
    except (ImportError, OSError):  # no cairosvg, or no libcairo for it to load
        return None
    return cairosvg


cairosvg = _load()

__all__ = ["cairosvg"]
