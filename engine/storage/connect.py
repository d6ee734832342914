"""Database engines: SQLite with WAL, busy timeout and foreign keys set in one connect listener
(a journal mode other than WAL is logged, naming the file), and `BEGIN IMMEDIATE` for write
transactions; any other SQLAlchemy URL as it is.

What cannot be a database is a `StoreError` of one line naming it, before any connection: a
folder, a file that is not SQLite, an unknown dialect or a missing driver. A SQLite file that
cannot be written (read-only file, folder or mount) is opened read-only (`mode=ro`; `immutable`
when its folder cannot hold the WAL index either), so listing and exporting still work.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError
from sqlalchemy.pool import StaticPool

from engine.storage.codec import dumps
from engine.storage.migrations import StoreError

log = logging.getLogger(__name__)

IMMEDIATE = "verl_studio_immediate"  # execution option: start the SQLite transaction IMMEDIATE
BUSY_TIMEOUT_S = 30.0


def shown(url: Any) -> str:
    """A URL fit for a message: SQLite as its path, others without the password."""
    if url.get_backend_name() == "sqlite":
        return unquote(str(url.database or ":memory:").removeprefix("file:"))
    return url.render_as_string(hide_password=True)


def _check_sqlite_file(path: Path) -> bool:
    """Raise StoreError for a path that cannot hold a database; returns whether it is writable."""
    if path.is_dir():
        raise StoreError(
            f"{path} is a folder; --db takes a database file (e.g. {path / 'studio.db'})"
        )
    if not path.exists():
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"cannot create the folder of the database {path}: {exc}") from None
        if not os.access(path.parent, os.W_OK):
            raise StoreError(f"cannot create the database {path}: its folder is read-only")
        return True
    # No open() of the file here: closing any descriptor of it drops every POSIX lock this
    # process holds on it, so a store already open in this process would lose its WAL locks and
    # another process could delete the WAL under it. A non-SQLite file fails at connect instead.
    if not os.access(path, os.R_OK):
        raise StoreError(f"cannot read the database {path}: permission denied")
    return os.access(path, os.W_OK) and os.access(path.parent, os.W_OK)


def _read_only_url(path: Path) -> str:
    """sqlite URI opening `path` read-only; immutable when its folder cannot hold a WAL index."""
    shm = path.with_name(path.name + "-shm")
    immutable = not os.access(path.parent, os.W_OK) and not shm.exists()
    query = "mode=ro" + ("&immutable=1" if immutable else "")
    return f"sqlite:///file:{quote(str(path))}?{query}&uri=true"


def _sqlite_engine(url: Any, busy_timeout_s: float) -> Engine:
    memory = url.database in (None, "", ":memory:") or url.query.get("mode") == "memory"
    where = "(memory)" if memory else str(Path(url.database).expanduser().resolve())
    read_only = False
    if not memory and not url.query.get("uri"):
        read_only = not _check_sqlite_file(Path(where))
        if read_only:
            log.debug("the database %s is read-only: opening it for reading only", where)
            url = make_url(_read_only_url(Path(where)))
    engine = create_engine(
        url,
        connect_args={"check_same_thread": False, "timeout": busy_timeout_s},
        json_serializer=dumps,
        **({"poolclass": StaticPool} if memory else {}),
    )
    warned: list[str] = []  # per engine, so the warning is logged once

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # SQLAlchemy's begin event below issues BEGIN itself
        cursor = dbapi_conn.cursor()
        mode = "wal" if read_only else cursor.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if mode.lower() != "wal" and not memory and not warned:
            warned.append(mode)
            log.warning(
                "SQLite refused WAL for %s (journal_mode=%s); readers may block writers. "
                "Is it on a network file system?",
                where,
                mode,
            )
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_s * 1000)}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        immediate = conn.get_execution_options().get(IMMEDIATE, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


def is_read_only(engine: Engine) -> bool:
    """Whether a SQLite engine was opened read-only (see _read_only_url)."""
    return engine.dialect.name == "sqlite" and engine.url.query.get("mode") == "ro"


def make_engine(url: str, busy_timeout_s: float = BUSY_TIMEOUT_S) -> Engine:
    """An engine for `url`; StoreError (one line) for what cannot be a database."""
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):  # ValueError: a port that is not a number
        raise StoreError(
            f"--db {url!r} is neither a file path nor a database URL "
            "(sqlite:///PATH or postgresql+psycopg://USER@HOST/DB)"
        ) from None
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(parsed, busy_timeout_s)
    try:
        return create_engine(parsed, pool_pre_ping=True, json_serializer=dumps)
    except NoSuchModuleError:
        raise StoreError(
            f"--db {shown(parsed)}: unknown database kind {parsed.drivername!r}; use a file path, "
            "sqlite:///PATH or postgresql+psycopg://USER@HOST/DB"
        ) from None
    except ImportError as exc:
        raise StoreError(
            f"--db {shown(parsed)}: the Python driver for {parsed.drivername!r} is not installed "
            f"({exc.name or exc}); use SQLite or postgresql+psycopg"
        ) from None
