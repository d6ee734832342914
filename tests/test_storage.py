"""The run store on real databases: a SQLite file in tmp and PostgreSQL (same tests, `store_url`)."""

from __future__ import annotations

import logging
import math
import sqlite3
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import create_engine, text

from engine.storage import (
    SCHEMA_VERSION,
    DuplicateStep,
    RunKind,
    RunStatus,
    SchemaTooNew,
    Store,
)
from engine.storage.migrations import MIGRATIONS, V3_STEP_COLUMNS
from engine.storage.schema import STEP_METRICS

CONFIG = {"run": {"seed": 3, "max_steps": 10}, "shaping": {"kappa": 2.0}}


@pytest.fixture
def store(store_url):
    with Store(store_url) as s:
        yield s


def new_run(store: Store, **kw) -> int:
    args = {"name": "r", "algorithm": "verl", "total_steps": 10, **kw}
    return store.create_run(CONFIG, **args)


def step_dict(step: int) -> dict:
    """Every typed column set to a distinct value derived from the step."""
    row = {"step": step, "payload": {"lr": 1e-6 * step, "note": f"s{step}"}}
    row["reward_means"] = {"accuracy": step / 10, "format": None}
    for i, name in enumerate(STEP_METRICS):
        row[name] = step * 1000 + i if name == "tokens" else step + i / 100
    return row


def sample_dict(rng: np.random.Generator, group: int, idx: int, length: int = 12) -> dict:
    return {
        "group_idx": group,
        "sample_idx": idx,
        "prompt": "What is 2+3?",
        "completion": f"answer {group}-{idx} ünïcode",
        "token_ids": rng.integers(0, 50_000, length),
        "token_entropy": rng.random(length) * 3,
        "token_logprob": -rng.random(length) * 5,
        "reward": float(idx % 2),
        "rewards": {"accuracy": float(idx % 2), "format": 0.5},
        "correct": bool(idx % 2),
        "advantage": 0.25 * idx - 0.5,
        "advantage_shaped": 0.3 * idx - 0.5,
        "bonus": 0.05 * idx,
        "er": 10.5 + idx,
        "erv": 0.1 * idx,
        "era": -0.02 * idx,
        "entropy": 1.25,
        "mean_logprob": -0.75,
        "length": length,
        "truncated": idx % 3 == 0,
        "curve": rng.random(5) * 20,
        "curve_stride": 4,
        "curve_positions": np.arange(1, 6) * 4,
        "curve_offset": 3,
        "answer_read": "" if idx == 0 else str(idx),
        "gold_read": "1",
    }


# ---- round trips -------------------------------------------------------------------------------


def test_run_round_trip(store):
    parent = new_run(store, name="base")
    run_id = new_run(
        store, name="dup", algorithm="grpo", total_steps=7, notes="n", parent_id=parent
    )
    run = store.get_run(run_id)
    assert (run.name, run.algorithm, run.total_steps, run.notes) == ("dup", "grpo", 7, "n")
    assert run.status is RunStatus.QUEUED and run.kind == RunKind.TRAIN
    assert run.config == CONFIG and run.environment == {} and run.parent_id == parent
    assert run.attempt == 1 and not run.cancel_requested and run.step == 0
    assert run.created_at.tzinfo is not None
    store.update_run(run_id, name="renamed", notes="more")
    assert (store.get_run(run_id).name, store.get_run(run_id).notes) == ("renamed", "more")
    eval_id = new_run(store, kind="eval")
    assert [r.id for r in store.list_runs()] == [eval_id, run_id, parent]
    assert [r.id for r in store.list_runs("eval")] == [eval_id]
    assert [r.id for r in store.list_runs(status=RunStatus.QUEUED)] == [eval_id, run_id, parent]


def test_steps_round_trip(store):
    run_id = new_run(store)
    for step in (2, 1, 3):  # order of writing does not matter
        store.log_step(run_id, step_dict(step))
    rows = store.steps(run_id)
    assert [r["step"] for r in rows] == [1, 2, 3]
    for row in rows:
        assert row == step_dict(row["step"])
    assert store.steps(run_id, ["reward_mean", "er_mean"]) == [
        {"step": s, "reward_mean": step_dict(s)["reward_mean"], "er_mean": step_dict(s)["er_mean"]}
        for s in (1, 2, 3)
    ]
    assert store.latest_step(run_id) == 3 and store.get_run(run_id).step == 3
    with pytest.raises(ValueError, match="unknown step columns"):
        store.steps(run_id, ["no_such_metric"])


def test_step_columns_match_step_dicts(store):
    """The monitor's columnar read equals steps() row by row: None -> NaN, ordered by step."""
    run_id = new_run(store)
    columns = ["tokens", "reward_mean", "heldout_accuracy", "er_p10"]
    assert {k: v.shape for k, v in store.step_columns(run_id, columns).items()} == {
        k: (0,) for k in ["step", *columns]
    }
    for step in (3, 1, 2):
        row = step_dict(step)
        if step == 2:
            row["heldout_accuracy"] = None
        store.log_step(run_id, row)
    got = store.step_columns(run_id, columns)
    assert list(got) == ["step", *columns]
    for name in ["step", *columns]:
        want = [np.nan if r[name] is None else r[name] for r in store.steps(run_id, columns)]
        assert got[name].dtype == np.float64
        np.testing.assert_array_equal(got[name], np.array(want, dtype=np.float64))
    assert np.isnan(got["heldout_accuracy"][1]) and got["step"].tolist() == [1.0, 2.0, 3.0]
    with pytest.raises(ValueError, match="not typed step columns"):
        store.step_columns(run_id, ["payload"])


