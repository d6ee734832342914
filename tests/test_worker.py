"""Run lifecycle and worker with real processes: the training process owns its status, the
worker claims, watches, cancels, adopts and marks lost runs; the CLI around them.

The fault tests run the REAL trainer (`python -m engine.cli train`, started by the worker) on
the tiny config of tests/fixtures/training.py: kill -9, resume, cancel, adopt after a restart.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import math
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from engine.cli import main as cli_main
from engine.paths import resolve
from engine.runs.lifecycle import RunCancelled, RunLifecycle, enforce_save_total_limit
from engine.runs.worker import Worker, WorkerSettings, command_for, pid_alive, signal_process
from engine.storage import RunKind, RunStatus, Store
from tests.fixtures.training import embedded_model_ready, tiny_config

CONFIG = {"run": {"seed": 11, "num_processes": 1}}


@pytest.fixture
def root(data_root):
    return data_root


@pytest.fixture
def store(root):
    with Store.open(root) as s:
        yield s
        for run in s.list_runs(status=RunStatus.RUNNING):  # never leave a trainer behind
            if run.pid and run.pid != os.getpid() and pid_alive(run.pid):
                signal_process(run.pid, signal.SIGKILL)


def wait_until(predicate, timeout: float, what: str, every: float = 0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def queued(store: Store, config: dict | None = None, total: int = 5) -> int:
    return store.create_run(config or CONFIG, name="t", algorithm="verl", total_steps=total)


def messages(store: Store, run_id: int) -> list[str]:
    return [e["message"] for e in store.events(run_id)]


# ---- lifecycle in this process ---------------------------------------------------------------


def test_lifecycle_running_then_completed(store):
    run_id = queued(store)
    with RunLifecycle(store, run_id, heartbeat_s=0.05) as life:
        run = store.get_run(run_id)
        assert run.status is RunStatus.RUNNING and run.pid == os.getpid()
        env = run.environment
        assert env["seed"] == 11 and env["versions"]["torch"]
        assert env["host"] == run.host and "python" in env
        first = run.heartbeat_at
        wait_until(lambda: store.get_run(run_id).heartbeat_at > first, 10, "a heartbeat")
        assert not life.should_stop()
    run = store.get_run(run_id)
    assert run.status is RunStatus.COMPLETED and life.outcome is RunStatus.COMPLETED
    assert run.finished_at >= run.started_at and run.error is None


def test_lifecycle_exception_is_failed_with_one_line_and_the_trace_in_the_log(store, caplog):
    """The error field held a 30-line traceback with server paths, which /run_status returned to
    anyone: now it holds the exception's one line and the trace goes to the run's log."""
    run_id = queued(store)
    with pytest.raises(ZeroDivisionError), RunLifecycle(store, run_id, heartbeat_s=1):
        1 / 0  # noqa: B018
    run = store.get_run(run_id)
    assert run.status is RunStatus.FAILED
    assert run.error == "ZeroDivisionError: division by zero"
    logged = "\n".join(r.getMessage() + (r.exc_text or "") for r in caplog.records)
    assert "Traceback" in caplog.text and "1 / 0" in caplog.text, logged


def test_lifecycle_cancel_from_another_store_and_sigterm(store, root):
    run_id = queued(store)
    with RunLifecycle(store, run_id, heartbeat_s=0.05) as life:
        with Store(root.db_url) as app_replica:
            app_replica.request_cancel(run_id)
        assert life.should_stop()
        raise RunCancelled()  # swallowed: cancelling is a normal way to end
    assert store.get_run(run_id).status is RunStatus.CANCELLED

    run_id = queued(store)
    before = signal.getsignal(signal.SIGTERM)
    with RunLifecycle(store, run_id, heartbeat_s=1) as life:
        store.request_cancel(run_id)  # a worker's cancel: the flag, then SIGTERM
        os.kill(os.getpid(), signal.SIGTERM)
        wait_until(life.should_stop, 5, "the SIGTERM flag")
        raise RunCancelled()
    assert store.get_run(run_id).status is RunStatus.CANCELLED
    assert signal.getsignal(signal.SIGTERM) is before


def test_lifecycle_sigterm_without_a_cancel_is_interrupted(store):
    """Nobody asked for this stop (a hung-process kill, a shutdown): interrupted, with why."""
    run_id = queued(store)
    with RunLifecycle(store, run_id, heartbeat_s=1) as life:
        os.kill(os.getpid(), signal.SIGTERM)
        wait_until(life.should_stop, 5, "the SIGTERM flag")
        raise RunCancelled()
    run = store.get_run(run_id)
    assert run.status is RunStatus.INTERRUPTED and life.outcome is RunStatus.INTERRUPTED
    assert run.error.startswith("stopped on SIGTERM without a cancel request")


def test_lifecycle_refuses_a_finished_run(store):
    run_id = queued(store)
    store.request_cancel(run_id)
    with pytest.raises(Exception, match="resume it"), RunLifecycle(store, run_id):
        pass


def test_save_total_limit_deletes_folder_and_row_together(store, root):
    run_id = queued(store)
    folders = []
    for step in (2, 4, 6, 8, 10):
        folder = root.run_checkpoints(run_id) / f"checkpoint-{step}"
        folder.mkdir(parents=True)
        (folder / "model.safetensors").write_bytes(b"x")
        store.add_checkpoint(run_id, step, folder)
        enforce_save_total_limit(store, run_id, 2)
        folders.append(folder)
    assert [c["step"] for c in store.checkpoints(run_id)] == [8, 10]
    assert [f.exists() for f in folders] == [False, False, False, True, True]
    assert enforce_save_total_limit(store, run_id, 0) == [folders[3]]  # the newest always stays
    assert store.last_checkpoint(run_id)["path"] == str(folders[4]) and folders[4].exists()


# ---- worker, without training -------------------------------------------------------------------


def test_command_lines(store, root):
    train = store.get_run(queued(store))
    assert command_for(train, root, "py") == [
        "py",
        "-m",
        "engine.cli",
        "train",
        "--run-id",
        str(train.id),
        "--data-dir",
        str(root.root),
    ]
    ev = store.get_run(
        store.create_run({}, name="e", algorithm="verl", kind=RunKind.EVAL, total_steps=1)
    )
    assert command_for(ev, root, "py")[3] == "evaluate"
    multi = store.get_run(queued(store, {"run": {"num_processes": 2}}))
    cmd = command_for(multi, root, "py")
    assert cmd[:6] == [
        "py",
        "-m",
        "accelerate.commands.launch",
        "--multi_gpu",
        "--num_processes",
        "2",
    ]
    assert cmd[-7:-3] == ["-m", "engine.cli", "train", "--run-id"]


def test_worker_marks_dead_and_stale_runs_interrupted(store, root):
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    dead, stale, fresh = queued(store), queued(store), queued(store)
    worker = Worker(store, root, WorkerSettings(stale_after_s=0.5, concurrency=0))
    for run_id in (dead, stale, fresh):
        store.claim_run(run_id, "elsewhere" if run_id != dead else worker.host)
    store.mark_running(dead, host=worker.host, pid=gone.pid, environment={})
    wait_until(
        lambda: (dt.datetime.now(dt.UTC) - store.get_run(stale).heartbeat_at).total_seconds() > 0.6,
        5,
        "the heartbeat to age",
    )
    store.heartbeat(fresh)
    worker.tick()
    assert store.get_run(dead).status is RunStatus.INTERRUPTED
    assert store.get_run(dead).error == f"process {gone.pid} on {worker.host} is gone"
    assert store.get_run(stale).status is RunStatus.INTERRUPTED
    assert store.get_run(stale).error.startswith("no heartbeat for")
    assert store.get_run(fresh).status is RunStatus.RUNNING


def test_worker_adopts_a_live_process_and_cancels_it(store, root):
    """After a restart the worker watches the live process instead of starting it again; a cancel
    sends it SIGTERM and, when it dies of it without writing an outcome, records cancelled."""
    run_id = queued(store)
    proc = subprocess.Popen(["sleep", "60"], start_new_session=True)
    try:
        worker = Worker(store, root, WorkerSettings(cancel_grace_s=60))
        store.claim_run(run_id, worker.host)
        store.mark_running(run_id, host=worker.host, pid=proc.pid, environment={})
        worker.tick()
        assert run_id in worker.jobs and worker.jobs[run_id].popen is None
        assert any(m.startswith("adopted by a worker") for m in messages(store, run_id))
        store.request_cancel(run_id)
        worker.tick()
        assert proc.wait(timeout=10) == -signal.SIGTERM
        worker.tick()
        run = store.get_run(run_id)
        assert run.status is RunStatus.CANCELLED, run.error
        assert run.error == "stopped by SIGTERM after a cancel request"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_worker_kills_a_process_that_ignores_the_cancel(store, root):
    """SIGTERM is ignored: SIGKILL follows after cancel_grace_s and the run is cancelled."""
    ignore = (
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
        "print('ready', flush=True); time.sleep(60)"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", ignore], start_new_session=True, stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout.readline().strip() == "ready"  # SIGTERM is ignored from here on
        run_id = queued(store)
        worker = Worker(store, root, WorkerSettings(cancel_grace_s=0.3))
        store.claim_run(run_id, worker.host)
        store.mark_running(run_id, host=worker.host, pid=proc.pid, environment={})
        store.request_cancel(run_id)
        worker.tick()  # adopt
        worker.tick()  # SIGTERM
        time.sleep(0.5)  # the grace period, then:
        worker.tick()  # SIGKILL
        assert proc.wait(timeout=10) == -signal.SIGKILL
        worker.tick()
        run = store.get_run(run_id)
        assert run.status is RunStatus.CANCELLED
        assert run.error == "stopped by SIGKILL after a cancel request"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


HANGING_CHILD = """
import subprocess, sys, threading, time
from engine.runs.lifecycle import RunLifecycle
from engine.storage import Store

