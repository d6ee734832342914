"""The `verl-studio` console script: the engine's commands plus `serve`."""

from __future__ import annotations

import sys

from engine.cli import build_parser, run


def add_serve(sub) -> None:
    p = sub.add_parser("serve", help="start the dashboard (with an embedded worker)")
    p.set_defaults(handler="app.main:serve_cli")
    p.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=7860, help="port (0 = a free one)")
    p.add_argument("--data-dir", help="data root (default: $VERL_STUDIO_HOME or the user data dir)")
    p.add_argument("--db", help="database path or SQLAlchemy URL")
    p.add_argument("--no-worker", action="store_true", help="do not start the embedded worker")


def main(argv: list[str] | None = None) -> int:
    return run(build_parser(extra=add_serve).parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
