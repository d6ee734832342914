"""Run-store budgets, as ratios measured in one run (not timed tests).

    python bench/bench_store.py [--quick]

A sample row is a realistic response: a 300-character completion, 96 token ids with their
per-token entropies and log-probs, and a 40-point rank curve. Printed:

1. ingestion rows/s through `Store.log_step` (one transaction per step: the step row and its 64
   sample rows) vs a raw `sqlite3.executemany` of the same rows into the same schema, encoding
   included on both sides                                                    target >= 0.5x
2. reading one run's step series (all steps, all typed columns) and one step's 64 samples with
   curves, with 10 runs in the database vs with 1                           target <= 1.5x
and the milliseconds of each read (best of interleaved repeats), as budgets for the dashboard.
"""

from __future__ import annotations

import argparse
import logging
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engine.config import StudioConfig  # noqa: E402
from engine.runs import service  # noqa: E402
from engine.runs.admission import AccessPolicy  # noqa: E402
from engine.storage import Store  # noqa: E402
from engine.storage.codec import pack  # noqa: E402
from engine.storage.samples import SAMPLE_ARRAYS, SAMPLE_COLUMNS  # noqa: E402
from engine.storage.schema import STEP_METRICS  # noqa: E402

log = logging.getLogger("bench_store")

GROUPS, PER_GROUP = 8, 8  # 64 responses per step
T, K = 96, 40  # tokens per response, curve points


def make_samples(rng: np.random.Generator) -> list[dict]:
    return [
        {
            "group_idx": g,
            "sample_idx": i,
            "prompt": "Compute 12 + 34 * 5 - 6. Show your work.",
            "completion": "".join(rng.choice(list("0123456789 +-*=abcdefgh"), 300)),
            "token_ids": rng.integers(0, 32_000, T),
            "token_entropy": rng.random(T) * 4,
            "token_logprob": -rng.random(T) * 6,
            "reward": float(i % 2),
            "rewards": {"accuracy": float(i % 2)},
            "correct": bool(i % 2),
            "advantage": rng.normal(),
            "advantage_shaped": rng.normal(),
            "bonus": rng.random() * 0.1,
            "er": 20 + rng.random(),
            "erv": rng.random(),
            "era": rng.normal(),
            "entropy": rng.random(),
            "mean_logprob": -rng.random(),
            "length": T,
            "curve": rng.random(K) * 30,
            "curve_stride": 4,
            "curve_positions": np.arange(1, K + 1) * 4,
            "curve_offset": 0,
        }
        for g in range(GROUPS)
        for i in range(PER_GROUP)
    ]


def make_step(step: int, rng: np.random.Generator) -> dict:
    return {"step": step, **{m: float(rng.random()) for m in STEP_METRICS}, "payload": {"lr": 1e-6}}


def fill(store: Store, steps: int, sample_every: int, seed: int) -> tuple[int, int, float]:
    """Log one run; returns (run id, rows written, seconds)."""
    rng = np.random.default_rng(seed)
    samples = make_samples(rng)
    cfg = StudioConfig().with_overrides([f"run.max_steps={steps}"])
    run_id = service.submit(store, cfg, policy=AccessPolicy.command_line(), name="bench")
    rows, t0 = 0, time.perf_counter()
    for step in range(1, steps + 1):
        batch = samples if step % sample_every == 0 else []
        store.log_step(run_id, make_step(step, rng), batch)
        rows += 1 + len(batch)
    return run_id, rows, time.perf_counter() - t0