def test_step_series_stay_exact_through_appends_and_resumes(store, tmp_path):
    """The monitor's step series are read once, then extended (engine.storage.step_cache); after
    appends, a step logged out of order, a reward function that appears later, and a resume
    that cuts back and re-logs as many steps with other values (same wall times, and on SQLite
    the same row ids), they equal an uncached read."""
    from sqlalchemy import event

    columns = ["tokens", "reward_mean", "er_p10"]
    run_id = new_run(store)
    store.claim_run(run_id, "h")
    statements: list[str] = []
    event.listen(store.engine, "before_cursor_execute", lambda *a: statements.append(a[2]))

    def log(steps, shift=0.0, means=None):
        for step in steps:
            row = step_dict(step)
            row["reward_mean"] += shift
            row["reward_means"] = means or {"accuracy": step / 10 + shift}
            store.log_step(run_id, row)

    def same_as_uncached():
        rows = store.steps(run_id, [*columns, "reward_means"])
        got = store.step_columns(run_id, columns)
        for name in ["step", *columns]:
            want = np.array([np.nan if r[name] is None else r[name] for r in rows], dtype=float)
            np.testing.assert_array_equal(got[name], want)
        means = store.step_reward_means(run_id)
        for name in {k for r in rows for k in r["reward_means"] or {}}:
            want = [(r["reward_means"] or {}).get(name, np.nan) for r in rows]
            np.testing.assert_array_equal(means[name], np.array(want, dtype=float))

    log(range(1, 5))
    same_as_uncached()
    statements.clear()
    log([5, 6])
    same_as_uncached()
    assert any("steps.step >" in s for s in statements), "the new steps alone were not read"
    log([10, 8], means={"accuracy": 1.0, "format": 0.5})  # out of order; a new reward function
    same_as_uncached()
    store.add_checkpoint(run_id, 3, tmp_path / "checkpoint-3")
    store.finish_run(run_id, RunStatus.INTERRUPTED, error="killed")
    assert store.requeue_for_resume(run_id) == 3
    log([4, 5, 6, 8, 10], shift=100.0)  # as many steps as were cut, other values
    same_as_uncached()
    assert store.step_columns(run_id, ["reward_mean"])["reward_mean"][-1] > 100


def test_step_values_none_nan_and_extra_keys(store):
    run_id = new_run(store)
    store.log_step(
        run_id,
        {"step": 1, "loss": float("nan"), "kl": np.float32(0.5), "extra": np.float64(2.5)},
    )
    (row,) = store.steps(run_id)
    assert row["loss"] is None and row["kl"] == 0.5 and row["reward_mean"] is None
    assert row["payload"] == {"extra": 2.5}


def test_samples_round_trip(store):
    rng = np.random.default_rng(0)
    run_id = new_run(store)
    written = [sample_dict(rng, g, i) for g in (1, 0) for i in (1, 0)]
    store.log_step(run_id, step_dict(1), written)
    store.log_step(run_id, step_dict(2), [sample_dict(rng, 0, 0, length=0)])
    rows = store.samples(run_id, 1)
    assert [(r["group_idx"], r["sample_idx"]) for r in rows] == [(0, 0), (0, 1), (1, 0), (1, 1)]
    by_key = {(w["group_idx"], w["sample_idx"]): w for w in written}
    for row in rows:
        w = by_key[(row["group_idx"], row["sample_idx"])]
        assert row["step"] == 1
        assert row["token_ids"].dtype == np.int32
        np.testing.assert_array_equal(row["token_ids"], w["token_ids"])
        for name in ("token_entropy", "token_logprob"):  # float32 storage (float16 before v5)
            np.testing.assert_array_equal(row[name], w[name].astype(np.float32))
        np.testing.assert_array_equal(row["curve"], w["curve"].astype(np.float32))
        np.testing.assert_array_equal(row["curve_positions"], w["curve_positions"])
        scalars = set(w) - {"token_ids", "token_entropy", "token_logprob", "curve"}
        scalars -= {"curve_positions"}
        assert {k: row[k] for k in scalars} == {k: w[k] for k in scalars}
    assert [r["sample_idx"] for r in store.samples(run_id, 1, group_idx=1)] == [0, 1]
    (empty,) = store.samples(run_id, 2)
    assert empty["token_ids"].shape == (0,)
    assert store.sample_steps(run_id) == [1, 2]


