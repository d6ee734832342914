"""The decoupling analysis: are rank metrics and token-level proxies measuring different things?

The paper (arXiv:2509.23808, Fig. "decoupling") scatters, per response, ER against ERV and token
entropy against mean log-prob, and reports Pearson r: ≈ −0.06 for ER vs ERV (decoupled) and
≈ −0.61 for entropy vs log-prob (coupled) on a 7B model. On short responses both ER and ERV grow
with the number of rows, so a positive r(ER, ERV) can be nothing but response length. Next to r we
therefore report each metric's r with length and the partial correlation controlling for length,

    r_xy·z = (r_xy − r_xz r_yz) / sqrt((1 − r_xz²)(1 − r_yz²)),

which equals the Pearson r of the residuals of x and y after a least-squares fit on z.

Statistics are computed on all points; only the chart is subsampled (`subsample`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from engine.storage import Store

METRICS = ("er", "erv", "era", "entropy", "mean_logprob", "length")
PAIRS = (("er", "erv"), ("entropy", "mean_logprob"))  # the paper's two scatters
LENGTH = "length"
MAX_DRAWN = 5000  # points a scatter draws at most


def pearson(x, y) -> float:
    """Pearson r on finite pairs; NaN when fewer than 2 pairs or a constant variable.

    >>> round(pearson([1, 2, 3, 4], [2, 4, 6, 9]), 4)
    0.9944
    """
    x, y = _finite_pairs(x, y)
    if len(x) < 2:
        return float("nan")
    dx, dy = x - x.mean(), y - y.mean()
    den = np.sqrt((dx @ dx) * (dy @ dy))
    if den == 0:
        return float("nan")
    return float(np.clip((dx @ dy) / den, -1.0, 1.0))


def partial_r(x, y, z) -> float:
    """r of x and y controlling for z (see the module docstring); NaN when undefined."""
    x, y, z = (np.asarray(a, dtype=np.float64) for a in (x, y, z))
    ok = np.isfinite(x) & np.isfinite(y) & np.isfinite(z)
    rxy, rxz, ryz = pearson(x[ok], y[ok]), pearson(x[ok], z[ok]), pearson(y[ok], z[ok])
    den = np.sqrt((1 - rxz**2) * (1 - ryz**2))
    if not np.isfinite(den) or den < 1e-12:
        return float("nan")
    return float(np.clip((rxy - rxz * ryz) / den, -1.0, 1.0))


def _finite_pairs(x, y) -> tuple[np.ndarray, np.ndarray]:
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    ok = np.isfinite(x) & np.isfinite(y)
    return x[ok], y[ok]


@dataclass
class PairStats:
    x: str
    y: str
    n: int  # points with both values finite
    r: float
    r2: float
    partial_r_length: float  # r of x, y controlling for response length


@dataclass
class Points:
    """One value per response: `values[metric]` (N,) float64 and `step` (N,) int."""

    step: np.ndarray
    values: dict[str, np.ndarray]

    def __len__(self) -> int:
        return len(self.step)


@dataclass
class Decoupling:
    pairs: list[PairStats]
    length_r: dict[str, float]  # r(metric, length) for each metric
    steps: list[int]  # steps with enough points for a per-step r
    step_r: dict[tuple[str, str], list[float]]  # per-step r of each pair


def pair_stats(points: Points, x: str, y: str) -> PairStats:
    vx, vy = points.values[x], points.values[y]
    r = pearson(vx, vy)
    n = int(np.sum(np.isfinite(vx) & np.isfinite(vy)))
    return PairStats(x, y, n, r, r * r, partial_r(vx, vy, points.values[LENGTH]))


def step_r(points: Points, x: str, y: str, steps: list[int]) -> list[float]:
    return [pearson(points.values[x][points.step == s], points.values[y][points.step == s]) for s in steps]  # fmt: skip


def decoupling(points: Points, min_per_step: int = 3) -> Decoupling:
    """Everything the analysis page shows, from all points (no subsampling)."""
    uniq, counts = np.unique(points.step, return_counts=True)
    steps = [int(s) for s, c in zip(uniq, counts, strict=True) if c >= min_per_step]
    return Decoupling(
        pairs=[pair_stats(points, x, y) for x, y in PAIRS],
        length_r={m: pearson(points.values[m], points.values[LENGTH]) for m in METRICS if m != LENGTH},
        steps=steps,
        step_r={(x, y): step_r(points, x, y, steps) for x, y in PAIRS},
    )  # fmt: skip


def subsample(n: int, max_points: int = MAX_DRAWN, seed: int = 0) -> np.ndarray:
    """Indices of at most `max_points` of n points, drawn without replacement, sorted.

    >>> len(subsample(10)), len(subsample(20_000))
    (10, 5000)
    """
    if n <= max_points:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=max_points, replace=False))


def load_points(
    store: Store, run_id: int, step_lo: int | None = None, step_hi: int | None = None
) -> Points:
    """Per-response metrics of a run's recorded samples with step_lo <= step <= step_hi: one
    columns-only query (Store.sample_values), no prompt, text or array is read."""
    columns = store.sample_values(run_id, METRICS, step_min=step_lo, step_max=step_hi)
    return Points(columns["step"], {m: columns[m] for m in METRICS})
