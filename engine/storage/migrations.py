"""Schema versions: create a fresh database, migrate an older one, refuse a newer one.

The `schema_version` table holds one row. A fresh database gets every table at SCHEMA_VERSION.
An older database runs, in order, each migration whose version is above its own, in the same
transaction that records the new version, so a failed migration leaves the old version intact.

    v1  the first released schema
    v2  runs.attempt (resume counter) and events.level
    v3  GRPO health: steps.truncated_share / length_p10 / length_p90 / generation_seconds /
        tokens_per_second, events.kind and events.step
    v4  samples.truncated (the response hit max_completion_length without end of sequence)
    v5  the answer audit: samples.answer_read and samples.gold_read; per-token entropy and
        log-prob blobs are written as float32 from now on (older float16 blobs are left as they
        are and still decode: the codec tells them apart by size)
    v6  steps.clipped_ratio (TRL's completions/clipped_ratio) and steps.reward_means (reward
        function -> its mean at the step), so the health charts never parse the step payload
    v7  counters: the highest run id ever given, so ids are never reused (seeded with the
        largest id present; ids deleted before the upgrade cannot be known)
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import Connection, func, insert, inspect, select, text, update

from engine.storage.schema import SCHEMA_VERSION, Base, Counter, Run, SchemaVersion, utcnow

RUN_COUNTER = "runs"

log = logging.getLogger(__name__)


class StoreError(RuntimeError):
    """A database the store cannot use as it is."""


class SchemaTooNew(StoreError):
    def __init__(self, where: str, found: int, known: int):
        super().__init__(
            f"the database {where} was written by a newer verl-studio (schema version {found}); "
            f"this version knows schema versions up to {known}. Upgrade verl-studio, or point "
            f"--db / VERL_STUDIO_DB at another database."
        )
        self.found, self.known = found, known


@dataclass(frozen=True)
class Migration:
    version: int  # the schema version this migration produces
    description: str
    apply: Callable[[Connection], None]


def _v2_attempt_and_level(conn: Connection) -> None:
    conn.execute(text("ALTER TABLE runs ADD COLUMN attempt INTEGER NOT NULL DEFAULT 1"))
    conn.execute(text("ALTER TABLE events ADD COLUMN level VARCHAR(16) NOT NULL DEFAULT 'info'"))


V3_STEP_COLUMNS = (
    "truncated_share",
    "length_p10",
    "length_p90",
    "generation_seconds",
    "tokens_per_second",
)


def _v3_health(conn: Connection) -> None:
    for name in V3_STEP_COLUMNS:
        conn.execute(text(f"ALTER TABLE steps ADD COLUMN {name} FLOAT"))
    conn.execute(text("ALTER TABLE events ADD COLUMN kind VARCHAR(64)"))
    conn.execute(text("ALTER TABLE events ADD COLUMN step INTEGER"))


def _v4_truncated(conn: Connection) -> None:
    conn.execute(text("ALTER TABLE samples ADD COLUMN truncated BOOLEAN"))


def _v5_answer_audit(conn: Connection) -> None:
    conn.execute(text("ALTER TABLE samples ADD COLUMN answer_read TEXT"))
    conn.execute(text("ALTER TABLE samples ADD COLUMN gold_read TEXT"))


def _v6_clipped_and_reward_means(conn: Connection) -> None:
    conn.execute(text("ALTER TABLE steps ADD COLUMN clipped_ratio FLOAT"))
    conn.execute(text("ALTER TABLE steps ADD COLUMN reward_means JSON"))


def _v7_counters(conn: Connection) -> None:
    Counter.__table__.create(conn, checkfirst=True)
    highest = conn.execute(select(func.coalesce(func.max(Run.id), 0))).scalar_one()
    kept = conn.execute(select(Counter.value).where(Counter.name == RUN_COUNTER)).scalar()
    if kept is None:
        conn.execute(insert(Counter).values(name=RUN_COUNTER, value=highest))
    elif kept < highest:
        conn.execute(update(Counter).where(Counter.name == RUN_COUNTER).values(value=highest))


def seed_counters(conn: Connection) -> None:
    """The counters of a fresh database."""
    conn.execute(insert(Counter).values(name=RUN_COUNTER, value=0))


MIGRATIONS: tuple[Migration, ...] = (
    Migration(2, "runs.attempt and events.level", _v2_attempt_and_level),
    Migration(3, "GRPO health step columns, events.kind and events.step", _v3_health),
    Migration(4, "samples.truncated", _v4_truncated),
    Migration(5, "answer audit: samples.answer_read and samples.gold_read", _v5_answer_audit),
    Migration(6, "steps.clipped_ratio and steps.reward_means", _v6_clipped_and_reward_means),
    Migration(7, "counters (run ids are never reused)", _v7_counters),
)


def stored_version(conn: Connection) -> int | None:
    """The recorded schema version; None for an empty database."""
    tables = set(inspect(conn).get_table_names())
    if SchemaVersion.__tablename__ not in tables:
        if "runs" in tables:
            raise StoreError(
                "this database has a runs table but no schema_version: not a studio database"
            )
        return None
    return conn.execute(select(SchemaVersion.version)).scalar_one_or_none()


def ensure_schema(conn: Connection, where: str) -> int:
    """Bring the database on `conn` (inside a write transaction) to SCHEMA_VERSION."""
    version = stored_version(conn)
    if version is None:
        Base.metadata.create_all(conn)
        seed_counters(conn)
        conn.execute(
            SchemaVersion.__table__.insert().values(
                id=1, version=SCHEMA_VERSION, updated_at=utcnow()
            )
        )
        log.info("created schema version %d in %s", SCHEMA_VERSION, where)
        return SCHEMA_VERSION
    if version > SCHEMA_VERSION:
        raise SchemaTooNew(where, version, SCHEMA_VERSION)
    for migration in MIGRATIONS:
        if migration.version > version:
            log.info(
                "migrating %s to schema version %d: %s",
                where,
                migration.version,
                migration.description,
            )
            migration.apply(conn)
    if version < SCHEMA_VERSION:
        Base.metadata.create_all(conn)  # tables a migration introduced by adding them to schema.py
        conn.execute(update(SchemaVersion).values(version=SCHEMA_VERSION, updated_at=utcnow()))
    return SCHEMA_VERSION
