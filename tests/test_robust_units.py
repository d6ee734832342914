"""Robustness pieces one by one: a run deleted under its process, a read-only store, rewards
that are not numbers, a new run meeting a full checkpoint folder, a completion longer than the
model. The table of bad inputs as a user types them is tests/test_bad_inputs.py."""

from __future__ import annotations

import contextlib
import math
import os
import subprocess
from pathlib import Path

import pytest

from engine.config import ConfigError, StudioConfig
from engine.runs.admission import AccessPolicy
from engine.runs.checks import config_fits_model
from engine.runs.lifecycle import RunLifecycle
from engine.storage import RunGone, RunStatus, Store, StoreError
from engine.training.reward_check import RewardError, check_rewards, checked_reward


def new_run(store: Store) -> int:
    return store.create_run({"run": {"seed": 1}}, name="r", algorithm="verl", total_steps=3)


# ---- a run deleted under its process ---------------------------------------------------------


def test_a_run_deleted_under_its_process_stops_it_cleanly(data_root, caplog):
    """A training process whose run was deleted crashed on its next write (a foreign-key
    trace); now the write raises RunGone, the lifecycle logs why and swallows it, and no outcome
    is written anywhere."""
    with Store.open(data_root) as store:
        run_id = new_run(store)
        other = new_run(store)
        with RunLifecycle(store, run_id, heartbeat_s=60) as life:
            assert store.delete_run(run_id)
            assert life.should_stop() and life.gone()
            store.log_step(run_id, {"step": 1, "reward_mean": 0.5})  # raises RunGone
        assert life.outcome is None
        assert "was deleted while this process trained it" in caplog.text
        assert store.get_run(run_id) is None
        assert store.get_run(other).status is RunStatus.QUEUED
        for write in (
            lambda: store.add_checkpoint(run_id, 1, "/x"),
            lambda: store.add_event(run_id, "m"),
            lambda: store.add_eval(
                run_id, step=1, dataset="d", n=1, ks=[1], pass_at_k=[1.0], per_problem=[1]
            ),
        ):
            with pytest.raises(RunGone, match=f"run {run_id} no longer exists"):
                write()


def test_delete_is_refused_once_a_worker_claimed_the_run(data_root):
    """The handler re-checks the state as it deletes: a run claimed after the user looked is
    not deleted."""
    from engine.runs import service

    with Store.open(data_root) as store:
        run_id = new_run(store)
        store.claim_run(run_id, "host")
        assert not store.delete_run(run_id, only_if=[RunStatus.FAILED])
        with pytest.raises(service.RunError, match=f"run {run_id} is running: cancel it"):
            service.delete(store, data_root, run_id)
        assert store.get_run(run_id).status is RunStatus.RUNNING


# ---- a read-only store -------------------------------------------------------------------------


@contextlib.contextmanager
def read_only(folder: Path):
    """`folder` read-only for this process: a read-only bind mount as root (root ignores
    permission bits), the permission bits otherwise."""
    if os.geteuid() != 0:
        modes = {p: p.stat().st_mode for p in [folder, *folder.rglob("*")]}
        for p in modes:
            p.chmod(modes[p] & ~0o222)
        try:
            yield
        finally:
            for p, mode in modes.items():
                p.chmod(mode)
        return
    mounted = subprocess.run(["mount", "--bind", str(folder), str(folder)], capture_output=True)
    if mounted.returncode:
        pytest.skip(f"cannot bind-mount as root here: {mounted.stderr.decode().strip()}")
    try:
        subprocess.run(["mount", "-o", "remount,bind,ro", str(folder), str(folder)], check=True)
        yield
    finally:
        subprocess.run(["umount", str(folder)], check=True)


