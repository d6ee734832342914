"""Values between Python and the database: compact array blobs, finite floats, plain JSON.

Arrays are stored as little-endian blobs of the dtype that schema.SAMPLE_ARRAYS names (int32
token ids, float16 per-token entropy and log-prob, float32 curve); float16 blobs are widened to
float32 on read. Non-finite floats (NaN, inf) become None, so every backend stores the same.
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np

from engine.storage.schema import (
    SAMPLE_ARRAYS,
    SAMPLE_COLUMNS,
    SAMPLE_FLOATS,
    SAMPLE_INT_KEYS,
    STEP_COLUMNS,
    STEP_INT_COLUMNS,
    STEP_METRICS,
    Sample,
)

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
    for name in STEP_METRICS:
        value = finite(step.get(name))
        row[name] = None if value is None else int(value) if name in STEP_INT_COLUMNS else value
    return row


SAMPLE_INSERT_COLUMNS = ("run_id", "step", *SAMPLE_COLUMNS)
SQLITE_SAMPLE_INSERT = (
    f"INSERT INTO {Sample.__tablename__} ({', '.join(SAMPLE_INSERT_COLUMNS)}) "
    f"VALUES ({', '.join('?' * len(SAMPLE_INSERT_COLUMNS))})"
)


def _int(value: Any) -> int | None:
    return None if value is None else int(value)


def _bool(value: Any) -> bool | None:
    return None if value is None else bool(value)


def sample_tuple(run_id: int, step: int, sample: dict, json_text: bool) -> tuple:
    """One response's column values in SAMPLE_INSERT_COLUMNS order: arrays packed, floats
    finite or None; rewards a dict, or its JSON text when `json_text` (the raw driver path)."""
    get = sample.get
    rewards = get("rewards")
    if rewards is not None:
        rewards = {str(k): finite(v) for k, v in rewards.items()}
        rewards = dumps(rewards) if json_text else rewards
    arrays = {name: pack(get(name), dtype) for name, dtype in SAMPLE_ARRAYS.items()}
    floats = {name: finite(get(name)) for name in SAMPLE_FLOATS}
    return (
        run_id,
        step,
        int(get("group_idx") or 0),
        int(get("sample_idx") or 0),
        get("prompt"),
        get("completion"),
        arrays["token_ids"],
        arrays["token_entropy"],
        arrays["token_logprob"],
        floats["reward"],
        rewards,
        _bool(get("correct")),
        floats["advantage"],
        floats["advantage_shaped"],
        floats["bonus"],
        floats["er"],
        floats["erv"],
        floats["era"],
        floats["entropy"],
        floats["mean_logprob"],
        _int(get("length")),
        arrays["curve"],
        _int(get("curve_stride")),
        arrays["curve_positions"],
        _int(get("curve_offset")),
    )


def sample_row(run_id: int, step: int, sample: dict) -> dict:
    """Column name -> value of one response (SQLAlchemy's path)."""
    return dict(zip(SAMPLE_INSERT_COLUMNS, sample_tuple(run_id, step, sample, False), strict=True))


def sample_dict(row: Any) -> dict:
    out = {"step": row.step}
    for name in SAMPLE_COLUMNS:
        value = getattr(row, name)
        out[name] = unpack(value, SAMPLE_ARRAYS[name]) if name in SAMPLE_ARRAYS else value
    if out["correct"] is not None:
        out["correct"] = bool(out["correct"])
    return out


def scalar_arrays(rows: list[tuple], names: list[str]) -> dict[str, np.ndarray]:
    """Rows of sample scalars (in `names` order) as one array per column: SAMPLE_INT_KEYS as
    int64, the rest float64 with NaN for empty and booleans as 1.0 / 0.0."""
    table = np.array(rows, dtype=np.float64).reshape(len(rows), len(names))  # (N, C)
    return {
        name: table[:, j].astype(np.int64) if name in SAMPLE_INT_KEYS else table[:, j].copy()
        for j, name in enumerate(names)
    }
