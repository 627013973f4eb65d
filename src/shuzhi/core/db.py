"""The metadata store: engine, sessions, one writer, and the migration revision check."""

from __future__ import annotations

import fcntl
import logging
import os
import sqlite3
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import lru_cache
from importlib import resources
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, MetaData, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError, StatementError
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker

from shuzhi.core import dialect
from shuzhi.core.dialect import Driver
from shuzhi.core.errors import ConfigurationError, DatabaseRevisionError, ShuzhiError
from shuzhi.core.settings import Settings, get_settings

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


log = logging.getLogger("shuzhi.db")

# anyio's default thread pool, where a server worker runs its requests
SQLITE_POOL = 40
# SQLite's own: the commit that takes the write-ahead log past this many pages copies it
# into the database (a checkpoint, with its fsyncs), holding the writer's turn meanwhile
AUTOCHECKPOINT_PAGES = 1000
# with a checkpointer in the background, commits checkpoint only if it falls this far behind
BACKSTOP_PAGES = 10_000


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


def _close_own(pid: int, handle: int) -> None:
    """Close a descriptor this process opened (a forked child leaves its parent's be)."""
    if os.getpid() == pid:
        os.close(handle)


def migrations_path() -> Path:
    return Path(str(resources.files("shuzhi") / "migrations"))


