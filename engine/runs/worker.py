"""The run queue: a worker claims queued runs and runs each as its own process (its CLI: engine.cli.runs).

A `Worker` loop (a thread in the app, or `verl-studio worker`) does, every `poll_s` seconds:

    reap      a child that exited without writing an outcome is marked: killed by a signal it
              did not send -> interrupted (naming the signal); an exit code -> failed
    cancel    a run with cancel_requested gets SIGTERM, then SIGKILL after cancel_grace_s
    hung      a watched process that is alive but whose heartbeat is older than stale_after_s
              (while this worker itself was awake) -> interrupted with the reason, and its
              process group gets SIGTERM, then SIGKILL after cancel_grace_s. Until the child's
              own lifecycle starts (imports), the worker heart-beats for it, for at most
              start_timeout_s: a child stuck before then is hung too
    lost      a running run not watched here whose pid on this host is gone, or whose heartbeat
              is older than stale_after_s, -> interrupted with the reason
    adopt     a running run on this host whose process is alive (a worker restart) is watched,
              not restarted
    start     claim queued runs (a conditional UPDATE checked by row count: two workers never
              take the same run) up to `concurrency`, each started as
              `python -m engine.cli train|evaluate --run-id ID --data-dir ROOT` with the
              store's URL in VERL_STUDIO_DB (off the command line, which every user of the host
              can read), in its own process session, under `accelerate launch` when it asks for
              several processes

The training process owns its status (engine.runs.lifecycle); the worker only writes an outcome for a
process that could not. Children outlive the worker, and a restarted worker adopts them.

A suspended machine stops heartbeats and the worker alike. So that a laptop waking up does not
kill its own runs, a watched process counts as hung only once this worker has been awake (ticking
without a gap longer than poll_s + stale_after_s) for stale_after_s without seeing a heartbeat.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from engine.paths import DB_ENV, DataRoot
from engine.storage import RunInfo, RunKind, RunStatus, Store
from engine.storage.schema import utcnow

log = logging.getLogger(__name__)

LOG_TAIL_LINES = 20
_LIVE = (RunStatus.RUNNING, RunStatus.INTERRUPTED)  # a watched run another worker marked lost


@dataclass
class WorkerSettings:
    concurrency: int = 1  # runs at once; 1 keeps a 2-core machine usable
    poll_s: float = 2.0  # seconds between queue polls
    stale_after_s: float = 30.0  # a running run with an older heartbeat is interrupted
    cancel_grace_s: float = 60.0  # SIGKILL this long after a SIGTERM (cancel or hung process)
    start_timeout_s: float = 300.0  # a child must start its lifecycle (past imports) within this
    stop_runs_on_exit: bool = False  # on stop: SIGTERM its runs (checkpoint, interrupted), wait

    def __post_init__(self) -> None:
        """ValueError naming the setting: a poll of 0 s or less would spin a core."""
        if self.concurrency < 0:
            raise ValueError(f"worker concurrency must be >= 0, got {self.concurrency}")
        for name in ("poll_s", "stale_after_s", "cancel_grace_s", "start_timeout_s"):
            value = getattr(self, name)
            if not 0 < value < math.inf:
                raise ValueError(f"worker {name} must be a number of seconds > 0, got {value}")


@dataclass
class _Job:
    """A training process this worker watches: its child, or one adopted after a restart."""

    run_id: int
    attempt: int
    pid: int
    popen: subprocess.Popen | None = None  # None when adopted
    log_path: Path | None = None
    log_file: IO[bytes] | None = None
    spawned_at: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))
    term_sent_at: float | None = None  # time.monotonic() of the SIGTERM (cancel or hung)
    killed: bool = False
    hung: str | None = None  # why it was interrupted, when the SIGTERM was for a stale heartbeat

    def exit_code(self) -> int | None:
        """The child's return code once it exited; for an adopted process, 0 once it is gone."""
        if self.popen is not None:
            return self.popen.poll()
        return None if pid_alive(self.pid) else 0

    def close(self) -> None:
        if self.log_file is not None:
            self.log_file.close()


