"""The studio's tables as SQLAlchemy 2 typed models, and the names every other module shares.

    runs         one row per training or evaluation job: config, environment, lifecycle, progress
    steps        one row per optimizer step; typed columns for what the dashboard sorts and plots,
                 a JSON payload for the rest; (run_id, step) is unique
    samples      one row per generated response; arrays are compact little-endian blobs
                 (token ids int32, per-token entropy / log-prob float32 (float16 before v5),
                 rank curve float32); the answer the verifier read and the gold it compared
                 with (v5; null: not recorded)
    checkpoints  (run_id, step, path) of every checkpoint kept on disk
    evals        pass@k of a run's checkpoint on a held-out set
    events       run log lines and lifecycle events, for the app's log tail; health flags are
                 events with a `kind` ('flag:<name>', 'clear:<name>', 'stop:<name>') and a step
    counters     the highest id ever given, per table ("runs"): ids are never reused, so a new
                 run never inherits a deleted run's checkpoint folder or links (SQLite would
                 reuse the largest rowid after a delete; PostgreSQL's sequence would not, but the
                 store hands out ids the same way on both)
    schema_version  one row: the schema version this database was written with

Every child row cascades with its run. Timestamps are stored as naive UTC and read back aware.
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from engine.storage import samples

# Bump with a new entry in migrations.MIGRATIONS whenever a table changes.
SCHEMA_VERSION = 7


class RunStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    INTERRUPTED = "interrupted"

    @property
    def finished(self) -> bool:
        return self in FINISHED

    @property
    def resumable(self) -> bool:
        return self in RESUMABLE


FINISHED = frozenset(
    {RunStatus.COMPLETED, RunStatus.FAILED, RunStatus.CANCELLED, RunStatus.INTERRUPTED}
)
RESUMABLE = frozenset({RunStatus.FAILED, RunStatus.CANCELLED, RunStatus.INTERRUPTED})


class RunKind(StrEnum):
    TRAIN = "train"
    EVAL = "eval"


class EventLevel(StrEnum):
    DEBUG = "debug"
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"


# Typed per-step metrics (all nullable floats unless listed in STEP_INT_COLUMNS).
STEP_METRICS = (
    "wall_time",
    "tokens",
    "reward_mean",
    "reward_std",
    "accuracy",
    "heldout_accuracy",
    "er_mean",
    "er_p10",
    "er_p90",
    "erv_mean",
    "erv_p10",
    "erv_p90",
    "era_mean",
    "era_p10",
    "era_p90",
    "er_correct",
    "er_incorrect",
    "erv_correct",
    "erv_incorrect",
    "era_correct",
    "era_incorrect",
    "m_er",
    "m_erv",
    "m_era",
    "explore_weight_mean",
    "bonus_mean",
    "bonus_share",
    "frac_shaped",
    "frac_zero_std",
    "loss",
    "kl",
    "entropy",
    "mean_logprob",
    "completion_length",
    "step_seconds",
    # GRPO health (added in v3)
    "truncated_share",
    "length_p10",
    "length_p90",
    "generation_seconds",
    "tokens_per_second",
    "clipped_ratio",  # TRL's completions/clipped_ratio (added in v6)
)
STEP_INT_COLUMNS = frozenset({"tokens"})
STEP_COLUMNS = ("step", *STEP_METRICS, "reward_means", "payload")


class UTCDateTime(TypeDecorator):
    """Naive UTC in the database (SQLite has no time zones), aware UTC in Python."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is not None:
            value = value.astimezone(dt.UTC).replace(tzinfo=None)
        return value

    def process_result_value(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        return None if value is None else value.replace(tzinfo=dt.UTC)


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Base(DeclarativeBase):
    pass


class SchemaVersion(Base):
    __tablename__ = "schema_version"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class Counter(Base):
    """The highest id ever handed out for a table (added in v3)."""

    __tablename__ = "counters"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[int] = mapped_column(BigInteger, default=0)


class Run(Base):
    __tablename__ = "runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    notes: Mapped[str] = mapped_column(Text, default="")
    kind: Mapped[str] = mapped_column(String(16), default=RunKind.TRAIN.value)
    algorithm: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), default=RunStatus.QUEUED.value, index=True)
    config: Mapped[dict] = mapped_column(JSON)
    environment: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    finished_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    step: Mapped[int] = mapped_column(Integer, default=0)
    total_steps: Mapped[int] = mapped_column(Integer, default=0)
    host: Mapped[str | None] = mapped_column(String(255), nullable=True)
    pid: Mapped[int | None] = mapped_column(Integer, nullable=True)
    heartbeat_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    attempt: Mapped[int] = mapped_column(Integer, default=1, server_default="1")  # added in v2
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    parent_id: Mapped[int | None] = mapped_column(
        ForeignKey("runs.id", ondelete="SET NULL"), nullable=True
    )


def _run_fk() -> Mapped[int]:
    return mapped_column(ForeignKey("runs.id", ondelete="CASCADE"))


