"""The training process's side of a run's lifecycle: it owns its status in the store.

    with RunLifecycle(store, run_id, heartbeat_s=5) as life:   # -> running, host/pid, environment
        for step in ...:
            ...
            if life.should_stop():          # cancel requested in the store, or SIGTERM
                save_checkpoint(...)
                raise RunCancelled(reason)  # -> cancelled, the reason (if any) as its error
    # normal exit -> completed; any other exception -> failed with the traceback's last lines

A background thread refreshes the heartbeat every `heartbeat_s` seconds and notices a cancel
requested from any host (or that the run was resumed as a newer attempt elsewhere); SIGTERM (a
local worker's cancel) sets the same stop flag, a second SIGTERM raises RunCancelled at once. A
stop on SIGTERM with no cancel requested in the store (the worker found the process hung, or the
system is shutting down) is recorded as interrupted, not cancelled: nobody asked for it. The
outcome is written only while the run is still this attempt's, so a resumed or deleted run is
never overwritten by a late writer. A run deleted under its process (RunGone from the store, or
the heartbeat finding no row) stops at the next step boundary without a checkpoint, logs why and
exits cleanly: nothing is left to record.
"""

from __future__ import annotations

import errno
import importlib.metadata
import logging
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import threading
import traceback
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any

from engine.runs.failure import last_exception_line, shorten
from engine.storage import RunGone, RunStatus, Store

log = logging.getLogger(__name__)

TRACEBACK_TAIL_LINES = 30
SIGTERM_NOT_CANCEL = (
    "stopped on SIGTERM without a cancel request (the worker found it hung, or the system is "
    "shutting down)"
)
PACKAGES = ("verl-studio", "torch", "transformers", "trl", "accelerate", "peft", "datasets")


class RunCancelled(Exception):
    """Raised by the trainer (after saving a checkpoint) when `should_stop()` said so."""


def git_commit(where: Path | None = None) -> str | None:
    """The commit of the source tree this package runs from, when it is a git checkout."""
    where = where or Path(__file__).resolve().parent
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=where,
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def environment(config: dict | None = None) -> dict[str, Any]:
    """What a run needs to be reproduced: package versions, host, python, git commit, seed."""
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return {
        "versions": versions,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "git_commit": git_commit(),
        "seed": ((config or {}).get("run") or {}).get("seed"),
        "argv": sys.argv,
    }


def traceback_tail(
    exc_type: type[BaseException], exc: BaseException, tb: TracebackType | None
) -> str:
    lines = "".join(traceback.format_exception(exc_type, exc, tb)).rstrip().splitlines()
    return "\n".join(lines[-TRACEBACK_TAIL_LINES:])


def error_summary(text: str | None, limit: int = 300) -> str:
    """One line of a stored error, for the page and the API: a traceback's final
    "Type: message" line, else the first line; at most `limit` characters, cut at a word
    (`engine.runs.failure.last_exception_line`, `shorten`).

    >>> error_summary('Traceback (most recent call last):\\n  File "/srv/x.py"\\nKeyError: 3')
    'KeyError: 3'
    >>> error_summary("killed by signal SIGKILL\\nmore")
    'killed by signal SIGKILL'
    """
    return shorten(last_exception_line(text), limit)


def enforce_save_total_limit(store: Store, run_id: int, limit: int) -> list[Path]:
    """Keep the newest `limit` checkpoints of a run: delete the others' rows, then their folders.

    The row goes first, so a crash in between leaves an orphan folder, never a row pointing at
    nothing. The newest checkpoint (the one a resume needs) is always kept. Returns the folders
    removed."""
    removed = []
    for row in store.prune_checkpoints(run_id, limit):
        path = Path(row["path"])
        try:
            if path.is_dir():
                shutil.rmtree(path)
            elif path.exists():
                path.unlink()
        except OSError as exc:
            log.warning("could not delete checkpoint %s of run %d: %s", path, run_id, exc)
            continue
        removed.append(path)
    return removed


def register_checkpoint(
    store: Store, run_id: int, step: int, path: str | Path, save_total_limit: int
) -> list[Path]:
    """Record a checkpoint written at `step` in `path`, then enforce save_total_limit; returns
    the folders removed."""
    store.add_checkpoint(run_id, step, path)
    return enforce_save_total_limit(store, run_id, save_total_limit)