def test_sample_row_is_the_one_definition_of_a_response(store):
    """The samples table, the codec and the app's per-response columns all follow SampleRow: a
    row with every field set comes back with every field, and nothing else is a column."""
    from dataclasses import fields

    from app import queries
    from engine.storage.samples import SAMPLE_ARRAYS, SAMPLE_COLUMNS, SampleRow
    from engine.storage.schema import Sample

    assert [c.name for c in Sample.__table__.columns] == ["id", "run_id", "step", *SAMPLE_COLUMNS]
    rng = np.random.default_rng(5)
    values = sample_dict(rng, 1, 2)
    row = SampleRow(**{f.name: values[f.name] for f in fields(SampleRow)})
    run_id = new_run(store)
    store.log_step(run_id, step_dict(1), [row.as_dict()])
    (back,) = store.samples(run_id, 1)
    assert set(back) == {"step", *SAMPLE_COLUMNS}
    for name in SAMPLE_COLUMNS:
        if name in SAMPLE_ARRAYS:
            np.testing.assert_allclose(back[name], values[name], rtol=1e-3)
        else:
            assert back[name] == pytest.approx(values[name]), name
    shown = set(queries.STAT_KEYS) | set(queries.ANSWER_KEYS)
    shown |= {"rewards", "prompt", "completion", "group_idx", "sample_idx"}
    assert shown | set(SAMPLE_ARRAYS) == set(SAMPLE_COLUMNS)


def test_sample_values_are_the_samples_columns(store):
    """One SELECT of scalars equals the same values read through `samples` (the full decode),
    in (step, group, sample) order; empty values are NaN; steps outside the range and other
    runs' rows are left out."""
    rng = np.random.default_rng(2)
    run_id, other = new_run(store), new_run(store)
    for step in (3, 1, 2):
        rows = [sample_dict(rng, g, i) for g in (1, 0) for i in (2, 0, 1)]
        rows[0].update(er=None, length=None, correct=None, advantage=float("nan"))
        rows[1]["correct"] = False
        store.log_step(run_id, step_dict(step), rows)
    store.log_step(other, step_dict(2), [sample_dict(rng, 0, 0)])
    columns = ["er", "length", "correct", "advantage", "reward", "group_idx", "sample_idx"]

    def slow(lo: int, hi: int) -> dict[str, list]:
        steps = [s for s in store.sample_steps(run_id) if lo <= s <= hi]
        decoded = [r for s in steps for r in store.samples(run_id, s)]
        return {c: [r[c] for r in decoded] for c in ["step", *columns]}

    for lo, hi in ((None, None), (2, None), (None, 2), (2, 2), (4, 9)):
        got = store.sample_values(run_id, columns, step_min=lo, step_max=hi)
        want = slow(1 if lo is None else lo, 3 if hi is None else hi)
        assert list(got) == ["step", *columns]
        for name in ("step", "group_idx", "sample_idx"):
            assert got[name].dtype == np.int64 and got[name].tolist() == want[name]
        for name in ("er", "length", "correct", "advantage", "reward"):
            expected = np.array([np.nan if v is None else float(v) for v in want[name]])
            assert got[name].dtype == np.float64
            np.testing.assert_array_equal(got[name], expected)
    every = store.sample_values(run_id, columns)
    assert len(every["step"]) == 18 and np.isnan(every["correct"]).sum() == 3
    assert set(np.unique(every["correct"][~np.isnan(every["correct"])])) == {0.0, 1.0}
    empty = store.sample_values(404, ["er", "step"])
    assert list(empty) == ["step", "er"] and empty["step"].shape == (0,)
    assert empty["step"].dtype == np.int64
    with pytest.raises(ValueError, match="not sample scalar columns"):
        store.sample_values(run_id, ["curve"])


def test_set_progress_moves_the_run_without_a_step_row(store):
    run_id = new_run(store, kind="eval", total_steps=3)
    store.set_progress(run_id, 1)
    run = store.get_run(run_id)
    assert (run.step, run.total_steps, run.progress) == (1, 3, pytest.approx(1 / 3))
    store.set_progress(run_id, 2, total_steps=2)
    run = store.get_run(run_id)
    assert (run.step, run.total_steps, run.progress) == (2, 2, 1.0)
    assert store.steps(run_id) == [] and store.latest_step(run_id) == 0


def test_checkpoints_evals_events_round_trip(store, tmp_path):
    run_id = new_run(store)
    store.add_checkpoint(run_id, 5, tmp_path / "checkpoint-5")
    store.add_checkpoint(run_id, 2, tmp_path / "checkpoint-2")
    store.add_checkpoint(run_id, 5, tmp_path / "again-5")  # a re-save replaces the row
    assert [(c["step"], c["path"]) for c in store.checkpoints(run_id)] == [
        (2, str(tmp_path / "checkpoint-2")),
        (5, str(tmp_path / "again-5")),
    ]
    assert store.last_checkpoint(run_id)["step"] == 5
    store.add_eval(
        run_id, step=5, dataset="arith", n=4, ks=[1, 4], pass_at_k=[0.25, 0.5], per_problem=[1, 0]
    )
    (ev,) = store.evals(run_id)
    assert {k: ev[k] for k in ("step", "dataset", "n", "ks", "pass_at_k", "per_problem")} == {
        "step": 5,
        "dataset": "arith",
        "n": 4,
        "ks": [1, 4],
        "pass_at_k": [0.25, 0.5],
        "per_problem": [1, 0],
    }
    for i in range(5):
        store.add_event(run_id, f"line {i}", level="warning" if i == 4 else "info")
    tail = store.events(run_id, limit=3)
    assert [e["message"] for e in tail] == ["line 2", "line 3", "line 4"]
    assert tail[-1]["level"] == "warning"