class Step(Base):
    __tablename__ = "steps"
    __table_args__ = (UniqueConstraint("run_id", "step", name="uq_steps_run_step"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = _run_fk()
    step: Mapped[int] = mapped_column(Integer)
    wall_time: Mapped[float | None] = mapped_column(Float)
    tokens: Mapped[int | None] = mapped_column(BigInteger)
    reward_mean: Mapped[float | None] = mapped_column(Float)
    reward_std: Mapped[float | None] = mapped_column(Float)
    accuracy: Mapped[float | None] = mapped_column(Float)
    heldout_accuracy: Mapped[float | None] = mapped_column(Float)
    er_mean: Mapped[float | None] = mapped_column(Float)
    er_p10: Mapped[float | None] = mapped_column(Float)
    er_p90: Mapped[float | None] = mapped_column(Float)
    erv_mean: Mapped[float | None] = mapped_column(Float)
    erv_p10: Mapped[float | None] = mapped_column(Float)
    erv_p90: Mapped[float | None] = mapped_column(Float)
    era_mean: Mapped[float | None] = mapped_column(Float)
    era_p10: Mapped[float | None] = mapped_column(Float)
    era_p90: Mapped[float | None] = mapped_column(Float)
    er_correct: Mapped[float | None] = mapped_column(Float)
    er_incorrect: Mapped[float | None] = mapped_column(Float)
    erv_correct: Mapped[float | None] = mapped_column(Float)
    erv_incorrect: Mapped[float | None] = mapped_column(Float)
    era_correct: Mapped[float | None] = mapped_column(Float)
    era_incorrect: Mapped[float | None] = mapped_column(Float)
    m_er: Mapped[float | None] = mapped_column(Float)  # shaping EMA baselines m_ER, m_ERV, m_ERA
    m_erv: Mapped[float | None] = mapped_column(Float)
    m_era: Mapped[float | None] = mapped_column(Float)
    explore_weight_mean: Mapped[float | None] = mapped_column(Float)
    bonus_mean: Mapped[float | None] = mapped_column(Float)
    bonus_share: Mapped[float | None] = mapped_column(Float)
    frac_shaped: Mapped[float | None] = mapped_column(Float)
    frac_zero_std: Mapped[float | None] = mapped_column(Float)
    loss: Mapped[float | None] = mapped_column(Float)
    kl: Mapped[float | None] = mapped_column(Float)
    entropy: Mapped[float | None] = mapped_column(Float)
    mean_logprob: Mapped[float | None] = mapped_column(Float)
    completion_length: Mapped[float | None] = mapped_column(Float)
    step_seconds: Mapped[float | None] = mapped_column(Float)
    # GRPO health, added in v3: share of responses cut off without EOS, response-length
    # p10 / p90 (tokens), seconds spent generating, generated tokens per generation second
    truncated_share: Mapped[float | None] = mapped_column(Float)
    length_p10: Mapped[float | None] = mapped_column(Float)
    length_p90: Mapped[float | None] = mapped_column(Float)
    generation_seconds: Mapped[float | None] = mapped_column(Float)
    tokens_per_second: Mapped[float | None] = mapped_column(Float)
    # added in v6: TRL's completions/clipped_ratio, and reward function -> its mean at this
    # step (TRL's rewards/<name>/mean), small enough to read for every step of a chart
    clipped_ratio: Mapped[float | None] = mapped_column(Float)
    reward_means: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    payload: Mapped[dict | None] = mapped_column(JSON, nullable=True)


SAMPLE_SQL_TYPES = {
    samples.KEY: Integer,
    samples.TEXT: Text,
    samples.ARRAY: LargeBinary,
    samples.FLOAT: Float,
    samples.INT: Integer,
    samples.BOOL: Boolean,
    samples.JSON: JSON,
}


def _sample_column(name: str, kind: str) -> Column:
    if kind == samples.KEY:
        return Column(name, Integer, nullable=False, default=0)
    return Column(name, SAMPLE_SQL_TYPES[kind], nullable=True)


class Sample(Base):
    """One generated response: a column per field of `engine.storage.samples.SampleRow`."""

    __table__ = Table(
        "samples",
        Base.metadata,
        Column("id", Integer, primary_key=True),
        Column("run_id", ForeignKey("runs.id", ondelete="CASCADE"), nullable=False),
        Column("step", Integer, nullable=False),
        *(_sample_column(name, kind) for name, kind in samples.SAMPLE_KINDS.items()),
        Index("ix_samples_run_step", "run_id", "step", "group_idx", "sample_idx"),
    )


class Checkpoint(Base):
    __tablename__ = "checkpoints"
    __table_args__ = (UniqueConstraint("run_id", "step", name="uq_checkpoints_run_step"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = _run_fk()
    step: Mapped[int] = mapped_column(Integer)
    path: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class Eval(Base):
    __tablename__ = "evals"
    __table_args__ = (Index("ix_evals_run_step", "run_id", "step"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = _run_fk()
    step: Mapped[int] = mapped_column(Integer)
    dataset: Mapped[str] = mapped_column(String(500))
    n: Mapped[int] = mapped_column(Integer)  # samples per problem
    ks: Mapped[list] = mapped_column(JSON)  # [k, ...]
    pass_at_k: Mapped[list] = mapped_column(JSON)  # [pass@k, ...] aligned with ks
    per_problem: Mapped[list] = mapped_column(JSON)  # correct samples out of n, per problem
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class Event(Base):
    __tablename__ = "events"
    __table_args__ = (Index("ix_events_run_id", "run_id", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = _run_fk()
    time: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    level: Mapped[str] = mapped_column(
        String(16), default=EventLevel.INFO.value, server_default=EventLevel.INFO.value
    )  # added in v2
    message: Mapped[str] = mapped_column(Text)
    # added in v3: what a machine-read event is ('flag:truncation', 'clear:...', 'stop:...')
    # and the step it is about
    kind: Mapped[str | None] = mapped_column(String(64), nullable=True)
    step: Mapped[int | None] = mapped_column(Integer, nullable=True)
