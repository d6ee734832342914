"""The `verl-studio` console script: the engine's commands plus `serve`.

`serve` imports the dashboard (and Gradio) only when it runs, so the engine's quick commands
(`verl-studio runs`, `export`) stay quick.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import signal
import sys
import threading
from pathlib import Path

from engine.cli import build_parser, run

log = logging.getLogger(__name__)


TOKEN_ENV = "VERL_STUDIO_TOKEN"


def add_serve(sub) -> None:
    p = sub.add_parser("serve", help="start the dashboard (with an embedded worker)")
    p.set_defaults(handler="app.cli:serve")
    p.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=7860, help="port (0 = a free one)")
    p.add_argument("--data-dir", help="data root (default: $VERL_STUDIO_HOME or the user data dir)")
    p.add_argument("--db", help="database path or SQLAlchemy URL")
    p.add_argument("--no-worker", action="store_true", help="do not start the embedded worker")
    add_security_options(p)


def add_security_options(p) -> None:
    """Who may write, what configs from the page and the API may name, and their limits."""
    from engine.runs.admission import Limits

    g = p.add_argument_group("security (see README: Security)")
    g.add_argument(
        "--require-token",
        action="store_true",
        help="ask for the operator token even on loopback (shared hosts: every user reaches "
        "127.0.0.1); always on when --host is not a loopback address",
    )
    g.add_argument(
        "--token-file",
        help="file holding the operator token (default: $VERL_STUDIO_TOKEN, else a fresh token "
        "printed at start)",
    )
    g.add_argument(
        "--allow-path",
        action="append",
        default=[],
        metavar="DIR",
        help="a folder whose datasets and models the page and the API may name (repeatable)",
    )
    g.add_argument(
        "--allow-reward-module",
        action="append",
        default=[],
        metavar="MODULE",
        help="a module whose functions the page and the API may name as module:function "
        "rewards, with its submodules (repeatable)",
    )
    for f in dataclasses.fields(Limits):
        g.add_argument(
            f.metadata["flag"],
            dest=f"limit_{f.name}",
            type=type(f.default),
            default=f.default,
            help=f"{f.metadata['help']} (default {f.default:g})",
        )


def operator_token(args: argparse.Namespace) -> tuple[str | None, bool]:
    """(the operator token, or None when writes need none; whether it was generated here).

    Required when --host is not loopback or with --require-token; read from --token-file, else
    $VERL_STUDIO_TOKEN, else a fresh one (printed once at start, like Jupyter's)."""
    from app.auth import new_token
    from app.main import is_loopback

    if not (args.require_token or not is_loopback(args.host)):
        return None, False
    if args.token_file:
        token = Path(args.token_file).expanduser().read_text(encoding="utf-8").strip()
    else:
        token = os.environ.get(TOKEN_ENV, "").strip()
    return (token, False) if token else (new_token(), True)


def policy_from_args(args: argparse.Namespace, root):
    """The network AccessPolicy from serve's --allow-path, --allow-reward-module and limits."""
    from engine.runs.admission import AccessPolicy, Limits

    limits = Limits(
        **{f.name: getattr(args, f"limit_{f.name}") for f in dataclasses.fields(Limits)}
    )
    return AccessPolicy.network(
        root,
        allow_paths=tuple(args.allow_path or ()),
        allow_reward_modules=tuple(args.allow_reward_module or ()),
        limits=limits,
    )


def open_space(root, settings, stop: threading.Event):
    """A Hugging Face Space's store, write guard, SpaceAccess and snapshot keeper: the newest
    bucket snapshot restored to local disk, the demo runs seeded into an empty store, and a
    guard that lets the owner's login (or the admin secret, when set) write."""
    from app.auth import WriteGuard
    from app.spaces import SpaceAccess
    from engine import spaces
    from engine.storage import Store

    spaces.prepare_storage(root, settings)
    store = Store.open(root)
    spaces.seed_if_empty(store)
    keeper = spaces.snapshot_keeper(store, settings, stop)
    space = SpaceAccess.from_settings(settings)
    guard = WriteGuard(settings.admin_token or None, owner=space.is_owner, refused=space.refusal())
    return store, guard, space, keeper


def serve(args: argparse.Namespace) -> int:
    """`verl-studio serve`: the app plus an embedded worker until SIGINT/SIGTERM; then the worker
    stops its runs cleanly (each saves a checkpoint and is marked interrupted, resumable); a
    server killed outright leaves them running, and a later worker adopts them.

    On a Hugging Face Space (SPACE_ID set; app.spaces): SYSTEM=spaces before any Blocks exist,
    then `open_space`; writes need the owner's login or the admin secret."""
    from app.auth import WriteGuard
    from app.main import TITLE, data_location, launch, start_worker
    from app.spaces import enter_spaces_mode
    from engine.config import ConfigError
    from engine.paths import resolve
    from engine.storage import Store

    try:
        settings = enter_spaces_mode()
    except ConfigError as exc:
        print(f"serve: {'; '.join(f'{v}: {m}' for v, m in exc.errors)}", file=sys.stderr)
        return 2
    root = resolve(args.data_dir, args.db)
    policy = policy_from_args(args, root)
    stop = threading.Event()
    space = keeper = None
    if settings.on_spaces:
        store, guard, space, keeper = open_space(root, settings, stop)
        print(f"Spaces mode: {space.refusal().split(': ', 1)[1]}", flush=True)
    else:
        token, generated = operator_token(args)
        store, guard = Store.open(root), WriteGuard(token)
        if token is None:
            print("Write actions need no token (loopback; see serve --require-token).", flush=True)
        elif generated:
            print(f"Operator token (write actions ask for it): {token}", flush=True)
        else:
            print("Write actions need the operator token (--token-file or $VERL_STUDIO_TOKEN).")
    worker = None if args.no_worker else start_worker(root, stop)
    app, url = launch(
        store, root, host=args.host, port=args.port, policy=policy, guard=guard, space=space
    )
    print(f"{TITLE} is running at {url}  ({data_location(root)})", flush=True)
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    stop.wait()
    log.info("shutting down")
    app.close()
    if worker is not None:
        worker.join(timeout=120)  # the runs' grace (cancel_grace_s) and a margin
    if keeper is not None:
        keeper.join(timeout=60)  # its last snapshot
    store.close()
    return 0


def main(argv: list[str] | None = None) -> int:
    return run(build_parser(extra=add_serve).parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
