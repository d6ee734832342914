"""Benchmark: `rank_dynamics` against a per-sample baseline that follows the reference's method.

For each case (B responses of T tokens, hidden size D, stride s, max_len) it reports, in one run:

- baseline: per response, in a Python loop at torch.set_num_threads(1), float32 throughout:
  ER = one `svdvals` of the centred response; the curve grows an uncentred Gram by
  concatenation and runs an `eigvalsh` of every double-centred (t+1) x (t+1) prefix Gram
  (cost ~T^4 / (4s) whatever D is);
- rank_dynamics: the public call (default workers), and the ratio baseline / rank_dynamics;
- eig bound: the eigenvalue calls alone on the very blocks rank_dynamics builds (same solver,
  dtype, jobs and pool), and the split of rank_dynamics' time, from an instrumented second run
  (CPU-seconds summed over the pool's threads: conversion and contrasts / Gram and covariance /
  eigenvalues / SVDs of rank-deficient blocks);
- the max disagreement of each from a slow float64 implementation (one SVD per prefix), on
  response 0 only: relative on er and the curve, absolute / max(1, max curve) on ERV and ERA.

With CUDA available the same cases also run on the GPU (rank_dynamics, batched eigvalsh).

Targets on a 2-core CPU (issue 2): >= 4x the baseline at T=2048 / D=896, >= 1.3x everywhere,
within 1.25x of the eigenvalue-only bound where T >= 1024, within 3x at T=512 / D=3584.

    python bench/bench_rank.py            # the issue's three cases (several minutes)
    python bench/bench_rank.py --quick    # two small cases, seconds
    python bench/bench_rank.py --quick --json out.json
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from dataclasses import asdict, dataclass

import torch

from engine.rank import effective_rank as E
from engine.rank import scheduling as S

log = logging.getLogger("bench_rank")


@dataclass(frozen=True)
class Case:
    B: int
    T: int
    D: int
    stride: int
    max_len: int | None


CASES = (
    Case(B=8, T=2048, D=896, stride=40, max_len=None),
    Case(B=16, T=1024, D=1536, stride=40, max_len=None),
    Case(B=32, T=512, D=3584, stride=40, max_len=512),
)
QUICK_CASES = (
    Case(B=4, T=320, D=48, stride=16, max_len=None),  # t > D: running covariance
    Case(B=4, T=300, D=384, stride=20, max_len=256),  # t < D: Gram blocks; truncation
)
MASSIVE_VALUE = 800.0  # "massive activations": a few dims with a large common offset


def make_batch(case: Case, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """LLM-like float32 hidden states (B, T, D): noise, a shared offset, massive dims."""
    g = torch.Generator().manual_seed(seed)
    h = torch.randn(case.B, case.T, case.D, generator=g)
    h += 3.0 * torch.randn(1, 1, case.D, generator=g)
    h[..., : max(1, case.D // 200)] += MASSIVE_VALUE
    return h, torch.ones(case.B, case.T, dtype=torch.bool)


# ---- the per-sample baseline (the reference's method, float32) ---------------------------
def baseline_response(x: torch.Tensor, stride: int, max_len: int | None) -> dict:
    """er, curve, erv, era of one response x (n, D) the reference's way, in float32."""
    x = x.to(torch.float32)
    er = float(E.er_from_sigma(torch.linalg.svdvals(x - x.mean(0)))) if len(x) >= 2 else 0.0
    w = x if max_len is None else x[-max_len:]
    gram, done, curve = torch.empty(0, 0), 0, []
    for t in E.curve_points(len(w), stride):
        new = w[done : t + 1]  # rows added to the prefix
        cross = w[:done] @ new.T
        gram = torch.cat([torch.cat([gram, cross], 1), torch.cat([cross.T, new @ new.T], 1)], 0)
        done = t + 1
        centred = gram - gram.mean(0) - gram.mean(1, keepdim=True) + gram.mean()  # J G J
        curve.append(float(E.er_from_sigma(torch.linalg.eigvalsh(centred).clamp_min(0).sqrt())))
    erv, era = E.velocity_acceleration(torch.tensor(curve, dtype=torch.float64))
    return {"er": er, "curve": curve, "erv": erv, "era": era}


def baseline(hidden, mask, case: Case) -> list[dict]:
    with E.single_threaded():
        return [
            baseline_response(hidden[i][mask[i]], case.stride, case.max_len) for i in range(case.B)
        ]


