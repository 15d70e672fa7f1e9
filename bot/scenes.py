"""Long B-code parameters behind short scene keys.

WeChat's B code carries at most 32 scene characters from a small set (no Chinese, no ``%``; see
https://developers.weixin.qq.com/miniprogram/dev/OpenApiDoc/qrcode-link/qr-code/getUnlimitedQRCode.html). When the parameters someone wants do not fit, minpcode
stores them and puts a short key in the scene instead:

    k=<10 characters from 0-9 A-Z a-z>        e.g.  k=3fZq9LmA0x   (12 characters in all)

The mini program sees ``k=...`` in ``onLoad(query).scene`` (URL-encoded: decode it first) and asks
``GET /api/scenes/{key}`` for the parameters. The same parameters always get the same key, so a
repeated request reuses the code already made; a key is random (not derived from the parameters),
so keys can be neither guessed nor enumerated, and a key once given never changes meaning.

``Service.prepare`` applies this for any front-end that asks (``long_scene=True``): it checks the request
with :func:`place` (nothing stored), then stores the parameters with :func:`keep` only once the
whole request is valid. The record keeps the key as its scene and the original parameters in its
comments (:func:`with_note`), where people and full-text search see them.
"""

from __future__ import annotations

import re
import secrets
import string
import unicodedata
from typing import NamedTuple

from bot.errors import FieldError
from bot.models import FREE_TEXT_MAX, SCENE_MAX, SCENE_RE
from bot.text import clip
from storage import Storage

KEY_PREFIX = "k="
KEY_LENGTH = 10
KEY_ALPHABET = string.digits + string.ascii_uppercase + string.ascii_lowercase  # 62^10 ≈ 8.4e17 keys
KEY_RE = re.compile(rf"^{KEY_PREFIX}[0-9A-Za-z]{{{KEY_LENGTH}}}$")
PARAMS_MAX = 1024  # characters of parameters kept behind one key


def fits(scene: str) -> bool:
    """Whether WeChat takes ``scene`` as it is (1-32 characters from its set)."""
    return 1 <= len(scene) <= SCENE_MAX and SCENE_RE.match(scene) is not None


def is_key(scene: str) -> bool:
    """Whether ``scene`` has the shape of a stored-parameter key (``k=`` + 10 letters/digits)."""
    return KEY_RE.match(scene) is not None


def check_params(params: str) -> str:
    """Raise a ``scene`` FieldError when ``params`` cannot be stored; return it unchanged otherwise."""
    if not params:
        raise FieldError("scene", "scene 不能为空。", "The scene cannot be empty.")
    if len(params) > PARAMS_MAX:
        raise FieldError(
            "scene", f"scene 参数最多 {PARAMS_MAX} 个字符，现在是 {len(params)} 个。",
            f"Scene parameters may have at most {PARAMS_MAX} characters; they have {len(params)}.",
        )
    if any(unicodedata.category(ch) in ("Cc", "Cs") for ch in params):
        raise FieldError("scene", "scene 不能包含控制字符或无效字符。",
                         "The scene cannot contain control characters or invalid characters.")
    return params


def new_key() -> str:
    return KEY_PREFIX + "".join(secrets.choice(KEY_ALPHABET) for _ in range(KEY_LENGTH))


def shorten(storage: Storage, params: str, created_by: str | None = None) -> str:
    """The key for ``params``: the one they already have, or a new random one stored now."""
    check_params(params)
    existing = storage.scenes.key_for(params)
    if existing is not None:
        return existing
    while True:  # a taken key (odds ~1e-17 per try) just means: draw another
        stored = storage.scenes.put(new_key(), params, created_by)
        if stored is not None:
            return stored


def resolve(storage: Storage, key: str) -> str | None:
    """The parameters behind ``key`` (with or without its ``k=``), or None for an unknown key."""
    key = key.strip()
    if not key.startswith(KEY_PREFIX):
        key = KEY_PREFIX + key
    if not is_key(key):
        return None
    return storage.scenes.get(key)


class Placed(NamedTuple):
    """Where a B code's scene goes: as it is, or behind a key (``new`` until the key is stored)."""

    scene: str
    params: str | None = None
    new: bool = False


def place(storage: Storage, scene: str) -> Placed:
    """Check ``scene`` and choose what the code carries; nothing is stored (see :func:`keep`).

    A scene that fits goes as it is. One that is too long or has characters outside WeChat's set
    (Chinese, spaces, ``%`` ...) goes behind its key: the one it already has, else a freshly drawn
    one. A scene shaped like a key must be a key minpcode gave out: the mini program would
    otherwise look it up and find nothing.
    """
    scene = scene.strip()
    check_params(scene)
    if is_key(scene):
        params = storage.scenes.get(scene)
        if params is None:
            raise FieldError(
                "scene", f"scene「{scene}」的格式留给已保存的长参数使用，但没有这个编号；请直接填写原始参数。",
                f"Scenes shaped like '{scene}' are reserved for stored parameters and there is no such key; "
                "send the original parameters instead.",
            )
        return Placed(scene, params)
    if fits(scene):
        return Placed(scene)
    existing = storage.scenes.key_for(scene)
    return Placed(existing, scene) if existing is not None else Placed(new_key(), scene, new=True)


def keep(storage: Storage, placed: Placed, created_by: str | None = None) -> Placed:
    """``placed`` with its parameters stored, once the request is known to be valid.

    The key may differ from the drawn one when the same parameters were stored meanwhile.
    """
    if not placed.new or placed.params is None:
        return placed
    return Placed(shorten(storage, placed.params, created_by), placed.params)


def note(key: str, params: str) -> str:
    """What the record's comments say about a stored scene (cut to the comments' length)."""
    return clip(f"scene {key} = {params}", FREE_TEXT_MAX)


def with_note(comments: str | None, key: str, params: str) -> str:
    """``comments`` followed by the note on ``key`` (once: a request prepared twice keeps one note)."""
    if comments and f"scene {key} = " in comments:
        return comments
    extra = note(key, params)
    return extra if not comments else clip(f"{comments}; {extra}", FREE_TEXT_MAX)


__all__ = ["KEY_PREFIX", "KEY_RE", "PARAMS_MAX", "Placed", "check_params", "fits", "is_key", "keep", "note",
           "place", "resolve", "shorten", "with_note"]
