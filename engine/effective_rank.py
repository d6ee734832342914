"""Effective rank (ER) of hidden states and its dynamics (ERV, ERA), exact and batched.

Definitions (arXiv:2509.23808, as its reference code computes them), eps = 1e-8:

    ER(X)   = exp(-sum_i p_i log(p_i + eps)),  p = sigma / (sum(sigma) + eps),
              sigma = singular values of X minus its mean row;  ER = 0 for fewer than 2 rows.
    er      = ER of all valid rows of a response (never truncated).
    curve_j = ER(X[:t_j + 1]),  t_j = s, 2s, ... while t_j < len(X),
              X = the last `max_len` valid rows (all when max_len is None).
    diff_j  = curve_j - mean(curve_0 .. curve_{j-1})            (j >= 1)
    ERV     = mean_{j>=1} diff_j,   ERA = mean_{j>=2} (diff_j - diff_{j-1});   0 when empty.

How it is computed, with no departure from the definition (everything in float64):

1. the rows are upcast and the window mean is subtracted once (hidden states carry large common
   offsets, "massive activations", that would swallow digits in any Gram formed first);
2. Helmert contrasts z_k = sqrt(k / (k+1)) (x_k - mean(x_0 .. x_{k-1})), k = 1 .. L-1, from one
   cumsum. They are nested by prefix and already centred: the centred prefix X[:t+1] has the
   same non-zero singular values as Z[:t];
3. lambda = eigenvalues of the leading t x t block of one Gram G = Z Z^T while t <= D, and of a
   running D x D covariance C_t = Z[:t]^T Z[:t] once t > D, so the work is sum_t min(t, D)^3;
4. sigma = sqrt(max(lambda, 0)); a Gram's eigenvalues carry an absolute error of about
   k * eps64 * lambda_max, which decides ER when many sigma are that small (low-rank or
   duplicated rows, and float32 rounding of them): such blocks (`at_noise_level`) take sigma
   from an SVD of Z[:t] instead. Full-rank hidden states never need it.

On the CPU every LAPACK call runs single-threaded (torch and NumPy's BLAS at one thread, restored
after), large blocks go through NumPy's `eigvalsh` (faster than torch's here, same algorithm), and
the calls are spread over a small thread pool: on 2-core machines a multi-threaded
`eigvalsh` stalls for seconds. On CUDA, and on the CPU when no block exceeds SMALL_BLOCK rows,
blocks of equal size go through one batched `torch.linalg.eigvalsh`. Nothing here touches CUDA unless the input lives there.
"""

from __future__ import annotations

import math
import os
import time
from collections import defaultdict
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
import torch
from threadpoolctl import threadpool_limits

from engine.threads import single_threaded

EPS = 1e-8
MAX_DEFAULT_WORKERS = 2
NOISE_ULPS = 8.0  # eigenvalues below NOISE_ULPS * k * eps64 * lambda_max are rounding noise
NOISE_IMPACT = 1e-7  # entropy change (~ relative ER change) above which blocks go to an SVD
# conversion and contrasts / Gram and covariance / eigvalsh / ER from eigenvalues / SVDs of
# rank-deficient blocks
PHASES = ("convert", "gram", "eig", "er", "svd")
WINDOW, FULL = "window", "full"  # which rows a series of prefixes is taken from
# On the CPU, blocks up to this size go through one batched eigvalsh: per-call overhead, not
# LAPACK work, dominates there (64 responses of ~40 tokens: 2.7x faster than the pool).
SMALL_BLOCK = 128
CUDA_BLOCK_BUDGET_BYTES = 1 << 30  # matrices held before one batched eigvalsh flush

Tensor = torch.Tensor


@dataclass(frozen=True)
class RankDynamics:
    """ER / ERV / ERA of a batch of responses (all float64, on the CPU)."""

    er: Tensor  # (B,)
    erv: Tensor  # (B,)
    era: Tensor  # (B,)
    curves: list[Tensor]  # B x (J_i,) ER of each prefix
    positions: list[Tensor]  # B x (J_i,) int64: index of each prefix's last valid token


@dataclass(frozen=True)
class TokenProxies:
    """Token-level proxies the paper compares against, over each response's tokens."""

    entropy: Tensor  # (B,) mean entropy of the sampling distribution ("exploration")
    mean_logprob: Tensor  # (B,) mean log-prob of the sampled tokens ("confidence")