# ---- the slow float64 truth ---------------------------------------------------------------
def slow_response(x: torch.Tensor, stride: int, max_len: int | None) -> dict:
    """One float64 SVD per prefix, straight from the definition."""

    def er(rows):
        rows = rows.to(torch.float64)
        return (
            float(E.er_from_sigma(torch.linalg.svdvals(rows - rows.mean(0))))
            if len(rows) > 1
            else 0.0
        )

    w = x if max_len is None else x[-max_len:]
    with E.single_threaded():
        curve = [er(w[: t + 1]) for t in E.curve_points(len(w), stride)]
        full = er(x)
    erv, era = E.velocity_acceleration(torch.tensor(curve, dtype=torch.float64))
    return {"er": full, "curve": curve, "erv": erv, "era": era}


def disagreement(got: dict, truth: dict) -> dict:
    """Max relative error on er and the curve; max |error| / max(1, max curve) on ERV, ERA."""
    scale = max([1.0] + truth["curve"])
    rel = [abs(got["er"] - truth["er"]) / max(abs(truth["er"]), 1e-12)]
    rel += [
        abs(a - b) / max(abs(b), 1e-12) for a, b in zip(got["curve"], truth["curve"], strict=True)
    ]
    return {
        "er_curve_rel": max(rel),
        "erv_abs_scaled": abs(got["erv"] - truth["erv"]) / scale,
        "era_abs_scaled": abs(got["era"] - truth["era"]) / scale,
    }


def response0(rd: E.RankDynamics) -> dict:
    return {
        "er": rd.er[0].item(),
        "curve": rd.curves[0].tolist(),
        "erv": rd.erv[0].item(),
        "era": rd.era[0].item(),
    }


# ---- the eigenvalue-only bound ------------------------------------------------------------
def eig_bound(hidden, mask, case: Case, workers: int) -> tuple[float, dict]:
    """Seconds of the eigvalsh calls alone on rank_dynamics' blocks, and response 0's values.

    The blocks are built (outside the clock) for a few jobs at a time to bound memory, then
    solved in the same kind of pool, with the same job order, as rank_dynamics.
    """
    jobs = S.plan(mask.sum(1).tolist(), case.D, case.stride, case.max_len, 2 * workers)
    seconds, values = 0.0, {}

    def solve(mats):
        return [S.eigvalsh_cpu(a) for _, a in mats]

    for start in range(0, len(jobs), 2 * workers):
        group = jobs[start : start + 2 * workers]
        mats = [
            [(t, a.clone()) for t, a in E.blocks(S.job_rows(hidden, mask, j, case.max_len), j.ts)]
            for j in group
        ]
        t0 = time.perf_counter()
        with S.lapack_single_threaded(), S.worker_pool(workers) as pool:
            lams = list(pool.map(solve, mats))
        seconds += time.perf_counter() - t0
        for job, ms, ls in zip(group, mats, lams, strict=True):
            if job.index == 0:
                for (t, _), lam in zip(ms, ls, strict=True):
                    values[(0, job.kind, t)] = float(E.er_from_sigma(lam.clamp_min(0).sqrt()))
    return seconds, values


def response0_from_values(values: dict, mask, case: Case) -> dict:
    one = {k: v for k, v in values.items() if k[0] == 0}
    return response0(S.assemble(mask[:1], case.stride, case.max_len, one))


# ---- one case -----------------------------------------------------------------------------
def timed(fn, *args, **kwargs):
    t0 = time.perf_counter()
    out = fn(*args, **kwargs)
    return time.perf_counter() - t0, out


def warm_up(case: Case, workers: int) -> None:
    """One small call of each method first, so no timing pays one-time set-up costs."""
    small = Case(B=2, T=min(case.T, 3 * case.stride + 1), D=case.D, stride=case.stride,
                 max_len=case.max_len)  # fmt: skip
    hidden, mask = make_batch(small, seed=1)
    baseline(hidden, mask, small)
    S.rank_dynamics(hidden, mask, small.stride, small.max_len, workers=workers)
    eig_bound(hidden, mask, small, workers)


