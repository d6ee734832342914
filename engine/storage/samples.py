"""The per-response sample row, defined once: `SampleRow`.

The trainer builds one `SampleRow` per generated response; the schema's `samples` columns, the
codec that packs a row for the database and unpacks it again, and the app's per-response columns
(app/queries.py) are all derived from its fields. A new per-response value is one field here
(with its storage kind) plus a schema migration that adds the column.

Storage kinds: KEY (int, never null: where the response sits in its step), TEXT, ARRAY (a
little-endian blob of `dtype`; float16 is widened to float32 on read), FLOAT (non-finite -> null),
INT, BOOL and JSON (a dict of name -> finite float or null).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np

KEY, TEXT, ARRAY, FLOAT, INT, BOOL, JSON = "key", "text", "array", "float", "int", "bool", "json"


def _column(kind: str, doc: str, dtype: str | None = None) -> Any:
    return field(metadata={"kind": kind, "doc": doc, "dtype": dtype})


@dataclass
class SampleRow:
    """One generated response as the store keeps it (T: response tokens, K: curve points)."""

    group_idx: int = _column(KEY, "prompt group within the step's generation")
    sample_idx: int = _column(KEY, "response within its group")
    prompt: str = _column(TEXT, "the prompt as text (chat: 'role: content' lines)")
    completion: str = _column(TEXT, "the decoded response")
    token_ids: np.ndarray = _column(ARRAY, "(T,) completion token ids", "<i4")
    token_entropy: np.ndarray = _column(ARRAY, "(T,) per-token entropy, nats (f2 before v5)", "<f4")
    token_logprob: np.ndarray = _column(ARRAY, "(T,) log-prob of each token (f2 before v5)", "<f4")
    reward: float = _column(FLOAT, "total reward")
    rewards: dict[str, float | None] = _column(JSON, "reward function name -> value")
    correct: bool = _column(BOOL, "the answer checker's verdict")
    advantage: float = _column(FLOAT, "A before shaping")
    advantage_shaped: float = _column(FLOAT, "A after the VERL bonus")
    bonus: float = _column(FLOAT, "the VERL exploration bonus")
    er: float = _column(FLOAT, "effective rank of the response's hidden states")
    erv: float = _column(FLOAT, "ER velocity")
    era: float = _column(FLOAT, "ER acceleration")
    entropy: float = _column(FLOAT, "mean per-token entropy, nats")
    mean_logprob: float = _column(FLOAT, "mean log-prob of the sampled tokens")
    length: int = _column(INT, "response tokens T (up to and with eos)")
    truncated: bool = _column(BOOL, "hit max_completion_length without end of sequence (v4)")
    curve: np.ndarray = _column(ARRAY, "(K,) rank curve: ER at prefixes s, 2s, ...", "<f4")
    curve_stride: int = _column(INT, "curve stride s, tokens")
    curve_positions: np.ndarray = _column(ARRAY, "(K,) token position of each curve point", "<i4")
    curve_offset: int = _column(INT, "tokens cut off before the curve window")
    answer_read: str = _column(TEXT, "the answer the verifier read; '' none found (v5)")
    gold_read: str = _column(TEXT, "the normalised gold it compared with (v5)")

    def as_dict(self) -> dict[str, Any]:
        """Column name -> value (the arrays are not copied)."""
        return {name: getattr(self, name) for name in SAMPLE_COLUMNS}


SAMPLE_KINDS: dict[str, str] = {f.name: f.metadata["kind"] for f in fields(SampleRow)}
SAMPLE_COLUMNS = tuple(SAMPLE_KINDS)
SAMPLE_ARRAYS = {
    f.name: f.metadata["dtype"] for f in fields(SampleRow) if f.metadata["kind"] == ARRAY
}
SAMPLE_FLOATS = tuple(n for n, k in SAMPLE_KINDS.items() if k == FLOAT)
# Per-response scalars that Store.sample_values reads as columns (no blob decoding): the
# integer keys come back int64, the rest float64 with NaN for empty (booleans as 1.0 / 0.0).
SAMPLE_INT_KEYS = ("step", *(n for n, k in SAMPLE_KINDS.items() if k == KEY))
SAMPLE_SCALARS = (
    *SAMPLE_INT_KEYS,
    *(n for n, k in SAMPLE_KINDS.items() if k in (FLOAT, INT, BOOL)),
)
