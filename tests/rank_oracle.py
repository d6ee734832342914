"""The slow, obvious float64 ER / ERV / ERA that engine.rank is tested against.

One SVD per prefix, straight from the definitions in engine/rank/effective_rank.py's docstring,
sharing no code with it.
"""

from __future__ import annotations

import numpy as np

EPS = 1e-8


def er_slow(x: np.ndarray) -> float:
    """ER of the rows of x (n, D): float64 SVD of the centred rows; 0 for fewer than 2 rows."""
    x = np.asarray(x, dtype=np.float64)
    if x.shape[0] < 2:
        return 0.0
    sigma = np.linalg.svd(x - x.mean(axis=0), compute_uv=False)
    p = sigma / (sigma.sum() + EPS)
    return float(np.exp(-(p * np.log(p + EPS)).sum()))


def response_slow(x: np.ndarray, stride: int, max_len: int | None) -> dict:
    """er, curve, positions, erv, era of one response's valid rows x (n, D)."""
    x = np.asarray(x, dtype=np.float64)
    w = x if max_len is None else x[max(0, len(x) - max_len) :]
    offset = len(x) - len(w)
    ts = list(range(stride, len(w), stride))
    curve = [er_slow(w[: t + 1]) for t in ts]
    diffs = [curve[j] - np.mean(curve[:j]) for j in range(1, len(curve))]
    erv = float(np.mean(diffs)) if diffs else 0.0
    accel = [diffs[j] - diffs[j - 1] for j in range(1, len(diffs))]
    era = float(np.mean(accel)) if accel else 0.0
    return {
        "er": er_slow(x),
        "curve": curve,
        "positions": [offset + t for t in ts],
        "erv": erv,
        "era": era,
    }