def run_case(case: Case, workers: int) -> dict:
    warm_up(case, workers)
    hidden, mask = make_batch(case)
    truth = slow_response(hidden[0][mask[0]], case.stride, case.max_len)
    t_base, base = timed(baseline, hidden, mask, case)
    t_rd, rd = timed(S.rank_dynamics, hidden, mask, case.stride, case.max_len, workers=workers)
    clock = E.Clock()
    t_split, _ = timed(S.pooled_values, hidden, mask, case.stride, case.max_len, workers, clock)
    t_eig, bound_values = eig_bound(hidden, mask, case, workers)
    out = {
        "case": asdict(case),
        "workers": workers,
        "baseline_s": t_base,
        "rank_dynamics_s": t_rd,
        "speedup": t_base / t_rd,
        "eig_bound_s": t_eig,
        "over_bound": t_rd / t_eig,
        "split_wall_s": t_split,
        "split_cpu_s": dict(clock.seconds),
        "disagreement": {
            "baseline": disagreement(base[0], truth),
            "rank_dynamics": disagreement(response0(rd), truth),
            "eig_bound": disagreement(response0_from_values(bound_values, mask, case), truth),
        },
    }
    if torch.cuda.is_available():
        out["cuda"] = run_cuda(hidden, mask, case, truth)
    return out


def run_cuda(hidden, mask, case: Case, truth: dict) -> dict:
    """rank_dynamics on the GPU (batched eigvalsh), after one warm-up call."""
    h, m = hidden.cuda(), mask.cuda()
    S.rank_dynamics(h[:1], m[:1], case.stride, case.max_len)
    torch.cuda.synchronize()
    t, rd = timed(S.rank_dynamics, h, m, case.stride, case.max_len)
    return {"rank_dynamics_s": t, "disagreement": disagreement(response0(rd), truth)}


# ---- report -------------------------------------------------------------------------------
def report(r: dict) -> None:
    c = r["case"]
    log.info(
        "B=%d T=%d D=%d s=%d max_len=%s  (workers=%d)",
        c["B"], c["T"], c["D"], c["stride"], c["max_len"], r["workers"],
    )  # fmt: skip
    log.info(
        "  baseline %.2fs | rank_dynamics %.2fs | speedup %.2fx | eig bound %.2fs | over bound %.2fx",
        r["baseline_s"], r["rank_dynamics_s"], r["speedup"], r["eig_bound_s"], r["over_bound"],
    )  # fmt: skip
    split = ", ".join(f"{k} {v:.2f}s" for k, v in r["split_cpu_s"].items())
    log.info("  split (CPU-s over threads; wall %.2fs): %s", r["split_wall_s"], split)
    for name, d in r["disagreement"].items():
        log.info(
            "  vs float64 (response 0) %-13s er/curve rel %.1e | erv %.1e | era %.1e",
            name, d["er_curve_rel"], d["erv_abs_scaled"], d["era_abs_scaled"],
        )  # fmt: skip
    if "cuda" in r:
        g = r["cuda"]
        log.info(
            "  CUDA rank_dynamics %.3fs | er/curve rel %.1e",
            g["rank_dynamics_s"], g["disagreement"]["er_curve_rel"],
        )  # fmt: skip


def targets(results: list[dict]) -> list[str]:
    """The issue's speed targets, each 'ok' or 'MISSED' (information; never asserted)."""
    lines = []
    for r in results:
        c = r["case"]
        want = [("speedup >= 1.3", r["speedup"] >= 1.3)]
        if (c["T"], c["D"]) == (2048, 896):
            want.append(("speedup >= 4", r["speedup"] >= 4))
        if c["T"] >= 1024:
            want.append(("within 1.25x of bound", r["over_bound"] <= 1.25))
        if (c["T"], c["D"]) == (512, 3584):
            want.append(("within 3x of bound", r["over_bound"] <= 3))
        for name, ok in want:
            lines.append(f"T={c['T']} D={c['D']}: {name}: {'ok' if ok else 'MISSED'}")
    return lines


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="two small cases (seconds)")
    ap.add_argument("--case", type=int, action="append", help="run only case N (0-based)")
    ap.add_argument("--workers", type=int, default=None, help="rank_dynamics workers")
    ap.add_argument("--json", help="also write the results to this JSON file")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout)
    workers = S.default_workers(args.workers)
    results = []
    cases = QUICK_CASES if args.quick else CASES
    for case in [cases[k] for k in args.case] if args.case else cases:
        results.append(run_case(case, workers))
        report(results[-1])
    for line in targets(results):
        log.info(line)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"quick": args.quick, "results": results}, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
