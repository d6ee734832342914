"""Does the demo recipe learn, and does VERL differ from GRPO? 3 seeds x {grpo, verl}.

Every run is the shipped demo recipe through the real entry point (`engine.training.train.main`), with the
same steps, seeds and data order per seed; only `run.algorithm` differs. Held-out pass@1 and
pass@8 (n = 8 samples per problem, unbiased estimator 1 - C(n-c, k) / C(n, k)) are measured on
the same problems with the same sampling seed before training (the embedded model) and after
(the final checkpoint). Done means the recipe raises held-out pass@1 by >= 5 points (mean of 3
seeds); the script also prints the median bonus share of |A| on shaped responses (verl), which
the demo recipe must keep >= 5% so that the bonus matters.

    python bench/bench_learning.py                 # the recipe's steps, 3 seeds, 200 problems
    python bench/bench_learning.py --quick         # 1 seed, 4 steps, 16 problems (smoke run)
"""

from __future__ import annotations

import argparse
import logging
import statistics
import tempfile
import time
from pathlib import Path

import torch

ALGORITHMS = ("grpo", "verl")
KS = (1, 8)
N_SAMPLES = 8


def pass_at(model_path: str, cfg, rows, seed: int) -> list[float]:
    from engine.data.rewards import get_reward
    from engine.evaluation.passk import pass_at_k_curve
    from engine.models.loading import load_policy
    from engine.training.heldout import correct_counts

    model, tok = load_policy(model_path, dtype="float32", device="cpu")
    model.eval()
    counts = correct_counts(
        model,
        tok,
        rows,
        get_reward(cfg.data.reward),
        n=N_SAMPLES,
        temperature=cfg.grpo.temperature,
        top_p=cfg.grpo.top_p,
        max_new_tokens=cfg.grpo.max_completion_length,
        seed=seed,
        batch_problems=25,
    )
    return pass_at_k_curve(counts, N_SAMPLES, KS)


def one_run(cfg, algorithm: str, seed: int, workdir: Path) -> dict:
    from engine.paths import resolve
    from engine.storage import Store
    from engine.training.train import main

    cfg = cfg.with_overrides([f"run.algorithm={algorithm}", f"run.seed={seed}"])
    root = resolve(workdir / f"{algorithm}-{seed}", db=str(workdir / f"{algorithm}-{seed}.db"))
    t0 = time.perf_counter()
    main(cfg, root=root, progress=False)
    seconds = time.perf_counter() - t0
    with Store(root.db_url) as store:
        run = store.list_runs()[0]
        steps = store.steps(run.id, ["bonus_share", "frac_shaped", "reward_mean"])
        last = store.last_checkpoint(run.id)["path"]
    shares = [s["bonus_share"] for s in steps if s["bonus_share"] is not None]
    return {
        "last": str(last),
        "seconds": seconds,
        "share": statistics.median(shares) if shares else None,
        "frac_shaped": statistics.mean(s["frac_shaped"] or 0 for s in steps),
        "reward_first10": statistics.mean(s["reward_mean"] for s in steps[:10]),
        "reward_last10": statistics.mean(s["reward_mean"] for s in steps[-10:]),
    }


def main(argv: list[str] | None = None) -> int:
    from engine.config import StudioConfig
    from engine.data.tasks import load_dataset_for
    from engine.resources import recipe_path

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--quick", action="store_true", help="1 seed, 4 steps, 16 problems")
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--first-seed", type=int, default=0)
    p.add_argument("--problems", type=int, default=200, help="held-out problems")
    p.add_argument("--algorithms", nargs="+", choices=ALGORITHMS, default=list(ALGORITHMS))
    p.add_argument("--set", dest="overrides", action="append", default=[], help="recipe override")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    overrides = ["run.eval_every=0", "run.checkpoint_every=100000", *args.overrides]
    seeds, problems = args.seeds, args.problems
    if args.quick:
        overrides += ["run.max_steps=4", "grpo.per_device_train_batch_size=16"]
        seeds, problems = 1, 16
    cfg = StudioConfig.load(recipe_path("demo-cpu"), overrides)
    torch.set_num_threads(cfg.run.torch_threads)
    rows = list(load_dataset_for(cfg.data, "eval", limit=problems))
    print(f"demo recipe: {cfg.run.max_steps} steps, batch {cfg.grpo.per_device_train_batch_size}, "
          f"{seeds} seed(s), {problems} held-out problems x {N_SAMPLES} samples")  # fmt: skip
    gains: dict[str, list[float]] = {a: [] for a in args.algorithms}
    with tempfile.TemporaryDirectory() as tmp:
        for seed in range(args.first_seed, args.first_seed + seeds):
            before = pass_at("embedded", cfg, rows, seed)
            for algorithm in args.algorithms:
                run = one_run(cfg, algorithm, seed, Path(tmp))
                after = pass_at(run["last"], cfg, rows, seed)
                gains[algorithm].append(100 * (after[0] - before[0]))
                share = "-" if run["share"] is None else f"{100 * run['share']:.1f}%"
                print(
                    f"seed {seed} {algorithm}: pass@1 {100 * before[0]:.1f} -> {100 * after[0]:.1f}"
                    f"  pass@8 {100 * before[1]:.1f} -> {100 * after[1]:.1f}"
                    f"  train reward {run['reward_first10']:.3f} -> {run['reward_last10']:.3f}"
                    f"  bonus/|A| median {share}  shaped {100 * run['frac_shaped']:.0f}%"
                    f"  {run['seconds']:.0f} s",
                    flush=True,
                )
    for algorithm, g in gains.items():
        print(
            f"{algorithm}: mean pass@1 gain {statistics.mean(g):+.1f} points over {len(g)} seed(s)"
        )
    print("target: the demo recipe (verl) gains >= 5 points of held-out pass@1 (mean of 3 seeds)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
