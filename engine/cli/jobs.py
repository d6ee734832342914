"""Commands that load models: train, evaluate, rank --demo, build-demo-model.

Each imports its engine part (and so torch / transformers / TRL) only when it runs.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

log = logging.getLogger(__name__)


def train(args: argparse.Namespace) -> int:
    """`verl-studio train --config C [--set K=V ...]` or `--run-id ID` (what the worker starts)."""
    from engine.paths import resolve
    from engine.storage import Store
    from engine.training.train import config_from_args, main, quiet_transformers

    quiet_transformers()
    root = resolve(args.data_dir, args.db)
    with Store(root.db_url) as store:
        cfg = config_from_args(args, store)  # ConfigError: one line, exit 2 (engine.cli.run)
    return main(cfg, root=root, run_id=args.run_id)


def evaluate(args: argparse.Namespace) -> int:
    """`verl-studio evaluate --run-id ID [--data-dir] [--db]`."""
    from engine.evaluation.jobs import run_eval
    from engine.paths import resolve
    from engine.storage import Store

    root = resolve(args.data_dir, args.db)
    with Store(root.db_url) as store:
        run_eval(store, args.run_id)  # a failure inside is recorded as the run's, then raised
    return 0


def rank(args: argparse.Namespace) -> int:
    """`verl-studio rank --demo [--out FILE] [--stride S]`: prints the table, saves the plot."""
    from engine.studio.rank_demo import HTML, PNG, curve_figure, run_demo, save_figure, table

    if not args.demo:
        log.error("nothing to measure: run `verl-studio rank --demo`")
        return 2
    if args.stride < 1:
        log.error("--stride must be >= 1")
        return 2
    out = Path(args.out)
    if out.suffix.lower() not in (HTML, PNG):
        log.error("--out must end in %s or %s", HTML, PNG)
        return 2
    result = run_demo(args.stride)
    print(table(result))
    try:
        save_figure(curve_figure(result, args.stride), out)
    except ValueError as exc:
        log.error("%s", exc)
        return 1
    print(f"rank curves saved to {out}")
    return 0


def build_demo_model(args: argparse.Namespace) -> int:
    """`verl-studio build-demo-model [--out DIR] [--max-steps N]`, with a progress bar."""
    from tqdm import tqdm

    from engine.models.demo import DemoRecipe
    from engine.models.demo import build_demo_model as build
    from engine.models.loading import embedded_model_dir

    recipe = DemoRecipe()
    steps = recipe.sft_steps if args.max_steps is None else args.max_steps
    if steps < 0:
        log.error("--max-steps must be >= 0")
        return 2
    out = Path(args.out) if args.out else embedded_model_dir()
    with tqdm(total=steps, desc="warm start", unit="step") as bar:

        def progress(step: int, loss: float) -> None:
            bar.update(1)
            if step % 25 == 0:
                bar.set_postfix(loss=f"{loss:.3f}")

        info = build(out, max_steps=steps, recipe=recipe, progress=progress)
    log.info(
        "built %s: %d params, %d steps, loss %.4f, held-out pass@1 %.1f%%",
        out,
        info["parameters"],
        steps,
        info["final_loss"] or float("nan"),
        100 * info["heldout_pass_at_1"],
    )
    return 0