def pid_alive(pid: int) -> bool:
    """Whether a process exists and is not a zombie (Linux /proc; elsewhere kill(pid, 0))."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[-1].split()[0] not in ("Z", "X")


def signal_process(pid: int, signum: int) -> None:
    """Signal a process's whole group when it leads one (runs start in their own session)."""
    try:
        if os.getpgid(pid) == pid:
            os.killpg(pid, signum)
        else:
            os.kill(pid, signum)
    except ProcessLookupError:
        pass


def _started(run: RunInfo, job: _Job) -> bool:
    """The job's process has started its own lifecycle (it heart-beats for itself)."""
    return run.started_at is not None and run.started_at >= job.spawned_at


def signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


def command_for(run: RunInfo, root: DataRoot, python: str) -> list[str]:
    """The command line that executes a claimed run (the store's URL goes in the environment)."""
    action = "evaluate" if run.kind == RunKind.EVAL else "train"
    entry = [
        "-m",
        "engine.cli",
        action,
        "--run-id",
        str(run.id),
        "--data-dir",
        str(root.root),
    ]
    processes = int((run.config.get("run") or {}).get("num_processes", 1) or 1)
    if processes > 1 and action == "train":
        launch = [
            "-m",
            "accelerate.commands.launch",
            # the multi-process launcher (torch.distributed.run) on CPUs too, where it runs gloo:
            # without the flag, accelerate starts a single process on a machine with < 2 GPUs
            "--multi_gpu",
            "--num_processes",
            str(processes),
            "--num_machines",
            "1",
            "--mixed_precision",
            "no",  # the trainer picks its dtype from the run config
            "--dynamo_backend",
            "no",
        ]
        return [python, *launch, *entry]
    return [python, *entry]


def _log_tail(path: Path | None) -> str:
    if path is None or not path.is_file():
        return ""
    with path.open("rb") as f:
        f.seek(max(0, path.stat().st_size - 16384))
        lines = f.read().decode(errors="replace").splitlines()
    return "\n".join(lines[-LOG_TAIL_LINES:])


