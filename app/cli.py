"""The `verl-studio` console script: the engine's commands plus `serve`.

`serve` imports the dashboard (and Gradio) only when it runs, so the engine's quick commands
(`verl-studio runs`, `export`) stay quick.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading

from engine.cli import build_parser, run

log = logging.getLogger(__name__)


def add_serve(sub) -> None:
    p = sub.add_parser("serve", help="start the dashboard (with an embedded worker)")
    p.set_defaults(handler="app.cli:serve")
    p.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=7860, help="port (0 = a free one)")
    p.add_argument("--data-dir", help="data root (default: $VERL_STUDIO_HOME or the user data dir)")
    p.add_argument("--db", help="database path or SQLAlchemy URL")
    p.add_argument("--no-worker", action="store_true", help="do not start the embedded worker")


def serve(args: argparse.Namespace) -> int:
    """`verl-studio serve`: the app plus an embedded worker until SIGINT/SIGTERM; then the worker
    stops (training processes keep running; a later worker adopts them)."""
    from app.main import TITLE, data_location, launch, start_worker
    from engine.paths import resolve
    from engine.storage import Store

    root = resolve(args.data_dir, args.db)
    store = Store.open(root)
    stop = threading.Event()
    worker = None if args.no_worker else start_worker(root, stop)
    app, url = launch(store, root, host=args.host, port=args.port)
    print(f"{TITLE} is running at {url}  ({data_location(root)})", flush=True)
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    stop.wait()
    log.info("shutting down")
    app.close()
    if worker is not None:
        worker.join(timeout=30)
    store.close()
    return 0


def main(argv: list[str] | None = None) -> int:
    return run(build_parser(extra=add_serve).parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
