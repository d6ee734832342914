"""The `verl-studio` command line (engine side; `app.cli` adds `serve`): every argparse table,
handler and `print` of the engine lives in this package; library modules log and return values.

- `engine.cli.runs`: quick commands on the run store (submit, runs, cancel, resume, delete,
  worker, export); they import neither TRL nor Gradio;
- `engine.cli.jobs`: commands that load models (train, evaluate, rank --demo, build-demo-model);
- `engine.cli.space`: `deploy` to a Hugging Face Space.

Each subcommand names its handler as "module:function"; the module is imported only when that
subcommand runs, so `verl-studio runs` does not pay for importing TRL. `python -m engine.cli`
runs the same parser (the worker starts `train` and `evaluate` that way).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Callable
from typing import NoReturn

log = logging.getLogger("engine.cli")
VERBOSE_HELP = "debug logging, and the trace of an error"


def _data_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data-dir", help="data root (default: $VERL_STUDIO_HOME or the user data dir)")
    p.add_argument("--db", help="database path or SQLAlchemy URL (default: <data-dir>/studio.db)")


def _config_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", help="run config YAML (a file or a shipped recipe name)")
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config field, e.g. shaping.kappa=3 (repeatable)",
    )


def count_at_least(least: int) -> Callable[[str], int]:
    """An argparse type: an integer >= `least`."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
        if value < least:
            raise argparse.ArgumentTypeError(f"must be at least {least}, got {value}")
        return value

    return parse


def seconds(text: str) -> float:
    """An argparse type: a finite number of seconds > 0 (0 or less would spin a core)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a number of seconds > 0, got {text}")
    return value


def _add(sub, name: str, handler: str, help: str) -> argparse.ArgumentParser:
    p = sub.add_parser(name, help=help, description=help)
    p.set_defaults(handler=handler)
    return p


def add_engine_commands(sub) -> None:
    p = _add(
        sub,
        "rank",
        "engine.cli.jobs:rank",
        "ER / ERV / ERA of hidden states; --demo runs the built-in example",
    )
    p.add_argument(
        "--demo", action="store_true", help="run the built-in demo on the embedded model"
    )
    p.add_argument(
        "--out", default="rank-demo.html", help="where to save the rank-curve plot (.html or .png)"
    )
    p.add_argument("--stride", type=int, default=4, help="curve stride s in tokens")

    p = _add(
        sub,
        "build-demo-model",
        "engine.cli.jobs:build_demo_model",
        "build the embedded tiny reasoner from a fixed seed",
    )
    p.add_argument("--out", help="output folder (default: the shipped assets folder)")
    p.add_argument(
        "--max-steps", type=int, help="supervised warm-start steps (default: the shipped recipe)"
    )

    p = _add(
        sub,
        "train",
        "engine.cli.jobs:train",
        "run one training run headless, recording to the store",
    )
    _config_options(p)
    p.add_argument(
        "--run-id", type=int, help="run a queued run from the store (its config is read there)"
    )
    _data_options(p)

    p = _add(sub, "submit", "engine.cli.runs:submit", "queue a run; prints its id")
    _config_options(p)
    p.add_argument("--name", help="run name")
    _data_options(p)

    p = _add(sub, "runs", "engine.cli.runs:runs", "list runs")
    _data_options(p)

    p = _add(sub, "cancel", "engine.cli.runs:cancel", "cancel a queued or running run")
    p.add_argument("run_id", type=int)
    _data_options(p)

    p = _add(
        sub,
        "resume",
        "engine.cli.runs:resume",
        "re-queue an interrupted, failed or cancelled run from its last checkpoint",
    )
    p.add_argument("run_id", type=int)
    _data_options(p)

    p = _add(sub, "delete", "engine.cli.runs:delete", "delete a run and its records")
    p.add_argument("run_id", type=int)
    p.add_argument(
        "--keep-checkpoints", action="store_true", help="leave the checkpoint folder on disk"
    )
    _data_options(p)

    p = _add(sub, "worker", "engine.cli.runs:worker", "claim and run queued runs")
    p.add_argument("--concurrency", type=count_at_least(1), default=1, help="runs at once")
    p.add_argument("--poll-s", type=seconds, default=2.0, help="seconds between queue polls (> 0)")
    _data_options(p)

    p = _add(sub, "export", "engine.cli.runs:export", "export a run's steps, samples or evals")
    p.add_argument("run_id", type=int)
    p.add_argument("--format", choices=("csv", "parquet", "jsonl"), default="csv")
    p.add_argument("--what", choices=("steps", "samples", "evals"), default="steps")
    p.add_argument(
        "--out", help="output file (default: <data-dir>/exports/run<ID>-<what>.<format>)"
    )
    _data_options(p)

    p = _add(
        sub,
        "evaluate",
        "engine.cli.jobs:evaluate",
        "pass@k of a run's checkpoints (runs an eval job)",
    )
    p.add_argument(
        "--run-id",
        type=int,
        required=True,
        help="the eval run to execute (queued by the app or submit)",
    )
    _data_options(p)

    p = _add(
        sub,
        "deploy",
        "engine.cli.space:deploy",
        "deploy this checkout as a Hugging Face Docker Space (huggingface_hub; needs a write token)",
    )
    p.add_argument(
        "--space", required=True, metavar="USER/NAME", help="the Space to create or update"
    )
    p.add_argument("--private", action="store_true", help="create the Space private")
    p.add_argument(
        "--bucket",
        metavar="USER/NAME",
        help="a storage bucket for database snapshots, mounted at /data (runs survive restarts)",
    )
    p.add_argument("--no-wait", action="store_true", help="return once uploaded")
    p.add_argument(
        "--timeout", type=float, default=1800.0, help="seconds to wait for RUNNING (default 1800)"
    )


class Parser(argparse.ArgumentParser):
    """argparse with its usage errors on one line (exit 2), like every other CLI error."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser(extra: Callable | None = None) -> argparse.ArgumentParser:
    parser = Parser(
        prog="verl-studio", description="VERL Studio: GRPO / VERL runs and rank dynamics"
    )
    parser.add_argument("-v", "--verbose", action="store_true", help=VERBOSE_HELP)
    sub = parser.add_subparsers(dest="command", required=True)
    add_engine_commands(sub)
    if extra:
        extra(sub)
    for command in sub.choices.values():  # `verl-studio submit ... -v` works too
        command.add_argument(
            "-v", "--verbose", action="store_true", default=argparse.SUPPRESS, help=VERBOSE_HELP
        )
    return parser


