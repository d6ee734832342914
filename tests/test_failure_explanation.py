"""A run's stored error explained (engine.runs.failure): real error texts from real failures.

Each case raises the error the way a run meets it (the engine's own loaders and checks, torch's
allocator, the worker's reason for a killed process), stores it as the lifecycle does (the
traceback's tail) and checks the kind, the config field and that the paragraph quotes the last
line whole. Two runs fail at start for real: a dataset file removed after submit, and one
rewritten as latin-1 after submit.
"""

from __future__ import annotations

import errno
import json
import math
import re
import sys
from pathlib import Path

import pytest

from engine.runs.failure import explain_failure, last_exception_line, shorten
from engine.runs.lifecycle import traceback_tail


def stored_error(fn, *args, **kwargs) -> str:
    """The text the lifecycle stores when `fn(*args, **kwargs)` raises inside a run."""
    try:
        fn(*args, **kwargs)
    except BaseException:  # noqa: BLE001 - whatever it raises is what a run would store
        return traceback_tail(*sys.exc_info())
    raise AssertionError(f"{fn} did not raise")


def write_rows(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def check(error: str, kind: str, field: str) -> None:
    got = explain_failure(error)
    assert got is not None and (got.kind, got.field) == (kind, field), (got, error)
    last = last_exception_line(error)
    assert got.detail == shorten(last) and last.startswith(got.detail.rstrip("…"))
    paragraph = got.paragraph()
    assert "\n" not in paragraph and "Traceback" not in paragraph and 'File "' not in paragraph
    if field:
        assert f"The field to change: {field}." in paragraph


def test_missing_model_folder(tmp_path):
    from engine.models.loading import locate

    check(stored_error(locate, str(tmp_path / "gone-7b")), "model", "model.name_or_path")
    check(stored_error(locate, str(write_rows(tmp_path / "f", []))), "model", "model.name_or_path")


def test_dataset_missing_empty_and_not_utf8(tmp_path):
    from engine.config import DataConfig
    from engine.data.files import read_table
    from engine.data.tasks import load_dataset_for

    check(stored_error(read_table, tmp_path / "gone.jsonl"), "dataset", "data.task")
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    check(stored_error(load_dataset_for, DataConfig(task=str(empty))), "dataset", "data.task")
    latin = tmp_path / "latin.jsonl"
    latin.write_bytes('{"question": "caf\u00e9", "answer": "1"}\n'.encode("latin-1"))
    check(stored_error(read_table, latin), "dataset_encoding", "data.task")
    for name, data in (  # not text at all: was explained as latin-1 text
        ("packed.jsonl", bytes.fromhex("1f8b08000000000000ff") + bytes(20)),
        ("excel.csv", "question\tanswer\n1+1\t2\n".encode("utf-16")),
    ):
        (tmp_path / name).write_bytes(data)
        check(stored_error(read_table, tmp_path / name), "dataset_not_text", "data.task")
        assert (
            "latin-1" not in explain_failure(stored_error(read_table, tmp_path / name)).paragraph()
        )


def test_dataset_fields(tmp_path):
    from engine.config import DataConfig
    from engine.data.tasks import load_dataset_for

    path = write_rows(tmp_path / "rows.jsonl", [{"q": "1+1", "a": "2"}])
    error = stored_error(load_dataset_for, DataConfig(task=str(path)))
    check(error, "dataset_fields", "data.question_field")


def test_eval_dataset_blames_its_field(tmp_path):
    error = f"DatasetLoadError: dataset file not found: {tmp_path / 'held.jsonl'}"
    got = explain_failure(error, {"data": {"eval_task": str(tmp_path / "held.jsonl")}})
    assert got is not None and got.field == "data.eval_task"


def test_unknown_reward_and_nan_reward():
    from engine.data.rewards import get_reward
    from engine.training.reward_check import check_rewards

    check(stored_error(get_reward, "acuracy"), "reward", "data.reward")
    check(stored_error(get_reward, "nosuchpkg.rewards:score"), "reward", "data.reward")
    check(stored_error(check_rewards, "acc", [math.nan], 1), "nan_reward", "data.reward")


def test_diverged_model():
    from engine.training.trainer import NonFiniteRun

    def diverge():
        raise NonFiniteRun(12, 5, 4)

    check(stored_error(diverge), "nan", "grpo.learning_rate")


def test_out_of_memory():
    import torch

    error = stored_error(torch.empty, 1 << 62, dtype=torch.uint8)  # the CPU allocator refuses
    check(error, "out_of_memory", "grpo.per_device_train_batch_size")


def test_no_space_left(tmp_path):
    def full_disk():  # how the trainer re-raises a checkpoint write on a full disk
        raise OSError(errno.ENOSPC, "No space left on device", str(tmp_path))

    check(stored_error(full_disk), "no_space", "run.save_total_limit")


def test_killed_and_interrupted():
    from engine.runs.lifecycle import SIGTERM_NOT_CANCEL

    check("killed by signal SIGKILL (kill -9 or the out-of-memory killer)", "interrupted", "")
    check(SIGTERM_NOT_CANCEL, "interrupted", "")
    check(stored_error(lambda: (_ for _ in ()).throw(KeyboardInterrupt())), "interrupted", "")


def test_other_errors_keep_their_last_line_whole():
    """A generic failure still says its last line; a long one is cut at a word, with "…"."""
    words = " ".join(f"word{i}" for i in range(200))

    def fail():
        raise RuntimeError(f"something odd happened: {words}")

    got = explain_failure(stored_error(fail))
    assert got is not None and got.kind == "other" and not got.field
    assert got.detail.startswith("RuntimeError: something odd happened: word0 word1")
    assert got.detail.endswith("…") and len(got.detail) <= 400
    assert re.fullmatch(r".* word\d+…", got.detail), got.detail[-40:]
    assert explain_failure(None) is None and explain_failure("  \n") is None


def test_worker_reason_with_a_log_tail():
    """A process that died without recording: the worker's reason quotes its log's tail."""
    reason = (
        "exited with code 1; see the run's log: Traceback (most recent call last):\n"
        '  File "/srv/engine/training/train.py", line 88, in main\n'
        "engine.models.loading.ModelLoadError: model folder not found: /models/x\n"
        "[rank0]: done"
    )
    check(reason, "model", "model.name_or_path")


@pytest.mark.timeout(600)
@pytest.mark.parametrize("damage", ["removed", "latin-1"])
def test_run_failing_at_start_is_explained(tmp_path, damage):
    """A run whose dataset file changed after submit fails at start; its stored error explains
    itself (what, the field, the fix) without a traceback."""
    from engine.runs.admission import AccessPolicy
    from engine.runs.service import submit
    from engine.storage import Store
    from engine.training.train import main
    from tests.fixtures.training import data_root_at, tiny_config

    rows = [{"question": f"{i}+1", "answer": str(i + 1)} for i in range(8)]
    path = write_rows(tmp_path / "rows.jsonl", rows)
    root = data_root_at(tmp_path / "home")
    cfg = tiny_config(f"data.task={path}", "run.eval_every=0")
    with Store(root.db_url) as store:
        run_id = submit(store, cfg, policy=AccessPolicy.command_line(), claimed_by="test")
        stored = store.get_run(run_id).config
    if damage == "removed":
        path.unlink()
    else:
        path.write_bytes('{"question": "caf\u00e9", "answer": "1"}\n'.encode("latin-1"))
    from engine.config import StudioConfig

    with pytest.raises(Exception):  # noqa: B017 - whatever the loader raises is recorded
        main(StudioConfig.from_dict(stored), root=root, run_id=run_id, progress=False)
    with Store(root.db_url) as store:
        run = store.get_run(run_id)
    assert str(run.status) == "failed", run.status
    got = explain_failure(run.error, run.config)
    want = "dataset" if damage == "removed" else "dataset_encoding"
    assert got is not None and (got.kind, got.field) == (want, "data.task"), (got, run.error)


@pytest.mark.timeout(600)
def test_a_dataset_smaller_than_one_step_fails_instead_of_completing(tmp_path):
    """Fewer rows than the prompts one step draws: Transformers ends training at step 0 without
    an error, and the run said "completed, 0 / N". It fails, naming the rows and the fix."""
    from engine.config import StudioConfig
    from engine.runs.admission import AccessPolicy
    from engine.runs.service import submit
    from engine.storage import Store
    from engine.training.train import main
    from tests.fixtures.training import data_root_at, tiny_config

    path = write_rows(tmp_path / "one.jsonl", [{"question": "1+1", "answer": "2"}])
    root = data_root_at(tmp_path / "home")
    cfg = tiny_config(f"data.task={path}", "run.eval_every=0")  # 16 / 8 = 2 prompts a step
    with Store(root.db_url) as store:
        run_id = submit(store, cfg, policy=AccessPolicy.command_line(), claimed_by="test")
        stored = store.get_run(run_id).config
    with pytest.raises(ValueError, match="has 1 rows, fewer than the 2 prompts"):
        main(StudioConfig.from_dict(stored), root=root, run_id=run_id, progress=False)
    with Store(root.db_url) as store:
        run = store.get_run(run_id)
    assert str(run.status) == "failed" and run.step == 0, (run.status, run.step)
    got = explain_failure(run.error, run.config)
    assert got is not None and (got.kind, got.field) == ("dataset", "data.task"), run.error
