"""`Store`: the studio's only door to the database. Plain dataclasses and dicts in and out.

    store = Store("sqlite:///studio.db")      # or Store.open(data_root); any SQLAlchemy URL
    run_id = store.create_run(cfg.to_dict(), name="demo", algorithm="verl", total_steps=100)
    store.log_step(run_id, {"step": 1, "reward_mean": 0.4, ...}, samples)   # one transaction
    store.steps(run_id, ["reward_mean"])       # [{"step": 1, "reward_mean": 0.4}, ...]

SQLite (the default) is opened with WAL, a busy timeout and foreign keys, all set in one connect
listener; a journal mode other than WAL is logged as a warning naming the file (network file
systems may refuse WAL). Transactions that write start with `BEGIN IMMEDIATE`, so a
read-then-write never fails half way on a lock upgrade; PostgreSQL rows are locked with
`SELECT ... FOR UPDATE` where a decision depends on what was read.

Non-finite floats (NaN, inf) are stored as empty (None) on every backend. Step keys that are not
typed columns are kept in the step's JSON payload. "Nothing yet" is an empty result.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import (
    Connection,
    Text,
    case,
    delete,
    func,
    insert,
    or_,
    select,
    text,
    type_coerce,
    update,
)
from sqlalchemy.exc import DBAPIError, IntegrityError

from engine.storage.codec import (
    SQLITE_SAMPLE_INSERT,
    finite,
    sample_dict,
    sample_row,
    sample_tuple,
    scalar_arrays,
    step_row,
)
from engine.storage.connect import BUSY_TIMEOUT_S, IMMEDIATE, is_read_only, make_engine, shown
from engine.storage.migrations import RUN_COUNTER, StoreError, ensure_schema, stored_version
from engine.storage.samples import SAMPLE_ARRAYS, SAMPLE_SCALARS
from engine.storage.schema import (
    RESUMABLE,
    SCHEMA_VERSION,
    STEP_COLUMNS,
    STEP_METRICS,
    Checkpoint,
    Counter,
    Eval,
    Event,
    EventLevel,
    Run,
    RunKind,
    RunStatus,
    Sample,
    Step,
    utcnow,
)
from engine.storage.step_cache import KEEP, StepCache, Version

try:  # 3-5x faster JSON parsing where installed (a dependency of gradio)
    from orjson import loads as _json_loads
except ImportError:  # pragma: no cover
    from json import loads as _json_loads

log = logging.getLogger(__name__)


def _reason(exc: DBAPIError) -> str:
    """The driver's own message, first line: "file is not a database", "connection refused"."""
    text_ = str(exc.orig) if exc.orig is not None else str(exc)
    return (text_.strip().splitlines() or ["unknown error"])[0]


class DuplicateStep(StoreError):
    """A step that is already recorded for this run; nothing of the new step was written."""


class RunGone(StoreError):
    """The run a row was written for no longer exists (it was deleted); nothing was written."""


@contextmanager
def _rows_of(run_id: int) -> Iterator[None]:
    """A foreign-key failure on a run's child row is RunGone, on every backend."""
    try:
        yield
    except IntegrityError as exc:
        if "foreign key" in str(exc.orig or exc).lower():
            raise RunGone(f"run {run_id} no longer exists (deleted)") from None
        raise


@dataclasses.dataclass(frozen=True)
class RunInfo:
    """Every column of `runs`, as plain Python values."""

    id: int
    name: str
    notes: str
    kind: str
    algorithm: str
    status: RunStatus
    config: dict
    environment: dict
    created_at: dt.datetime
    started_at: dt.datetime | None
    finished_at: dt.datetime | None
    step: int
    total_steps: int
    host: str | None
    pid: int | None
    heartbeat_at: dt.datetime | None
    cancel_requested: bool
    attempt: int
    error: str | None
    parent_id: int | None

    @property
    def progress(self) -> float:
        """Fraction of total_steps done, in [0, 1]."""
        return min(1.0, self.step / self.total_steps) if self.total_steps else 0.0


_RUN_FIELDS = tuple(f.name for f in dataclasses.fields(RunInfo))


def _step_select(run_id: int, names: Sequence[str]):
    """SELECT the step columns `names` of one run, ordered by step."""
    table = Step.__table__
    return (
        select(*[table.c[n] for n in names]).where(table.c.run_id == run_id).order_by(table.c.step)
    )