def run(args: argparse.Namespace) -> int:
    """Run the chosen handler. Any error ends as ONE line on stderr naming the command, with a
    non-zero exit (2 for a refused config, 1 otherwise); `-v` adds the trace."""
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    module, func = args.handler.split(":")
    try:
        handler = getattr(importlib.import_module(module), func)
        return int(handler(args) or 0)
    except KeyboardInterrupt:
        print(f"verl-studio {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        if args.verbose:
            log.exception("verl-studio %s failed", args.command)
        hint = "" if args.verbose or _expected(exc) else " (run with -v for the trace)"
        print(f"verl-studio {args.command}: error: {error_line(exc)}{hint}", file=sys.stderr)
        return 2 if _is_config_error(exc) else 1


def _is_config_error(exc: BaseException) -> bool:
    from engine.config import ConfigError

    return isinstance(exc, ConfigError)


def _expected(exc: BaseException) -> bool:
    """An error the engine raised on purpose, with a message for the user (no class name)."""
    return type(exc).__module__.startswith("engine.") or isinstance(exc, OSError)


def error_line(exc: BaseException) -> str:
    """One line for the user: the message (an OSError as "reason: file"), whitespace folded;
    the class name in front of errors nobody raised on purpose.

    >>> error_line(FileNotFoundError(2, "No such file or directory", "/x/y.csv"))
    'No such file or directory: /x/y.csv'
    >>> error_line(ZeroDivisionError("division by zero"))
    'ZeroDivisionError: division by zero'
    """
    if isinstance(exc, OSError) and exc.strerror:
        text = f"{exc.strerror}: {exc.filename}" if exc.filename else exc.strerror
    else:
        text = str(exc.args[0]) if isinstance(exc, KeyError) and exc.args else str(exc)
    text = " ".join(text.split()) or type(exc).__name__
    return text if _expected(exc) else f"{type(exc).__name__}: {text}"


def main(argv: list[str] | None = None) -> int:
    return run(build_parser().parse_args(argv))
