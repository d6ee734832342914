"""The run service: every operation that creates, changes or removes a run, with one set of rules.

The CLI, every dashboard page and API endpoint, the worker, `train` and eval jobs call these;
nothing else calls `Store.create_run` or `Store.delete_run` (tests/test_architecture.py keeps
it so). Each operation either does what it says or raises `RunError` with one line that names
the run and what to do instead; nothing half-done is left behind.

Rules, in one place:
- a run's default name is `<algorithm>-<model folder or id>-seed<seed>` (eval jobs: "eval of
  <source run name>");
- a queued or running run is never deleted: cancel it first (its process checkpoints and stops);
  the state is re-checked in the transaction that deletes;
- deleting removes the run's checkpoint folder unless it is kept;
- an export goes to `<data root>/exports/run<ID>-<what>.<format>` unless a path is given;
- every config that enters (submit, duplicate, submit_eval) and every name or note passes
  `engine.runs.admission` under the caller's `AccessPolicy` (the CLI's, or the network's for
  the dashboard and the API): the policy is a required argument, so no entry can skip it.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from engine.runs.admission import AccessPolicy, check_eval, check_submission, check_texts
from engine.storage import RunInfo, RunKind, RunStatus
from engine.storage.schema import FINISHED

if TYPE_CHECKING:
    from engine.config import StudioConfig
    from engine.evaluation.jobs import EvalConfig
    from engine.paths import DataRoot
    from engine.storage import Store

ACTIVE = (RunStatus.QUEUED, RunStatus.RUNNING)


class RunError(ValueError):
    """A run operation that was refused; the message is one line for the user."""


def default_name(cfg: StudioConfig) -> str:
    """`cfg.run.name`, or `<algorithm>-<model>-seed<seed>`.

    >>> from engine.config import StudioConfig
    >>> default_name(StudioConfig())
    'verl-embedded-seed0'
    """
    model = Path(cfg.model.name_or_path.rstrip("/")).name or cfg.model.name_or_path
    return cfg.run.name or f"{cfg.run.algorithm}-{model}-seed{cfg.run.seed}"


def get(store: Store, run_id: int) -> RunInfo:
    """The run, or RunError("no run N")."""
    run = store.get_run(int(run_id))
    if run is None:
        raise RunError(f"no run {run_id}")
    return run


def submit(
    store: Store,
    cfg: StudioConfig,
    *,
    policy: AccessPolicy,
    name: str = "",
    notes: str = "",
    parent_id: int | None = None,
    claimed_by: str | None = None,
    origin: str = "",
) -> int:
    """Queue a validated training config as a new run; returns its id.

    `claimed_by` (a host name) creates it already running there, for a process that trains it
    directly (`verl-studio train --config`), so no worker claims it. `origin` ("the dashboard",
    "the API", ...) is recorded as the run's first event. `policy` decides what the config may
    name (`engine.runs.admission.check_submission`: ConfigError when it names too much).
    """
    check_texts(policy, name=name, notes=notes)
    cfg = check_submission(cfg, policy)
    run_id = store.create_run(
        cfg.to_dict(),
        name=name or default_name(cfg),
        algorithm=cfg.run.algorithm,
        total_steps=cfg.run.max_steps,
        notes=notes,
        parent_id=parent_id,
        claimed_by=claimed_by,
    )
    if origin:
        store.add_event(run_id, f"queued from {origin}")
    return run_id


COPY_SUFFIX = re.compile(r" \(copy(?: (\d+))?\)$")


def copy_name(name: str, max_chars: int) -> str:
    """The name of a run's copy: numbered, not stacked, and within `max_chars`.

    >>> copy_name("demo", 200), copy_name("demo (copy)", 200), copy_name("demo (copy 2)", 200)
    ('demo (copy)', 'demo (copy 2)', 'demo (copy 3)')
    >>> copy_name("x" * 200, 200)[-12:]
    'xxxxx (copy)'
    """
    match = COPY_SUFFIX.search(name)
    base = name[: match.start()] if match else name
    number = int(match.group(1) or 1) + 1 if match else 1
    suffix = " (copy)" if number == 1 else f" (copy {number})"
    return base[: max(0, max_chars - len(suffix))] + suffix


def duplicate(store: Store, run_id: int, *, policy: AccessPolicy) -> int:
    """Queue a copy of a run (same config and notes, named by `copy_name`); returns the new id.

    The copy is a new submission: its config passes `policy` as if typed in (ConfigError)."""
    from engine.config import StudioConfig

    run = get(store, run_id)
    if run.kind != RunKind.TRAIN:
        raise RunError(f"run {run.id} is an {run.kind} job: duplicate its source run instead")
    cfg = check_submission(StudioConfig.from_dict(run.config), policy)
    new_id = store.create_run(
        cfg.to_dict(),
        name=copy_name(run.name, policy.limits.max_name_chars),
        algorithm=run.algorithm,
        total_steps=run.total_steps,
        notes=run.notes,
        parent_id=run.id,
    )
    store.add_event(new_id, f"queued as a copy of run {run.id}")
    return new_id


def rename(store: Store, run_id: int, *, name: str, notes: str, policy: AccessPolicy) -> None:
    """Set a run's name (blank keeps the old one) and notes, within the policy's text limits."""
    run = get(store, run_id)
    name = name.strip() or run.name
    check_texts(policy, name=name, notes=notes)
    store.update_run(run.id, name=name, notes=notes)


def cancel(store: Store, run_id: int) -> RunStatus:
    """Cancel a queued run at once, or ask a running one to stop at its next step (with a
    checkpoint); returns the status afterwards (a finished run's status, unchanged)."""
    try:
        return store.request_cancel(int(run_id))
    except LookupError as exc:
        raise RunError(str(exc)) from None


def resume(store: Store, run_id: int) -> int:
    """Queue a failed, cancelled or interrupted run again; returns the checkpoint step it resumes
    from (0 = the start). Steps recorded after that checkpoint are discarded."""
    run = get(store, run_id)
    step = store.requeue_for_resume(run.id)
    if step is None:
        raise RunError(
            f"run {run.id} is {run.status.value}: only failed, cancelled or interrupted runs resume"
        )
    return step


def check_deletable(run: RunInfo) -> None:
    """RunError unless `run` may be deleted now: a queued or running run is cancelled first."""
    if run.status in ACTIVE:
        raise RunError(f"run {run.id} is {run.status.value}: cancel it before deleting")


def delete(store: Store, root: DataRoot, run_id: int, *, keep_checkpoints: bool = False) -> None:
    """Delete a run and its records; its checkpoint folder too unless `keep_checkpoints`.

    A queued or running run is refused (`check_deletable`): cancel it first. The state is
    re-checked in the transaction that deletes, so a run a worker claimed meanwhile stays.
    """
    run = get(store, run_id)
    check_deletable(run)
    if not store.delete_run(run.id, only_if=FINISHED):
        check_deletable(get(store, run.id))  # a worker claimed it since the check above
    folder = root.run_checkpoints(run.id)
    if not keep_checkpoints and folder.exists():
        shutil.rmtree(folder, ignore_errors=True)


def export_path(root: DataRoot, run_id: int, what: str, fmt: str) -> Path:
    """Where an export goes by default: `<root>/exports/run<ID>-<what>.<format>`."""
    return root.exports / f"run{run_id}-{what}.{fmt}"


def export(
    store: Store,
    root: DataRoot,
    run_id: int,
    what: str,
    fmt: str,
    out: Path | None = None,
    progress: bool = False,
) -> tuple[Path, int]:
    """Write a run's steps, samples or evals (engine.storage.export); returns (file, rows)."""
    from engine.storage.export import export as write_rows

    run = get(store, run_id)
    path = out or export_path(root, run.id, what, fmt)
    return path, write_rows(store, run.id, what, fmt, path, progress=progress)


def submit_eval(store: Store, cfg: EvalConfig, *, policy: AccessPolicy, name: str = "") -> int:
    """Queue an eval job (the worker executes it); returns its run id. Its model and dataset
    pass `policy` (`engine.runs.admission.check_eval`)."""
    from engine.config import ConfigError
    from engine.evaluation.jobs import EVAL_SECTION

    errors = [(f"eval.{p}", m) for p, m in cfg.check()]
    if errors:
        raise ConfigError(errors)
    check_texts(policy, name=name)
    cfg = check_eval(cfg, policy)
    algorithm, total = "grpo", 1
    if cfg.source_run_id is not None:
        src = store.get_run(cfg.source_run_id)
        if src is None:
            raise ConfigError([("eval.source_run_id", f"no run {cfg.source_run_id}")])
        algorithm = src.algorithm
        name = name or f"eval of {src.name or f'run {src.id}'}"
        steps = cfg.checkpoint_steps or store.checkpoints(cfg.source_run_id)
        total = len(steps) + int(cfg.include_base)
    return store.create_run(
        {EVAL_SECTION: cfg.to_dict()},
        name=name or f"eval of {cfg.model}",
        algorithm=algorithm,
        kind=RunKind.EVAL,
        total_steps=max(1, total),
        parent_id=cfg.source_run_id,
    )


def export_runs(
    store: Store, run_ids: list[int], path: Path, *, sample_steps: int | None = None
) -> Path:
    """Write finished runs to a runs bundle (engine.storage.bundle); samples of at most
    `sample_steps` evenly spaced steps per run. RunError for an unknown or unfinished run."""
    from engine.storage.bundle import BundleError, write_bundle

    try:
        return write_bundle(store, run_ids, path, sample_steps=sample_steps)
    except BundleError as exc:
        raise RunError(str(exc)) from None


def import_runs(store: Store, path: Path, *, note: str = "") -> list[int]:
    """Add every run of a runs bundle as new runs (fresh ids); returns their ids.
    RunError (one line) for a file that is not a bundle."""
    from engine.storage.bundle import BundleError, read_bundle

    try:
        return read_bundle(store, path, note=note)
    except BundleError as exc:
        raise RunError(str(exc)) from None