def test_empty_reads(store):
    assert store.list_runs() == [] and store.get_run(404) is None
    run_id = new_run(store)
    assert store.steps(run_id) == [] and store.steps(run_id, ["loss"]) == []
    assert store.samples(run_id, 1) == [] and store.sample_steps(run_id) == []
    assert store.latest_step(run_id) == 0 and store.latest_step(404) == 0
    assert store.checkpoints(run_id) == [] and store.last_checkpoint(run_id) is None
    assert store.evals(run_id) == [] and store.events(404) == []


# ---- integrity ---------------------------------------------------------------------------------


def test_unique_run_step_and_atomic_step(store):
    """A duplicate step raises and writes nothing: neither the row nor its samples."""
    rng = np.random.default_rng(1)
    run_id, other = new_run(store), new_run(store)
    store.log_step(run_id, step_dict(1), [sample_dict(rng, 0, 0)])
    with pytest.raises(DuplicateStep):
        store.log_step(run_id, {**step_dict(1), "loss": -1.0}, [sample_dict(rng, 0, 1)])
    assert store.steps(run_id) == [step_dict(1)]
    assert [s["sample_idx"] for s in store.samples(run_id, 1)] == [0]
    store.log_step(other, step_dict(1))  # the same step number in another run is fine
    assert store.latest_step(other) == 1


def test_delete_run_cascades(store, tmp_path):
    rng = np.random.default_rng(2)
    run_id, keep = new_run(store), new_run(store)
    child = new_run(store, parent_id=run_id)
    for rid in (run_id, keep):
        store.log_step(rid, step_dict(1), [sample_dict(rng, 0, 0)])
        store.add_checkpoint(rid, 1, tmp_path / str(rid))
        store.add_eval(rid, step=1, dataset="d", n=1, ks=[1], pass_at_k=[1.0], per_problem=[1])
    assert store.delete_run(run_id) and not store.delete_run(run_id)
    assert store.get_run(run_id) is None and store.steps(run_id) == []
    assert store.samples(run_id, 1) == [] and store.checkpoints(run_id) == []
    assert store.evals(run_id) == [] and store.events(run_id) == []
    assert store.get_run(child).parent_id is None
    assert len(store.steps(keep)) == len(store.samples(keep, 1)) == 1


# ---- lifecycle transitions -----------------------------------------------------------------------


def test_cancel_queued_and_running(store):
    queued, running, done = new_run(store), new_run(store), new_run(store)
    assert store.request_cancel(queued) is RunStatus.CANCELLED
    assert store.get_run(queued).status is RunStatus.CANCELLED
    assert store.claim_run(running, "h") and store.claim_run(done, "h")
    assert store.request_cancel(running) is RunStatus.RUNNING
    assert store.cancel_requested(running) and store.heartbeat(running)
    assert store.get_run(running).status is RunStatus.RUNNING
    store.finish_run(done, RunStatus.COMPLETED)
    assert store.request_cancel(done) is RunStatus.COMPLETED
    with pytest.raises(LookupError):
        store.request_cancel(404)


def test_claim_is_exclusive_and_finish_is_conditional(store):
    run_id = new_run(store)
    assert store.claim_run(run_id, "a") and not store.claim_run(run_id, "b")
    assert store.get_run(run_id).host == "a"
    run = store.mark_running(run_id, host="a", pid=123, environment={"seed": 3})
    assert run.status is RunStatus.RUNNING and run.pid == 123 and run.environment == {"seed": 3}
    assert store.finish_run(run_id, RunStatus.INTERRUPTED, error="gone")
    assert not store.finish_run(run_id, RunStatus.FAILED, error="late")  # one outcome only
    assert store.get_run(run_id).error == "gone"
    assert store.finish_run(
        run_id,
        RunStatus.COMPLETED,
        attempt=1,
        from_statuses=(RunStatus.RUNNING, RunStatus.INTERRUPTED),
    )
    assert not store.finish_run(run_id, RunStatus.FAILED, attempt=2)


def test_heartbeat_revives_a_stale_run_and_stops_a_superseded_attempt(store):
    """A process marked interrupted for a stale heartbeat that beats again is running again;
    once the run was resumed as a new attempt, the old process is told to stop."""
    run_id = new_run(store)
    store.claim_run(run_id, "h")
    store.mark_running(run_id, host="h", pid=1, environment={})
    assert store.finish_run(run_id, RunStatus.INTERRUPTED, error="no heartbeat for 31 s")
    assert store.heartbeat(run_id, attempt=1) is False
    run = store.get_run(run_id)
    assert run.status is RunStatus.RUNNING and run.error is None
    store.finish_run(run_id, RunStatus.INTERRUPTED, error="no heartbeat")
    store.requeue_for_resume(run_id)
    assert store.heartbeat(run_id, attempt=1) is True  # attempt 2 owns the run now
    assert store.get_run(run_id).status is RunStatus.QUEUED
    assert store.heartbeat(404) is True