store, hung = Store(sys.argv[1]), threading.Event()
beat = store.heartbeat
store.heartbeat = lambda *a: threading.Event().wait() if hung.is_set() else beat(*a)
with RunLifecycle(store, int(sys.argv[2]), heartbeat_s=0.1):
    grandchild = subprocess.Popen(["sleep", "60"])  # in the child's process group
    print(grandchild.pid, flush=True)
    sys.stdin.readline()
    hung.set()  # the heartbeat thread blocks for good; the main thread never looks up again
    time.sleep(60)
"""


def test_worker_stops_a_watched_process_that_hangs(store, root):
    """A watched child that is alive but no longer heart-beats (hung) is marked interrupted
    with the reason; its process group gets SIGTERM, then SIGKILL after the grace. While its
    heartbeat is fresh it is left alone, however long the worker has watched it."""
    run_id = queued(store)
    settings = WorkerSettings(stale_after_s=1.0, cancel_grace_s=0.3, poll_s=0.2, concurrency=0)
    worker = Worker(store, root, settings)
    store.claim_run(run_id, worker.host)
    child = subprocess.Popen(
        [sys.executable, "-c", HANGING_CHILD, store.url, str(run_id)],
        start_new_session=True,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    grandchild = None

    def interrupted() -> bool:
        worker.tick()
        return store.get_run(run_id).status is RunStatus.INTERRUPTED

    try:
        grandchild = int(child.stdout.readline())
        worker.tick()  # adopt
        assert run_id in worker.jobs
        deadline = time.monotonic() + 1.5  # longer than stale_after_s, heart-beating all along
        while time.monotonic() < deadline:
            assert not interrupted()
            time.sleep(0.2)
        assert worker.jobs[run_id].term_sent_at is None

        child.stdin.write("hang\n")
        child.stdin.flush()
        wait_until(interrupted, 10, "the stale heartbeat", every=0.2)  # + SIGTERM to the group
        run = store.get_run(run_id)
        assert run.error.startswith("no heartbeat for") and "alive but hung" in run.error
        wait_until(lambda: not pid_alive(grandchild), 10, "SIGTERM to reach the group")
        assert child.poll() is None  # the flag its SIGTERM set is never read: still there
        time.sleep(0.4)  # the grace period, then:
        worker.tick()  # SIGKILL
        assert child.wait(timeout=10) == -signal.SIGKILL
        worker.tick()  # reaped; the recorded reason stays
        assert run_id not in worker.jobs
        assert store.get_run(run_id).status is RunStatus.INTERRUPTED
        assert store.get_run(run_id).error == run.error
        log = messages(store, run_id)
        assert f"hung: sent SIGTERM to pid {child.pid}" in log
        assert f"hung: sent SIGKILL to pid {child.pid} after 0 s" in log
    finally:
        for pid in (child.pid, grandchild):
            if pid is not None and pid_alive(pid):
                os.kill(pid, signal.SIGKILL)
        child.wait()


def test_worker_stops_a_child_that_never_starts_its_lifecycle(store, root, tmp_path):
    """The worker vouches for a starting child (imports) for start_timeout_s only; one stuck
    before its lifecycle starts is then hung: interrupted with that reason and stopped."""
    stuck_python = tmp_path / "python"  # takes any arguments and never gets past "importing"
    stuck_python.write_text("#!/bin/sh\nexec sleep 60\n")
    stuck_python.chmod(0o755)
    settings = WorkerSettings(
        start_timeout_s=0.8, stale_after_s=0.4, cancel_grace_s=0.3, poll_s=0.1, concurrency=1
    )
    worker = Worker(store, root, settings, python=str(stuck_python))
    run_id = queued(store)
    worker.tick()  # claims and spawns
    pid = worker.jobs[run_id].pid
    try:
        deadline = time.monotonic() + 0.6  # within the start timeout: vouched for, left alone
        while time.monotonic() < deadline:
            worker.tick()
            assert store.get_run(run_id).status is RunStatus.RUNNING
            time.sleep(0.1)

        def stopped() -> bool:
            worker.tick()
            return run_id not in worker.jobs

        wait_until(stopped, 15, "the stuck child to be stopped", every=0.1)
        run = store.get_run(run_id)
        assert run.status is RunStatus.INTERRUPTED
        assert run.error.startswith("did not start within 1 s") and "alive but hung" in run.error
        assert not pid_alive(pid)
    finally:
        if pid_alive(pid):
            os.kill(pid, signal.SIGKILL)


def test_worker_gives_heartbeats_a_fresh_window_after_a_suspend(store, root):
    """A gap between ticks (the machine slept) restarts the window: a stale heartbeat found
    right after waking does not get a live process killed before it had time to beat."""
    run_id = queued(store)
    proc = subprocess.Popen(["sleep", "60"], start_new_session=True)
    try:
        # a gap between ticks > poll_s + stale_after_s = 1.3 s is a suspend; 0.85 s of slack
        # for a slow tick on a loaded machine (0.1 s polls made the awake tick look like one)
        worker = Worker(store, root, WorkerSettings(stale_after_s=0.3, poll_s=1.0, concurrency=0))
        store.claim_run(run_id, worker.host)
        store.mark_running(run_id, host=worker.host, pid=proc.pid, environment={})
        worker.tick()  # adopt
        time.sleep(1.5)  # "suspended"; the heartbeat ages past stale_after_s too
        worker.tick()
        assert store.get_run(run_id).status is RunStatus.RUNNING and proc.poll() is None
        time.sleep(0.45)  # awake for > stale_after_s (ticks closer than the gap), still silent
        worker.tick()
        assert store.get_run(run_id).status is RunStatus.INTERRUPTED
        assert proc.wait(timeout=10) == -signal.SIGTERM
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_worker_command_claims_and_stops_on_sigterm(root):
    """`verl-studio worker` as its own process claims a queued run; the real `engine.cli train`
    refuses its invalid config before taking the run, so the worker records failed with the
    exit code and the log's last lines; the worker exits cleanly on SIGTERM."""
    with Store.open(root) as store:
        run_id = queued(store, {"run": {"max_steps": 0}})
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "engine.cli",
            "worker",
            "--poll-s",
            "0.2",
            "--data-dir",
            str(root.root),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        with Store.open(root) as store:
            wait_until(lambda: store.get_run(run_id).status.finished, 120, "the claimed run")
            run = store.get_run(run_id)
        assert run.status is RunStatus.FAILED
        first, *tail = run.error.splitlines()
        assert first.startswith("training process exited with code 2 without recording an outcome")
        assert any("max_steps" in line for line in tail)  # the log's last lines say why
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=30) == 0
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()