class Database:
    """One metadata store. Reads use ``session()``; writes go through ``transaction()``."""

    def __init__(self, url: str, *, settings: Settings | None = None) -> None:
        settings = settings or get_settings()
        self.url = url
        parsed = make_url(url)
        if parsed.get_backend_name() == "sqlite":
            if parsed.database and parsed.database != ":memory:":
                folder = Path(parsed.database).parent
                try:
                    folder.mkdir(parents=True, exist_ok=True)
                except OSError as exc:
                    raise ConfigurationError(
                        f"cannot use {folder} for the database: {exc.strerror}"
                    ) from None
            self.engine: Engine = create_engine(
                url,
                echo=settings.database.echo,
                connect_args={"check_same_thread": False},
                # a connection is a file handle in this process: keep one for every thread
                # a server worker may run at once, rather than open and close them
                pool_size=SQLITE_POOL,
            )
            dialect.configure_sqlite(self.engine, busy_timeout_ms=settings.database.busy_timeout_ms)
        else:
            self.engine = create_engine(
                url,
                echo=settings.database.echo,
                pool_size=settings.database.pool_size,
                pool_pre_ping=True,
            )
        dialect.refuse_nul(self.engine)
        # SQLite has one writer at a time. Writers of this process queue on a lock, and
        # writers of other processes (server workers, `shuzhi worker`) on a file lock
        # beside the database: the kernel wakes the next one at once, where SQLite's own
        # busy handler would sleep and retry. BEGIN IMMEDIATE still covers anyone else.
        self._write_lock = threading.Lock() if dialect.is_sqlite(self.engine) else None
        self._busy_timeout = settings.database.busy_timeout_ms / 1000
        # the SQLite file, when the database is one
        self._file = (
            Path(parsed.database)
            if self._write_lock is not None and parsed.database not in (None, "", ":memory:")
            else None
        )
        self._lock_path = Path(f"{self._file}.write-lock") if self._file is not None else None
        self._lock_handle: tuple[int, int] | None = None
        self._autocheckpoint = AUTOCHECKPOINT_PAGES
        # (busy, pages in the log, pages copied) of the last background checkpoint
        self.last_checkpoint: tuple[int, int, int] | None = None
        if self._file is not None:
            event.listen(self.engine, "connect", self._set_autocheckpoint)
        self._reads = sessionmaker(self.engine, expire_on_commit=False)
        self._writes = sessionmaker(
            self.engine.execution_options(shuzhi_write=True), expire_on_commit=False
        )

    @property
    def backend(self) -> str:
        return self.engine.dialect.name

    def session(self) -> Session:
        """A session for reading; it never commits."""
        return self._reads()

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """A unit of work: everything in it, change log included, commits or none of it."""
        with self._writer(), self._writes() as session:
            try:
                yield session
                session.commit()
            except StatementError as exc:
                session.rollback()
                # a type refusing a value (core.dialect) is the user's error, not ours
                if isinstance(exc.orig, ShuzhiError):
                    raise exc.orig from None
                raise
            except BaseException:
                session.rollback()
                raise

    @contextmanager
    def driver(self) -> Iterator[Driver]:
        """The DBAPI connection beneath the engine, for the few statements a hot path runs
        on every request (SQLAlchemy costs 20 times the statement there). Each statement
        commits on its own; nothing here is a unit of work."""
        pooled = self.engine.raw_connection()
        try:
            yield Driver(pooled.driver_connection, self.backend)
        finally:
            pooled.rollback()
            pooled.close()

    @contextmanager
    def driver_transaction(self) -> Iterator[Driver]:
        """``transaction()`` for a hot path: the same writer locks and BEGIN IMMEDIATE, on
        the DBAPI connection; it commits when the block ends, or rolls back."""
        with self._writer():
            pooled = self.engine.raw_connection()
            try:
                driver = Driver(pooled.driver_connection, self.backend)
                if driver.sqlite:
                    driver.cursor.execute("BEGIN IMMEDIATE")
                try:
                    yield driver
                except BaseException:
                    pooled.rollback()
                    raise
                pooled.commit()
            finally:
                pooled.close()

    @contextmanager
    def _writer(self) -> Iterator[None]:
        lock = self._write_lock
        if lock is not None:
            lock.acquire()
        try:
            held = self._file_lock()
            try:
                yield
            finally:
                if held is not None:
                    fcntl.flock(held, fcntl.LOCK_UN)
        finally:
            if lock is not None:
                lock.release()

    def _lock_file(self) -> int:
        """The lock file, opened once per process (a lock belongs to an open file, so a
        forked child opens its own); only the holder of the thread lock uses it."""
        pid = os.getpid()
        if self._lock_handle is None or self._lock_handle[0] != pid:
            assert self._lock_path is not None
            handle = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, 0o600)
            self._lock_handle = (pid, handle)
            # closed with the Database, or when it is collected without being disposed
            self._lock_closer = weakref.finalize(self, _close_own, pid, handle)
        return self._lock_handle[1]

    def _file_lock(self) -> int | None:
        """The cross-process writer lock, polled every half millisecond up to the busy
        timeout (a blocking wait could never time out)."""
        if self._lock_path is None:
            return None
        handle = self._lock_file()
        deadline = time.monotonic() + self._busy_timeout
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return handle
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise ShuzhiError(
                        "the database is busy with another writer; try again"
                    ) from None
                time.sleep(0.0005)

    def _set_autocheckpoint(self, dbapi_connection: sqlite3.Connection, _record: object) -> None:
        dbapi_connection.execute(f"PRAGMA wal_autocheckpoint={int(self._autocheckpoint)}")

    def checkpoint_in_background(self, every: float) -> Callable[[], None]:
        """Copy SQLite's write-ahead log into the database from a thread of its own,
        every ``every`` seconds, so that no request waits for it: SQLite otherwise runs
        the checkpoint (and its fsyncs) inside the commit that fills the log, while that
        commit still holds the writer's turn every other writer of every process waits
        for. A passive checkpoint takes no writer's lock. Commits keep a backstop in case
        this thread falls behind. Returns the function that stops it; nothing to do on
        PostgreSQL or an in-memory database, or with ``every`` 0."""
        if self._file is None or every <= 0:
            return lambda: None
        self._autocheckpoint = BACKSTOP_PAGES
        self.engine.dispose()  # pooled connections reopen with the backstop
        stopping = threading.Event()
        database = self._file

        def run() -> None:
            connection = sqlite3.connect(database, isolation_level=None, check_same_thread=False)
            try:
                while not stopping.wait(every):
                    try:
                        row = connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                        self.last_checkpoint = (int(row[0]), int(row[1]), int(row[2]))
                    except sqlite3.Error as exc:  # the next round tries again
                        log.warning("background checkpoint failed: %s", exc)
            finally:
                connection.close()

        thread = threading.Thread(target=run, name="shuzhi-checkpoint", daemon=True)
        thread.start()

        def stop() -> None:
            stopping.set()
            thread.join(timeout=10)
            self._autocheckpoint = AUTOCHECKPOINT_PAGES
            self.engine.dispose()

        return stop

    def dispose(self) -> None:
        self.engine.dispose()
        if self._lock_handle is not None and self._lock_handle[0] == os.getpid():
            self._lock_closer()
        self._lock_handle = None

    # migrations -----------------------------------------------------------------

    def alembic_config(self) -> Config:
        config = Config()
        config.set_main_option("script_location", str(migrations_path()))
        config.attributes["engine"] = self.engine
        return config

    def upgrade(self, revision: str = "head") -> None:
        command.upgrade(self.alembic_config(), revision)

    def current_revision(self) -> str | None:
        try:
            with self.engine.connect() as connection:
                return MigrationContext.configure(connection).get_current_revision()
        except OperationalError as exc:
            raise ConfigurationError(f"cannot open the database: {exc.orig}") from None

    def head_revision(self) -> str | None:
        return ScriptDirectory.from_config(self.alembic_config()).get_current_head()

    def check_revision(self) -> None:
        """Refuse to run on a database this release did not migrate."""
        current, head = self.current_revision(), self.head_revision()
        if current == head:
            return
        if current is None:
            raise DatabaseRevisionError(
                "the database is empty or was never migrated; run `shuzhi db upgrade`"
            )
        scripts = ScriptDirectory.from_config(self.alembic_config())
        known = {rev.revision for rev in scripts.walk_revisions()}
        if current not in known:
            raise DatabaseRevisionError(
                f"the database is at revision {current}, which this release of shuzhi does "
                "not know (was it migrated by a newer release?)"
            )
        raise DatabaseRevisionError(
            f"the database is at revision {current} and this release needs {head}; "
            "run `shuzhi db upgrade`"
        )


@lru_cache(maxsize=1)
def get_database() -> Database:
    settings = get_settings()
    return Database(settings.database_url, settings=settings)


def reset_database() -> None:
    if get_database.cache_info().currsize:
        get_database().dispose()
    get_database.cache_clear()
