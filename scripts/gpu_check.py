"""The GPU check (run by scripts/gpu_check.sh on a CUDA machine; <= 5 minutes, no network).

1. rank dynamics on CUDA for the README's three bench_rank cases plus B = 256, T = 1024,
   D = 3584 (goal < 1 s on an H200-class GPU): time after a warm-up, and the disagreement of
   response 0 from the float64 definition (one SVD per prefix, `bench_rank.slow_response`'s
   formula, run in float64 on the GPU for speed);
2. 3 VERL steps of a random-weight model with Qwen2.5-1.5B's shape (28 layers, D = 1536,
   151,936 ids, `bench/real_shapes.py`) in bfloat16 on the GPU through the product's trainer and
   store: step / generation / capture / rank-dynamics times and peak GPU memory.

Prints one summary table; exits 1 when a result disagrees (response 0 off the float64 oracle by
more than 1e-9 relative, a VERL step missing or not finite), 0 otherwise. Timing goals are
reported, never failed on.
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "bench")]
from bench_rank import Case, disagreement, make_batch, response0  # noqa: E402
from real_shapes import QWEN25_15B, digit_share, write_model  # noqa: E402

from engine.rank import effective_rank as E  # noqa: E402
from engine.rank import scheduling as S  # noqa: E402

TOLERANCE = 1e-9
CASES = (
    Case(B=8, T=2048, D=896, stride=40, max_len=None),
    Case(B=16, T=1024, D=1536, stride=40, max_len=None),
    Case(B=32, T=512, D=3584, stride=40, max_len=512),
    Case(B=256, T=1024, D=3584, stride=40, max_len=None),
)
GOAL_S = {(256, 1024, 3584): 1.0}
DRY_CASES = (
    Case(B=4, T=320, D=48, stride=16, max_len=None),
    Case(B=4, T=300, D=384, stride=20, max_len=256),
)


def oracle(x: torch.Tensor, stride: int, max_len: int | None) -> dict:
    """er, curve, erv, era of one response from the definition, float64 SVDs on x's device."""

    def er(rows):
        rows = rows.to(torch.float64)
        if len(rows) < 2:
            return 0.0
        return float(E.er_from_sigma(torch.linalg.svdvals(rows - rows.mean(0)).cpu()))

    w = x if max_len is None else x[-max_len:]
    curve = [er(w[: t + 1]) for t in E.curve_points(len(w), stride)]
    erv, era = E.velocity_acceleration(torch.tensor(curve, dtype=torch.float64))
    return {"er": er(x), "curve": curve, "erv": erv, "era": era}


def sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def rank_case(case: Case, device: str) -> dict:
    hidden, mask = make_batch(case)
    h, m = hidden.to(device), mask.to(device)
    del hidden
    truth = oracle(h[0][m[0]], case.stride, case.max_len)
    S.rank_dynamics(h[:2], m[:2], case.stride, case.max_len)  # warm-up
    sync(device)
    t0 = time.perf_counter()
    rd = S.rank_dynamics(h, m, case.stride, case.max_len)
    sync(device)
    seconds = time.perf_counter() - t0
    d = disagreement(response0(rd), truth)
    worst = max(d.values())
    goal = GOAL_S.get((case.B, case.T, case.D))
    return {
        "what": f"rank B={case.B} T={case.T} D={case.D} max_len={case.max_len}",
        "seconds": seconds,
        "detail": f"vs float64 {worst:.1e}" + (f"; goal < {goal:.0f} s" if goal else ""),
        "ok": worst <= TOLERANCE,
        "goal_met": None if goal is None else seconds < goal,
    }