# ---- CLI handlers ---------------------------------------------------------------------------------


def test_cli_submit_runs_cancel_resume_delete(root, capsys):
    data = ["--data-dir", str(root.root)]
    assert cli_main(["submit", "--config", "demo-cpu", "--set", "run.max_steps=7", *data]) == 0
    run_id = int(capsys.readouterr().out.strip())
    with Store.open(root) as store:
        run = store.get_run(run_id)
        assert run.status is RunStatus.QUEUED and run.total_steps == 7
        assert run.config["run"]["max_steps"] == 7
    assert cli_main(["runs", *data]) == 0
    assert f"{run_id:>5}" in capsys.readouterr().out
    assert cli_main(["cancel", str(run_id), *data]) == 0
    assert "cancelled" in capsys.readouterr().out
    assert cli_main(["resume", str(run_id), *data]) == 0
    assert "resuming from step 0" in capsys.readouterr().out
    folder = root.run_checkpoints(run_id) / "checkpoint-1"
    folder.mkdir(parents=True)
    assert cli_main(["delete", str(run_id), *data]) == 1  # queued again: cancel it first
    assert cli_main(["cancel", str(run_id), *data]) == 0
    assert cli_main(["delete", str(run_id), "--keep-checkpoints", *data]) == 0
    assert folder.exists()
    assert cli_main(["delete", str(run_id), *data]) == 1  # already gone
    with Store.open(root) as store:
        assert store.get_run(run_id) is None


