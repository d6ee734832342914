"""Dashboard costs, as ratios measured in one run (targets from issue 6), plus the milliseconds.

Seeds a fresh SQLite store with a 200-step and a 2,000-step run, each step with R responses
(64; 16 with --quick) carrying token ids, per-token entropy/log-prob and a rank curve. Then:

  tick vs redraw      a timer tick with no new step vs a live redraw         target >= 20x cheaper
  refresh 2000 / 200  live monitor redraw (figures built and serialised) after
                      one new step landed, what the timer triggers           target <= 2x
  first draw          the same on a server that has not read the run yet (opening it);
                      re-render: again with nothing new (x axis or smoothing changed)
  inspector 1999 / 1  trace inspector open (query, decode, shade, figures)   target <= 1.5x
  link restore        a reload of a link naming the 2,000-step run and one of its responses:
                      the query parsed, both pages' pickers and views filled (app.url_state;
                      the URL is written on user actions only, so the tick is unchanged)
  budgets             refresh and first draw <= 100 ms, inspector <= 200 ms on this machine

    python bench/bench_dashboard.py [--quick] [--repeats N]
"""

from __future__ import annotations

import argparse
import logging
import statistics
import tempfile
import time
from collections.abc import Callable

import numpy as np
from tqdm import tqdm

from app import plots, queries, url_state
from app.pages import inspector, monitor
from app.pages.common import AppContext, TokenizerCache
from engine.config import StudioConfig
from engine.paths import resolve
from engine.resources import recipe_path
from engine.runs import service
from engine.runs.admission import AccessPolicy
from engine.storage import Store
from engine.storage.schema import STEP_METRICS

log = logging.getLogger("bench_dashboard")

TOKENS = 40  # response length (the demo's ~37 tokens)
STRIDE = 4
GROUP = 8  # responses per prompt group


def sample(rng: np.random.Generator, group: int, idx: int) -> dict:
    positions = np.arange(STRIDE, TOKENS, STRIDE)
    return {
        "group_idx": group,
        "sample_idx": idx,
        "prompt": "Q: 23+48-17=?\nA:",
        "completion": "\nStep 1: 23+48=71.\nStep 2: 71-17=54.\nAnswer: 54",
        "token_ids": rng.integers(0, 270, TOKENS).astype(np.int32),
        "token_entropy": rng.random(TOKENS),
        "token_logprob": -rng.random(TOKENS),
        "reward": float(idx % 2),
        "rewards": {"accuracy": float(idx % 2)},
        "correct": bool(idx % 2),
        "advantage": 0.5,
        "advantage_shaped": 0.55,
        "bonus": 0.05,
        "er": 3.0,
        "erv": 0.1,
        "era": 0.05,
        "entropy": 0.3,
        "mean_logprob": -0.4,
        "length": TOKENS,
        "curve": np.cumsum(rng.random(len(positions))) + 1,
        "curve_stride": STRIDE,
        "curve_positions": positions,
        "curve_offset": 0,
    }


def step_row(rng: np.random.Generator, k: int) -> dict:
    """Every typed column a panel draws and the mean of each of two reward functions."""
    row = {c: float(rng.random()) for c in plots.panel_columns() if c in STEP_METRICS}
    row.update(step=k, wall_time=1.7e9 + k, tokens=k * 2560)
    row["reward_means"] = {f: float(rng.random()) for f in ("accuracy", "format")}
    return row


