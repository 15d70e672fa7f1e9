"""Everything minpcode keeps, in one SQLite file or one PostgreSQL database; the only package that speaks SQL.

    store = Storage.open(data_dir)                       # SQLite: minpcode.db in the data folder
    store = Storage.open(data_dir, database_url=url)     # PostgreSQL (MINPCODE_DATABASE_URL): several hosts, one truth
    store.history   # codes: save_pending, mark_done, find_by_key, recent, search ...
    store.images    # content-addressed image bytes
    store.audit     # who did what
    store.ledger    # A+C quota per mini program
    store.scenes    # long B-code parameters behind short scene keys
    store.reports   # aggregate reads for summaries
    store.summary_runs  # which summary periods were posted (at most once each)
    store.posters   # rendered posters, team poster templates, the default logo
    store.live      # live codes (活码): key -> current destination, and every destination set
    store.scans     # scans of live codes
    store.site_files  # files served at the site root (WeChat's domain verification file)
    store.drafts    # chat forms in progress, with their expiry
    store.batches   # sheets of requests and each row's outcome
    store.secrets   # the server's own keys, generated at first start (storage/secrets.py)
    store.webhooks  # webhook endpoints and one delivery row per (endpoint, event)
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from bot.errors import StorageUnavailable
from storage.audit import AuditLog
from storage.backup import backup_before_migration
from storage.batches import Batches
from storage.db import open_database, open_postgres
from storage.drafts import DraftStore
from storage.engine import Database, SqliteDatabase, database_errors, is_postgres_url
from storage.history import History
from storage.images import ImageStore
from storage.leases import Leases
from storage.ledger import QuotaLedger
from storage.live import LiveStore, SiteFiles
from storage.outbox import Outbox
from storage.posters import PosterRecord, PosterStore, TeamTemplateRecord
from storage.reports import Reports
from storage.scans import ScanStore
from storage.scenes import SceneStore
from storage.secrets import Secrets
from storage.summary_runs import SummaryRuns
from storage.tags import TagStore
from storage.webhooks import WebhookStore
from storage.writes import Writes


@dataclass
class Storage:
    db: Database  # storage/engine.py: SQLite or PostgreSQL; nothing above storage/ knows which
    history: History
    images: ImageStore
    audit: AuditLog
    ledger: QuotaLedger
    scenes: SceneStore
    reports: Reports
    summary_runs: SummaryRuns
    posters: PosterStore
    live: LiveStore
    scans: ScanStore
    site_files: SiteFiles
    drafts: DraftStore
    tags: TagStore = field(init=False)   # tags on codes (storage/tags.py)
    leases: Leases = field(init=False)   # one owner per job across processes (storage/leases.py)
    outbox: Outbox = field(init=False)   # answers promised before an ack, and ids already seen
    batches: Batches = field(init=False)  # sheets of requests and each row's outcome (storage/batches.py)
    secrets: Secrets = field(init=False)  # the server's own keys, shared by every process (storage/secrets.py)
    webhooks: WebhookStore = field(init=False)  # endpoints and their deliveries (storage/webhooks.py)
    # can a write be kept now: the file ours, the disk not full (None: in memory, or PostgreSQL, whose server
    # keeps its own files and answers a failed write with an error of its own)
    writes: Writes | None = field(init=False)
    data_dir: Path | None = None  # the data folder (with PostgreSQL, still the home of the console's files)

    def __post_init__(self) -> None:
        self.tags = TagStore(self.db)
        self.leases = Leases(self.db)
        self.outbox = Outbox(self.db)
        self.batches = Batches(self.db)
        self.secrets = Secrets(self.db)
        self.webhooks = WebhookStore(self.db)
        self.writes = None
        if isinstance(self.db, SqliteDatabase):
            main = next((str(r[2]) for r in self.db.execute("PRAGMA database_list").fetchall() if r[1] == "main"), "")
            self.writes = Writes(self.db.conn, Path(main)) if main else None

    @classmethod
    def open(cls, data_dir: Path | str, database_url: str | None = None, *, migrate: bool = False) -> Storage:
        """The stores over the migrated database: ``minpcode.db`` in ``data_dir``, or the PostgreSQL database at
        ``database_url``; ``migrate``: the operator's go-ahead to change a PostgreSQL database that holds data
        (MINPCODE_MIGRATE=yes, storage/db.py)."""
        db: Database
        if is_postgres_url(database_url):
            assert database_url is not None
            # The folder still holds this host's own files (the console's images, whatever else is kept there).
            Path(data_dir).mkdir(parents=True, exist_ok=True, mode=0o700)
            db = open_postgres(database_url, go_ahead=migrate)
        else:
            db = open_database(data_dir, before_change=_backup_first)
        return cls(db=db, data_dir=Path(data_dir), history=History(db), images=ImageStore(db), audit=AuditLog(db), ledger=QuotaLedger(db),
                   scenes=SceneStore(db), reports=Reports(db), summary_runs=SummaryRuns(db),
                   posters=PosterStore(db), live=LiveStore(db), scans=ScanStore(db), site_files=SiteFiles(db),
                   drafts=DraftStore(db))

    @property
    def dialect(self) -> str:
        """"sqlite" or "postgresql" (doctor, backup and restore say what applies)."""
        return self.db.dialect

    @property
    def directory(self) -> Path:
        """The data directory (the one the database file is in, with SQLite)."""
        if isinstance(self.db, SqliteDatabase):
            rows = self.db.execute("PRAGMA database_list").fetchall()
            main = next((str(r[2]) for r in rows if r[1] == "main"), "")
            if main:
                return Path(main).parent
        assert self.data_dir is not None
        return self.data_dir

    def ping(self) -> None:
        """The database answers a query (``/readyz``); raises one of :func:`database_errors` when it does not."""
        self.db.execute("SELECT 1").fetchone()

    def lost(self) -> StorageUnavailable | None:
        """Why writes would be lost (the file deleted or replaced under us), checked at most once a second."""
        return self.writes.watch.problem() if self.writes is not None else None

    def unwritable(self) -> StorageUnavailable | None:
        """Why a write now would fail or be lost: the file gone, or the disk full (storage/writes.py)."""
        return self.writes.problem() if self.writes is not None else None

    def failed(self, exc: BaseException) -> StorageUnavailable | None:
        """What a failed write's error means for the person who asked (a full disk), remembered for
        :meth:`unwritable`; None for any other error."""
        return self.writes.failed(exc) if self.writes is not None else None

    def halted(self, writer: str) -> StorageUnavailable | None:
        """:meth:`unwritable` for a background ``writer``, which the log says stops (once while it lasts)."""
        return self.writes.halted(writer) if self.writes is not None else None

    @contextmanager
    def writing(self) -> Iterator[None]:
        """The block's writes, with a full disk raised as :class:`StorageUnavailable` (503 for the API, said
        in a chat) instead of sqlite3's error; any other error is raised as it was."""
        try:
            yield
        except database_errors() as exc:
            problem = self.failed(exc)
            if problem is None:
                raise
            raise problem from exc

    def close(self) -> None:
        self.scans.close()
        self.db.close()



def _backup_first(conn: sqlite3.Connection, directory: Path, names: list[str]) -> None:
    backup_before_migration(conn, directory, names)


__all__ = ["AuditLog", "Batches", "History", "ImageStore", "PosterRecord", "PosterStore", "QuotaLedger", "Reports",
           "SceneStore", "Storage", "SummaryRuns", "TeamTemplateRecord"]