def test_cli_delete_refuses_running_and_removes_checkpoints(root, capsys):
    with Store.open(root) as store:
        run_id = queued(store)
        store.claim_run(run_id, "h")
    data = ["--data-dir", str(root.root)]
    assert cli_main(["delete", str(run_id), *data]) == 1
    with Store.open(root) as store:
        store.finish_run(run_id, RunStatus.FAILED, error="x")
    folder = root.run_checkpoints(run_id) / "checkpoint-3"
    folder.mkdir(parents=True)
    assert cli_main(["delete", str(run_id), *data]) == 0
    assert not root.run_checkpoints(run_id).exists()


def test_the_child_finds_its_store_through_the_environment_not_argv(root, tmp_path):
    """A store away from the data root's default: the child reads VERL_STUDIO_DB, and the URL
    (with any password in it) never shows on the command line."""
    url = f"sqlite:///{tmp_path / 'team.db'}"
    with Store(url) as store:
        run_id = queued(store, {"run": {"max_steps": 0}})  # invalid: the child must say why
        with running_worker(store, root) as worker:
            wait_until(lambda: store.get_run(run_id).status.finished, 120, "the child")
        run = store.get_run(run_id)
        assert run.status is RunStatus.FAILED
        assert "max_steps" in run.error, run.error  # the child read its config from this store
        started = [e for e in messages(store, run_id) if e.startswith("started")]
        assert started and url not in " ".join(started)
    assert url not in command_for(run, root, worker.python)