def verl_steps(tmp: Path, steps: int, completion: int, device: str, shape: dict) -> dict:
    """`steps` VERL steps of the 1.5B-shaped random model in bf16 through build_trainer + the
    recording callback into a real SQLite store."""
    from transformers import PrinterCallback, TrainerCallback

    from engine.config import StudioConfig
    from engine.data.rewards import REGISTRY
    from engine.resources import recipe_path
    from engine.runs.admission import AccessPolicy
    from engine.runs.service import submit
    from engine.storage import Store
    from engine.training.callbacks import RecordingCallback
    from engine.training.train import build_trainer

    REGISTRY.setdefault("digit_share", digit_share)
    t0 = time.perf_counter()
    folder = write_model(tmp / "model", shape, dtype=torch.bfloat16, device=device)
    t_build = time.perf_counter() - t0
    cfg = StudioConfig.load(
        recipe_path("demo-cpu"),
        [
            f"model.name_or_path={folder}", "model.dtype=bfloat16", f"run.device={device}",
            "data.extra_rewards=[digit_share]", f"run.max_steps={steps}", "run.eval_every=0",
            "run.checkpoint_every=100000", "grpo.per_device_train_batch_size=16",
            "grpo.num_generations=8", f"grpo.max_completion_length={completion}",
            "grpo.learning_rate=1e-6", "shaping.stride=40", "shaping.max_len=512",
            "shaping.aux_weight=1.0", "run.torch_threads=4",
        ],
    )  # fmt: skip
    store = Store(f"sqlite:///{tmp / 'gpu.db'}")
    run_id = submit(store, cfg, policy=AccessPolicy.command_line())
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    trainer = build_trainer(cfg, tmp / "out")
    trainer.remove_callback(PrinterCallback)
    recorder = RecordingCallback(trainer, store, run_id, run_cfg=cfg.run, heldout=None)
    trainer.add_callback(recorder)
    starts: list[float] = []

    class Clock(TrainerCallback):
        def on_step_begin(self, *a, **k):
            sync(device)
            starts.append(time.perf_counter())

    trainer.add_callback(Clock())
    t0 = time.perf_counter()
    trainer.train()
    sync(device)
    starts.append(time.perf_counter())
    total = time.perf_counter() - t0
    rows = [r for s in store.sample_steps(run_id) for r in store.samples(run_id, s)]
    n_steps = len(store.steps(run_id))
    store.close()
    t = trainer.timings
    per_step = [b - a for a, b in zip(starts, starts[1:], strict=False)]
    peak = torch.cuda.max_memory_allocated() / 2**30 if device == "cuda" else float("nan")
    finite = bool(rows) and all(math.isfinite(r["er"]) and r["er"] > 0 for r in rows)
    return {
        "what": f"VERL {steps} steps, {shape['num_hidden_layers']} layers x D={shape['hidden_size']}"
        f", {shape['vocab_size']:,} ids, bf16, {completion}-token responses",
        "seconds": total,
        "detail": (
            f"steps {', '.join(f'{s:.1f}' for s in per_step)} s; capture {t['capture']:.2f} s, "
            f"rank dynamics {t['rank_dynamics']:.2f} s, shaping {t['shaping']:.2f} s, store "
            f"{recorder.store_seconds:.2f} s; peak GPU memory "
            f"{peak:.1f} GiB; model build {t_build:.0f} s; "
            f"{len(rows)} responses, {sum(r['bonus'] > 0 for r in rows)} shaped"
        ),
        "ok": n_steps == steps and finite,
        "goal_met": None,
    }


def table(results: list[dict]) -> str:
    lines = ["| check | seconds | detail | result |", "|---|---|---|---|"]
    for r in results:
        verdict = "ok" if r["ok"] else "DISAGREES"
        if r["goal_met"] is False:
            verdict += " (goal missed)"
        lines.append(f"| {r['what']} | {r['seconds']:.3f} | {r['detail']} | {verdict} |")
    return "\n".join(lines)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--completion", type=int, default=256)
    p.add_argument("--skip-training", action="store_true")
    p.add_argument(
        "--dry-run-cpu",
        action="store_true",
        help="the same code on the CPU with small cases and a 1-layer, 4,096-id model (a smoke run)",
    )
    args = p.parse_args()
    device, cases, shape = "cuda", CASES, QWEN25_15B
    if args.dry_run_cpu:
        device, cases = "cpu", DRY_CASES
        shape = {**QWEN25_15B, "num_hidden_layers": 1, "vocab_size": 4096}
        args.steps, args.completion = min(args.steps, 2), min(args.completion, 32)
    elif not torch.cuda.is_available():
        print("no CUDA device: the GPU check needs one (--dry-run-cpu for a smoke run)")
        return 2
    else:
        print(
            f"{torch.cuda.get_device_name(0)}, torch {torch.__version__}, CUDA {torch.version.cuda}"
        )
    results = []
    for case in cases:
        results.append(rank_case(case, device))
        print(table(results[-1:]).splitlines()[-1], flush=True)
        if device == "cuda":
            torch.cuda.empty_cache()
    if not args.skip_training:
        with tempfile.TemporaryDirectory() as tmp:
            results.append(verl_steps(Path(tmp), args.steps, args.completion, device, shape))
    print("\nGPU check summary\n" + table(results))
    return 0 if all(r["ok"] for r in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
