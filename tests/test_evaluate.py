"""pass@k: the stable product form against brute-force enumeration and exact binomials."""

from __future__ import annotations

import itertools
import math
import os
import subprocess
import sys
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.config import StudioConfig
from engine.evaluation.jobs import EvalConfig
from engine.evaluation.passk import pass_at_k, pass_at_k_curve
from tests.conftest import require


def brute_force_pass_at_k(n: int, c: int, k: int) -> float:
    """Fraction of all k-subsets of n samples (c of them correct) holding a correct one."""
    samples = [True] * c + [False] * (n - c)
    subsets = list(itertools.combinations(range(n), k))
    hits = sum(any(samples[i] for i in s) for s in subsets)
    return hits / len(subsets)


@pytest.mark.parametrize("n", range(1, 11))
def test_matches_enumeration_for_every_c_and_k(n):
    for c in range(n + 1):
        for k in range(1, n + 1):
            assert pass_at_k(n, c, k) == pytest.approx(brute_force_pass_at_k(n, c, k), abs=1e-12)


@settings(max_examples=200, deadline=None, derandomize=True)
@given(
    st.integers(1, 400).flatmap(
        lambda n: st.tuples(st.just(n), st.integers(0, n), st.integers(1, n))
    )
)
def test_matches_exact_binomials_for_large_n(nck):
    """Large n (C(400, 200) ~ 1e119) stays accurate: no big binomial is ever formed."""
    n, c, k = nck
    exact = 1 - Fraction(math.comb(n - c, k), math.comb(n, k))
    assert pass_at_k(n, c, k) == pytest.approx(float(exact), rel=1e-10, abs=1e-12)


def test_curve_is_the_mean_over_problems_and_rises_with_k():
    counts, n = [0, 1, 3, 8], 8
    curve = pass_at_k_curve(counts, n, range(1, n + 1))
    for k, value in zip(range(1, n + 1), curve, strict=True):
        assert value == pytest.approx(sum(brute_force_pass_at_k(n, c, k) for c in counts) / 4)
    assert all(a <= b + 1e-12 for a, b in itertools.pairwise(curve))
    assert curve[0] == pytest.approx(12 / 32)  # pass@1 = mean c / n


def test_rejects_impossible_arguments():
    for n, c, k in [(4, 5, 1), (4, -1, 1), (4, 2, 0), (4, 2, 5)]:
        with pytest.raises(ValueError):
            pass_at_k(n, c, k)


def test_config_needs_n_at_least_k():
    from engine.config import ConfigError

    with pytest.raises(ConfigError) as err:
        EvalConfig.from_dict({"n": 4, "k_max": 8, "bogus": 1})
    paths = [p for p, _ in err.value.errors]
    assert "eval.n" in paths and "eval.bogus" in paths
    assert EvalConfig.from_dict({"n": 8, "k_max": 8}).ks == list(range(1, 9))


def test_targets_follow_the_source_runs_checkpoints(data_root):
    from engine.evaluation.jobs import eval_targets
    from engine.storage import Store

    store = Store(data_root.db_url)
    cfg = StudioConfig()
    run_id = store.create_run(cfg.to_dict(), name="src", algorithm="verl", total_steps=4)
    for step in (2, 4):
        store.add_checkpoint(run_id, step, f"/ckpt/{step}")
    every = eval_targets(store, EvalConfig(source_run_id=run_id, include_base=True), cfg)
    assert [(t.step, t.path) for t in every] == [(0, "embedded"), (2, "/ckpt/2"), (4, "/ckpt/4")]
    with pytest.raises(ValueError, match=r"no checkpoint at step\(s\) \[3\]"):
        eval_targets(store, EvalConfig(source_run_id=run_id, checkpoint_steps=[3]), cfg)