def raw_fill(path: Path, steps: int, sample_every: int, seed: int) -> tuple[int, float]:
    """The same rows through sqlite3.executemany into the same schema (same pragmas)."""
    Store(f"sqlite:///{path}").close()  # creates the schema
    rng = np.random.default_rng(seed)
    samples = make_samples(rng)
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute(
        "INSERT INTO runs (name, notes, kind, algorithm, status, config, created_at, step, "
        "total_steps, cancel_requested, attempt) VALUES ('raw', '', 'train', 'verl', 'queued', "
        "'{}', '2026-01-01', 0, 0, 0, 1)"
    )
    run_id = conn.execute("SELECT max(id) FROM runs").fetchone()[0]
    step_cols = ["run_id", "step", *STEP_METRICS, "payload"]
    sample_cols = ["run_id", "step", *SAMPLE_COLUMNS]
    step_sql = (
        f"INSERT INTO steps ({', '.join(step_cols)}) VALUES ({', '.join('?' * len(step_cols))})"
    )
    sample_sql = (
        f"INSERT INTO samples ({', '.join(sample_cols)}) "
        f"VALUES ({', '.join('?' * len(sample_cols))})"
    )
    import json

    rows, t0 = 0, time.perf_counter()
    for step in range(1, steps + 1):
        s = make_step(step, rng)
        batch = samples if step % sample_every == 0 else []
        conn.execute("BEGIN IMMEDIATE")
        conn.execute(
            step_sql,
            [run_id, step, *(s[m] for m in STEP_METRICS), json.dumps(s["payload"])],
        )
        conn.executemany(
            sample_sql,
            [
                [
                    run_id,
                    step,
                    *(
                        pack(x.get(c), SAMPLE_ARRAYS[c])
                        if c in SAMPLE_ARRAYS
                        else json.dumps(x[c])
                        if c == "rewards"
                        else x.get(c)
                        for c in SAMPLE_COLUMNS
                    ),
                ]
                for x in batch
            ],
        )
        conn.execute("UPDATE runs SET step = ? WHERE id = ?", (step, run_id))
        conn.execute("COMMIT")
        rows += 1 + len(batch)
    conn.close()
    return rows, time.perf_counter() - t0


def read_ms(store: Store, run_id: int, step: int, repeats: int) -> tuple[float, float]:
    """Median ms of (the whole step series, one step's 64 samples with curves)."""
    series, samples = [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        rows = store.steps(run_id)
        t1 = time.perf_counter()
        got = store.samples(run_id, step)
        t2 = time.perf_counter()
        assert rows and len(got) == GROUPS * PER_GROUP
        series.append((t1 - t0) * 1e3)
        samples.append((t2 - t1) * 1e3)
    return statistics.median(series), statistics.median(samples)


def ingestion_ratio(tmp: Path, steps: int) -> float:
    """Rows/s through Store.log_step over rows/s of a raw sqlite3.executemany, best of two each
    (alternated: the machine is shared); logs both rates."""
    store_rates, raw_rates = [], []
    for rep in range(2):
        with Store(f"sqlite:///{tmp / f'ingest{rep}.db'}") as store:
            _, n, secs = fill(store, steps, 1, seed=0)
        store_rates.append(n / secs)
        n_raw, secs_raw = raw_fill(tmp / f"raw{rep}.db", steps, 1, seed=0)
        assert n_raw == n
        raw_rates.append(n_raw / secs_raw)
    ratio = max(store_rates) / max(raw_rates)
    log.info(
        "ingestion: store %.0f rows/s, raw sqlite3.executemany %.0f rows/s -> %.2fx "
        "(target >= 0.5x)  [%d steps x 64 samples, best of 2]",
        max(store_rates),
        max(raw_rates),
        ratio,
        steps,
    )
    return ratio


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="fewer steps (CI smoke)")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger("engine").setLevel(logging.WARNING)
    steps = 400 if args.quick else 2000
    sample_every = 10  # responses recorded every 10th step (64 each)
    ingest_steps = 200 if args.quick else 1000
    runs, repeats = 10, 11 if args.quick else 21
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        ratio = ingestion_ratio(tmp, ingest_steps)
        stores, first = {}, {}
        for n_runs in (1, runs):
            stores[n_runs] = Store(f"sqlite:///{tmp / f'read{n_runs}.db'}")
            ids = [fill(stores[n_runs], steps, sample_every, seed=r)[0] for r in range(n_runs)]
            first[n_runs] = ids[0]
        timings = {1: [], runs: []}
        for _ in range(repeats):  # interleaved, so load on the machine hits both alike
            for n_runs in (1, runs):
                timings[n_runs].append(read_ms(stores[n_runs], first[n_runs], sample_every * 3, 1))
        for store in stores.values():
            store.close()
        s1, m1 = (min(t[i] for t in timings[1]) for i in (0, 1))  # best: the machine is shared
        sn, mn = (min(t[i] for t in timings[runs]) for i in (0, 1))
        log.info(
            "read %d-step series: %.1f ms with 1 run, %.1f ms with %d runs -> %.2fx (target <= 1.5x)",
            steps,
            s1,
            sn,
            runs,
            sn / s1,
        )
        log.info(
            "read one step's 64 samples with curves: %.2f ms with 1 run, %.2f ms with %d runs "
            "-> %.2fx (target <= 1.5x)",
            m1,
            mn,
            runs,
            mn / m1,
        )
        ok = ratio >= 0.5 and sn / s1 <= 1.5 and mn / m1 <= 1.5
        log.info("budgets %s", "met" if ok else "MISSED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