class Worker:
    """Claims, starts and watches runs until `stop` is set (module docstring)."""

    def __init__(
        self,
        store: Store,
        root: DataRoot,
        settings: WorkerSettings | None = None,
        *,
        stop: threading.Event | None = None,
        python: str = sys.executable,
    ):
        self.store = store
        self.root = root
        self.settings = settings or WorkerSettings()
        self.stop = stop or threading.Event()
        self.python = python
        self.host = socket.gethostname()
        self.jobs: dict[int, _Job] = {}
        self._awake_since = utcnow()  # since when this worker has ticked without a long gap
        self._last_tick: dt.datetime | None = None

    def run(self) -> None:
        """Poll until `stop` is set. Children keep running (a later worker adopts them), unless
        `stop_runs_on_exit`: then they are stopped cleanly first (stop_runs)."""
        log.info(
            "worker on %s: concurrency %d, polling every %.1f s",
            self.host,
            self.settings.concurrency,
            self.settings.poll_s,
        )
        while not self.stop.is_set():
            self.tick()
            self.stop.wait(self.settings.poll_s)
        if self.settings.stop_runs_on_exit and self.jobs:
            self.stop_runs()
        for job in self.jobs.values():
            job.close()
        log.info("worker stopped; %d run(s) keep running", len(self.jobs))

    def stop_runs(self) -> None:
        """A clean shutdown (serve got SIGTERM): SIGTERM every watched run, so each saves a
        checkpoint at its next step and records itself interrupted (resumable); wait for them
        up to cancel_grace_s, then record what the survivors could not."""
        for job in self.jobs.values():
            if job.term_sent_at is None:
                self._terminate(job, "the server is shutting down")
        deadline = time.monotonic() + self.settings.cancel_grace_s
        while self.jobs and time.monotonic() < deadline:
            self.reap()
            time.sleep(0.2)
        if self.jobs:
            log.warning(
                "%d run(s) did not stop within %.0f s", len(self.jobs), self.settings.cancel_grace_s
            )

    def tick(self) -> None:
        """One pass: reap, cancel, stop hung processes, mark lost runs, adopt, start queued."""
        self._note_awake()
        for phase in (
            self.reap,
            self.signal_cancels,
            self.stop_hung,
            self.mark_lost,
            self.adopt,
            self.start_queued,
        ):
            try:
                phase()
            except Exception:  # a busy or unreachable database: try again next poll
                log.exception("worker %s failed; retrying next poll", phase.__name__)

    def _note_awake(self) -> None:
        """Restart the awake window after a gap between ticks (a suspended machine or worker)."""
        now = utcnow()
        gap = self.settings.poll_s + self.settings.stale_after_s
        if self._last_tick is not None and (now - self._last_tick).total_seconds() > gap:
            log.info("worker was not ticking for a while: heartbeats get a fresh window")
            self._awake_since = now
        self._last_tick = now

    # ---- phases -------------------------------------------------------------------------------------

    def reap(self) -> None:
        for run_id, job in list(self.jobs.items()):
            code = job.exit_code()
            run = self.store.get_run(run_id)
            if code is None:
                age = (utcnow() - job.spawned_at).total_seconds()
                starting = job.popen is not None and run is not None and not _started(run, job)
                if starting and age < self.settings.start_timeout_s:
                    self.store.heartbeat(run_id, job.attempt)  # still importing: vouch for it
                continue
            del self.jobs[run_id]
            job.close()
            if run is None or run.status != RunStatus.RUNNING or run.attempt != job.attempt:
                continue
            status, reason = self._death(job, code)
            if self.store.finish_run(run_id, status, error=reason, attempt=job.attempt):
                log.warning("run %d %s: %s", run_id, status.value, reason)

    def _death(self, job: _Job, code: int) -> tuple[RunStatus, str]:
        """Status and reason of a process that exited without recording an outcome."""
        if job.hung is not None:
            how = "SIGKILL" if job.killed else "SIGTERM"
            return RunStatus.INTERRUPTED, f"{job.hung}; stopped by {how}"
        if job.term_sent_at is not None:
            how = "SIGKILL" if job.killed else "SIGTERM"
            return RunStatus.CANCELLED, f"stopped by {how} after a cancel request"
        if job.popen is None:
            return (
                RunStatus.INTERRUPTED,
                f"process {job.pid} on {self.host} is gone (adopted: its exit status is unknown)",
            )
        if code < 0:
            name = signal_name(-code)
            hint = " (kill -9 or the out-of-memory killer)" if -code == signal.SIGKILL else ""
            return RunStatus.INTERRUPTED, f"killed by signal {name}{hint}"
        tail = _log_tail(job.log_path)
        where = "; see the run's log" if job.log_path else ""
        what = f"exited with code {code}" if code else "exited"
        return (
            RunStatus.FAILED,
            f"training process {what} without recording an outcome{where}\n{tail}",
        )

    def signal_cancels(self) -> None:
        """SIGTERM on a cancel request; SIGKILL cancel_grace_s after any SIGTERM of ours."""
        now = time.monotonic()
        for run_id, job in self.jobs.items():
            if job.term_sent_at is None:
                if self.store.cancel_requested(run_id):
                    self._terminate(job, "cancel")
            elif not job.killed and now - job.term_sent_at > self.settings.cancel_grace_s:
                signal_process(job.pid, signal.SIGKILL)
                job.killed = True
                self.store.add_event(
                    run_id,
                    f"{'hung' if job.hung else 'cancel'}: sent SIGKILL to pid {job.pid} after "
                    f"{self.settings.cancel_grace_s:.0f} s",
                    "warning",
                )

    def _terminate(self, job: _Job, why: str) -> None:
        """SIGTERM to the job's process group; signal_cancels escalates to SIGKILL."""
        signal_process(job.pid, signal.SIGTERM)
        job.term_sent_at = time.monotonic()
        self.store.add_event(job.run_id, f"{why}: sent SIGTERM to pid {job.pid}")

    def stop_hung(self) -> None:
        """A watched process alive but without a heartbeat for stale_after_s is hung: its run is
        interrupted with the reason and its process group terminated (then killed)."""
        now = utcnow()
        if (now - self._awake_since).total_seconds() <= self.settings.stale_after_s:
            return  # not watching long enough to call anyone silent
        for run_id, job in self.jobs.items():
            if job.term_sent_at is not None:
                continue  # already being stopped
            run = self.store.get_run(run_id)
            if run is None or run.attempt != job.attempt or run.status not in _LIVE:
                continue
            reason = self._stale_reason(run, now)
            if reason is None:
                continue
            if job.popen is not None and not _started(run, job):  # vouched for until the timeout
                reason = f"did not start within {self.settings.start_timeout_s:.0f} s"
            reason += f"; process {job.pid} on {self.host} is alive but hung: stopping it"
            if run.status is RunStatus.INTERRUPTED:  # marked lost by another worker
                reason = run.error or reason
            elif not self.store.finish_run(
                run_id, RunStatus.INTERRUPTED, error=reason, attempt=job.attempt
            ):
                continue  # it just recorded an outcome itself: reap sees it exit
            job.hung = reason
            log.warning("run %d interrupted: %s", run_id, job.hung)
            self._terminate(job, "hung")

    def mark_lost(self) -> None:
        now = utcnow()
        for run in self.store.list_runs(status=RunStatus.RUNNING):
            if run.id in self.jobs:
                continue
            reason = self._lost_reason(run, now)
            if reason and self.store.finish_run(
                run.id, RunStatus.INTERRUPTED, error=reason, attempt=run.attempt
            ):
                log.warning("run %d interrupted: %s", run.id, reason)

    def _lost_reason(self, run: RunInfo, now: dt.datetime) -> str | None:
        if run.host == self.host and run.pid is not None and not pid_alive(run.pid):
            return f"process {run.pid} on {run.host} is gone"
        stale = self._stale_reason(run, now)
        return f"{stale}: its host {run.host} or process {run.pid} stopped" if stale else None

    def _stale_reason(self, run: RunInfo, now: dt.datetime) -> str | None:
        age = (now - run.heartbeat_at).total_seconds() if run.heartbeat_at else None
        if age is None or age > self.settings.stale_after_s:
            seen = f"for {age:.0f} s" if age is not None else "ever"
            return f"no heartbeat {seen} (stale after {self.settings.stale_after_s:.0f} s)"
        return None

    def adopt(self) -> None:
        for run in self.store.list_runs(status=RunStatus.RUNNING):
            if run.id in self.jobs or run.host != self.host or run.pid is None:
                continue
            if pid_alive(run.pid):
                self.jobs[run.id] = _Job(run.id, run.attempt, run.pid)
                self.store.add_event(run.id, f"adopted by a worker (pid {os.getpid()})")
                log.info("adopted run %d (pid %d)", run.id, run.pid)

    def start_queued(self) -> None:
        free = self.settings.concurrency - len(self.jobs)
        if free <= 0:
            return
        queued = self.store.list_runs(status=RunStatus.QUEUED)[::-1]  # oldest first
        for run in queued:
            if free <= 0 or self.stop.is_set():
                break
            if self.store.claim_run(run.id, self.host):
                self._spawn(self.store.get_run(run.id))
                free -= 1

    def _spawn(self, run: RunInfo) -> None:
        cmd = command_for(run, self.root, self.python)
        log_path = self.root.root / "logs" / f"run-{run.id}.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        log_file = log_path.open("ab")
        # the URL (and any password in it) in the environment: a command line is public on the host
        env = {**os.environ, "PYTHONUNBUFFERED": "1", DB_ENV: self.store.url}
        try:
            popen = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                env=env,
            )
        except OSError as exc:
            log_file.close()
            self.store.finish_run(
                run.id, RunStatus.FAILED, error=f"could not start {cmd[0]}: {exc}"
            )
            return
        self.store.set_process(run.id, host=self.host, pid=popen.pid, attempt=run.attempt)
        self.jobs[run.id] = _Job(run.id, run.attempt, popen.pid, popen, log_path, log_file)
        action = "evaluate" if run.kind == RunKind.EVAL else "train"
        self.store.add_event(run.id, f"started {action} as pid {popen.pid}; log {log_path}")
        log.info("run %d started as pid %d", run.id, popen.pid)
