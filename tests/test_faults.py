"""Faults on a real training run, sharing one run for several checks (the suite stays short):

- kill -9 of the training process at random steps, `KILL_TRIALS` times on the same run: each
  ends interrupted naming SIGKILL, the database passes its integrity check, no recorded step up
  to the last checkpoint is lost, the resume continues with contiguous steps and the same id;
- SIGTERM to `verl-studio serve` while its worker trains a run: a clean exit, the run
  checkpointed and marked interrupted (resumable), every recorded step contiguous.

bench/bench_faults.py runs the kill -9 loop for 20 trials.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from engine.storage import RunStatus, Store
from tests.test_worker import integrity, real_trainer, running_worker, wait_until

KILL_TRIALS = 5


def kill_9_trials(store: Store, root, run_id: int, trials: int, rng: random.Random) -> list[dict]:
    """Kill the run's training process `trials` times at random steps, resuming after each;
    returns one record per trial. Asserts every property of the module docstring."""
    records = []
    for trial in range(trials):
        run = wait_until(
            lambda: (r := store.get_run(run_id)).status is RunStatus.RUNNING and r.pid and r,
            180,
            f"trial {trial}: the trainer to start",
        )
        start = store.latest_step(run_id)
        target = start + rng.randint(1, 2)
        wait_until(lambda t=target: store.latest_step(run_id) >= t, 180, f"step {target}")
        os.kill(store.get_run(run_id).pid, signal.SIGKILL)
        wait_until(lambda: store.get_run(run_id).status.finished, 60, "the worker to notice")
        run = store.get_run(run_id)
        assert run.status is RunStatus.INTERRUPTED and "SIGKILL" in run.error, run.error
        assert integrity(root) == "ok"
        last = store.last_checkpoint(run_id)
        k = last["step"] if last else 0
        steps = [s["step"] for s in store.steps(run_id)]
        assert steps[:k] == list(range(1, k + 1)), steps  # nothing up to the checkpoint lost
        assert store.requeue_for_resume(run_id) == k
        assert [s["step"] for s in store.steps(run_id)] == list(range(1, k + 1))
        records.append({"trial": trial, "killed_after": steps[-1], "resumed_from": k})
    return records


@pytest.mark.slow
def test_kill_9_at_random_steps_then_resume(store, root):
    n = 40
    run_id = real_trainer(store, f"run.max_steps={n}", "run.checkpoint_every=1")
    with running_worker(store, root):
        records = kill_9_trials(store, root, run_id, KILL_TRIALS, random.Random(14))
        k = records[-1]["resumed_from"]
        wait_until(lambda: store.latest_step(run_id) > k, 180, "a step after the last resume")
        store.request_cancel(run_id)  # enough: stop the last attempt with a checkpoint
        wait_until(lambda: store.get_run(run_id).status.finished, 180, "the cancel")
    run = store.get_run(run_id)
    assert run.status is RunStatus.CANCELLED and run.attempt == KILL_TRIALS + 1
    assert [s["step"] for s in store.steps(run_id)] == list(range(1, run.step + 1))
    assert run.step > k
    assert [r.id for r in store.list_runs()] == [run_id]
    assert integrity(root) == "ok"


@pytest.mark.slow
def test_sigterm_to_serve_checkpoints_and_marks_its_runs(store, root):
    run_id = real_trainer(store, "run.max_steps=200", "run.checkpoint_every=50")
    env = {**os.environ, "VERL_STUDIO_HOME": str(root.root)}
    env.pop("VERL_STUDIO_DB", None)
    serve = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "serve", "--port", "0", "--data-dir", str(root.root)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
        env=env,
    )
    try:
        wait_until(lambda: store.latest_step(run_id) >= 2, 240, "two steps under serve")
        child = store.get_run(run_id).pid
        serve.send_signal(signal.SIGTERM)
        out, _ = serve.communicate(timeout=180)
    finally:
        if serve.poll() is None:
            os.killpg(serve.pid, signal.SIGKILL)
            serve.wait()
    assert serve.returncode == 0, out[-2000:]
    assert "Traceback" not in out, out[-2000:]
    run = store.get_run(run_id)
    assert run.status is RunStatus.INTERRUPTED and "SIGTERM" in run.error, run.error
    last = store.last_checkpoint(run_id)
    assert last is not None and last["step"] == store.latest_step(run_id)  # saved as it stopped
    assert Path(last["path"]).is_dir()
    assert [s["step"] for s in store.steps(run_id)] == list(range(1, last["step"] + 1))
    assert not Path(f"/proc/{child}").exists() or child is None
    assert integrity(root) == "ok"
    assert store.requeue_for_resume(run_id) == last["step"]  # resumable from there


@pytest.fixture
def root(data_root):
    return data_root


@pytest.fixture
def store(root):
    from engine.runs.worker import pid_alive, signal_process

    with Store.open(root) as s:
        yield s
        for run in s.list_runs(status=RunStatus.RUNNING):  # never leave a trainer behind
            if run.pid and run.pid != os.getpid() and pid_alive(run.pid):
                signal_process(run.pid, signal.SIGKILL)


def _bench_load():
    import importlib.util

    from tests.conftest import REPO

    spec = importlib.util.spec_from_file_location("bench_load", REPO / "bench" / "bench_load.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_8_clients_poll_while_a_run_writes(studio_server):
    """15 s of 8 gradio_client clients polling /run_status, /list_runs, the monitor's refresh and
    the inspector's data while the server's worker trains a run: zero errors, every endpoint
    answered about the run, no "database is locked" (bench/bench_load.py: 60 s, p50/p95)."""
    from engine.runs import service
    from engine.runs.admission import AccessPolicy
    from tests.fixtures.training import tiny_config

    bench = _bench_load()
    with Store(studio_server.db_url) as store:
        cfg = tiny_config("run.max_steps=500", "run.eval_every=0")
        run_id = service.submit(store, cfg, policy=AccessPolicy.command_line())
        wait_until(lambda: store.latest_step(run_id) >= 1, 240, "the first step")
        first = store.latest_step(run_id)
        result = bench.poll_under_load(studio_server.url, run_id, seconds=15, clients=8)
        assert result["errors"] == []
        assert store.latest_step(run_id) > first  # the run kept writing meanwhile
        assert not bench.locked_anywhere(store, studio_server.data_dir, run_id)
        seen = result["steps_seen"]
        assert all(len(v) >= 8 for v in result["latencies_ms"].values()), result["latencies_ms"]
        assert max(seen["/run_status"]) >= first and max(seen["/monitor_refresh"]) >= first
        assert seen["/inspector_data"], "the inspector never showed a recorded response"
        service.cancel(store, run_id)


@contextlib.contextmanager
def small_disk(folder: Path, size: str):
    """A tmpfs of `size` mounted at `folder` (root only)."""
    folder.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)], capture_output=True
    )
    if mounted.returncode:
        pytest.skip(f"cannot mount a small file system here: {mounted.stderr.strip()!r}")
    try:
        yield
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


@pytest.mark.slow
@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a small tmpfs needs root")
def test_a_full_disk_fails_the_run_naming_it(store, root):
    """The run's checkpoint folder on a 4 MiB file system: the first checkpoint (weights and
    optimizer, ~8 MiB) cannot be written. The run fails with "no space left"; the steps before
    stay recorded and the database passes its integrity check."""
    run_id = real_trainer(store, "run.max_steps=6", "run.checkpoint_every=2")
    with small_disk(root.run_checkpoints(run_id), "4m"), running_worker(store, root):
        wait_until(lambda: store.get_run(run_id).status.finished, 300, "the run to stop")
    run = store.get_run(run_id)
    assert run.status is RunStatus.FAILED, run.error
    assert "no space left" in run.error.lower(), run.error
    steps = [s["step"] for s in store.steps(run_id)]
    assert steps == list(range(1, len(steps) + 1)) and len(steps) >= 1
    assert store.checkpoints(run_id) == []
    assert integrity(root) == "ok"
