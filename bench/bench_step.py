"""Per-step cost of the VERL trainer against unmodified TRL, on the demo recipe (one run).

Three arms, same seed, same data, interleaved round by round so machine load hits all alike:

    plain  unmodified trl.GRPOTrainer
    grpo   VerlTrainer, algorithm grpo: capture + rank dynamics + recording into a real store
           (the demo recipe captures inside TRL's loss forward: no extra forward)
    verl   VerlTrainer, algorithm verl: the same plus the shaping

A step's time is the interval between consecutive step starts (so it includes the store write
of the recording callback); the first step of every round (warm-up) is dropped. Targets:
verl / grpo <= 1.05 and grpo / plain <= 1.15 (medians). Also printed: the shares of capture,
rank dynamics and store writes in the grpo arm's time, and the median bonus share of |A| (verl).

    python bench/bench_step.py            # 6 rounds x 4 steps per arm
    python bench/bench_step.py --quick    # 1 round x 3 steps, smaller batch (a smoke run)
"""

from __future__ import annotations

import argparse
import logging
import statistics
import tempfile
import time
from pathlib import Path

import torch
from transformers import PrinterCallback, TrainerCallback

ARMS = ("plain", "grpo", "verl")


class StepClock(TrainerCallback):
    """Seconds between consecutive step starts; the last step ends at train end."""

    def __init__(self):
        self.starts: list[float] = []

    def on_step_begin(self, args, state, control, **kwargs):
        self.starts.append(time.perf_counter())

    def intervals(self) -> list[float]:
        return [b - a for a, b in zip(self.starts, self.starts[1:], strict=False)]


def config(quick: bool, steps: int):
    from engine.config import StudioConfig
    from engine.resources import recipe_path

    overrides = [f"run.max_steps={steps}", "run.eval_every=0", "run.checkpoint_every=100000"]
    if quick:
        overrides += ["grpo.per_device_train_batch_size=16"]
    return StudioConfig.load(recipe_path("demo-cpu"), overrides)


def plain_trainer(cfg, out: Path):
    from trl import GRPOTrainer

    from engine.data.rewards import get_reward
    from engine.data.tasks import load_dataset_for
    from engine.models.loading import load_policy
    from engine.training.train import grpo_args

    model, tok = load_policy(cfg.model.name_or_path, dtype=cfg.model.dtype, device="cpu")
    return GRPOTrainer(
        model=model,
        reward_funcs=[get_reward(cfg.data.reward)],
        args=grpo_args(cfg, out),
        train_dataset=load_dataset_for(cfg.data, "train"),
        processing_class=tok,
    )


def run_arm(arm: str, cfg, workdir: Path) -> dict:
    """One short run of one arm; returns its step intervals and cost breakdown."""
    from engine.runs.admission import AccessPolicy
    from engine.runs.service import submit
    from engine.storage import Store
    from engine.training.callbacks import RecordingCallback
    from engine.training.train import build_trainer

    torch.manual_seed(cfg.run.seed)
    cfg = cfg.with_overrides([f"run.algorithm={'verl' if arm == 'verl' else 'grpo'}"])
    clock = StepClock()
    store = None
    if arm == "plain":
        trainer = plain_trainer(cfg, workdir / arm)
    else:
        store = Store(f"sqlite:///{workdir / 'bench.db'}")
        run_id = submit(store, cfg, policy=AccessPolicy.command_line())
        trainer = build_trainer(cfg, workdir / f"{arm}-{run_id}")
        recorder = RecordingCallback(trainer, store, run_id, run_cfg=cfg.run, heldout=None)
        trainer.add_callback(recorder)
    trainer.remove_callback(PrinterCallback)
    trainer.add_callback(clock)
    t0 = time.perf_counter()
    trainer.train()
    clock.starts.append(time.perf_counter())
    total = time.perf_counter() - t0
    result = {"intervals": clock.intervals()[1:], "total": total}
    if store is not None:
        result.update(
            capture=trainer.timings["capture"],
            rank=trainer.timings["rank_dynamics"],
            shaping=trainer.timings["shaping"],
            store=recorder.store_seconds,
            shares=[s["bonus_share"] for s in store.steps(run_id, ["bonus_share"])],
            capture_in_loss=trainer.capture_in_loss,
        )
        store.close()
    return result


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--quick", action="store_true", help="1 round x 3 steps, batch 16")
    p.add_argument("--rounds", type=int, default=6)
    p.add_argument("--steps", type=int, default=4, help="steps per arm per round")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    rounds, steps = (1, 3) if args.quick else (args.rounds, args.steps)
    cfg = config(args.quick, steps)
    torch.set_num_threads(cfg.run.torch_threads)
    results: dict[str, list[dict]] = {a: [] for a in ARMS}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(rounds):
            for arm in ARMS:
                results[arm].append(run_arm(arm, cfg, Path(tmp) / f"round{r}"))
    med = {a: statistics.median(sum((x["intervals"] for x in results[a]), [])) for a in ARMS}
    B = cfg.grpo.per_device_train_batch_size
    print(f"demo recipe, batch {B}, {rounds} round(s) x {steps} steps, warm-up step dropped")
    for a in ARMS:
        print(f"  {a:6s} median step {med[a]:.3f} s")
    print(f"verl / grpo  = {med['verl'] / med['grpo']:.3f}   (target <= 1.05)")
    print(f"grpo / plain = {med['grpo'] / med['plain']:.3f}   (target <= 1.15)")
    g, v = results["grpo"], results["verl"]
    where = "TRL's loss forward" if g[0]["capture_in_loss"] else "an extra no-grad forward"
    print(f"  capture runs in {where}")
    total = sum(x["total"] for x in g)
    extra = 0.0
    for part in ("capture", "rank", "store"):
        share = sum(x[part] for x in g) / total
        extra += share
        print(f"  grpo arm share of {part:8s}: {100 * share:.1f}%")
    shaping = sum(x["shaping"] for x in v) / sum(x["total"] for x in v)
    print(
        "from the timed components (robust to machine load): "
        f"grpo / plain ~ {1 / (1 - extra):.3f}, verl / grpo ~ {1 + shaping:.3f}"
    )
    shares = [s for x in results["verl"] for s in x["shares"] if s is not None]
    if shares:
        print(
            f"verl median bonus / |A| on shaped responses: {100 * statistics.median(shares):.1f}%"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
