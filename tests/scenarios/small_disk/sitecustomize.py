"""A small disk for a real ``minpcode serve``: Python imports this module at start when its folder is on
the process's PYTHONPATH (tests/scenarios/test_disk_full.py puts it there, nothing else does).

Every SQLite connection the process opens may then hold at most ``SMALL_DISK_PAGES`` pages (SQLite's own
``max_page_count``), so a write that needs one more page fails with SQLITE_FULL, as it does on a full
disk; pages freed inside the file (a dropped table) are room again. No minpcode code is replaced: the
limit is SQLite's, set on the connections minpcode opens itself.
"""

import os
import sqlite3
from typing import Any

_PAGES = int(os.environ.get("SMALL_DISK_PAGES", "0"))
_connect = sqlite3.connect


def _small(*args: Any, **kwargs: Any) -> sqlite3.Connection:
    conn = _connect(*args, **kwargs)
    conn.execute(f"PRAGMA max_page_count = {_PAGES}")
    return conn


if _PAGES > 0:
    sqlite3.connect = _small