@dataclass
class Clock:
    """Seconds spent per phase (summed over threads when merged)."""

    seconds: dict[str, float] = field(default_factory=lambda: dict.fromkeys(PHASES, 0.0))

    @contextmanager
    def __call__(self, phase: str):
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[phase] += time.perf_counter() - t0

    def merge(self, other: Clock) -> None:
        for k, v in other.seconds.items():
            self.seconds[k] += v


@dataclass(frozen=True)
class Job:
    """Eigenvalue work for some prefixes of one response: series `kind` at contrast counts ts."""

    index: int  # response i
    kind: str  # WINDOW (the last max_len rows) or FULL (all rows, for er when truncated)
    ts: tuple[int, ...]  # sorted contrast counts t (prefix of t + 1 rows)
    cost: float  # sum of min(t, D)^3, for scheduling


# ---- the math ----------------------------------------------------------------------------
def er_from_sigma(sigma: Tensor) -> Tensor:
    """ER from singular values sigma (..., k) -> (...).

    >>> round(float(er_from_sigma(torch.tensor([2.0, 2.0, 0.0], dtype=torch.float64))), 6)
    2.0
    """
    p = sigma / (sigma.sum(-1, keepdim=True) + EPS)
    return torch.exp(-(p * torch.log(p + EPS)).sum(-1))


def at_noise_level(lam: Tensor) -> Tensor:
    """(..., k) ascending eigenvalues of Gram blocks -> (...) bool: rounding noise may move ER.

    A Gram's eigenvalues carry an absolute error of up to about k * eps64 * lambda_max, so those
    below tau = NOISE_ULPS * k * eps64 * lambda_max are noise, and each such sigma may be off by
    about sqrt(delta), delta = the larger of twice the largest noisy |lambda| and
    eps64 * lambda_max. True when that could move the entropy (~ the relative ER) by more than
    NOISE_IMPACT: rank-deficient blocks (low rank, duplicate rows), whose sigma must then come
    from an SVD of the rows. An exactly dead direction (lambda = 0 exactly) does not count.
    """
    eps64 = torch.finfo(torch.float64).eps
    lam_max = lam[..., -1:].clamp_min(0)  # (..., 1)
    noisy = lam <= NOISE_ULPS * lam.shape[-1] * eps64 * lam_max  # (..., k)
    delta = torch.maximum(2 * (lam.abs() * noisy).amax(-1), eps64 * lam_max[..., 0])  # (...)
    p = delta.sqrt() / (lam.clamp_min(0).sqrt().sum(-1) + EPS)  # largest p a noisy sigma has
    p = p.clamp(max=math.exp(-1.0))  # -p log p grows on [0, 1/e]
    return noisy.sum(-1) * (-p * torch.log(p + EPS)) > NOISE_IMPACT


def sigma_of_block(lam: Tensor, z: Tensor, t: int) -> Tensor:
    """Singular values of Z[:t] from its Gram block's eigenvalues lam, or by SVD at noise level."""
    if needs_svd(lam):
        return torch.linalg.svdvals(z[:t])
    return lam.clamp_min(0).sqrt()


def needs_svd(lam: Tensor) -> bool:
    """`at_noise_level` of one ascending (k,) spectrum, with a fast exit for full-rank blocks."""
    tau = NOISE_ULPS * lam.shape[0] * torch.finfo(torch.float64).eps * max(lam[-1].item(), 0.0)
    return lam[0].item() <= tau and bool(at_noise_level(lam))


def curve_points(length: int, stride: int) -> list[int]:
    """Contrast counts t = s, 2s, ... < length: curve point j is the prefix of t_j + 1 rows.

    >>> curve_points(41, 20)
    [20, 40]
    """
    return list(range(stride, length, stride))


def velocity_acceleration(curve: Tensor) -> tuple[float, float]:
    """(ERV, ERA) of one rank curve (J,): mean diff_j and mean diff_j - diff_{j-1}.

    >>> velocity_acceleration(torch.tensor([1.0, 3.0, 3.0], dtype=torch.float64))
    (1.5, -1.0)
    """
    j = curve.shape[0]
    if j < 2:
        return 0.0, 0.0
    c = curve.to(torch.float64)
    prev_mean = c.cumsum(0)[:-1] / torch.arange(1, j, dtype=torch.float64)  # (J-1,)
    diff = c[1:] - prev_mean  # diff_1 .. diff_{J-1}
    era = float((diff[1:] - diff[:-1]).mean()) if j >= 3 else 0.0
    return float(diff.mean()), era


