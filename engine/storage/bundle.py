"""Whole runs as a portable file: written from one store, read into another with fresh ids.

A bundle is gzip-compressed JSON lines:

    {"format": "verl-studio-runs", "version": 1, "schema_version": N}
    {"run": {...}, "steps": [...], "samples": [...], "evals": [...], "events": [...]}   per run

Rows carry their columns by name (bytes as base64, times as ISO 8601 UTC), so a bundle written by
an older schema imports into a newer one: columns the reader does not know are dropped, columns
the writer did not have take their defaults. Checkpoints are never bundled (their files are not).
The Space's seeded demo runs ship this way (assets/seed-runs.jsonl.gz); a bundle's samples can be
thinned to a few steps to keep it small.
"""

from __future__ import annotations

import base64
import datetime as dt
import gzip
import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import LargeBinary, Table, insert, select

from engine.storage.migrations import StoreError
from engine.storage.schema import (
    SCHEMA_VERSION,
    Eval,
    Event,
    Run,
    RunStatus,
    Sample,
    Step,
    UTCDateTime,
    utcnow,
)

if TYPE_CHECKING:
    from engine.storage.store import Store

FORMAT = "verl-studio-runs"
VERSION = 1
CHILDREN: dict[str, Table] = {
    "steps": Step.__table__,
    "samples": Sample.__table__,
    "evals": Eval.__table__,
    "events": Event.__table__,
}
# Columns that describe where a run lived, not what it is: cleared on import.
RUN_LOCAL = ("id", "host", "pid", "heartbeat_at", "parent_id")


class BundleError(StoreError):
    """A file that is not a readable runs bundle; the message is one line."""


def _encode(table: Table, row: dict) -> dict:
    out = {}
    for name, value in row.items():
        column = table.c[name]
        if value is not None and isinstance(column.type, LargeBinary):
            value = base64.b64encode(value).decode("ascii")
        elif isinstance(value, dt.datetime):
            value = value.isoformat()
        out[name] = value
    return out


def _decode(table: Table, row: dict) -> dict:
    out = {}
    for name, value in row.items():
        if name not in table.c:
            continue  # written by a schema with a column this one lacks
        kind = table.c[name].type
        if value is not None and isinstance(kind, LargeBinary):
            value = base64.b64decode(value)
        elif value is not None and isinstance(kind, UTCDateTime):
            value = dt.datetime.fromisoformat(value)
        out[name] = value
    return out


def thin_steps(steps: Sequence[int], keep: int | None) -> set[int]:
    """At most `keep` of `steps`, evenly spaced, always the first and the last (None = all).

    >>> sorted(thin_steps(range(1, 61), 4))
    [1, 21, 40, 60]
    """
    steps = sorted(set(steps))
    if keep is None or len(steps) <= keep:
        return set(steps)
    if keep <= 1:
        return set(steps[-1:]) if keep == 1 else set()
    return {steps[round(i * (len(steps) - 1) / (keep - 1))] for i in range(keep)}


def _run_record(conn: Any, run_id: int, sample_steps: int | None) -> dict:
    runs = Run.__table__
    row = conn.execute(select(runs).where(runs.c.id == run_id)).mappings().first()
    if row is None:
        raise BundleError(f"no run {run_id}")
    if RunStatus(row["status"]) not in (RunStatus.COMPLETED, RunStatus.FAILED, RunStatus.CANCELLED):
        raise BundleError(f"run {run_id} is {row['status']}: only finished runs are bundled")
    record: dict[str, Any] = {"run": _encode(runs, dict(row))}
    for key, table in CHILDREN.items():
        query = select(table).where(table.c.run_id == run_id).order_by(table.c.id)
        rows = [dict(r) for r in conn.execute(query).mappings()]
        if key == "samples" and sample_steps is not None:
            keep = thin_steps([r["step"] for r in rows], sample_steps)
            rows = [r for r in rows if r["step"] in keep]
        record[key] = [_encode(table, r) for r in rows]
    return record


def write_bundle(
    store: Store, run_ids: Sequence[int], path: str | Path, *, sample_steps: int | None = None
) -> Path:
    """Write finished runs (every step, eval and event; samples of at most `sample_steps` steps)
    to `path`. Raises BundleError for an unknown or unfinished run."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with store.engine.connect() as conn:
        records = [_run_record(conn, int(r), sample_steps) for r in run_ids]
    header = {"format": FORMAT, "version": VERSION, "schema_version": SCHEMA_VERSION}
    with gzip.open(path, "wt", encoding="utf-8", compresslevel=9) as f:
        for obj in (header, *records):
            f.write(json.dumps(obj, separators=(",", ":")) + "\n")
    return path


def _read_records(path: Path) -> list[dict]:
    try:
        with gzip.open(path, "rt", encoding="utf-8") as f:
            lines = [json.loads(line) for line in f if line.strip()]
    except (OSError, EOFError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BundleError(f"{path.name} is not a runs bundle ({exc})") from None
    header = lines[0] if lines else {}
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise BundleError(f"{path.name} is not a runs bundle (no {FORMAT} header)")
    if header.get("version") != VERSION:
        raise BundleError(f"{path.name} is bundle version {header.get('version')}; want {VERSION}")
    return lines[1:]


def read_bundle(store: Store, path: str | Path, *, note: str = "") -> list[int]:
    """Import every run of a bundle as new runs (fresh ids; parents kept when bundled together),
    all in one transaction; returns the new ids in file order. `note` becomes each run's event."""
    path = Path(path)
    records = _read_records(path)
    runs = Run.__table__
    new_ids: dict[int, int] = {}
    with store._write() as conn:
        for record in records:
            values = _decode(runs, record["run"])
            old_id, parent = values.get("id"), values.get("parent_id")
            for name in RUN_LOCAL:
                values.pop(name, None)
            values["parent_id"] = new_ids.get(parent)
            values["cancel_requested"] = False
            run_id = conn.execute(insert(runs).values(**values).returning(runs.c.id)).scalar_one()
            new_ids[old_id] = run_id
            for key, table in CHILDREN.items():
                rows = [_decode(table, r) for r in record.get(key, ())]
                for r in rows:
                    r.pop("id", None)
                    r["run_id"] = run_id
                if rows:
                    conn.execute(insert(table), rows)
            message = note or f"imported from {path.name} (was run {old_id})"
            conn.execute(
                insert(Event.__table__).values(run_id=run_id, message=message, time=utcnow())
            )
    return list(new_ids.values())
