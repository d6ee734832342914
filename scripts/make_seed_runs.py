"""Write assets/seed-runs.jsonl.gz: the finished demo runs a Space shows on its first visit.

Trains two short real runs of the demo recipe (VERL and GRPO, same seed and data) with
`verl-studio train` in a scratch data root, then bundles them (every step, eval and event;
responses of a few evenly spaced steps) through the run service. Never run during an image build.

    .venv/bin/python scripts/make_seed_runs.py [--steps 60] [--sample-steps 12]
    .venv/bin/python scripts/make_seed_runs.py --data-dir DIR --runs 1 2   # bundle existing runs
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from engine.paths import resolve  # noqa: E402
from engine.runs import service  # noqa: E402
from engine.storage import Store  # noqa: E402

LIMIT_BYTES = 5 * 1024 * 1024


def train(data_dir: str, algorithm: str, steps: int) -> None:
    subprocess.run(
        [
            str(Path(sys.executable).with_name("verl-studio")),
            "train",
            "--config",
            "demo-cpu",
            "--data-dir",
            data_dir,
            *("--set", f"run.algorithm={algorithm}", "--set", f"run.max_steps={steps}"),
            *(
                "--set",
                f"run.eval_every={max(1, steps // 3)}",
                "--set",
                f"run.name=demo-{algorithm}",
            ),
            *("--set", f"run.checkpoint_every={steps}", "--set", "run.save_total_limit=1"),
        ],
        check=True,
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=60, help="steps per run")
    ap.add_argument("--sample-steps", type=int, default=30, help="steps whose responses are kept")
    ap.add_argument("--data-dir", help="bundle runs already in this data root (with --runs)")
    ap.add_argument("--runs", type=int, nargs="*", help="run ids to bundle (with --data-dir)")
    ap.add_argument("--out", default=str(REPO / "assets" / "seed-runs.jsonl.gz"))
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        data_dir = args.data_dir or scratch
        if not args.data_dir:
            for algorithm in ("verl", "grpo"):
                train(data_dir, algorithm, args.steps)
        store = Store.open(resolve(data_dir))
        ids = args.runs or [r.id for r in reversed(store.list_runs())]
        out = service.export_runs(store, ids, Path(args.out), sample_steps=args.sample_steps)
        store.close()
    size = out.stat().st_size
    print(f"{out}: runs {ids}, {size / 1e6:.2f} MB")
    return 0 if size < LIMIT_BYTES else 1


if __name__ == "__main__":
    sys.exit(main())