def seed_run(store: Store, n_steps: int, responses: int, rng: np.random.Generator) -> int:
    # the demo recipe (the defaults' 1536-token completions do not fit the demo model)
    cfg = StudioConfig.load(recipe_path("demo-cpu"), [f"run.max_steps={n_steps}"])
    run_id = service.submit(store, cfg, policy=AccessPolicy.command_line(), name=f"{n_steps} steps")
    for k in tqdm(range(1, n_steps + 1), desc=f"seeding {n_steps} steps", leave=False):
        rows = [sample(rng, i // GROUP, i % GROUP) for i in range(responses)]
        store.log_step(run_id, step_row(rng, k), rows)
    return run_id


def median_ms(fn: Callable[[], object], repeats: int, setup: Callable[[], object] = tuple) -> float:
    """Median milliseconds of `fn()`, each call after an untimed `setup()`."""
    setup()
    fn()  # warm caches (imports, tokenizer, SQLite pages)
    times = []
    for _ in range(repeats):
        setup()
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


class LiveRun:
    """A seeded run that keeps training: `land()` logs its next step (what a redraw follows)."""

    def __init__(self, store: Store, run_id: int, responses: int, rng: np.random.Generator):
        self.store, self.run_id, self.responses, self.rng = store, run_id, responses, rng
        self.step = store.latest_step(run_id) or 0

    def land(self) -> None:
        self.step += 1
        rows = [sample(self.rng, i // GROUP, i % GROUP) for i in range(self.responses)]
        self.store.log_step(self.run_id, step_row(self.rng, self.step), rows)


def redraw_serialised(store: Store, label: str) -> None:
    out = monitor.redraw(store, [label], "step", 0.0)  # the default view: smoothing off
    for fig in out[: len(plots.PANELS)]:
        fig.to_json()  # what gr.Plot's postprocess does


def first_draw_ms(db_url: str, label: str, repeats: int) -> float:
    """A redraw by a server that has not read the run yet (a fresh Store: no cached steps)."""
    stores: list[Store] = []

    def fresh() -> None:
        for old in stores:
            old.close()
        stores[:] = [Store(db_url)]

    ms = median_ms(lambda: redraw_serialised(stores[0], label), repeats, fresh)
    stores[0].close()
    return ms


def inspect(ctx: AppContext, run_id: int, step: int) -> None:
    out = inspector.pick(ctx, run_id, step, 0)
    out[5].to_json()
    out[6].to_json()


def restore_link(ctx: AppContext, run_id: int) -> None:
    """What a reload of a shared link costs beyond the redraw it triggers."""
    query = f"?tab=inspector&runs={run_id}&run={run_id}&step=1999&group=0&response=3"
    state = url_state.parse(query, ("monitor", "inspector"))
    monitor.place(ctx.store, state)
    out = inspector.place(ctx, state)
    out[6].to_json()
    out[7].to_json()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--quick", action="store_true", help="16 responses per step, fewer repeats")
    p.add_argument("--repeats", type=int, help="timed repeats per measurement (median)")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    responses = 16 if args.quick else 64
    repeats = args.repeats or (5 if args.quick else 15)
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        root = resolve(tmp)
        with Store(root.db_url) as store:
            small = seed_run(store, 200, responses, rng)
            big = seed_run(store, 2000, responses, rng)
            ctx = AppContext(store=store, root=root, tokenizers=TokenizerCache())
            label_small = queries.run_label(store.get_run(small))
            label_big = queries.run_label(store.get_run(big))
            tick = median_ms(lambda: monitor.tick(store, [label_big]), repeats * 4)
            cold_big = first_draw_ms(root.db_url, label_big, repeats)
            cold_small = first_draw_ms(root.db_url, label_small, repeats)
            rerender = median_ms(lambda: redraw_serialised(store, label_big), repeats)
            live = [LiveRun(store, i, responses, rng) for i in (big, small)]
            redraw_big, redraw_small = (
                median_ms(lambda lab=lab: redraw_serialised(store, lab), repeats, run.land)
                for run, lab in zip(live, (label_big, label_small), strict=True)
            )
            insp_last = median_ms(lambda: inspect(ctx, big, 1999), repeats)
            insp_first = median_ms(lambda: inspect(ctx, big, 1), repeats)
            link = median_ms(lambda: restore_link(ctx, big), repeats)
    rows = [
        ("tick (no new step)", f"{tick:.2f} ms", ""),
        ("redraw 2000 steps", f"{redraw_big:.1f} ms", "budget <= 100 ms (a step landed)"),
        ("redraw 200 steps", f"{redraw_small:.1f} ms", ""),
        ("first draw 2000 steps", f"{cold_big:.1f} ms", "budget <= 100 ms (run opened)"),
        ("first draw 200 steps", f"{cold_small:.1f} ms", ""),
        ("re-render 2000 steps", f"{rerender:.1f} ms", "(nothing new)"),
        ("inspector step 1999", f"{insp_last:.1f} ms", "budget <= 200 ms"),
        ("inspector step 1", f"{insp_first:.1f} ms", ""),
        ("link restore", f"{link:.1f} ms", "+ the redraw it triggers"),
        ("redraw / tick", f"{redraw_big / tick:.1f}x", "target >= 20x"),
        ("redraw 2000 / 200", f"{redraw_big / redraw_small:.2f}x", "target <= 2x"),
        ("first draw 2000 / 200", f"{cold_big / cold_small:.2f}x", ""),
        ("inspector 1999 / 1", f"{insp_last / insp_first:.2f}x", "target <= 1.5x"),
    ]
    print(f"bench_dashboard ({responses} responses/step, median of {repeats})")
    for name, value, target in rows:
        print(f"  {name:<22} {value:>10}  {target}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