def test_a_directly_trained_run_is_never_claimed(store):
    run_id = new_run(store, claimed_by="laptop")
    run = store.get_run(run_id)
    assert run.status is RunStatus.RUNNING and run.host == "laptop" and run.heartbeat_at
    assert not store.claim_run(run_id, "worker-host")
    assert store.mark_running(run_id, host="laptop", pid=7, environment={}).pid == 7


def test_requeue_for_resume_discards_after_checkpoint(store, tmp_path):
    rng = np.random.default_rng(3)
    run_id = new_run(store)
    store.claim_run(run_id, "h")
    for step in range(1, 8):
        store.log_step(run_id, step_dict(step), [sample_dict(rng, 0, 0)])
        if step in (3, 6):
            store.add_checkpoint(run_id, step, tmp_path / f"checkpoint-{step}")
    store.add_eval(run_id, step=7, dataset="d", n=1, ks=[1], pass_at_k=[0.0], per_problem=[0])
    store.add_eval(run_id, step=6, dataset="d", n=1, ks=[1], pass_at_k=[1.0], per_problem=[1])
    assert store.requeue_for_resume(run_id) is None  # running: not resumable
    store.finish_run(run_id, RunStatus.INTERRUPTED, error="killed by signal SIGKILL")
    assert store.requeue_for_resume(run_id) == 6
    run = store.get_run(run_id)
    assert run.status is RunStatus.QUEUED and run.attempt == 2 and run.step == 6
    assert run.error is None and run.pid is None and not run.cancel_requested
    assert [s["step"] for s in store.steps(run_id)] == [1, 2, 3, 4, 5, 6]
    assert store.sample_steps(run_id) == [1, 2, 3, 4, 5, 6]
    assert [e["step"] for e in store.evals(run_id)] == [6]
    messages = [e["message"] for e in store.events(run_id)]
    assert "discarded steps 7..7, recorded after checkpoint 6" in messages
    fresh = new_run(store)
    assert store.request_cancel(fresh) is RunStatus.CANCELLED
    assert store.requeue_for_resume(fresh) == 0  # no checkpoint: from the start
    assert store.requeue_for_resume(404) is None


def test_prune_checkpoints_keeps_the_newest(store, tmp_path):
    run_id = new_run(store)
    for step in (10, 20, 30, 40, 50):
        store.add_checkpoint(run_id, step, tmp_path / f"checkpoint-{step}")
    doomed = store.prune_checkpoints(run_id, 3)
    assert sorted(d["step"] for d in doomed) == [10, 20]
    assert [c["step"] for c in store.checkpoints(run_id)] == [30, 40, 50]
    assert [d["step"] for d in store.prune_checkpoints(run_id, 0)] == [40, 30]
    assert store.last_checkpoint(run_id)["step"] == 50


# ---- schema versions ---------------------------------------------------------------------------


def _execute(url: str, *statements: str) -> None:
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            for statement in statements:
                conn.execute(text(statement))
    finally:
        engine.dispose()


# what each migration added, dropped again to make a database as an older version wrote it
ADDED_IN = {
    2: ["ALTER TABLE runs DROP COLUMN attempt", "ALTER TABLE events DROP COLUMN level"],
    3: [f"ALTER TABLE steps DROP COLUMN {c}" for c in V3_STEP_COLUMNS]
    + ["ALTER TABLE events DROP COLUMN kind", "ALTER TABLE events DROP COLUMN step"],
    4: ["ALTER TABLE samples DROP COLUMN truncated"],
    5: ["ALTER TABLE samples DROP COLUMN answer_read", "ALTER TABLE samples DROP COLUMN gold_read"],
    6: [
        "ALTER TABLE steps DROP COLUMN clipped_ratio",
        "ALTER TABLE steps DROP COLUMN reward_means",
    ],
    7: ["DROP TABLE counters"],
}


def _downgrade(url: str, version: int) -> None:
    """Make the database look as schema `version` wrote it."""
    drops = [sql for v, stmts in ADDED_IN.items() if v > version for sql in stmts]
    _execute(url, *drops, f"UPDATE schema_version SET version = {version}")


def test_migration_table_covers_every_version():
    assert sorted(ADDED_IN) == [m.version for m in MIGRATIONS] == list(range(2, SCHEMA_VERSION + 1))


def test_migrates_a_v2_database_to_health_columns(store_url):
    """A v2 database (no health step columns, no events.kind/step) is migrated, keeps its rows
    and then records health numbers and flag events."""
    with Store(store_url) as store:
        run_id = new_run(store)
        store.log_step(run_id, {"step": 1, "reward_mean": 0.5, "payload": {"x": 1}})
    _downgrade(store_url, 2)
    with Store(store_url) as store:
        assert store.schema_version == SCHEMA_VERSION
        assert store.steps(run_id, ["reward_mean", "truncated_share"]) == [
            {"step": 1, "reward_mean": 0.5, "truncated_share": None}
        ]
        assert all(e["kind"] is None for e in store.events(run_id))
        flag = {"message": "truncated", "level": "warning", "kind": "flag:truncation"}
        store.log_step(run_id, {"step": 2, "truncated_share": 0.9}, events=[flag])
        (event,) = store.kind_events(["flag:"], [run_id])
        assert (event["step"], event["kind"], event["level"]) == (2, "flag:truncation", "warning")


