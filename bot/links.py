"""The public links people open (a code's image, a poster, a batch's upload page and zip, the sample sheet).

One module builds each link and names the route that serves it, so what a chat, the CLI or the HTTP API
hands out and what ``minpcode serve`` answers cannot drift apart. It is a leaf of the core, not of
``handlers/``: the core builds some of these paths itself (a poster's ``path``, a batch's download link),
the process mounts the routes, and every front-end may import the core, while the core may not import
``handlers/`` (docs/architecture.md, the first wall).

``base`` is the address people reach (``Settings.people_url``, or the API's own public URL); a trailing
``/`` is ignored. The signed tokens themselves are bot/batch/links.py's.
"""

from __future__ import annotations

# Starlette route patterns, mounted by bot/server.py and handlers/upload_page.py.
CODE_IMAGE_ROUTE = "/codes/{code_id:str}.png"
POSTER_ROUTE = "/posters/{poster_id:str}.{format:str}"
SAMPLE_SHEET_ROUTE = "/batches/sample.csv"
UPLOAD_ROUTE = "/batches/upload/{token:str}"
DOWNLOAD_ROUTE = "/batches/{token:str}.zip"


def _url(base: str, path: str) -> str:
    return base.rstrip("/") + path


def code_image_path(code_id: str) -> str:
    return f"/codes/{code_id}.png"


def code_image_url(base: str, code_id: str) -> str:
    """A code's image (served as PNG whatever it was stored as)."""
    return _url(base, code_image_path(code_id))


def poster_path(poster_id: str, fmt: str) -> str:
    # The id is random: the link is the capability.
    return f"/posters/{poster_id}.{fmt}"


def poster_url(base: str, poster_id: str, fmt: str) -> str:
    """A stored poster, ``fmt`` being its format (png, pdf)."""
    return _url(base, poster_path(poster_id, fmt))


def sample_sheet_url(base: str) -> str:
    """The sample sheet the batch forms link."""
    return _url(base, SAMPLE_SHEET_ROUTE)


def upload_url(base: str, token: str) -> str:
    """A one-time page to upload a sheet (the token from ``UploadLinks.issue``)."""
    return _url(base, f"/batches/upload/{token}")


def download_url(base: str, token: str) -> str:
    """A finished batch's zip (the token from ``UploadLinks.issue_download``)."""
    return _url(base, f"/batches/{token}.zip")


__all__ = ["CODE_IMAGE_ROUTE", "DOWNLOAD_ROUTE", "POSTER_ROUTE", "SAMPLE_SHEET_ROUTE", "UPLOAD_ROUTE",
           "code_image_path", "code_image_url", "download_url", "poster_path", "poster_url", "sample_sheet_url",
           "upload_url"]
