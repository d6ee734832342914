"""What `verl-studio export RUN_ID --format csv|parquet|jsonl --what steps|samples|evals` writes.

One row per step, per response or per evaluation. Arrays (token ids, per-token entropy and
log-prob, the rank curve and its positions) are lists in parquet and jsonl and JSON text in csv;
dicts (the step payload, per-reward values) are JSON text in csv and parquet, objects in jsonl.
Non-finite numbers (a zero-probability token's entropy, an overflowed log-prob) are null: every
JSONL line is valid JSON, array cells hold `null`, and a scalar CSV cell is empty. Samples are
read one step at a time, so a long run never sits in memory twice.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from engine.storage.codec import dumps, jsonable
from engine.storage.store import Store

log = logging.getLogger(__name__)

FORMATS = ("csv", "parquet", "jsonl")
WHATS = ("steps", "samples", "evals")


def _plain(value: Any) -> Any:
    """A plain Python value: arrays as lists, non-finite floats as None, times as ISO text."""
    if isinstance(value, np.ndarray):
        if value.dtype.kind == "f" and not np.isfinite(value).all():
            return [v if math.isfinite(v) else None for v in value.tolist()]
        return value.tolist()
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, float | np.floating) and not math.isfinite(value):
        return None
    if isinstance(value, dict | list | tuple):
        return jsonable(value)
    return value


def row_chunks(
    store: Store, run_id: int, what: str, progress: bool = False
) -> Iterator[list[dict]]:
    """Rows of one kind, in chunks (one per step for samples), with plain Python values."""
    if what == "steps":
        yield [{k: _plain(v) for k, v in r.items()} for r in store.steps(run_id)]
    elif what == "evals":
        yield [{k: _plain(v) for k, v in r.items()} for r in store.evals(run_id)]
    elif what == "samples":
        from tqdm.auto import tqdm

        for step in tqdm(store.sample_steps(run_id), unit="step", disable=not progress):
            yield [{k: _plain(v) for k, v in r.items()} for r in store.samples(run_id, step)]
    else:
        raise ValueError(f"--what must be one of {', '.join(WHATS)}")


def _json_text(rows: list[dict], keep_lists: bool) -> list[dict]:
    """Dict cells (and list cells unless kept) as JSON text, for tabular formats."""
    out = []
    for row in rows:
        out.append(
            {
                k: dumps(v)
                if isinstance(v, dict) or (isinstance(v, list) and not keep_lists)
                else v
                for k, v in row.items()
            }
        )
    return out


def export(
    store: Store, run_id: int, what: str, fmt: str, out: Path, progress: bool = False
) -> int:
    """Write a run's rows to `out`; returns the number of rows written."""
    out.parent.mkdir(parents=True, exist_ok=True)
    chunks = row_chunks(store, run_id, what, progress)
    if fmt == "jsonl":
        n = 0
        with out.open("w") as f:
            for chunk in chunks:
                for row in chunk:
                    f.write(dumps(row) + "\n")
                n += len(chunk)
        return n
    import pandas as pd

    rows = [r for chunk in chunks for r in _json_text(chunk, keep_lists=fmt == "parquet")]
    frame = pd.DataFrame(rows)
    if fmt == "csv":
        frame.to_csv(out, index=False)
    elif fmt == "parquet":
        frame.to_parquet(out, index=False)
    else:
        raise ValueError(f"--format must be one of {', '.join(FORMATS)}")
    return len(frame)