def test_migrates_a_v3_database_to_truncated_samples(store_url):
    """A v3 database's responses read back with truncated unknown (None); new ones keep it."""
    with Store(store_url) as store:
        run_id = new_run(store)
        store.log_step(run_id, {"step": 1}, [sample_dict(np.random.default_rng(0), 0, 0)])
    _downgrade(store_url, 3)
    with Store(store_url) as store:
        assert store.schema_version == SCHEMA_VERSION
        (old,) = store.samples(run_id, 1)
        assert old["truncated"] is None and old["length"] == 12
        new = sample_dict(np.random.default_rng(1), 0, 0)  # sample 0: truncated
        store.log_step(run_id, {"step": 2}, [new])
        assert store.samples(run_id, 2)[0]["truncated"] is True
        assert store.sample_values(run_id, ["truncated"])["truncated"].tolist()[1] == 1.0


def test_migrates_a_v5_database_to_typed_clipped_ratio_and_reward_means(store_url):
    with Store(store_url) as store:
        run_id = new_run(store)
        store.log_step(run_id, {"step": 1, "payload": {"completions/clipped_ratio": 0.5}})
    _downgrade(store_url, 5)
    with Store(store_url) as store:
        assert store.schema_version == SCHEMA_VERSION
        assert store.steps(run_id, ["clipped_ratio", "reward_means"]) == [
            {"step": 1, "clipped_ratio": None, "reward_means": None}
        ]
        store.log_step(run_id, {"step": 2, "clipped_ratio": 0.25, "reward_means": {"acc": 1.0}})
        means = store.step_reward_means(run_id)
        np.testing.assert_array_equal(means["acc"], [np.nan, 1.0])
        assert store.step_columns(run_id, ["clipped_ratio"])["clipped_ratio"][1] == 0.25


def test_migrates_an_older_database(store_url):
    """A v1 database (no runs.attempt, no events.level) is migrated and keeps its rows."""
    with Store(store_url) as store:
        run_id = new_run(store)
        store.log_step(run_id, step_dict(1))
    _downgrade(store_url, 1)
    with Store(store_url) as store:
        assert store.schema_version == SCHEMA_VERSION
        run = store.get_run(run_id)
        assert run.attempt == 1 and run.config == CONFIG
        v1_lacks = dict.fromkeys([*V3_STEP_COLUMNS, "clipped_ratio", "reward_means"])
        assert store.steps(run_id) == [step_dict(1) | v1_lacks]
        assert {e["level"] for e in store.events(run_id)} == {"info"}
        store.add_event(run_id, "after migration", level="error")
        assert store.events(run_id)[-1]["level"] == "error"


def test_run_ids_are_never_reused(store_url):
    """Deleting the newest run, then creating one, reused its id on SQLite (and with it the
    deleted run's kept checkpoint folder): ids only grow, on every backend."""
    with Store(store_url) as store:
        first, second = new_run(store), new_run(store)
        assert store.delete_run(second)
        third = new_run(store)
        assert third > second > first
        assert store.delete_run(third) and store.delete_run(first)
    with Store(store_url) as store:  # the counter is in the database, not the process
        assert new_run(store) == third + 1


def test_migrates_a_v6_database_to_run_counters(store_url):
    """A database written by schema v6 (no counters table) keeps its runs and from then on never
    reuses an id, even after its newest run is deleted."""
    with Store(store_url) as store:
        ids = [new_run(store) for _ in range(3)]
        store.log_step(ids[2], step_dict(1))
    _downgrade(store_url, 6)
    with Store(store_url) as store:
        assert store.schema_version == SCHEMA_VERSION
        assert [r.id for r in store.list_runs()] == ids[::-1]
        assert store.steps(ids[2]) == [step_dict(1)]
        store.delete_run(ids[2])
        assert new_run(store) == ids[2] + 1


def test_refuses_a_newer_database(store_url):
    with Store(store_url) as store:
        new_run(store)
    _execute(store_url, f"UPDATE schema_version SET version = {SCHEMA_VERSION + 1}")
    with pytest.raises(SchemaTooNew, match=rf"schema version {SCHEMA_VERSION + 1}.*Upgrade"):
        Store(store_url)
    engine = create_engine(store_url)
    with engine.connect() as conn:  # untouched
        assert (
            conn.execute(text("SELECT version FROM schema_version")).scalar() == SCHEMA_VERSION + 1
        )
        assert conn.execute(text("SELECT count(*) FROM runs")).scalar() == 1
    engine.dispose()


# ---- SQLite specifics --------------------------------------------------------------------------


