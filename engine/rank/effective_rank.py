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

The batched entry point `rank_dynamics` (scheduling.py) spreads this work over CPU threads or
batches it on CUDA; this module holds only the math.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch

from engine.threads import single_threaded

EPS = 1e-8
NOISE_ULPS = 8.0  # eigenvalues below NOISE_ULPS * k * eps64 * lambda_max are rounding noise
NOISE_IMPACT = 1e-7  # entropy change (~ relative ER change) above which blocks go to an SVD
# conversion and contrasts / Gram and covariance / eigvalsh / ER from eigenvalues / SVDs of
# rank-deficient blocks
PHASES = ("convert", "gram", "eig", "er", "svd")

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


def window(n: int, max_len: int | None) -> tuple[int, int]:
    """(offset, length) of the curve's window among n valid rows: the last `max_len` of them.

    >>> window(600, 512), window(30, 512), window(30, None)
    ((88, 512), (0, 30), (0, 30))
    """
    length = n if max_len is None else min(n, max_len)
    return n - length, length


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
class NonFiniteHiddenStates(ValueError):
    """NaN or inf in a response's hidden states (a diverging model, an fp16 overflow).

    `response`: the row of the batch; `token`: the first bad token of that response."""

    def __init__(self, response: int, token: int):
        super().__init__(
            f"response {response}: non-finite hidden states (NaN or inf) at its token {token}; "
            "the effective rank needs finite values"
        )
        self.response, self.token = response, token


def check_finite(hidden: Tensor, mask: Tensor) -> None:
    """Raise NonFiniteHiddenStates naming the first response (row of `mask`) whose response
    tokens hold a NaN or inf; padding (mask False) is not looked at. hidden (B, T, D)."""
    bad = ~torch.isfinite(hidden).all(dim=-1) & mask  # (B, T)
    if not bool(bad.any()):
        return
    i, t = (int(v) for v in bad.nonzero()[0])
    raise NonFiniteHiddenStates(i, int(mask[i, :t].sum()))


def effective_rank(h: Tensor) -> float:
    """ER of the rows of h (T, D), in float64.

    >>> round(effective_rank(torch.tensor([[0.0, 0.0], [2.0, 0.0], [0.0, 2.0], [2.0, 2.0]])), 6)
    2.0
    >>> effective_rank(torch.ones(1, 3))
    0.0
    """
    check_finite(h.unsqueeze(0), torch.ones(1, h.shape[0], dtype=torch.bool, device=h.device))
    if h.shape[0] < 2:
        return 0.0
    with single_threaded():
        z = helmert_contrasts(h.detach())
        t, a = next(blocks(z, [z.shape[0]]))
        return float(er_from_sigma(sigma_of_block(torch.linalg.eigvalsh(a), z, t)).cpu())


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