# ---- faults with the real trainer -------------------------------------------------------------------


@contextlib.contextmanager
def running_worker(store: Store, root, **settings):
    stop = threading.Event()
    worker = Worker(store, root, WorkerSettings(poll_s=0.2, **settings), stop=stop)
    thread = threading.Thread(target=worker.run, name="test-worker")
    thread.start()
    try:
        yield worker
    finally:
        stop.set()
        thread.join()


def real_trainer(store: Store, *overrides: str) -> int:
    from tests.conftest import require

    require(embedded_model_ready(), "the embedded demo model (assets/demo-model)")
    cfg = tiny_config("run.eval_every=0", "run.checkpoint_every=2", *overrides)
    return store.create_run(
        cfg.to_dict(), name="fault", algorithm=cfg.run.algorithm, total_steps=cfg.run.max_steps
    )


def integrity(root) -> str:
    db = Path(resolve(root.root).db_url.removeprefix("sqlite:///"))
    with contextlib.closing(sqlite3.connect(db)) as conn:
        return conn.execute("PRAGMA integrity_check").fetchone()[0]


@pytest.mark.slow
def test_kill_9_then_resume_records_every_step_once(store, root):
    n = 6
    run_id = real_trainer(store, f"run.max_steps={n}", "run.save_total_limit=2")
    with running_worker(store, root):
        wait_until(
            lambda: (
                store.get_run(run_id).status is RunStatus.RUNNING
                and store.get_run(run_id).started_at is not None
            ),
            120,
            "the trainer to start",
        )
        wait_until(
            lambda: (
                (ck := store.last_checkpoint(run_id)) and store.latest_step(run_id) > ck["step"]
            ),
            120,
            "a checkpoint and a step after it",
        )
        pid = store.get_run(run_id).pid
        os.kill(pid, signal.SIGKILL)
        wait_until(lambda: store.get_run(run_id).status is not RunStatus.RUNNING, 30, "the worker")
        run = store.get_run(run_id)
        assert run.status is RunStatus.INTERRUPTED
        assert "killed by signal SIGKILL" in run.error
        assert integrity(root) == "ok"
        k = store.last_checkpoint(run_id)["step"]
        m = store.latest_step(run_id)
        kept = [s for s in store.steps(run_id) if s["step"] <= k]
        assert [s["step"] for s in kept] == list(range(1, k + 1))

        assert store.requeue_for_resume(run_id) == k
        if m > k:
            assert f"discarded steps {k + 1}..{m}, recorded after checkpoint {k}" in messages(
                store, run_id
            )
        wait_until(lambda: store.get_run(run_id).status.finished, 240, "the resumed run")
    run = store.get_run(run_id)
    assert run.status is RunStatus.COMPLETED, run.error
    assert run.attempt == 2 and run.step == n
    assert [s["step"] for s in store.steps(run_id)] == list(range(1, n + 1))
    assert [s for s in store.steps(run_id) if s["step"] <= k] == kept
    assert store.sample_steps(run_id) == list(range(1, n + 1))
    assert store.last_checkpoint(run_id)["step"] == n
    assert len(store.checkpoints(run_id)) <= 2
    assert integrity(root) == "ok"