def test_sqlite_connection_settings(tmp_path):
    path = tmp_path / "s.db"
    with Store(f"sqlite:///{path}") as store, store.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30_000
    assert sqlite3.connect(path).execute("PRAGMA integrity_check").fetchone() == ("ok",)


def test_warns_when_sqlite_refuses_wal(tmp_path, caplog):
    """A VFS without shared memory (as on some network file systems) cannot use WAL."""
    path = tmp_path / "nfs.db"
    url = f"sqlite:///file:{path}?vfs=unix-none&uri=true"
    with caplog.at_level(logging.WARNING, "engine.storage.connect"), Store(url) as store:
        store.log_step(new_run(store), step_dict(1))
    assert any(str(path) in r.getMessage() and "WAL" in r.getMessage() for r in caplog.records)


WRITER = textwrap.dedent(
    """
    import sys, numpy as np
    from engine.storage import Store
    store = Store(sys.argv[1]); run_id = int(sys.argv[2]); rng = np.random.default_rng(0)
    for step in range(1, int(sys.argv[3]) + 1):
        samples = [dict(group_idx=g, sample_idx=i, completion="x" * 300,
                        token_ids=rng.integers(0, 9, 96), token_entropy=rng.random(96),
                        curve=rng.random(40)) for g in range(4) for i in range(4)]
        store.log_step(run_id, {"step": step, "reward_mean": step / 10}, samples)
    """
)


def test_readers_polling_during_writes_see_no_lock_errors(store_url):
    """A training process writes steps while the app polls and a heartbeat thread writes."""
    n_steps = 40
    store = Store(store_url)
    run_id = new_run(store)
    store.claim_run(run_id, "h")
    errors: list[BaseException] = []
    seen: list[int] = []
    done = threading.Event()

    def poll(reader: Store) -> None:
        try:
            while not done.is_set():
                seen.append(reader.latest_step(run_id))
                rows = reader.steps(run_id, ["reward_mean"])
                if rows:
                    reader.samples(run_id, rows[-1]["step"])
                    assert [r["step"] for r in rows] == list(range(1, len(rows) + 1))
        except BaseException as exc:
            errors.append(exc)

    def beat() -> None:
        try:
            while not done.wait(0.02):
                store.heartbeat(run_id)
        except BaseException as exc:
            errors.append(exc)

    readers = [Store(store_url) for _ in range(2)]
    threads = [threading.Thread(target=poll, args=(r,)) for r in readers]
    threads.append(threading.Thread(target=beat))
    for t in threads:
        t.start()
    try:
        proc = subprocess.run(
            [sys.executable, "-c", WRITER, store_url, str(run_id), str(n_steps)],
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        done.set()
        for t in threads:
            t.join()
    assert proc.returncode == 0, proc.stderr
    assert not errors, errors
    assert max(seen) == n_steps and len(set(seen)) > 2  # the readers really overlapped writes
    assert store.latest_step(run_id) == n_steps
    for s in (store, *readers):
        s.close()


CLAIMER = textwrap.dedent(
    """
    import sys
    from engine.storage import Store
    store = Store(sys.argv[1])
    store.get_run(int(sys.argv[2]))  # connected and warm
    print("ready", flush=True)
    sys.stdin.readline()  # the starting gun
    print(store.claim_run(int(sys.argv[2]), sys.argv[3]), flush=True)
    """
)


def test_claim_race_between_processes(store_url):
    """Workers in separate processes claim one queued run at the same instant: one wins."""
    with Store(store_url) as store:
        run_id = new_run(store)
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", CLAIMER, store_url, str(run_id), f"w{i}"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for i in range(3)
    ]
    assert [p.stdout.readline().strip() for p in procs] == ["ready"] * 3
    for p in procs:
        p.stdin.write("go\n")
        p.stdin.flush()
    answers = [p.communicate(timeout=60)[0].strip() for p in procs]
    assert sorted(answers) == ["False", "False", "True"], answers
    with Store(store_url) as store:
        winner = store.get_run(run_id).host
    assert winner == f"w{answers.index('True')}"


