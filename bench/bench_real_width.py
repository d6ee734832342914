"""VERL steps at a real model's width on the CPU: Qwen2.5-0.5B's shape (hidden 896, 151,936 ids,
14 heads / 2 KV heads, MLP 4,864) with 2 layers and random weights, a byte-level tokenizer that
covers all 151,936 ids (`real_shapes.byte_level_tokenizer`), LoRA, in float32 and in bfloat16.

Each dtype runs in its own process (so its peak memory is its own) through the product's path:
`load_policy` on the model folder, `build_trainer`, the recording callback into a real store;
capture in the loss forward, rank dynamics at D = 896, shaping (`verl`, the demo recipe's
shaping with a digit-share reward so that groups differ; the accuracy reward is 0 for random
weights). Printed per dtype: the steps' wall time and its split (generation, capture, rank
dynamics, shaping, store writes, the rest = TRL's loss forward/backward and optimizer), peak
resident memory, and what the store recorded.

    python bench/bench_real_width.py            # 2 steps per dtype, 8 responses of <= 48 tokens
    python bench/bench_real_width.py --quick    # 1 step, vocabulary 32,768 (a smoke run)
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from real_shapes import QWEN25_05B, decodes_every_id, digit_share, write_model  # noqa: E402

DTYPES = ("float32", "bfloat16")


def timed_generate(trainer, clock: dict) -> None:
    """Count the seconds spent in the policy's `generate` (TRL's rollout)."""
    model = trainer.accelerator.unwrap_model(trainer.model)
    inner = model.generate

    def generate(*args, **kwargs):
        t0 = time.perf_counter()
        try:
            return inner(*args, **kwargs)
        finally:
            clock["generation"] += time.perf_counter() - t0

    model.generate = generate


def child(folder: Path, dtype: str, steps: int, vocab: int, workdir: Path) -> dict:
    """One dtype: train `steps` VERL steps with LoRA; return the figures as a dict."""
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
    torch.set_num_threads(1)
    cfg = StudioConfig.load(
        recipe_path("demo-cpu"),
        [
            f"model.name_or_path={folder}", f"model.dtype={dtype}", "model.lora=true",
            "data.extra_rewards=[digit_share]", f"run.max_steps={steps}", "run.eval_every=0",
            "run.checkpoint_every=100000", "grpo.per_device_train_batch_size=8",
            "grpo.num_generations=8", "grpo.max_completion_length=48", "shaping.stride=8",
        ],
    )  # fmt: skip
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    store = Store(f"sqlite:///{workdir / f'{dtype}.db'}")
    run_id = submit(store, cfg, policy=AccessPolicy.command_line())
    trainer = build_trainer(cfg, workdir / f"{dtype}-{run_id}")
    tok = trainer.processing_class
    covers = decodes_every_id(tok, vocab)
    recorder = RecordingCallback(trainer, store, run_id, run_cfg=cfg.run, heldout=None)
    trainer.add_callback(recorder)
    trainer.remove_callback(PrinterCallback)
    starts: list[float] = []

    class Clock(TrainerCallback):
        def on_step_begin(self, *a, **k):
            starts.append(time.perf_counter())

    trainer.add_callback(Clock())
    clock = {"generation": 0.0}
    timed_generate(trainer, clock)
    t0 = time.perf_counter()
    trainer.train()
    total = time.perf_counter() - t0
    rows = [r for s in store.sample_steps(run_id) for r in store.samples(run_id, s)]
    steps_rec = store.steps(run_id)
    store.close()
    t = trainer.timings
    known = clock["generation"] + t["capture"] + t["rank_dynamics"] + t["shaping"]
    known += recorder.store_seconds
    return {
        "dtype": dtype,
        "param_dtype": str(next(trainer.model.parameters()).dtype).removeprefix("torch."),
        "hidden": trainer.backbone().config.hidden_size,
        "vocab": len(tok),
        "tokenizer_covers_vocab": covers,
        "steps": len(steps_rec),
        "total_s": total,
        "per_step_s": total / max(1, len(steps_rec)),
        "generation_s": clock["generation"],
        "capture_s": t["capture"],
        "rank_dynamics_s": t["rank_dynamics"],
        "shaping_s": t["shaping"],
        "store_s": recorder.store_seconds,
        "rest_s": total - known,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "rss_before_load_mib": rss0,
        "responses_recorded": len(rows),
        "curves_recorded": sum(len(r["curve"]) > 0 for r in rows),
        "er_finite": all(math.isfinite(r["er"]) and r["er"] > 0 for r in rows),
        "mean_er": sum(r["er"] for r in rows) / max(1, len(rows)),
        "shaped": sum(r["bonus"] > 0 for r in rows),
        "decoded_chars": sum(len(r["completion"]) for r in rows),
    }


def report(results: list[dict]) -> None:
    print(f"Qwen2.5-0.5B shape, 2 layers, random weights, LoRA; vocab {results[0]['vocab']:,}")
    cols = [
        ("per step", "per_step_s"), ("generation", "generation_s"), ("capture", "capture_s"),
        ("rank dyn.", "rank_dynamics_s"), ("shaping", "shaping_s"), ("store", "store_s"),
        ("rest", "rest_s"),
    ]  # fmt: skip
    print(f"{'dtype':9}" + "".join(f"{c:>11}" for c, _ in cols) + f"{'peak RSS':>11}")
    for r in results:
        n = max(1, r["steps"])
        cells = [r["per_step_s"]] + [r[k] / n for _, k in cols[1:]]
        print(
            f"{r['dtype']:9}"
            + "".join(f"{v:10.2f}s" for v in cells)
            + f"{r['peak_rss_mib']:8.0f} MiB"
        )
    for r in results:
        print(
            f"{r['dtype']}: D = {r['hidden']}, {r['steps']} steps, {r['responses_recorded']} "
            f"responses and {r['curves_recorded']} curves recorded, ER finite: {r['er_finite']} "
            f"(mean {r['mean_er']:.2f}), shaped {r['shaped']}, tokenizer decodes every id: "
            f"{r['tokenizer_covers_vocab']}, parameters {r['param_dtype']}"
        )


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--steps", type=int, default=2)
    p.add_argument("--child", nargs=3, metavar=("FOLDER", "DTYPE", "WORKDIR"))
    p.add_argument("--vocab", type=int, default=QWEN25_05B["vocab_size"])
    args = p.parse_args()
    if args.child:
        folder, dtype, workdir = args.child
        out = child(Path(folder), dtype, args.steps, args.vocab, Path(workdir))
        print("RESULT " + json.dumps(out))
        return 0
    steps, vocab = (1, 32768) if args.quick else (args.steps, args.vocab)
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for dtype in DTYPES:
            folder = Path(tmp) / f"model-{dtype}"
            write_model(folder, QWEN25_05B, layers=2, vocab_size=vocab, dtype=getattr(torch, dtype))
            cmd = [sys.executable, __file__, "--steps", str(steps), "--vocab", str(vocab)]
            cmd += ["--child", str(folder), dtype, tmp]
            proc = subprocess.run(cmd, capture_output=True, text=True)
            line = [x for x in proc.stdout.splitlines() if x.startswith("RESULT ")]
            if proc.returncode or not line:
                print(proc.stderr[-4000:], file=sys.stderr)
                return 1
            results.append(json.loads(line[-1].removeprefix("RESULT ")))
    report(results)
    bad = [r["dtype"] for r in results if not (r["er_finite"] and r["tokenizer_covers_vocab"])]
    bad += [r["dtype"] for r in results if r["steps"] != steps or not r["curves_recorded"]]
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