@pytest.mark.slow
def test_cancel_after_worker_restart_stops_with_a_checkpoint(store, root):
    run_id = real_trainer(store, "run.max_steps=40")
    with running_worker(store, root) as first:
        wait_until(lambda: store.latest_step(run_id) >= 1, 120, "the first step")
        child = first.jobs[run_id].popen
    with running_worker(store, root) as second:  # the restarted worker adopts, does not restart
        wait_until(lambda: run_id in second.jobs, 30, "adoption")
        assert second.jobs[run_id].pid == child.pid and child.poll() is None
        assert os.getsid(child.pid) == child.pid  # its own session: a worker's signals miss it
        assert store.request_cancel(run_id) is RunStatus.RUNNING
        wait_until(lambda: store.get_run(run_id).status.finished, 120, "the cancel")
    child.wait(timeout=30)
    run = store.get_run(run_id)
    assert run.status is RunStatus.CANCELLED, run.error
    last = store.last_checkpoint(run_id)
    assert last is not None and last["step"] == store.latest_step(run_id) < 40
    assert Path(last["path"]).is_dir()
    assert [s["step"] for s in store.steps(run_id)] == list(range(1, last["step"] + 1))
    assert integrity(root) == "ok"


@pytest.mark.slow
def test_a_two_process_run_records_every_process_rows_once(store, root):
    """run.num_processes = 2 on the CPU: two gloo processes under accelerate launch; rank 0
    records both processes' responses in each step, the baselines come from all of them."""
    run_id = real_trainer(store, "run.num_processes=2", "run.max_steps=2")
    with running_worker(store, root):
        wait_until(lambda: store.get_run(run_id).status.finished, 240, "the two-process run")
    run = store.get_run(run_id)
    assert run.status is RunStatus.COMPLETED, run.error
    assert [s["step"] for s in store.steps(run_id)] == [1, 2]
    B, G = 16, 8  # tiny_config's per-process batch and group size
    for step in (1, 2):
        rows = store.samples(run_id, step)
        assert len(rows) == 2 * B
        assert sorted((r["group_idx"], r["sample_idx"]) for r in rows) == [
            (g, i) for g in range(2 * B // G) for i in range(G)
        ]
        assert len({r["prompt"] for r in rows}) == 2 * B // G  # each process its own prompts
        assert all(math.isfinite(r[k]) for r in rows for k in ("er", "erv", "era"))
    first = store.samples(run_id, 1)
    (m_er,) = [s["m_er"] for s in store.steps(run_id, ["step", "m_er"]) if s["step"] == 1]
    assert m_er == pytest.approx(sum(r["er"] for r in first) / len(first), rel=1e-9)
    assert store.last_checkpoint(run_id)["step"] == 2
