"""cairosvg, when the system has libcairo: None when it cannot be loaded, and ``missing`` says which part.

Only the worker processes draw SVG (:func:`bot.posters.images.checked_logo`), so this is imported once in the
workers' fork server (``workers.preload``: loading cairosvg and libcairo takes 0.7 s, which each logo would
otherwise pay out of its budget) and never in the serving process. The fork server's preload survives only
an ImportError, and a missing libcairo is an OSError, hence this guard rather than preloading cairosvg.
``minpcode doctor`` imports it too (bot/posters/preflight.py), to say what to install.
"""

from __future__ import annotations

from types import ModuleType
from typing import Literal

Missing = Literal["cairosvg", "libcairo"]


def _load() -> tuple[ModuleType | None, Missing | None]:
    try:
        import cairosvg
    except ImportError:  # the Python package is not installed
        return None, "cairosvg"
    except OSError:  # cairocffi found no libcairo to dlopen (the system library is not installed)
        return None, "libcairo"
    return cairosvg, None


cairosvg, missing = _load()

__all__ = ["Missing", "cairosvg", "missing"]
