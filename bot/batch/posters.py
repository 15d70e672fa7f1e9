"""A batch row's poster: the same fields and the same two steps as one ``new … poster=…``.

    ask = read(row.fields)                               # ask.poster is None when the row asks for none
    planned = await service.posters.plan_new(ask.fields, ask.poster.data, requester, long_scene=ask.long_scene)
    await service.posters.check(existing.id, poster.data, sharper=poster.sharper)  # dry run, a code to reuse
    poster_id, error = await make(service.posters, code_id, poster, requester)   # after the code is made

The checks and the rendering are :class:`bot.posters.service.Posters`' (one copy); a row's cells are read
into a :class:`~bot.fields.CodeAsk` as a command's words are: with ``poster`` given, ``title`` is the
poster's title; poster texts without a ``poster`` template are refused, not ignored.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from bot.errors import FieldError, InvalidRequest, MinpcodeError
from bot.fields import CodeAsk, PosterAsk, loose_poster_words
from bot.posters import SharperCopyNeeded

if TYPE_CHECKING:
    from bot.models import Requester
    from bot.posters.service import Posters

log = logging.getLogger("minpcode.batch")

def read(fields: dict[str, Any]) -> CodeAsk:
    """A row's cells (as the sheet reader stored them) as the typed ask: the code's fields, whether a long
    scene goes behind a key (``long=yes``), and its poster."""
    given = loose_poster_words(fields)
    if given:
        raise FieldError("poster", f"{', '.join(given)} 是海报的参数，请同时填写 poster（海报）列的模板名。",
                         f"{', '.join(given)} belong to a poster; fill in the poster column with a template.")
    return CodeAsk.read(fields)


def wants_poster(fields: dict[str, Any]) -> bool:
    return bool(fields.get("poster"))


async def make(posters: Posters, code_id: str, poster: PosterAsk, requester: Requester) -> tuple[str | None, str | None]:
    """The row's poster through :meth:`Posters.make` (a stored one with the same key is served, never
    rendered again): its id, or the bilingual reason it was not made (the code stays made)."""
    try:
        made = await posters.make(code_id, poster.data, requester, sharper=poster.sharper)
    except MinpcodeError as exc:
        return None, error_text(exc)
    except Exception:  # one row's poster must not stop the batch, nor show a stack trace
        log.exception("batch poster of %s failed", code_id)
        return None, error_text(MinpcodeError("出了意外，请稍后再试。", "Something unexpected went wrong; try again later."))
    return made.info.id, None


def reason(exc: MinpcodeError) -> tuple[str, str]:
    """Why a row's poster is (or would be) refused, in Chinese and English."""
    if isinstance(exc, InvalidRequest):
        zh = "；".join(f"{e.field}: {e.zh}" for e in exc.errors)
        en = "; ".join(f"{e.field}: {e.en}" for e in exc.errors)
    else:
        zh, en = exc.zh, exc.en
    if isinstance(exc, SharperCopyNeeded):
        zh += "生成清晰版请在这一行的 sharp（清晰）列填 yes，用现在的图片印请填 no。"
        en += " For the sharper copy put yes in this row's sharp column; to print the current image put no."
    return zh, en


def error_text(exc: MinpcodeError) -> str:
    """``海报没有做成：…`` then ``The poster was not made: …`` (the manifest's error cell)."""
    zh, en = reason(exc)
    return f"海报没有做成：{zh}\nThe poster was not made: {en}"


__all__ = ["error_text", "make", "read", "reason", "wants_poster"]