class RunLifecycle:
    """Context manager marking a run running / completed / cancelled / failed (module docstring)."""

    def __init__(self, store: Store, run_id: int, *, heartbeat_s: float = 5.0):
        self.store = store
        self.run_id = run_id
        self.heartbeat_s = heartbeat_s
        self.attempt: int | None = None
        self.outcome: RunStatus | None = None
        self._stop = threading.Event()  # cancel seen (store or SIGTERM)
        self._done = threading.Event()  # the with-block ended: the heartbeat thread exits
        self._thread: threading.Thread | None = None
        self._previous_sigterm: Any = None
        self._sigterms = 0
        self._gone = False

    # ---- entering ---------------------------------------------------------------------------------

    def __enter__(self) -> RunLifecycle:
        run = self.store.get_run(self.run_id)
        if run is None:
            raise LookupError(f"no run {self.run_id}")
        run = self.store.mark_running(
            self.run_id,
            host=socket.gethostname(),
            pid=os.getpid(),
            environment=environment(run.config),
        )
        self.attempt = run.attempt
        if run.cancel_requested:
            self._stop.set()
        self._thread = threading.Thread(
            target=self._beat, name=f"heartbeat-run{self.run_id}", daemon=True
        )
        self._thread.start()
        self._install_sigterm()
        return self

    def _install_sigterm(self) -> None:
        if threading.current_thread() is threading.main_thread():
            self._previous_sigterm = signal.signal(signal.SIGTERM, self._on_sigterm)

    def _on_sigterm(self, signum: int, frame: FrameType | None) -> None:
        self._sigterms += 1
        self._stop.set()
        if self._sigterms > 1:
            raise RunCancelled("second SIGTERM: stopping without a checkpoint")
        log.warning("SIGTERM: stopping at the next step boundary")

    def _beat(self) -> None:
        while not self._done.wait(self.heartbeat_s):
            try:
                if self.store.heartbeat(self.run_id, self.attempt):
                    self._stop.set()
            except Exception as exc:  # a locked or unreachable database must not kill training
                log.warning("heartbeat of run %d failed: %s", self.run_id, exc)

    # ---- while running ------------------------------------------------------------------------------

    def should_stop(self) -> bool:
        """True once a cancel was requested (store flag from any host, or SIGTERM), or the run
        was deleted (then `gone()` is true too)."""
        if not self._stop.is_set() and self.store.cancel_requested(self.run_id):
            self._stop.set()
        return self._stop.is_set()

    def gone(self) -> bool:
        """Whether the run's row was deleted under this process (it must not write any more)."""
        if not self._gone and self._stop.is_set():
            try:
                self._gone = not self.store.run_exists(self.run_id)
            except Exception:  # an unreachable database: not proof that the run is gone
                log.exception("could not check whether run %d still exists", self.run_id)
        return self._gone

    def event(self, message: str, level: str = "info") -> None:
        self.store.add_event(self.run_id, message, level)

    # ---- leaving ------------------------------------------------------------------------------------

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        self._done.set()
        if self._thread is not None:
            self._thread.join()
        if self._previous_sigterm is not None:
            signal.signal(signal.SIGTERM, self._previous_sigterm)
        if (exc_type is not None and issubclass(exc_type, RunGone)) or self.gone():
            log.warning(
                "run %d was deleted while this process trained it: stopped, nothing more is "
                "recorded",
                self.run_id,
            )
            self.outcome = None
            return exc_type is None or issubclass(exc_type, RunGone | RunCancelled)
        status, error, swallow = self._outcome(exc_type, exc, tb)
        self.outcome = status
        try:
            self.store.finish_run(
                self.run_id,
                status,
                error=error,
                attempt=self.attempt,
                from_statuses=(RunStatus.RUNNING, RunStatus.INTERRUPTED),
            )
        except Exception:
            log.exception("could not record the outcome %s of run %d", status, self.run_id)
        return swallow

    def _cancel_was_requested(self) -> bool:
        try:
            return self.store.cancel_requested(self.run_id)
        except Exception:  # the database is unreachable: call it the cancel it most likely was
            log.exception("could not read the cancel flag of run %d", self.run_id)
            return True

    def _outcome(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> tuple[RunStatus, str | None, bool]:
        """(status, error text, whether to swallow the exception)."""
        if exc_type is None:
            return RunStatus.COMPLETED, None, False
        if issubclass(exc_type, RunCancelled):
            if self._sigterms and not self._cancel_was_requested():
                return RunStatus.INTERRUPTED, SIGTERM_NOT_CANCEL, True
            return RunStatus.CANCELLED, str(exc) or None, True  # the reason, when one was given
        if issubclass(exc_type, KeyboardInterrupt) and self._stop.is_set():
            return RunStatus.CANCELLED, None, False
        if issubclass(exc_type, SystemExit) and exc.code in (0, None):
            return RunStatus.COMPLETED, None, False
        # the whole trace to this process's log (the run's log file); one line to the store
        log.error("run %d failed", self.run_id, exc_info=(exc_type, exc, tb))
        full = no_space_left(exc)
        if full is not None:
            return RunStatus.FAILED, full, False
        line = " ".join(str(exc).split())
        return (
            RunStatus.FAILED,
            f"{exc_type.__name__}: {line}"[:2000] if line else exc_type.__name__,
            False,
        )


def no_space_left(exc: BaseException | None) -> str | None:
    """One line when `exc` (or what caused it) is a full disk, naming the file; else None."""
    for _ in range(8):
        if exc is None:
            return None
        if getattr(exc, "errno", None) == errno.ENOSPC or "no space left" in str(exc).lower():
            where = getattr(exc, "filename", None)
            at = f" writing {where}" if where else ""
            return f"no space left on device{at}: free some space there, then resume the run"
        exc = exc.__cause__ or exc.__context__
    return None
