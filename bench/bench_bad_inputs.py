"""Counts over the table of bad inputs (tests/bad_inputs.py): tried / clear / trace / wrongly
accepted / lost / unclear, and each row that is not clear.

    python bench/bench_bad_inputs.py [-v] [--quick]

Run it from another checkout (PYTHONPATH=<old tree>) to count an older version on the same
table; tests/test_bad_inputs.py asserts every row clear.
"""

from __future__ import annotations

import argparse
import collections
import logging
import os
import signal
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent
sys.path.append(str(HERE))  # after PYTHONPATH: an older engine/ given there wins
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")


class RowTimeout(BaseException):
    """A row still running after --row-timeout seconds (it was accepted and is training)."""


def _timeout(signum, frame):
    raise RowTimeout()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="print every row")
    parser.add_argument("--row-timeout", type=int, default=60, help="seconds per row")
    parser.add_argument(
        "--skip",
        nargs="*",
        default=[],
        help="commands not to run (an old version trains in-process what `train` accepts)",
    )
    parser.add_argument("--quick", action="store_true", help="one row per kind (make bench)")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGALRM, _timeout)
    logging.basicConfig(level=logging.WARNING, handlers=[logging.NullHandler()])  # rows capture
    from tests.bad_inputs import ROWS, app_functions, build_world, read_only, run_row

    rows = ROWS
    if args.quick:  # the first row of each kind
        rows = list({row[1]: row for row in reversed(ROWS)}.values())[::-1]
    counts: collections.Counter[str] = collections.Counter()
    with tempfile.TemporaryDirectory() as tmp:
        world = build_world(Path(tmp))
        store, fns = app_functions(world.root)
        with read_only(world.ro):
            for row_id, _, call, named in rows:
                if isinstance(call, list) and call[0] in args.skip:
                    counts["skipped"] += 1
                    print(f"{'skipped':<9} {row_id}")
                    continue
                signal.alarm(args.row_timeout)  # an old version may start training
                try:
                    result, seen = run_row(world, fns, call, named)
                except RowTimeout:
                    result, seen = "accepted", f"still running after {args.row_timeout} s"
                except Exception as exc:  # noqa: BLE001 - an old version may break the harness
                    result, seen = "trace", f"{type(exc).__name__}: {exc}"
                finally:
                    signal.alarm(0)
                counts[result] += 1
                if args.verbose or result != "clear":
                    print(f"{result:<9} {row_id:<28} {' '.join(seen.split())[:150]}")
        store.close()
    print(
        f"tried {len(rows)}: clear {counts['clear']}, trace {counts['trace']}, wrongly accepted "
        f"{counts['accepted']}, lost {counts['lost']}, unclear {counts['unclear']}"
        + (f", skipped {counts['skipped']}" if counts["skipped"] else "")
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
