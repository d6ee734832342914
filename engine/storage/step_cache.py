"""Step series read once per process and then extended with the steps logged since.

The live monitor redraws a run's charts each time a step lands. Reading every step each time
is O(S): at 2,000 steps SQLite hands Python ~80,000 values (~10 ms of the redraw's ~34 ms).
A run's steps are only appended, or cut back to a checkpoint by a resume (or all deleted with
the run) and logged again, so a cached read stays true while the steps it holds are unchanged,
and is extended by reading the steps after its last one.

A read is checked against the database each time with one aggregate over the run's steps and
the run's attempt, its *version*: (attempt, rows, last step, largest row id, latest wall time).
Appending changes the row count; the only cut, a resume, starts a new attempt in the same
transaction (`Store.requeue_for_resume`); run ids are never reused. The version of the cached
steps is computed from the rows read themselves, with the attempt read before them, so a step
or a resume committed between two statements (PostgreSQL reads each statement from its own
snapshot) can only make the next read a full one, never a wrong one.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

# (attempt, rows, last step, largest row id, latest wall time)
Version = tuple[int | None, int, int | None, int | None, float | None]
KEEP = ("step", "id", "wall_time")  # the columns every cached read holds: its version's source
MAX_ENTRIES = 32  # (run, columns) reads kept; a monitor shows a few runs at a time


def version_of(arrays: dict[str, np.ndarray], attempt: int | None) -> Version:
    """The version of rows read (float64 arrays (S,) with 'step', 'id' and 'wall_time') during
    `attempt` of their run."""
    n = len(arrays["step"])
    if n == 0:
        return (attempt, 0, None, None, None)
    wall = arrays["wall_time"][~np.isnan(arrays["wall_time"])]
    last_wall = float(wall.max()) if wall.size else None
    return (attempt, n, int(arrays["step"].max()), int(arrays["id"].max()), last_wall)


def concat(head: dict[str, np.ndarray], tail: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Rows of `head` then `tail`; a column one side lacks is NaN there (a reward function
    that appears at a later step)."""
    n_head, n_tail = len(head["step"]), len(tail["step"])
    out = {}
    for name in dict.fromkeys([*head, *tail]):
        a = head.get(name, np.full(n_head, np.nan))
        b = tail.get(name, np.full(n_tail, np.nan))
        out[name] = np.concatenate([a, b])
    return out


@dataclass
class _Entry:
    version: Version
    arrays: dict[str, np.ndarray]


class StepCache:
    """Cached step series by key (thread-safe; one per Store).

    `read(key, now, fetch, version_upto)`:
      now            the run's version in the database (`Store._steps_version`), read before
                     the rows
      fetch(after)   the rows with step > after (None: all), as float64 arrays (S,) by column,
                     with 'step', 'id' and 'wall_time' among them
      version_upto(s) the version of the run's rows with step <= s
    Returns copies (the caller may change them). Reads are exact: a cached read is used only
    while its version matches the database's, extended only when its rows are unchanged.
    """

    def __init__(self, max_entries: int = MAX_ENTRIES):
        self._entries: OrderedDict[Any, _Entry] = OrderedDict()
        self._lock = threading.Lock()
        self.max_entries = max_entries

    def read(
        self,
        key: Any,
        now: Version,
        fetch: Callable[[int | None], dict[str, np.ndarray]],
        version_upto: Callable[[int], Version],
    ) -> dict[str, np.ndarray]:
        with self._lock:
            entry = self._entries.get(key)
        if entry is not None and entry.version == now:
            arrays = entry.arrays
        elif entry is not None and _extends(entry.version, now, version_upto):
            arrays = concat(entry.arrays, fetch(entry.version[2]))
        else:
            arrays = fetch(None)
        with self._lock:
            self._entries[key] = _Entry(version_of(arrays, now[0]), arrays)
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)
        return {name: values.copy() for name, values in arrays.items()}


def _extends(held: Version, now: Version, version_upto: Callable[[int], Version]) -> bool:
    """Whether the database has `held`'s rows unchanged (same attempt) plus later steps."""
    attempt, rows, last_step = held[:3]
    if attempt != now[0] or rows == 0 or now[1] <= rows or last_step is None:
        return False
    return version_upto(last_step) == held
