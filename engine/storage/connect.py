"""Database engines: SQLite with WAL, busy timeout and foreign keys set in one connect listener
(a journal mode other than WAL is logged, naming the file), and `BEGIN IMMEDIATE` for write
transactions; any other SQLAlchemy URL as it is.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.pool import StaticPool

from engine.storage.codec import dumps

log = logging.getLogger(__name__)

IMMEDIATE = "verl_studio_immediate"  # execution option: start the SQLite transaction IMMEDIATE
BUSY_TIMEOUT_S = 30.0


def _sqlite_engine(url: Any, busy_timeout_s: float) -> Engine:
    memory = url.database in (None, "", ":memory:")
    where = "(memory)" if memory else str(Path(url.database).resolve())
    if not memory:
        Path(url.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
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
        mode = cursor.execute("PRAGMA journal_mode=WAL").fetchone()[0].lower()
        if mode != "wal" and not memory and not warned:
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


def make_engine(url: str, busy_timeout_s: float = BUSY_TIMEOUT_S) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(parsed, busy_timeout_s)
    return create_engine(parsed, pool_pre_ping=True, json_serializer=dumps)
