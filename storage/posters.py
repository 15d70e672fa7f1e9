"""Rendered posters, team poster templates and the team's default logo.

A poster is stored once per request key (code, template as it was, filled texts, logo, format),
so asking again serves the stored bytes. Poster, logo and background bytes live in ``images``
(content-addressed), so the same artwork is kept once however many rows name it.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel

from storage.clock import from_text, now_text
from storage.engine import Database
from storage.history import new_id
from storage.images import ImageStore

PosterFormat = Literal["png", "pdf"]
DEFAULT_LOGO = "default_logo"
_POSTER_COLUMNS = ("id, code_id, request_key, template, format, image_sha256, mime, size, width_px, height_px, "
                   "dpi, request_json, created_by, created_at")
_TEMPLATE_COLUMNS = "name, layout_json, background_sha256, created_by, created_at, updated_at"


class PosterRecord(BaseModel):
    """One rendered poster; its bytes are ``PosterStore.data(record)``."""

    id: str
    code_id: str
    request_key: str
    template: str
    format: PosterFormat
    image_sha256: str
    mime: str
    size: int
    width_px: int
    height_px: int
    dpi: int
    request: dict[str, Any]
    created_by: str | None = None
    created_at: datetime


class TeamTemplateRecord(BaseModel):
    """A team template as stored: the layout file's text and the background image's hash."""

    name: str
    layout: str
    background_sha256: str | None = None
    created_by: str | None = None
    created_at: datetime
    updated_at: datetime


def _poster(row: tuple[Any, ...]) -> PosterRecord:
    return PosterRecord(
        id=row[0], code_id=row[1], request_key=row[2], template=row[3], format=row[4], image_sha256=row[5],
        mime=row[6], size=row[7], width_px=row[8], height_px=row[9], dpi=row[10], request=json.loads(row[11]),
        created_by=row[12], created_at=from_text(row[13]),
    )


def _template(row: tuple[Any, ...]) -> TeamTemplateRecord:
    return TeamTemplateRecord(name=row[0], layout=row[1], background_sha256=row[2], created_by=row[3],
                              created_at=from_text(row[4]), updated_at=from_text(row[5]))


class PosterStore:
    def __init__(self, db: Database) -> None:
        self._db = db
        self._images = ImageStore(db)

    # -- rendered posters -------------------------------------------------------------------------
    def save(self, code_id: str, request_key: str, *, template: str, fmt: PosterFormat, data: bytes, mime: str,
             width_px: int, height_px: int, dpi: int, request: dict[str, Any],
             created_by: str | None = None) -> PosterRecord:
        """Keep a rendered poster; when ``request_key`` is already stored, the stored one wins and comes back."""
        digest = self._images.put(data, mime)
        self._db.execute(
            f"INSERT INTO posters ({_POSTER_COLUMNS}) VALUES ({', '.join('?' * 14)}) ON CONFLICT DO NOTHING",
            [new_id(), code_id, request_key, template, fmt, digest, mime, len(data), width_px, height_px, dpi,
             json.dumps(request, ensure_ascii=False, sort_keys=True), created_by, now_text()],
        )
        found = self.find(request_key)
        assert found is not None
        return found

    def find(self, request_key: str) -> PosterRecord | None:
        """The poster already rendered for this key, if any (serve it instead of rendering again)."""
        row = self._db.execute(f"SELECT {_POSTER_COLUMNS} FROM posters WHERE request_key = ?",
                               [request_key]).fetchone()
        return _poster(row) if row else None

    def get(self, poster_id: str) -> PosterRecord | None:
        row = self._db.execute(f"SELECT {_POSTER_COLUMNS} FROM posters WHERE id = ?", [poster_id]).fetchone()
        return _poster(row) if row else None

    def for_code(self, code_id: str) -> list[PosterRecord]:
        """Every poster of one code, newest first (history and App Home list them)."""
        rows = self._db.execute(f"SELECT {_POSTER_COLUMNS} FROM posters WHERE code_id = ? "
                                "ORDER BY created_at DESC, id", [code_id]).fetchall()
        return [_poster(r) for r in rows]

    def counts(self, code_ids: list[str]) -> dict[str, int]:
        """How many posters each of these codes has (one query for a page of history)."""
        if not code_ids:
            return {}
        marks = ", ".join("?" * len(code_ids))
        rows = self._db.execute(f"SELECT code_id, count(*) FROM posters WHERE code_id IN ({marks}) GROUP BY code_id",
                                code_ids).fetchall()
        return {str(r[0]): int(r[1]) for r in rows}

    def data(self, record: PosterRecord) -> bytes:
        found = self._images.get(record.image_sha256)
        if found is None:  # the images row is written before the posters row, and never deleted
            raise LookupError(f"poster {record.id} has no stored image {record.image_sha256}")
        return found[0]

    def count(self) -> int:
        return int(self._db.execute("SELECT count(*) FROM posters").fetchone()[0])

    # -- team templates ---------------------------------------------------------------------------
    def save_template(self, name: str, layout: str, background: bytes | None = None, background_mime: str = "image/png",
                      created_by: str | None = None) -> TeamTemplateRecord:
        """Add or replace a team template (the caller has validated ``layout`` and ``background``)."""
        digest = self._images.put(background, background_mime) if background is not None else None
        now = now_text()
        self._db.execute(
            f"INSERT INTO poster_templates ({_TEMPLATE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (name) DO UPDATE SET layout_json = excluded.layout_json, "
            "background_sha256 = excluded.background_sha256, created_by = excluded.created_by, "
            "updated_at = excluded.updated_at",
            [name, layout, digest, created_by, now, now],
        )
        found = self.find_template(name)
        assert found is not None
        return found

    def find_template(self, name: str) -> TeamTemplateRecord | None:
        row = self._db.execute(f"SELECT {_TEMPLATE_COLUMNS} FROM poster_templates WHERE name = ?", [name]).fetchone()
        return _template(row) if row else None

    def list_templates(self) -> list[TeamTemplateRecord]:
        rows = self._db.execute(f"SELECT {_TEMPLATE_COLUMNS} FROM poster_templates ORDER BY name").fetchall()
        return [_template(r) for r in rows]

    def template_background(self, record: TeamTemplateRecord) -> bytes | None:
        if record.background_sha256 is None:
            return None
        found = self._images.get(record.background_sha256)
        return found[0] if found else None

    def delete_template(self, name: str) -> bool:
        """Forget a team template; posters already rendered from it stay."""
        return self._db.execute("DELETE FROM poster_templates WHERE name = ?", [name]).rowcount == 1

    # -- logos ------------------------------------------------------------------------------------
    def put_logo(self, data: bytes, mime: str) -> str:
        """Keep a logo (validated by the caller); its SHA-256 is what a poster request names."""
        return self._images.put(data, mime)

    def logo(self, digest: str) -> bytes | None:
        found = self._images.get(digest)
        return found[0] if found else None

    def set_default_logo(self, digest: str | None, updated_by: str | None = None) -> None:
        """The team's default logo (an ``images`` hash), or None to have none."""
        if digest is None:
            self._db.execute("DELETE FROM poster_settings WHERE key = ?", [DEFAULT_LOGO])
            return
        self._db.execute(
            "INSERT INTO poster_settings (key, value, updated_by, updated_at) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_by = excluded.updated_by, "
            "updated_at = excluded.updated_at",
            [DEFAULT_LOGO, digest, updated_by, now_text()],
        )

    def default_logo(self) -> str | None:
        row = self._db.execute("SELECT value FROM poster_settings WHERE key = ?", [DEFAULT_LOGO]).fetchone()
        return str(row[0]) if row else None