def test_eval_job_through_the_cli(finished_run_copy):
    """A queued eval run executed by `verl-studio evaluate`: one row per model, coherent numbers."""
    from engine.runs.admission import AccessPolicy
    from engine.runs.service import submit_eval
    from engine.storage import RunStatus, Store

    root = finished_run_copy.root
    with Store(root.db_url) as store:
        cfg = EvalConfig(
            source_run_id=finished_run_copy.run_id,
            include_base=True,
            num_problems=6,
            n=4,
            k_max=4,
            max_new_tokens=48,
        )
        eval_id = submit_eval(store, cfg, policy=AccessPolicy.command_line())
        steps = [0] + [c["step"] for c in store.checkpoints(finished_run_copy.run_id)]
    cmd = [sys.executable, "-m", "engine.cli", "evaluate", "--run-id", str(eval_id)]
    cmd += ["--db", root.db_url, "--data-dir", str(root.root)]
    env = dict(os.environ, OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1")
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=240, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    with Store(root.db_url) as store:
        run = store.get_run(eval_id)
        rows = store.evals(eval_id)
    assert run.status is RunStatus.COMPLETED and run.kind == "eval"
    assert [r["step"] for r in rows] == steps
    assert run.step == run.total_steps == len(steps)  # progress: models evaluated / total
    for row in rows:
        assert row["n"] == 4 and row["ks"] == [1, 2, 3, 4]
        assert len(row["per_problem"]) == 6 and all(0 <= c <= 4 for c in row["per_problem"])
        assert row["pass_at_k"] == pytest.approx(
            pass_at_k_curve(row["per_problem"], 4, [1, 2, 3, 4])
        )
        assert row["dataset"].startswith("held-out:")


def test_embedded_model_on_a_chosen_dataset_file(data_root, shared_dir):
    """No source run: the embedded model on the first GSM8K problems of a local file."""
    from engine.evaluation.jobs import run_eval
    from engine.runs.admission import AccessPolicy
    from engine.runs.service import submit_eval
    from engine.storage import RunStatus, Store
    from tests.fixtures.training import embedded_model_ready

    require(embedded_model_ready(), "the embedded demo model")
    path = str(shared_dir / "data" / "benchmarks" / "gsm8k.jsonl")
    store = Store(data_root.db_url)
    cfg = EvalConfig(dataset=path, num_problems=3, n=2, k_max=2, max_new_tokens=8)
    eval_id = submit_eval(store, cfg, policy=AccessPolicy.command_line())
    results = run_eval(store, eval_id)
    run = store.get_run(eval_id)
    assert run.status is RunStatus.COMPLETED
    assert (run.step, run.total_steps) == (1, 1)  # progress: models evaluated / total
    (row,) = store.evals(eval_id)
    assert row["dataset"] == path and row["step"] == 0 and len(row["per_problem"]) == 3
    assert row["pass_at_k"] == pytest.approx(results[0].pass_at_k)


def test_a_resumed_eval_run_records_each_model_once(data_root):
    """Regression: a resume keeps the base model's step-0 row (an eval run has no checkpoint),
    and the re-run wrote it a second time. Cancelled after the base model, then resumed: one row
    per model, and the progress counts models evaluated."""
    from engine.evaluation.jobs import run_eval
    from engine.models.loading import embedded_model_dir
    from engine.runs.admission import AccessPolicy
    from engine.runs.service import submit_eval
    from engine.storage import RunStatus, Store
    from tests.fixtures.training import embedded_model_ready

    require(embedded_model_ready(), "the embedded demo model")

    class CancelAfterFirstModel(Store):
        def add_eval(self, run_id, **kw):
            super().add_eval(run_id, **kw)
            self.request_cancel(run_id)  # seen at the next model's first batch

    store = CancelAfterFirstModel(data_root.db_url)
    src = store.create_run(StudioConfig().to_dict(), name="src", algorithm="verl", total_steps=2)
    store.add_checkpoint(src, 2, embedded_model_dir())  # a real model folder as its checkpoint
    cfg = EvalConfig(
        source_run_id=src, include_base=True, num_problems=2, n=2, k_max=2, max_new_tokens=4
    )
    eval_id = submit_eval(store, cfg, policy=AccessPolicy.command_line())
    run_eval(store, eval_id)
    run = store.get_run(eval_id)
    assert run.status is RunStatus.CANCELLED and (run.step, run.total_steps) == (1, 2)
    assert [r["step"] for r in store.evals(eval_id)] == [0]
    assert store.requeue_for_resume(eval_id) == 0
    store.close()
    with Store(data_root.db_url) as store:
        run_eval(store, eval_id)
        run = store.get_run(eval_id)
        assert run.status is RunStatus.COMPLETED and run.attempt == 2
        assert [r["step"] for r in store.evals(eval_id)] == [0, 2]
        assert (run.step, run.total_steps) == (2, 2)


def test_evaluate_page_refuses_an_invalid_job(data_root):
    """The page's launch handler queues nothing and names the field when n < K."""
    from app.pages.evaluate import launch
    from engine.runs.admission import AccessPolicy
    from engine.storage import Store

    store = Store(data_root.db_url)
    src = store.create_run(StudioConfig().to_dict(), name="src", algorithm="grpo", total_steps=1)
    policy = AccessPolicy.network(data_root)
    message, _ = launch(store, policy, f"#{src} src", [], False, "", 5, 2, 4, 1.0, 0)
    assert "Not queued" in message and "eval\\.n" in message  # Markdown-escaped
    assert store.list_runs(kind="eval") == []
    message, picker = launch(store, policy, f"#{src} src", [], True, "", 5, 4, 4, 1.0, 0)
    assert "Queued eval run" in message and len(store.list_runs(kind="eval")) == 1
