"""Values between Python and the database: compact array blobs, finite floats, plain JSON.

Arrays are stored as little-endian blobs of the dtype that samples.SampleRow's fields name (int32
token ids, float32 per-token entropy and log-prob, float32 curve). Per-token blobs written before
schema v5 are float16: they hold 2 bytes per token id, are told apart by that and widened to
float32 on read. Non-finite floats (NaN, inf) become None, so every backend stores the same.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from functools import partial
from typing import Any

import numpy as np

from engine.storage import samples
from engine.storage.samples import SAMPLE_ARRAYS, SAMPLE_COLUMNS, SAMPLE_INT_KEYS, SAMPLE_KINDS
from engine.storage.schema import STEP_COLUMNS, STEP_INT_COLUMNS, STEP_METRICS, Sample

BOOL_COLUMNS = tuple(n for n, k in SAMPLE_KINDS.items() if k == samples.BOOL)
DECODED_FLOAT = np.float32  # float16 blobs are widened on read so arithmetic on them is sane


def finite(value: Any) -> float | None:
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def jsonable(obj: Any) -> Any:
    """Plain JSON values: numpy scalars/arrays unwrapped, non-finite floats -> None."""
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return jsonable(obj.tolist())
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def dumps(obj: Any) -> str:
    try:  # plain JSON values: the fast, common case
        return json.dumps(obj, allow_nan=False)
    except (TypeError, ValueError):
        return json.dumps(jsonable(obj), allow_nan=False)


def as_array(values: Any) -> np.ndarray:
    if hasattr(values, "detach"):  # a torch tensor, without importing torch here
        values = values.detach().cpu().numpy()
    return np.asarray(values)


def pack(values: Any, dtype: str) -> bytes | None:
    """An array as a little-endian blob of `dtype`; None stays None."""
    if values is None:
        return None
    return as_array(values).astype(dtype, copy=False).reshape(-1).tobytes()


def unpack(blob: bytes | None, dtype: str) -> np.ndarray | None:
    if blob is None:
        return None
    array = np.frombuffer(blob, dtype=dtype)
    if array.dtype.kind == "f" and array.dtype.itemsize < 4:
        return array.astype(DECODED_FLOAT)
    return array.astype(array.dtype.newbyteorder("="), copy=True)


def step_row(run_id: int, step: dict) -> dict:
    if step.get("step") is None:
        raise ValueError("a step needs its 'step' number")
    payload = dict(step.get("payload") or {})
    payload.update({k: v for k, v in step.items() if k not in STEP_COLUMNS})
    row = {"run_id": run_id, "step": int(step["step"]), "payload": payload or None}
    means = step.get("reward_means")
    row["reward_means"] = {str(k): finite(v) for k, v in means.items()} if means else None
    for name in STEP_METRICS:
        value = finite(step.get(name))
        row[name] = None if value is None else int(value) if name in STEP_INT_COLUMNS else value
    return row


SAMPLE_INSERT_COLUMNS = ("run_id", "step", *SAMPLE_COLUMNS)
SQLITE_SAMPLE_INSERT = (
    f"INSERT INTO {Sample.__table__.name} ({', '.join(SAMPLE_INSERT_COLUMNS)}) "
    f"VALUES ({', '.join('?' * len(SAMPLE_INSERT_COLUMNS))})"
)


def _int(value: Any) -> int | None:
    return None if value is None else int(value)


def _bool(value: Any) -> bool | None:
    return None if value is None else bool(value)


def _key(value: Any) -> int:
    return int(value or 0)


def _text(value: Any) -> Any:
    return value


def _rewards(value: Any) -> dict | None:
    return None if value is None else {str(k): finite(v) for k, v in value.items()}


def _rewards_text(value: Any) -> str | None:
    return None if value is None else dumps(_rewards(value))


def _encoders(json_text: bool) -> tuple[tuple[str, Callable[[Any], Any]], ...]:
    """(column, encode) per SampleRow field, in SAMPLE_COLUMNS order."""
    by_kind = {
        samples.KEY: _key,
        samples.TEXT: _text,
        samples.FLOAT: finite,
        samples.INT: _int,
        samples.BOOL: _bool,
        samples.JSON: _rewards_text if json_text else _rewards,
    }
    return tuple(
        (name, partial(pack, dtype=SAMPLE_ARRAYS[name]) if kind == samples.ARRAY else by_kind[kind])
        for name, kind in SAMPLE_KINDS.items()
    )


ENCODERS = {False: _encoders(False), True: _encoders(True)}


def sample_tuple(run_id: int, step: int, sample: dict, json_text: bool) -> tuple:
    """One response's column values in SAMPLE_INSERT_COLUMNS order: arrays packed, floats
    finite or None; JSON dicts as dicts, or as JSON text when `json_text` (the raw driver
    path). `sample` has SampleRow's keys (a missing one is stored as null, keys as 0)."""
    get = sample.get
    return (run_id, step, *(encode(get(name)) for name, encode in ENCODERS[json_text]))


def sample_row(run_id: int, step: int, sample: dict) -> dict:
    """Column name -> value of one response (SQLAlchemy's path)."""
    return dict(zip(SAMPLE_INSERT_COLUMNS, sample_tuple(run_id, step, sample, False), strict=True))


PER_TOKEN_FLOATS = ("token_entropy", "token_logprob")
LEGACY_PER_TOKEN = "<f2"  # what schema versions before 5 wrote


def per_token_dtype(blob: bytes | None, n_tokens: int | None) -> str:
    """float32, or float16 for a blob an older version wrote (2 bytes per response token)."""
    if blob and n_tokens and len(blob) == 2 * n_tokens:
        return LEGACY_PER_TOKEN
    return SAMPLE_ARRAYS["token_entropy"]


def sample_dict(row: Any) -> dict:
    out = {"step": row.step}
    ids = getattr(row, "token_ids", None)
    n_tokens = len(ids) // 4 if ids is not None else getattr(row, "length", None)
    for name in SAMPLE_COLUMNS:
        value = getattr(row, name)
        if name in PER_TOKEN_FLOATS:
            out[name] = unpack(value, per_token_dtype(value, n_tokens))
        else:
            out[name] = unpack(value, SAMPLE_ARRAYS[name]) if name in SAMPLE_ARRAYS else value
    for name in BOOL_COLUMNS:
        if out[name] is not None:
            out[name] = bool(out[name])
    return out


def scalar_arrays(rows: list[tuple], names: list[str]) -> dict[str, np.ndarray]:
    """Rows of sample scalars (in `names` order) as one array per column: SAMPLE_INT_KEYS as
    int64, the rest float64 with NaN for empty and booleans as 1.0 / 0.0."""
    table = np.array(rows, dtype=np.float64).reshape(len(rows), len(names))  # (N, C)
    return {
        name: table[:, j].astype(np.int64) if name in SAMPLE_INT_KEYS else table[:, j].copy()
        for j, name in enumerate(names)
    }
