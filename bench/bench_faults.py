"""kill -9 of the training process at random steps, many times over one run (the suite does 5).

    python bench/bench_faults.py [--trials 20] [--seed 14] [--quick]

One real run of the demo recipe (tiny settings, a checkpoint every step) under a worker; each
trial waits 1-2 steps past the last resume, kills the training process with SIGKILL, checks that
the run is interrupted naming the signal, that SQLite's integrity check passes, that no step up to
the last checkpoint is lost, and resumes it (same id, contiguous steps). Prints one line per trial
and the totals: trials ok / failed, steps recorded, seconds per trial.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

from engine.paths import resolve  # noqa: E402
from engine.storage import RunStatus, Store  # noqa: E402
from tests.test_faults import kill_9_trials  # noqa: E402
from tests.test_worker import integrity, real_trainer, running_worker, wait_until  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--seed", type=int, default=14)
    parser.add_argument("--quick", action="store_true", help="2 trials (make bench)")
    args = parser.parse_args()
    if args.quick:
        args.trials = 2
    with tempfile.TemporaryDirectory() as tmp:
        root = resolve(Path(tmp) / "home")
        with Store.open(root) as store:
            run_id = real_trainer(store, "run.max_steps=400", "run.checkpoint_every=1")
            t0 = time.perf_counter()
            with running_worker(store, root):
                records = kill_9_trials(store, root, run_id, args.trials, random.Random(args.seed))
                k = records[-1]["resumed_from"]
                wait_until(lambda: store.latest_step(run_id) > k, 300, "a step after the resume")
                store.request_cancel(run_id)
                wait_until(lambda: store.get_run(run_id).status.finished, 300, "the cancel")
            elapsed = time.perf_counter() - t0
            for r in records:
                print(f"trial {r['trial']:>2}: killed after step {r['killed_after']:>3}, "
                      f"resumed from checkpoint {r['resumed_from']:>3}")  # fmt: skip
            run = store.get_run(run_id)
            steps = [s["step"] for s in store.steps(run_id)]
            ok = (
                run.status is RunStatus.CANCELLED
                and steps == list(range(1, run.step + 1))
                and integrity(root) == "ok"
                and [r.id for r in store.list_runs()] == [run_id]
            )
    print(
        f"{len(records)} kill -9 trials: {len(records)} interrupted and resumed, integrity ok, "
        f"no recorded step lost, id unchanged; final run {'ok' if ok else 'NOT OK'} "
        f"({run.step} contiguous steps, attempt {run.attempt}); "
        f"{elapsed / max(1, len(records)):.1f} s per trial"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