def _json_value(value: Any) -> Any:
    """A JSON column read as text (SQLite) or already decoded (PostgreSQL's driver)."""
    if isinstance(value, str | bytes):
        return _json_loads(value)
    return value


def _dicts(result: Any) -> list[dict]:
    keys = list(result.keys())
    return [dict(zip(keys, row, strict=True)) for row in result]


def _run_info(row: Any) -> RunInfo:
    values = {name: getattr(row, name) for name in _RUN_FIELDS}
    values["status"] = RunStatus(values["status"])
    values["config"] = values["config"] or {}
    values["environment"] = values["environment"] or {}
    values["cancel_requested"] = bool(values["cancel_requested"])
    return RunInfo(**values)


# ---- the store -------------------------------------------------------------------------------------


def _samples_between(
    names: Sequence[str], run_id: int, step_min: int | None, step_max: int | None
) -> Any:
    """SELECT `names` of a run's samples with step_min <= step <= step_max, in (step, group,
    sample) order."""
    table = Sample.__table__
    query = select(*[table.c[n] for n in names]).where(table.c.run_id == run_id)
    if step_min is not None:
        query = query.where(table.c.step >= step_min)
    if step_max is not None:
        query = query.where(table.c.step <= step_max)
    return query.order_by(table.c.step, table.c.group_idx, table.c.sample_idx)


