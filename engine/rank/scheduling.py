"""Scheduling of the rank engine's eigenvalue work: a CPU thread pool and batched (CUDA) calls.

`rank_dynamics` is the batched entry point; the math it schedules is in effective_rank.py.

On the CPU every LAPACK call runs single-threaded (torch and NumPy's BLAS at one thread, restored
after), large blocks go through NumPy's `eigvalsh` (faster than torch's here, same algorithm), and
the calls are spread over a small thread pool: on 2-core machines a multi-threaded
`eigvalsh` stalls for seconds. On CUDA, and on the CPU when no block exceeds SMALL_BLOCK rows,
blocks of equal size go through one batched `torch.linalg.eigvalsh`. Nothing here touches CUDA unless the input lives there.
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch
from threadpoolctl import threadpool_limits

from engine.rank.effective_rank import (
    Clock,
    RankDynamics,
    Tensor,
    at_noise_level,
    blocks,
    check_finite,
    curve_points,
    er_from_sigma,
    helmert_contrasts,
    job_cost,
    needs_svd,
    velocity_acceleration,
    window,
)
from engine.threads import single_threaded

MAX_DEFAULT_WORKERS = 2
WINDOW, FULL = "window", "full"  # which rows a series of prefixes is taken from
# On the CPU, blocks up to this size go through one batched eigvalsh: per-call overhead, not
# LAPACK work, dominates there (64 responses of ~40 tokens: 2.7x faster than the pool).
SMALL_BLOCK = 128
CUDA_BLOCK_BUDGET_BYTES = 1 << 30  # matrices held before one batched eigvalsh flush


@dataclass(frozen=True)
class Job:
    """Eigenvalue work for some prefixes of one response: series `kind` at contrast counts ts."""

    index: int  # response i
    kind: str  # WINDOW (the last max_len rows) or FULL (all rows, for er when truncated)
    ts: tuple[int, ...]  # sorted contrast counts t (prefix of t + 1 rows)
    cost: float  # sum of min(t, D)^3, for scheduling


def rank_dynamics(
    hidden: Tensor,
    mask: Tensor,
    stride: int = 40,
    max_len: int | None = 512,
    workers: int | None = None,
) -> RankDynamics:
    """ER, ERV, ERA and rank curves of B responses (see the module docstring).

    hidden: (B, T, D) float tensor, any float dtype, CPU or CUDA; mask: (B, T) bool, True = a
    response token (response i is hidden[i][mask[i]], in order). workers: CPU threads for the
    eigenvalue calls, None = min(2, CPU count). Leaves torch's thread settings as it found them.
    Raises NonFiniteHiddenStates naming the response when one of its tokens holds NaN or inf.
    """
    _check(hidden, mask, stride, max_len)
    hidden, mask = hidden.detach(), mask.detach().to(device=hidden.device, dtype=torch.bool)
    check_finite(hidden, mask)  # NonFiniteHiddenStates names the response, not LAPACK
    workers = default_workers(workers)
    largest_block = min(int(mask.sum(1).max()) if mask.numel() else 0, hidden.shape[2])
    if hidden.is_cuda or largest_block <= SMALL_BLOCK:
        values = batched_values(hidden, mask, stride, max_len)
    else:
        values = pooled_values(hidden, mask, stride, max_len, workers)
    return assemble(mask, stride, max_len, values)


# ---- scheduling ---------------------------------------------------------------------------
def default_workers(workers: int | None) -> int:
    if workers is None:
        return min(MAX_DEFAULT_WORKERS, os.cpu_count() or 1)
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    return workers


def worker_pool(workers: int) -> ThreadPoolExecutor:
    """A pool of `workers` threads, each at one torch thread (MKL's setting is per thread)."""
    return ThreadPoolExecutor(workers, initializer=torch.set_num_threads, initargs=(1,))


def _check(hidden: Tensor, mask: Tensor, stride: int, max_len: int | None) -> None:
    if hidden.dim() != 3 or mask.shape != hidden.shape[:2]:
        raise ValueError(
            f"hidden (B, T, D) and mask (B, T) expected, got {hidden.shape}, {mask.shape}"
        )
    if not hidden.is_floating_point():
        raise ValueError(f"hidden must be a float tensor, got {hidden.dtype}")
    if stride < 1:
        raise ValueError(f"stride must be >= 1, got {stride}")
    if max_len is not None and max_len < 1:
        raise ValueError(f"max_len must be >= 1 or None, got {max_len}")


def plan(
    lengths: Sequence[int], d: int, stride: int, max_len: int | None, n_jobs: int
) -> list[Job]:
    """Jobs for responses of `lengths` valid rows, largest first; split until ~n_jobs exist.

    Window series: the curve's t plus n-1 for er when nothing is truncated (often a curve point
    already); a FULL series of one t when max_len truncates.
    """
    series: list[Job] = []
    for i, n in enumerate(lengths):
        offset, length = window(n, max_len)
        ts = set(curve_points(length, stride))
        if n >= 2 and offset == 0:
            ts.add(n - 1)
        elif n >= 2:
            series.append(Job(i, FULL, (n - 1,), job_cost([n - 1], d)))
        if ts:
            series.append(Job(i, WINDOW, tuple(sorted(ts)), job_cost(ts, d)))
    pieces = max(1, -(-n_jobs // max(1, len(series))))  # ceil: split only when few responses
    jobs = [piece for job in series for piece in split(job, pieces, d)]
    return sorted(jobs, key=lambda j: -j.cost)  # largest first: a greedy, balanced pool


def split(job: Job, pieces: int, d: int) -> list[Job]:
    """Cut one series into up to `pieces` consecutive runs of t of about equal cost."""
    if pieces <= 1 or len(job.ts) < 2:
        return [job]
    out, run, acc, target = [], [], 0.0, job.cost / pieces
    for t in job.ts:
        run.append(t)
        acc += min(t, d) ** 3
        if acc >= target and len(out) < pieces - 1:
            out.append(run)
            run, acc = [], 0.0
    if run:
        out.append(run)
    return [Job(job.index, job.kind, tuple(r), job_cost(r, d)) for r in out]


def job_rows(hidden: Tensor, mask: Tensor, job: Job, max_len: int | None) -> Tensor:
    """The float64 contrasts (L-1, D) of a job's rows."""
    x = hidden[job.index][mask[job.index]]  # (n, D)
    if job.kind == WINDOW:
        x = x[window(x.shape[0], max_len)[0] :]
    return helmert_contrasts(x)


def run_job(hidden, mask, job: Job, max_len, clock: Clock) -> dict[tuple, float]:
    """{(i, kind, t): ER} for one job, on the CPU, one thread."""
    with clock("convert"):
        z = job_rows(hidden, mask, job, max_len)
    out = {}
    for t, a in blocks(z, job.ts, clock):
        with clock("eig"):
            lam = eigvalsh_cpu(a)  # (k,) ascending
        with clock("er"):
            exact = needs_svd(lam)
        with clock("svd" if exact else "er"):
            sigma = torch.linalg.svdvals(z[:t]) if exact else lam.clamp_min(0).sqrt()
            out[(job.index, job.kind, t)] = float(er_from_sigma(sigma))
    return out


def eigvalsh_cpu(a: Tensor) -> Tensor:
    """Ascending eigenvalues of a symmetric float64 CPU matrix, through NumPy's LAPACK.

    Same algorithm (syevd, values only) and accuracy as torch's, but NumPy's bundled OpenBLAS
    solved a 1000 x 1000 block in 0.09 s against torch's 0.15 s here, both on one thread.
    """
    return torch.from_numpy(np.linalg.eigvalsh(a.numpy()))


@contextmanager
def lapack_single_threaded() -> Iterator[None]:
    """torch and NumPy's BLAS/LAPACK at one thread inside, both restored after."""
    with single_threaded(), threadpool_limits(limits=1, user_api="blas"):
        yield


def pooled_values(hidden, mask, stride, max_len, workers, clock: Clock | None = None) -> dict:
    """{(i, kind, t): ER} for the whole batch, jobs spread over `workers` single-threaded calls."""
    lengths = mask.sum(1).tolist()
    jobs = plan(lengths, hidden.shape[2], stride, max_len, 2 * workers)
    clocks = [Clock() for _ in jobs]

    def work(k: int) -> dict:
        return run_job(hidden, mask, jobs[k], max_len, clocks[k])

    values: dict = {}
    with lapack_single_threaded():
        if workers == 1 or len(jobs) <= 1:
            parts = [work(k) for k in range(len(jobs))]
        else:
            with worker_pool(workers) as pool:
                parts = list(pool.map(work, range(len(jobs))))
    for part in parts:
        values.update(part)
    if clock is not None:
        for c in clocks:
            clock.merge(c)
    return values


def batched_values(hidden, mask, stride, max_len, clock: Clock | None = None) -> dict:
    """{(i, kind, t): ER} with equal-sized blocks batched through one eigvalsh (any device)."""
    clock = clock or Clock()
    lengths = mask.sum(1).tolist()
    jobs = plan(lengths, hidden.shape[2], stride, max_len, 1)
    values: dict = {}
    pending: dict[int, list] = defaultdict(list)  # size k -> [(key, (k, k) matrix)]
    held = 0
    with single_threaded():
        for job in sorted(jobs, key=lambda j: (j.index, j.kind)):
            with clock("convert"):
                z = job_rows(hidden, mask, job, max_len)
            for t, a in blocks(z, job.ts, clock):
                pending[a.shape[0]].append(((job.index, job.kind, t), a, z))
                held += a.numel() * a.element_size()
                if held >= CUDA_BLOCK_BUDGET_BYTES:
                    flush(pending, values, clock)
                    held = 0
        flush(pending, values, clock)
    return values


def flush(pending: dict, values: dict, clock: Clock) -> None:
    """Batched eigvalsh of every pending size group; ER values into `values`."""
    for group in pending.values():
        with clock("gram"):
            stack = torch.stack([a for _, a, _ in group])  # (N, k, k)
        with clock("eig"):
            lam = torch.linalg.eigvalsh(stack)  # (N, k)
        with clock("er"):
            er = er_from_sigma(lam.clamp_min(0).sqrt())  # (N,)
            noisy = at_noise_level(lam).nonzero().flatten().tolist()
        with clock("svd"):
            for n in noisy:
                (_, _, t), _, z = group[n]
                er[n] = er_from_sigma(torch.linalg.svdvals(z[:t]))
        values.update({key: v for (key, _, _), v in zip(group, er.cpu().tolist(), strict=True)})
    pending.clear()


def assemble(mask: Tensor, stride: int, max_len: int | None, values: dict) -> RankDynamics:
    """Per-response er, curve, positions, ERV and ERA from the {(i, kind, t): ER} values."""
    er, erv, era, curves, positions = [], [], [], [], []
    for i, n in enumerate(mask.sum(1).tolist()):
        offset, length = window(n, max_len)
        ts = curve_points(length, stride)
        curve = torch.tensor([values[(i, WINDOW, t)] for t in ts], dtype=torch.float64)
        full_kind = WINDOW if offset == 0 else FULL
        er.append(values[(i, full_kind, n - 1)] if n >= 2 else 0.0)
        v, a = velocity_acceleration(curve)
        erv.append(v)
        era.append(a)
        curves.append(curve)
        positions.append(torch.tensor([offset + t for t in ts], dtype=torch.int64))
    as64 = lambda xs: torch.tensor(xs, dtype=torch.float64)  # noqa: E731
    return RankDynamics(as64(er), as64(erv), as64(era), curves, positions)