def test_claim_race_between_threads(store_url):
    with Store(store_url) as store:
        run_ids = [new_run(store) for _ in range(5)]
    stores = [Store(store_url) for _ in range(6)]
    barrier = threading.Barrier(len(stores))
    wins: dict[int, list[int]] = {r: [] for r in run_ids}

    def claim(i: int) -> None:
        barrier.wait()
        for run_id in run_ids:
            if stores[i].claim_run(run_id, f"t{i}"):
                wins[run_id].append(i)

    threads = [threading.Thread(target=claim, args=(i,)) for i in range(len(stores))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(len(w) == 1 for w in wins.values()), wins
    for s in stores:
        s.close()


def test_json_with_non_finite_values_is_valid_everywhere(store):
    run_id = new_run(store)
    store.log_step(run_id, {"step": 1, "payload": {"x": [1.0, math.inf, np.nan]}})
    assert store.steps(run_id)[0]["payload"] == {"x": [1.0, None, None]}


# ---- export ------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["csv", "parquet", "jsonl"])
def test_export_round_trip(data_root, fmt, capsys):
    import json

    import pandas as pd

    from engine.cli import main as cli_main

    rng = np.random.default_rng(4)
    with Store.open(data_root) as store:
        run_id = new_run(store)
        for step in (1, 2):
            store.log_step(run_id, step_dict(step), [sample_dict(rng, 0, i) for i in range(3)])
        store.add_eval(
            run_id, step=2, dataset="d", n=2, ks=[1, 2], pass_at_k=[0.5, 0.75], per_problem=[1, 2]
        )
        expected = {
            "steps": store.steps(run_id),
            "samples": [s for step in (1, 2) for s in store.samples(run_id, step)],
            "evals": store.evals(run_id),
        }
    for what, rows in expected.items():
        args = ["export", str(run_id), "--format", fmt, "--what", what]
        assert cli_main([*args, "--data-dir", str(data_root.root)]) == 0
        out = Path(capsys.readouterr().out.strip())
        assert out == data_root.exports / f"run{run_id}-{what}.{fmt}"
        if fmt == "jsonl":
            got = [json.loads(line) for line in out.read_text().splitlines()]
        else:
            got = (pd.read_csv if fmt == "csv" else pd.read_parquet)(out).to_dict("records")
        assert len(got) == len(rows)
        for g, r in zip(got, rows, strict=True):
            assert g["step"] == r["step"]
            if what == "steps":
                assert g["reward_mean"] == pytest.approx(r["reward_mean"])
                payload = g["payload"] if fmt == "jsonl" else json.loads(g["payload"])
                assert payload == r["payload"]
            elif what == "samples":
                ids = g["token_ids"] if fmt != "csv" else json.loads(g["token_ids"])
                assert list(ids) == r["token_ids"].tolist()
                assert g["completion"] == r["completion"]
            else:
                ks = g["ks"] if fmt != "csv" else json.loads(g["ks"])
                assert list(ks) == [1, 2]
    args = ["export", "404", "--format", fmt, "--data-dir", str(data_root.root)]
    assert cli_main(args) == 1


# ---- health: payload values, flag events -----------------------------------------------------


def test_step_payload_columns_read_numeric_payload_keys_by_step(store):
    run_id = new_run(store)
    store.log_step(run_id, {"step": 1, "completions/clipped_ratio": 0.25})
    store.log_step(run_id, {"step": 2, "payload": {"rewards/accuracy/mean": 0.5}})
    store.log_step(run_id, {"step": 3, "completions/clipped_ratio": float("nan")})
    cols = store.step_payload_columns(
        run_id, ["completions/clipped_ratio", "rewards/accuracy/mean"]
    )
    np.testing.assert_array_equal(cols["step"], [1, 2, 3])
    np.testing.assert_array_equal(cols["completions/clipped_ratio"], [0.25, np.nan, np.nan])
    np.testing.assert_array_equal(cols["rewards/accuracy/mean"], [np.nan, 0.5, np.nan])
    assert store.last_payload_keys(run_id) == ["completions/clipped_ratio"]
    assert store.step_payload_columns(new_run(store), ["x"])["x"].shape == (0,)


def test_kind_events_by_prefix_and_resume_drops_flags_after_the_checkpoint(store):
    run_id, other = new_run(store), new_run(store)
    for step in (1, 2, 3):
        kinds = [{"message": f"m{step}", "kind": "flag:tied_groups", "level": "warning"}]
        store.log_step(run_id, {"step": step}, events=kinds)
    store.log_step(other, {"step": 1}, events=[{"message": "c", "kind": "clear:truncation"}])
    assert [e["step"] for e in store.kind_events(["flag:"], [run_id])] == [1, 2, 3]
    assert [e["run_id"] for e in store.kind_events(["flag:", "clear:"])] == [run_id] * 3 + [other]
    store.add_checkpoint(run_id, 2, "/tmp/ck2")
    store.mark_running(run_id, host="h", pid=1, environment={})
    store.finish_run(run_id, RunStatus.CANCELLED)
    assert store.requeue_for_resume(run_id) == 2
    assert [e["step"] for e in store.kind_events(["flag:"], [run_id])] == [1, 2]
    assert any("discarded steps 3..3" in e["message"] for e in store.events(run_id))


def test_a_second_store_in_one_process_keeps_the_first_ones_wal(tmp_path):
    """Opening a second Store on the same SQLite file used to read its header with open()/close():
    closing that descriptor dropped every POSIX lock of the process, so another process closing
    its connection deleted the WAL under the first store, whose later runs vanished (a run queued
    from the dashboard was "no run 1 in the store" for its training process)."""
    url = f"sqlite:///{tmp_path / 'studio.db'}"
    other = [sys.executable, "-c", f"from engine.storage import Store\nwith Store({url!r}) as s: print([r.id for r in s.list_runs()])"]  # fmt: skip
    with Store(url) as first:
        Store(url).close()  # e.g. the embedded worker's store, opened after the app's
        subprocess.run(other, check=True, capture_output=True)  # another process opens and closes
        run_id = first.create_run({}, name="kept", algorithm="verl", total_steps=1)
        seen = subprocess.run(other, check=True, capture_output=True, text=True).stdout
    assert seen.strip() == f"[{run_id}]"
