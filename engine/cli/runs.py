"""Quick commands on the run store: submit, runs, cancel, resume, delete, worker, export.

They go through the run service (`engine.runs.service`) and import neither TRL nor Gradio, so
`verl-studio runs` answers at once (tests/test_cli.py checks `sys.modules`).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import logging
import signal
import threading
from pathlib import Path

from engine.paths import DataRoot, resolve
from engine.runs import service
from engine.storage import RunStatus, Store

log = logging.getLogger(__name__)


def _open(args: argparse.Namespace) -> tuple[DataRoot, Store]:
    root = resolve(getattr(args, "data_dir", None), getattr(args, "db", None))
    return root, Store.open(root)


def submit(args: argparse.Namespace) -> int:
    """`verl-studio submit [--config C] [--set K=V ...] [--name N]`: prints the new run's id."""
    from engine.config import ConfigError, read_config
    from engine.resources import recipe_path
    from engine.runs.admission import AccessPolicy, review_submission

    if not args.config:  # all defaults fit no shipped model: never what was meant
        raise ConfigError([("config", "give --config (a recipe name or a YAML file)")])
    policy = AccessPolicy.command_line()  # the user's own shell: trusted
    data = read_config(recipe_path(args.config), list(args.overrides or []))
    cfg, errors = review_submission(data, policy)  # every problem at once, as the form
    if cfg is None:
        raise ConfigError(errors)
    _, store = _open(args)
    with store:
        run_id = service.submit(
            store,
            cfg,
            policy=policy,
            name=args.name or "",
            origin="the command line",
        )
    print(run_id)
    return 0


def _age(when: dt.datetime | None) -> str:
    return when.astimezone().strftime("%Y-%m-%d %H:%M") if when else "-"


def runs(args: argparse.Namespace) -> int:
    """`verl-studio runs`: one line per run (and the last line of a failed run's error)."""
    _, store = _open(args)
    with store:
        listed = store.list_runs()
    header = f"{'id':>5}  {'name':<28} {'kind':<5} {'algo':<5} {'status':<11} {'step':>11} {'try':>3}  created"
    print(header)
    for r in listed:
        progress = f"{r.step}/{r.total_steps}"
        print(
            f"{r.id:>5}  {r.name[:28]:<28} {r.kind:<5} {r.algorithm:<5} {r.status.value:<11} "
            f"{progress:>11} {r.attempt:>3}  {_age(r.created_at)}"
        )
        if r.error and r.status in (RunStatus.FAILED, RunStatus.INTERRUPTED):
            print(f"{'':>7}{r.error.strip().splitlines()[-1][:90]}")
    return 0


def cancel(args: argparse.Namespace) -> int:
    """`verl-studio cancel ID`."""
    _, store = _open(args)
    with store:
        status = service.cancel(store, args.run_id)
    if status is RunStatus.CANCELLED:
        print(f"run {args.run_id} cancelled")
    elif status is RunStatus.RUNNING:
        print(f"run {args.run_id}: cancel requested; it stops at its next step with a checkpoint")
    else:
        print(f"run {args.run_id} is already {status.value}")
    return 0


def resume(args: argparse.Namespace) -> int:
    """`verl-studio resume ID`."""
    _, store = _open(args)
    with store:
        k = service.resume(store, args.run_id)
    print(f"run {args.run_id} queued again, resuming from step {k}")
    return 0


def delete(args: argparse.Namespace) -> int:
    """`verl-studio delete ID [--keep-checkpoints]`."""
    root, store = _open(args)
    with store:
        service.delete(store, root, args.run_id, keep_checkpoints=args.keep_checkpoints)
    print(f"run {args.run_id} deleted" + (" (checkpoints kept)" if args.keep_checkpoints else ""))
    return 0


def worker(args: argparse.Namespace) -> int:
    """`verl-studio worker [--concurrency N] [--poll-s S]`: until SIGINT/SIGTERM."""
    from engine.runs.worker import Worker, WorkerSettings

    root, store = _open(args)
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    settings = WorkerSettings(concurrency=args.concurrency, poll_s=args.poll_s)
    with store, contextlib.suppress(KeyboardInterrupt):
        Worker(store, root, settings, stop=stop).run()
    return 0


def export(args: argparse.Namespace) -> int:
    """`verl-studio export ID [--format F] [--what W] [--out FILE]`: prints the file written."""
    root = resolve(args.data_dir, args.db)
    with Store.open(root) as store:
        out, n = service.export(
            store,
            root,
            args.run_id,
            args.what,
            args.format,
            out=Path(args.out) if args.out else None,
            progress=True,
        )
    log.info("wrote %d %s rows of run %d", n, args.what, args.run_id)
    print(out)
    return 0