def test_a_read_only_store_reads_and_refuses_writes_in_one_line(tmp_path):
    from engine.paths import resolve

    root = resolve(tmp_path / "home")
    with Store.open(root) as store:
        run_id = new_run(store)
        store.log_step(run_id, {"step": 1, "reward_mean": 0.25})
    with read_only(root.root):
        root = resolve(tmp_path / "home")
        with Store.open(root) as store:
            assert store.read_only
            assert [r.id for r in store.list_runs()] == [run_id]
            assert store.steps(run_id, ["reward_mean"]) == [{"step": 1, "reward_mean": 0.25}]
            with pytest.raises(StoreError, match="is read-only .*only reading commands"):
                new_run(store)


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda p: p.mkdir(), "is a folder; --db takes a database file"),
        (lambda p: p.write_text("name,answer\n1,2\n"), "is not a SQLite database"),
        (lambda p: p.write_bytes(b"\x00" * 64), "is not a SQLite database"),
    ],
    ids=["folder", "csv", "zeros"],
)
def test_what_cannot_be_a_database_is_one_store_error(tmp_path, make, message):
    path = tmp_path / "studio.db"
    make(path)
    before = sorted(p.name for p in tmp_path.rglob("*"))
    with pytest.raises(StoreError, match=message):
        Store(f"sqlite:///{path}")
    assert sorted(p.name for p in tmp_path.rglob("*")) == before


# ---- rewards that are not numbers ----------------------------------------------------------------


def nan_reward(completions, **kwargs):
    return [math.nan for _ in completions]


def text_reward(completions, **kwargs):
    return ["1.0" for _ in completions]


def sometimes_none(completions, **kwargs):
    return [None if i % 2 else 1 for i, _ in enumerate(completions)]


@pytest.mark.parametrize(
    "fn, shown",
    [(nan_reward, "returned nan"), (text_reward, r"returned '1.0' \(a str\)")],
)
def test_a_reward_that_is_not_a_number_names_the_function_and_value(fn, shown):
    with pytest.raises(RewardError, match=rf"reward function '.*{fn.__name__}' {shown}"):
        checked_reward(fn)(completions=["a", "b"], prompts=["p", "p"])


def test_none_stays_allowed_and_names_are_kept_for_trl():
    wrapped = checked_reward(sometimes_none)
    assert wrapped.__name__ == "sometimes_none"
    assert wrapped(completions=["a", "b", "c"]) == [1.0, None, 1.0]
    with pytest.raises(RewardError, match="returned 2 values for 3 completions"):
        check_rewards("r", [1, 2], 3)
    with pytest.raises(RewardError, match="must return a list"):
        check_rewards("r", 1.0, 1)


# ---- the model and the checkpoint folder ---------------------------------------------------------------


def test_a_completion_longer_than_the_model_is_refused_at_submit(data_root, tmp_path):
    """An empty config ran all defaults: 1,536 new tokens on a model with 256 positions."""
    from engine.runs import service

    assert config_fits_model(StudioConfig())[0][0] == "grpo.max_completion_length"
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "config.json").write_text('{"model_type": "gpt2", "n_positions": 64}')
    (folder / "tokenizer.json").write_text("{}")
    cfg = StudioConfig().with_overrides(
        [f"model.name_or_path={folder}", "grpo.max_completion_length=64", "shaping.stride=4"]
    )
    with Store.open(data_root) as store:
        with pytest.raises(
            ConfigError,
            match=r"grpo.max_completion_length: 64 tokens .* 64 positions \(n_positions",
        ):
            service.submit(store, cfg, policy=AccessPolicy.command_line())
        assert store.list_runs() == []
        ok = cfg.with_overrides(["grpo.max_completion_length=48"])
        assert service.submit(store, ok, policy=AccessPolicy.command_line()) >= 1


def test_a_new_run_never_writes_into_a_full_checkpoint_folder(data_root):
    from engine.training.train import CheckpointFolderTaken, refuse_foreign_checkpoints

    with Store.open(data_root) as store:
        run_id = new_run(store)
        folder = data_root.run_checkpoints(run_id)
        refuse_foreign_checkpoints(store, run_id, folder, None)  # no folder: fine
        (folder / "checkpoint-25").mkdir(parents=True)
        with pytest.raises(CheckpointFolderTaken, match=f"{folder} of new run {run_id}"):
            refuse_foreign_checkpoints(store, run_id, folder, None)
        assert (folder / "checkpoint-25").is_dir()