class Store:
    """Runs, steps, samples, checkpoints, evals and events of one database. Thread-safe."""

    def __init__(self, url: str, *, busy_timeout_s: float = BUSY_TIMEOUT_S):
        self.url = url
        self.engine = make_engine(url, busy_timeout_s)
        self.is_sqlite = self.engine.dialect.name == "sqlite"
        self.read_only = is_read_only(self.engine)
        self.where = shown(self.engine.url)
        self._step_cache = StepCache()  # the monitor's step series, extended as steps land
        try:
            self.schema_version = self._open_schema()
        except StoreError:
            self.engine.dispose()
            raise
        except DBAPIError as exc:
            self.engine.dispose()
            if self.is_sqlite and "not a database" in _reason(exc):
                raise StoreError(
                    f"{self.where} is not a SQLite database; point --db at a studio database "
                    "or a new file"
                ) from None
            raise StoreError(f"cannot open the database {self.where}: {_reason(exc)}") from None

    def _open_schema(self) -> int:
        """The schema version, after creating or migrating it when needed (one write)."""
        with self._read() as conn:
            version = stored_version(conn)
        if version == SCHEMA_VERSION:
            return version
        if self.read_only:
            raise StoreError(
                f"the database {self.where} is read-only and at schema version {version}, not "
                f"{SCHEMA_VERSION}: open it once with write access to upgrade it"
            )
        with self._write() as conn:
            if self.engine.dialect.name == "postgresql":
                conn.execute(text("SELECT pg_advisory_xact_lock(7135)"))  # one migrator at a time
            return ensure_schema(conn, self.engine.url.render_as_string())

    @classmethod
    def open(cls, root: Any) -> Store:
        """The store of a `DataRoot` (engine.paths.resolve)."""
        return cls(root.db_url)

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    @contextmanager
    def _write(self) -> Iterator[Connection]:
        if self.read_only:
            raise StoreError(
                f"the database {self.where} is read-only (its file, folder or disk cannot be "
                "written): only reading commands work on it"
            )
        with self.engine.connect() as conn:
            conn.execution_options(**{IMMEDIATE: True})
            with conn.begin():
                yield conn

    @contextmanager
    def _read(self) -> Iterator[Connection]:
        with self.engine.connect() as conn, conn.begin():
            yield conn

    # ---- runs -----------------------------------------------------------------------------------

    def create_run(
        self,
        config: dict,
        *,
        name: str,
        algorithm: str,
        kind: str = RunKind.TRAIN,
        total_steps: int,
        notes: str = "",
        parent_id: int | None = None,
        claimed_by: str | None = None,
    ) -> int:
        """A new run, queued for a worker; with `claimed_by` (a host name) it is created already
        running there, for a process that trains it directly, so no worker can claim it."""
        values = {
            "name": name,
            "notes": notes,
            "kind": RunKind(kind).value,
            "algorithm": algorithm,
            "status": RunStatus.QUEUED.value,
            "config": config,
            "created_at": utcnow(),
            "step": 0,
            "total_steps": int(total_steps),
            "cancel_requested": False,
            "attempt": 1,
            "parent_id": parent_id,
        }
        if claimed_by is not None:
            values.update(status=RunStatus.RUNNING.value, host=claimed_by, heartbeat_at=utcnow())
        with self._write() as conn:
            values["id"] = self._next_run_id(conn)
            run_id = conn.execute(insert(Run).values(**values).returning(Run.id)).scalar_one()
            where = f"started directly on {claimed_by}" if claimed_by else "queued"
            self._event(conn, run_id, f"{where} ({kind}, {algorithm}, {total_steps} steps)")
        return run_id

    @staticmethod
    def _next_run_id(conn: Connection) -> int:
        """One more than any run id ever given (the counter row is locked until commit)."""
        highest = select(func.coalesce(func.max(Run.id), 0)).scalar_subquery()
        return conn.execute(
            update(Counter)
            .where(Counter.name == RUN_COUNTER)
            .values(value=case((Counter.value >= highest, Counter.value), else_=highest) + 1)
            .returning(Counter.value)
        ).scalar_one()

    def get_run(self, run_id: int) -> RunInfo | None:
        with self._read() as conn:
            row = conn.execute(select(Run.__table__).where(Run.id == run_id)).first()
        return None if row is None else _run_info(row)

    def list_runs(
        self, kind: str | None = None, *, status: str | Sequence[str] | None = None
    ) -> list[RunInfo]:
        """Runs newest first, optionally of one kind and/or some statuses."""
        query = select(Run.__table__).order_by(Run.id.desc())
        if kind is not None:
            query = query.where(Run.kind == RunKind(kind).value)
        if status is not None:
            statuses = [status] if isinstance(status, str) else list(status)
            query = query.where(Run.status.in_([RunStatus(s).value for s in statuses]))
        with self._read() as conn:
            return [_run_info(row) for row in conn.execute(query)]

    def update_run(self, run_id: int, *, name: str | None = None, notes: str | None = None) -> None:
        values = {k: v for k, v in (("name", name), ("notes", notes)) if v is not None}
        if values:
            with self._write() as conn:
                conn.execute(update(Run).where(Run.id == run_id).values(**values))

    def delete_run(self, run_id: int, *, only_if: Sequence[RunStatus] | None = None) -> bool:
        """Delete a run and every row of it (checkpoint folders are the caller's). With
        `only_if`, only while its status is one of those, decided in the same transaction (a
        worker claiming it meanwhile wins); returns whether it was deleted."""
        with self._write() as conn:
            run = self._locked_run(conn, run_id)
            if run is None or (only_if is not None and RunStatus(run.status) not in only_if):
                return False
            for table in (Sample, Step, Eval, Checkpoint, Event):
                conn.execute(delete(table).where(table.run_id == run_id))
            return conn.execute(delete(Run).where(Run.id == run_id)).rowcount == 1

    def _locked_run(self, conn: Connection, run_id: int) -> Any:
        return conn.execute(select(Run.__table__).where(Run.id == run_id).with_for_update()).first()

    def request_cancel(self, run_id: int) -> RunStatus:
        """Cancel a queued run at once; flag a running one (its trainer stops at the next step)."""
        with self._write() as conn:
            run = self._locked_run(conn, run_id)
            if run is None:
                raise LookupError(f"no run {run_id}")
            status = RunStatus(run.status)
            if status is RunStatus.QUEUED:
                conn.execute(
                    update(Run)
                    .where(Run.id == run_id)
                    .values(
                        status=RunStatus.CANCELLED.value,
                        cancel_requested=True,
                        finished_at=utcnow(),
                    )
                )
                self._event(conn, run_id, "cancelled while queued")
                return RunStatus.CANCELLED
            if status is RunStatus.RUNNING and not run.cancel_requested:
                conn.execute(update(Run).where(Run.id == run_id).values(cancel_requested=True))
                self._event(conn, run_id, "cancel requested")
            return status

    def requeue_for_resume(self, run_id: int) -> int | None:
        """Queue a failed/cancelled/interrupted run again; returns the checkpoint step k it
        resumes from (0: from the start), or None when the run is missing or not resumable.

        In the same transaction, step, sample and eval rows after k are deleted, so the resumed
        run records each of them exactly once."""
        with self._write() as conn:
            run = self._locked_run(conn, run_id)
            if run is None or RunStatus(run.status) not in RESUMABLE:
                return None
            k = self._scalar_max(conn, Checkpoint, run_id) or 0
            m = max(self._scalar_max(conn, t, run_id) or 0 for t in (Step, Sample, Eval))
            for table in (Sample, Step, Eval):
                conn.execute(delete(table).where(table.run_id == run_id, table.step > k))
            # events about those steps (health flags) go with them; plain log lines stay
            conn.execute(delete(Event).where(Event.run_id == run_id, Event.step > k))
            if m > k:
                self._event(
                    conn,
                    run_id,
                    f"discarded steps {k + 1}..{m}, recorded after checkpoint {k}",
                    EventLevel.WARNING,
                )
            attempt = run.attempt + 1
            conn.execute(
                update(Run)
                .where(Run.id == run_id)
                .values(
                    status=RunStatus.QUEUED.value,
                    attempt=attempt,
                    cancel_requested=False,
                    error=None,
                    pid=None,
                    host=None,
                    heartbeat_at=None,
                    finished_at=None,
                    step=k,
                )
            )
            start = f"checkpoint {k}" if k else "the start (no checkpoint)"
            self._event(conn, run_id, f"re-queued as attempt {attempt}, resuming from {start}")
            return k

    @staticmethod
    def _scalar_max(conn: Connection, table: Any, run_id: int) -> int | None:
        return conn.execute(select(func.max(table.step)).where(table.run_id == run_id)).scalar()

    # ---- lifecycle (worker and training process) ----------------------------------------------

    def claim_run(self, run_id: int, host: str) -> bool:
        """queued -> running for exactly one caller: a conditional UPDATE checked by row count."""
        with self._write() as conn:
            claimed = conn.execute(
                update(Run)
                .where(Run.id == run_id, Run.status == RunStatus.QUEUED.value)
                .values(
                    status=RunStatus.RUNNING.value,
                    host=host,
                    pid=None,
                    heartbeat_at=utcnow(),
                    finished_at=None,
                )
            ).rowcount
            if claimed == 1:
                self._event(conn, run_id, f"claimed by a worker on {host}")
            return claimed == 1

    def set_process(self, run_id: int, *, host: str, pid: int, attempt: int) -> None:
        """Record the process that runs this attempt (the worker, right after spawning it)."""
        with self._write() as conn:
            conn.execute(
                update(Run)
                .where(Run.id == run_id, Run.attempt == attempt, Run.pid.is_(None))
                .values(host=host, pid=pid)
            )

    def mark_running(self, run_id: int, *, host: str, pid: int, environment: dict) -> RunInfo:
        """The training process takes its run: status running, its host/pid and environment."""
        now = utcnow()
        with self._write() as conn:
            run = self._locked_run(conn, run_id)
            if run is None:
                raise LookupError(f"no run {run_id}")
            if RunStatus(run.status) not in (RunStatus.QUEUED, RunStatus.RUNNING):
                raise StoreError(f"run {run_id} is {run.status}; resume it to run it again")
            conn.execute(
                update(Run)
                .where(Run.id == run_id)
                .values(
                    status=RunStatus.RUNNING.value,
                    host=host,
                    pid=pid,
                    environment=environment,
                    started_at=now,
                    heartbeat_at=now,
                    finished_at=None,
                    error=None,
                )
            )
            self._event(conn, run_id, f"running (attempt {run.attempt}) as pid {pid} on {host}")
        return self.get_run(run_id)

    def heartbeat(self, run_id: int, attempt: int | None = None) -> bool:
        """Refresh a running run's heartbeat; returns whether its process should stop: a cancel
        was requested, or the run is no longer this `attempt`'s (resumed, deleted, finished).

        A run marked interrupted for a stale heartbeat whose process turns out to be alive (a
        suspended laptop woke up) is running again."""
        with self._write() as conn:
            run = conn.execute(
                select(Run.status, Run.attempt, Run.cancel_requested).where(Run.id == run_id)
            ).first()
            live = (RunStatus.RUNNING.value, RunStatus.INTERRUPTED.value)
            if run is None or (attempt is not None and run.attempt != attempt):
                return True
            if run.status not in live:
                return True
            values: dict[str, Any] = {"heartbeat_at": utcnow()}
            if run.status == RunStatus.INTERRUPTED.value:
                values.update(status=RunStatus.RUNNING.value, finished_at=None, error=None)
                self._event(
                    conn, run_id, "heartbeat again after being marked interrupted: running",
                    EventLevel.WARNING,
                )  # fmt: skip
            conn.execute(update(Run).where(Run.id == run_id).values(**values))
            return bool(run.cancel_requested)

    def cancel_requested(self, run_id: int) -> bool:
        """Whether the run's process should stop: a cancel was requested, or the run is gone."""
        with self._read() as conn:
            flag = conn.execute(select(Run.cancel_requested).where(Run.id == run_id)).first()
        return flag is None or bool(flag[0])

    def run_exists(self, run_id: int) -> bool:
        with self._read() as conn:
            return conn.execute(select(Run.id).where(Run.id == run_id)).first() is not None

    def finish_run(
        self,
        run_id: int,
        status: RunStatus,
        *,
        error: str | None = None,
        attempt: int | None = None,
        from_statuses: Sequence[RunStatus] = (RunStatus.RUNNING,),
    ) -> bool:
        """Record an outcome if the run is still in one of `from_statuses` (and this attempt);
        returns whether it was recorded, so two observers never both write an outcome."""
        status = RunStatus(status)
        query = (
            update(Run)
            .where(Run.id == run_id, Run.status.in_([RunStatus(s).value for s in from_statuses]))
            .values(status=status.value, finished_at=utcnow(), error=error)
        )
        if attempt is not None:
            query = query.where(Run.attempt == attempt)
        with self._write() as conn:
            done = conn.execute(query).rowcount == 1
            if done:
                calm = (RunStatus.COMPLETED, RunStatus.CANCELLED)
                level = EventLevel.INFO if status in calm else EventLevel.WARNING
                reason = f": {error.strip().splitlines()[-1]}" if error else ""
                self._event(conn, run_id, f"{status.value}{reason}", level)
            return done

    # ---- steps and samples -----------------------------------------------------------------------

    def log_step(
        self,
        run_id: int,
        step: dict,
        samples: Sequence[dict] = (),
        events: Sequence[dict] = (),
    ) -> None:
        """One transaction: the step row, its sample rows (bulk), the run's progress and
        `events` about this step (dicts with message, level, kind; e.g. health flags)."""
        row = step_row(run_id, step)
        if self.is_sqlite:
            sample_rows = [sample_tuple(run_id, row["step"], s, True) for s in samples]
        else:
            sample_rows = [sample_row(run_id, row["step"], s) for s in samples]
        with _rows_of(run_id), self._write() as conn:
            try:
                conn.execute(insert(Step), [row])
            except IntegrityError as exc:
                if "foreign key" in str(exc).lower():
                    raise RunGone(f"run {run_id} no longer exists (deleted)") from None
                raise DuplicateStep(
                    f"step {row['step']} of run {run_id} is already recorded"
                ) from exc
            if sample_rows:
                self._insert_samples(conn, sample_rows)
            for event in events:
                self._event(
                    conn,
                    run_id,
                    event["message"],
                    event.get("level", EventLevel.INFO),
                    kind=event.get("kind"),
                    step=row["step"],
                )
            conn.execute(update(Run).where(Run.id == run_id).values(step=row["step"]))

    def set_progress(self, run_id: int, step: int, *, total_steps: int | None = None) -> None:
        """Move a run's progress (step / total) without a step row: an eval run counts the
        models it has evaluated. `total_steps` corrects the total once the job knows it."""
        values: dict[str, Any] = {"step": int(step)}
        if total_steps is not None:
            values["total_steps"] = int(total_steps)
        with self._write() as conn:
            conn.execute(update(Run).where(Run.id == run_id).values(**values))

    def _insert_samples(self, conn: Connection, rows: list) -> None:
        """Bulk insert. On SQLite the value tuples go straight to the driver's executemany: they
        are already what SQLAlchemy would bind (blobs, numbers, text, JSON text), and skipping
        its per-row processing doubles the ingestion rate (bench/bench_store.py)."""
        if self.is_sqlite:
            conn.exec_driver_sql(SQLITE_SAMPLE_INSERT, rows)
        else:
            conn.execute(insert(Sample), rows)

    def latest_step(self, run_id: int) -> int:
        """The last recorded step (0 when none). One indexed lookup: cheap enough for timers."""
        with self._read() as conn:
            return self._scalar_max(conn, Step, run_id) or 0

    def steps(self, run_id: int, columns: Sequence[str] | None = None) -> list[dict]:
        """Step rows ordered by step; `columns` picks typed columns ('step' always included)."""
        names = list(STEP_COLUMNS) if columns is None else ["step", *columns]
        unknown = [c for c in names if c not in STEP_COLUMNS]
        if unknown:
            raise ValueError(f"unknown step columns {unknown}; known: {', '.join(STEP_COLUMNS)}")
        names = list(dict.fromkeys(names))
        with self._read() as conn:
            return _dicts(conn.execute(_step_select(run_id, names)))

    def step_columns(self, run_id: int, columns: Sequence[str]) -> dict[str, np.ndarray]:
        """Typed step columns as one numpy array (S,) each, ordered by step ('step' always
        included). All float64 with NaN for empty, what the monitor's charts read (step and
        tokens are exact in float64 below 2**53). Read once, then only the steps logged since
        (engine.storage.step_cache), so a redraw after a new step costs O(1) rows."""
        names = list(dict.fromkeys(["step", *columns]))
        unknown = [c for c in names if c not in STEP_METRICS and c != "step"]
        if unknown:
            raise ValueError(f"not typed step columns: {unknown}; known: {', '.join(STEP_METRICS)}")
        fetched = list(dict.fromkeys([*names, *KEEP]))
        table = Step.__table__

        def rows_after(conn: Connection, after: int | None) -> dict[str, np.ndarray]:
            query = select(*[table.c[n] for n in fetched]).where(table.c.run_id == run_id)
            if after is not None:
                query = query.where(table.c.step > after)
            # one fetchall, as plain tuples: numpy trips over SQLAlchemy's Row
            rows = [tuple(row) for row in conn.execute(query.order_by(table.c.step)).all()]
            values = np.array(rows, dtype=np.float64).reshape(len(rows), len(fetched))  # (S, C)
            return {name: values[:, j] for j, name in enumerate(fetched)}

        arrays = self._cached_steps(("columns", run_id, tuple(names)), run_id, rows_after)
        return {name: arrays[name] for name in names}

    def _cached_steps(self, key: tuple, run_id: int, rows_after: Any) -> dict[str, np.ndarray]:
        """A step series through the step cache, read in one transaction (SQLite: one
        snapshot). rows_after(conn, after): the rows with step > after (None: all)."""
        with self._read() as conn:
            return self._step_cache.read(
                key,
                self._steps_version(conn, run_id),
                lambda after: rows_after(conn, after),
                lambda upto: self._steps_version(conn, run_id, upto),
            )

    def _steps_version(self, conn: Connection, run_id: int, upto: int | None = None) -> Version:
        """(attempt, rows, last step, largest row id, latest wall time) of a run's steps
        (<= upto); the attempt is read first (see engine.storage.step_cache)."""
        attempt = conn.execute(select(Run.attempt).where(Run.id == run_id)).scalar()
        table = Step.__table__
        query = select(
            func.count(table.c.id),
            func.max(table.c.step),
            func.max(table.c.id),
            func.max(table.c.wall_time),
        ).where(table.c.run_id == run_id)
        if upto is not None:
            query = query.where(table.c.step <= upto)
        rows, last_step, max_id, last_wall = conn.execute(query).one()
        wall = None if last_wall is None else float(last_wall)
        return (attempt, int(rows), last_step, max_id, wall)

    def step_payload_columns(self, run_id: int, keys: Sequence[str]) -> dict[str, np.ndarray]:
        """Numeric values of step-payload keys (e.g. TRL's 'completions/clipped_ratio') as one
        float64 array (S,) per key, NaN where a step lacks it, ordered by step ('step'
        included). Read by the database's JSON functions in one SELECT (no JSON parsed here)."""
        keys = list(dict.fromkeys(keys))
        table = Step.__table__
        columns = [table.c.step] + [table.c.payload[k].as_float() for k in keys]
        query = select(*columns).where(table.c.run_id == run_id).order_by(table.c.step)
        with self._read() as conn:
            rows = [tuple(row) for row in conn.execute(query).all()]
        values = np.array(rows, dtype=np.float64).reshape(len(rows), len(keys) + 1)  # (S, 1 + K)
        return {name: values[:, j].copy() for j, name in enumerate(["step", *keys])}

    def step_reward_means(self, run_id: int) -> dict[str, np.ndarray]:
        """Each reward function's per-step mean as a float64 array (S,) (NaN where a step lacks
        it), ordered by step ('step' included): one SELECT of the small reward_means column,
        then only the steps logged since (engine.storage.step_cache)."""
        table = Step.__table__
        raw = type_coerce(table.c.reward_means, Text)  # JSON text on SQLite: parsed below, fast

        def rows_after(conn: Connection, after: int | None) -> dict[str, np.ndarray]:
            query = select(table.c.step, table.c.id, table.c.wall_time, raw)
            query = query.where(table.c.run_id == run_id)
            if after is not None:
                query = query.where(table.c.step > after)
            rows = conn.execute(query.order_by(table.c.step)).all()
            head = np.array([r[:3] for r in rows], dtype=np.float64).reshape(len(rows), 3)
            out = {name: head[:, j] for j, name in enumerate(KEEP)}  # None read as NaN
            means = [_json_value(r[3]) or {} for r in rows]
            for name in dict.fromkeys(k for m in means for k in m):
                out[name] = np.array([m.get(name) for m in means], dtype=np.float64)
            return out

        arrays = self._cached_steps(("reward_means", run_id), run_id, rows_after)
        return {name: values for name, values in arrays.items() if name not in ("id", "wall_time")}

    def last_payload_keys(self, run_id: int) -> list[str]:
        """The payload keys of the run's latest step (what the step logged besides columns)."""
        table = Step.__table__
        query = (
            select(table.c.payload)
            .where(table.c.run_id == run_id)
            .order_by(table.c.step.desc())
            .limit(1)
        )
        with self._read() as conn:
            payload = conn.execute(query).scalar()
        return sorted(payload or {})

    def sample_steps(self, run_id: int) -> list[int]:
        query = select(Sample.step).where(Sample.run_id == run_id).distinct().order_by(Sample.step)
        with self._read() as conn:
            return list(conn.execute(query).scalars())

    def samples(self, run_id: int, step: int, group_idx: int | None = None) -> list[dict]:
        """One step's responses ordered by (group, sample); arrays decoded to numpy."""
        table = Sample.__table__
        query = select(table).where(table.c.run_id == run_id, table.c.step == step)
        if group_idx is not None:
            query = query.where(table.c.group_idx == group_idx)
        query = query.order_by(table.c.group_idx, table.c.sample_idx)
        with self._read() as conn:
            return [sample_dict(row) for row in conn.execute(query)]

    def sample_values(
        self,
        run_id: int,
        columns: Sequence[str],
        step_min: int | None = None,
        step_max: int | None = None,
    ) -> dict[str, np.ndarray]:
        """Per-response scalars of a run's samples with step_min <= step <= step_max, one numpy
        array (N,) per column ('step' always included), ordered by (step, group, sample).

        One SELECT of typed columns and no blob decoding: what the analysis page reads for
        thousands of responses. Columns: samples.SAMPLE_SCALARS; 'step', 'group_idx' and
        'sample_idx' are int64, the rest float64 with NaN for empty (correct as 1.0 / 0.0)."""
        names = list(dict.fromkeys(["step", *columns]))
        unknown = [c for c in names if c not in SAMPLE_SCALARS]
        if unknown:
            raise ValueError(
                f"not sample scalar columns: {unknown}; known: {', '.join(SAMPLE_SCALARS)}"
            )
        query = _samples_between(names, run_id, step_min, step_max)
        with self._read() as conn:
            rows = [tuple(row) for row in conn.execute(query)]  # Row objects trip numpy
        return scalar_arrays(rows, names)

    def sample_records(
        self,
        run_id: int,
        columns: Sequence[str],
        step_min: int | None = None,
        step_max: int | None = None,
    ) -> list[dict]:
        """Per-response text and scalar columns (never the array blobs) of a run's samples with
        step_min <= step <= step_max, one dict per response ('step' always included), ordered by
        (step, group, sample); `correct` as a bool or None. What the answer audit reads."""
        names = list(dict.fromkeys(["step", *columns]))
        table = Sample.__table__
        unknown = [c for c in names if c not in table.c or c in SAMPLE_ARRAYS]
        if unknown:
            raise ValueError(f"not sample text or scalar columns: {unknown}")
        query = _samples_between(names, run_id, step_min, step_max)
        with self._read() as conn:
            rows = [dict(row._mapping) for row in conn.execute(query)]
        for row in rows:
            if row.get("correct") is not None:
                row["correct"] = bool(row["correct"])
        return rows

    # ---- checkpoints ------------------------------------------------------------------------------

    def add_checkpoint(self, run_id: int, step: int, path: str | Path) -> None:
        """Register a checkpoint (a re-save of the same step replaces the row)."""
        with _rows_of(run_id), self._write() as conn:
            conn.execute(
                delete(Checkpoint).where(Checkpoint.run_id == run_id, Checkpoint.step == step)
            )
            conn.execute(
                insert(Checkpoint).values(
                    run_id=run_id, step=int(step), path=str(path), created_at=utcnow()
                )
            )

    def checkpoints(self, run_id: int) -> list[dict]:
        query = (
            select(Checkpoint.step, Checkpoint.path, Checkpoint.created_at)
            .where(Checkpoint.run_id == run_id)
            .order_by(Checkpoint.step)
        )
        with self._read() as conn:
            return _dicts(conn.execute(query))

    def last_checkpoint(self, run_id: int) -> dict | None:
        rows = self.checkpoints(run_id)
        return rows[-1] if rows else None

    def prune_checkpoints(self, run_id: int, keep: int) -> list[dict]:
        """Delete the rows of all but the newest `keep` (>= 1) checkpoints; returns the deleted
        rows so the caller removes their folders. The newest, which a resume needs, stays."""
        keep = max(1, int(keep))
        with self._write() as conn:
            rows = conn.execute(
                select(Checkpoint.step, Checkpoint.path)
                .where(Checkpoint.run_id == run_id)
                .order_by(Checkpoint.step.desc())
            ).all()
            doomed = [dict(r._mapping) for r in rows[keep:]]
            if doomed:
                conn.execute(
                    delete(Checkpoint).where(
                        Checkpoint.run_id == run_id,
                        Checkpoint.step.in_([r["step"] for r in doomed]),
                    )
                )
            return doomed

    # ---- evals and events --------------------------------------------------------------------------

    def add_eval(
        self,
        run_id: int,
        *,
        step: int,
        dataset: str,
        n: int,
        ks: Sequence[int],
        pass_at_k: Sequence[float],
        per_problem: Sequence[int],
    ) -> None:
        if len(ks) != len(pass_at_k):
            raise ValueError("ks and pass_at_k must have the same length")
        values = {
            "run_id": run_id,
            "step": int(step),
            "dataset": dataset,
            "n": int(n),
            "ks": [int(k) for k in ks],
            "pass_at_k": [finite(p) for p in pass_at_k],
            "per_problem": [int(c) for c in per_problem],
            "created_at": utcnow(),
        }
        with _rows_of(run_id), self._write() as conn:
            conn.execute(insert(Eval).values(**values))

    def evals(self, run_id: int) -> list[dict]:
        table = Eval.__table__
        query = (
            select(*[c for c in table.c if c.name != "id"])
            .where(table.c.run_id == run_id)
            .order_by(table.c.step, table.c.id)
        )
        with self._read() as conn:
            return _dicts(conn.execute(query))

    def add_event(self, run_id: int, message: str, level: str = EventLevel.INFO) -> None:
        with _rows_of(run_id), self._write() as conn:
            self._event(conn, run_id, message, level)

    @staticmethod
    def _event(
        conn: Connection,
        run_id: int,
        message: str,
        level: str = EventLevel.INFO,
        *,
        kind: str | None = None,
        step: int | None = None,
    ) -> None:
        conn.execute(
            insert(Event).values(
                run_id=run_id,
                time=utcnow(),
                level=EventLevel(level).value,
                message=message,
                kind=kind,
                step=step,
            )
        )

    def events(self, run_id: int, limit: int = 200) -> list[dict]:
        """The last `limit` events of a run, oldest first."""
        query = (
            select(Event.id, Event.time, Event.level, Event.message, Event.kind, Event.step)
            .where(Event.run_id == run_id)
            .order_by(Event.id.desc())
            .limit(limit)
        )
        with self._read() as conn:
            rows = [dict(row._mapping) for row in conn.execute(query)]
        return rows[::-1]

    def kind_events(self, kinds: Sequence[str], run_ids: Sequence[int] | None = None) -> list[dict]:
        """Events whose kind starts with one of `kinds` ('flag:' ...), of some runs (None: all),
        oldest first: run_id, step, kind, level, message, time."""
        query = select(
            Event.run_id, Event.step, Event.kind, Event.level, Event.message, Event.time
        ).where(or_(*[Event.kind.startswith(k, autoescape=True) for k in kinds]))
        if run_ids is not None:
            query = query.where(Event.run_id.in_(list(run_ids)))
        with self._read() as conn:
            return [dict(row._mapping) for row in conn.execute(query.order_by(Event.id))]
