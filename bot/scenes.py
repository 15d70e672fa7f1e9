"""Long B-code parameters behind short scene keys.

WeChat's B code carries at most 32 scene characters from a small set (no Chinese, no ``%``; see
shared/docs/wechat-and-growingio.md §2.1). When the parameters someone wants do not fit, minpcode
stores them and puts a short key in the scene instead:

    k=<10 characters from 0-9 A-Z a-z>        e.g.  k=3fZq9LmA0x   (12 characters in all)

The mini program sees ``k=...`` in ``onLoad(query).scene`` (URL-encoded: decode it first) and asks
``GET /api/scenes/{key}`` for the parameters. The same parameters always get the same key, so a
repeated request reuses the code already made; a key is random (not derived from the parameters),
so keys can be neither guessed nor enumerated, and a key once given never changes meaning.

Every front-end calls :func:`prepare_scene` (or :func:`shorten_fields`) before ``Service.submit``;
the record keeps the key as its scene and the original parameters in its comments, where people
and full-text search see them.
"""

from __future__ import annotations

import re
import secrets
import string
import unicodedata
from typing import Any

from bot.errors import FieldError
from bot.models import FREE_TEXT_MAX, SCENE_MAX, SCENE_RE
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


def prepare_scene(storage: Storage, scene: str, created_by: str | None = None) -> tuple[str, str | None]:
    """The scene to send WeChat and, when it is a stored key, the original parameters.

    A scene that fits goes as it is. One that is too long or has characters outside WeChat's set
    (Chinese, spaces, ``%`` ...) is stored and replaced by its key. A scene shaped like a key must
    be a key minpcode gave out: the mini program would otherwise look it up and find nothing.
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
        return scene, params
    if fits(scene):
        return scene, None
    return shorten(storage, scene, created_by), scene


def note(key: str, params: str) -> str:
    """What the record's comments say about a stored scene (cut to the comments' length)."""
    text = f"scene {key} = {params}"
    return text if len(text) <= FREE_TEXT_MAX else text[: FREE_TEXT_MAX - 1] + "…"


def shorten_fields(storage: Storage, fields: dict[str, Any], created_by: str | None = None) -> dict[str, Any]:
    """``fields`` for ``Service.submit`` with a B code's long scene replaced by its key.

    The original parameters go into ``comments`` (after any comments already there) so the record
    shows them. Fields of other code types, or without a scene, come back unchanged.
    """
    scene = fields.get("scene")
    kind = str(fields.get("type") or "").strip().upper()
    if kind != "B" or not isinstance(scene, str) or not scene.strip():
        return fields
    sent, params = prepare_scene(storage, scene, created_by)
    out = dict(fields, scene=sent)
    if params is not None:
        extra = note(sent, params)
        comments = fields.get("comments")
        out["comments"] = extra if not comments else (f"{comments}; {extra}")[:FREE_TEXT_MAX]
    return out


__all__ = ["KEY_PREFIX", "KEY_RE", "PARAMS_MAX", "check_params", "fits", "is_key", "note", "prepare_scene",
           "resolve", "shorten", "shorten_fields"]