def helmert_contrasts(x: Tensor) -> Tensor:
    """(L, D) rows -> (L-1, D) float64 contrasts; Z[:t] has the singular values of X[:t+1] centred.

    z_k = sqrt(k / (k+1)) (x_k - mean(x_0 .. x_{k-1})), after subtracting the mean of all L rows.
    """
    xc = x.to(torch.float64, copy=True)  # in-place below: few large temporaries
    xc -= xc.mean(0, keepdim=True)  # (L, D)
    k = torch.arange(1, xc.shape[0], dtype=torch.float64, device=xc.device)  # (L-1,)
    z = xc.cumsum(0)[:-1].div_(k[:, None])  # mean of rows 0..k-1
    z = torch.sub(xc[1:], z, out=z)
    return z.mul_(torch.sqrt(k / (k + 1))[:, None])


def blocks(
    z: Tensor, ts: Sequence[int], clock: Clock | None = None
) -> Iterator[tuple[int, Tensor]]:
    """For each t in sorted ts: (t, symmetric matrix whose eigenvalues are sigma^2 of Z[:t]).

    The leading t x t block of G = Z Z^T while t <= D, the running covariance Z[:t]^T Z[:t]
    once t > D. Each yielded matrix stays valid after the next one is made.
    """
    clock = clock or Clock()
    d = z.shape[1]
    small = [t for t in ts if t <= d]
    if small:
        with clock("gram"):
            m = small[-1]
            g = z[:m] @ z[:m].T  # (m, m)
        for t in small:
            yield t, g[:t, :t]
    c, done = None, 0
    for t in (t for t in ts if t > d):
        with clock("gram"):
            zt = z[done:t]  # rows added since the last covariance
            c = zt.T @ zt if c is None else torch.addmm(c, zt.T, zt)  # (D, D), a new tensor
            done = t
        yield t, c


def job_cost(ts: Sequence[int], d: int) -> float:
    return float(sum(min(t, d) ** 3 for t in ts))


# ---- public API ---------------------------------------------------------------------------
def effective_rank(h: Tensor) -> float:
    """ER of the rows of h (T, D), in float64.

    >>> round(effective_rank(torch.tensor([[0.0, 0.0], [2.0, 0.0], [0.0, 2.0], [2.0, 2.0]])), 6)
    2.0
    >>> effective_rank(torch.ones(1, 3))
    0.0
    """
    if h.shape[0] < 2:
        return 0.0
    with single_threaded():
        z = helmert_contrasts(h.detach())
        t, a = next(blocks(z, [z.shape[0]]))
        return float(er_from_sigma(sigma_of_block(torch.linalg.eigvalsh(a), z, t)).cpu())


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
    """
    _check(hidden, mask, stride, max_len)
    hidden, mask = hidden.detach(), mask.detach().to(device=hidden.device, dtype=torch.bool)
    workers = default_workers(workers)
    largest_block = min(int(mask.sum(1).max()) if mask.numel() else 0, hidden.shape[2])
    if hidden.is_cuda or largest_block <= SMALL_BLOCK:
        values = batched_values(hidden, mask, stride, max_len)
    else:
        values = pooled_values(hidden, mask, stride, max_len, workers)
    return assemble(mask, stride, max_len, values)


def token_proxies(logps: Tensor, entropies: Tensor, mask: Tensor) -> TokenProxies:
    """Mean token entropy and mean log-prob over each response's tokens (B, C) -> (B,) float64.

    A response without tokens gets 0 for both.

    >>> tp = token_proxies(torch.tensor([[-1.0, -3.0]]), torch.tensor([[2.0, 9.0]]),
    ...                    torch.tensor([[True, False]]))
    >>> tp.mean_logprob.tolist(), tp.entropy.tolist()
    ([-1.0], [2.0])
    """
    m = mask.detach().to(torch.bool)
    n = m.sum(1).clamp_min(1).to(torch.float64)  # (B,)

    def masked_mean(x: Tensor) -> Tensor:
        x = torch.where(m, x.detach().to(torch.float64), 0.0)  # padding may hold -inf / nan
        return (x.sum(1) / n).cpu()

    return TokenProxies(entropy=masked_mean(entropies), mean_logprob=masked_mean(logps))


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


def window(n: int, max_len: int | None) -> tuple[int, int]:
    """(offset, length) of the curve's window among n valid rows."""
    length = n if max_len is None else min(n, max_len)
    return n - length, length


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
