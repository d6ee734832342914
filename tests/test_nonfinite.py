"""Numbers that must not break a run or an export: NaN / inf per-token values and hidden states."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
import torch

from engine.rank.effective_rank import NonFiniteHiddenStates, effective_rank
from engine.rank.scheduling import rank_dynamics
from engine.storage import Store
from engine.storage.export import export
from engine.training.trainer import NonFiniteRun


def _hidden(b=3, t=20, d=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(b, t, d, generator=g), torch.ones(b, t, dtype=torch.bool)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_rank_engine_names_the_response_with_non_finite_hidden_states(bad):
    """A NaN hidden state died in LAPACK ("ill-conditioned") without saying which response."""
    hidden, mask = _hidden()
    hidden[2, 7, 3] = bad
    with pytest.raises(NonFiniteHiddenStates, match="response 2: non-finite hidden states") as e:
        rank_dynamics(hidden, mask, stride=4, max_len=None, workers=1)
    assert (e.value.response, e.value.token) == (2, 7)
    with pytest.raises(NonFiniteHiddenStates, match="non-finite hidden states"):
        effective_rank(hidden[2])


def test_padding_may_hold_anything():
    """Only response tokens count: NaN in padding (mask False) is not an error."""
    hidden, mask = _hidden()
    mask[1, 15:] = False
    hidden[1, 16, 0] = float("nan")
    clean = hidden.clone()
    clean[1, 16, 0] = 0.0
    got = rank_dynamics(hidden, mask, stride=4, max_len=None, workers=1)
    want = rank_dynamics(clean, mask, stride=4, max_len=None, workers=1)
    assert torch.equal(got.er, want.er)
    mask_token = hidden.clone()
    mask_token[0, 3, :] = float("nan")
    mask[0, 3] = False  # a hole in the mask, not only a padded tail
    rank_dynamics(mask_token, mask, stride=4, max_len=None, workers=1)


def test_the_run_error_names_step_response_and_a_hint():
    message = str(NonFiniteRun(step=12, row=13, group_size=8))
    assert message.startswith("step 12: non-finite hidden states")
    assert "response 13 (group 1, sample 5)" in message
    assert "learning_rate" in message and "bfloat16" in message


def _sample(i: int, entropy: np.ndarray, logprob: np.ndarray) -> dict:
    n = len(entropy)
    return {
        "group_idx": 0,
        "sample_idx": i,
        "prompt": "Q",
        "completion": f"A{i}",
        "token_ids": np.arange(n),
        "token_entropy": entropy,
        "token_logprob": logprob,
        "reward": 1.0,
        "rewards": {"accuracy": 1.0},
        "correct": True,
        "length": n,
    }


def test_per_token_values_keep_their_range_and_export_as_null(store_url, tmp_path):
    """A -1e6 log-prob became -inf in the float16 codec; NaN / inf made invalid JSONL lines."""
    entropy = np.array([0.5, np.nan, 1.0, np.inf], dtype=np.float32)
    logprob = np.array([-1e6, -0.25, -np.inf, -70000.0], dtype=np.float32)
    with Store(store_url) as store:
        run_id = store.create_run({}, name="r", algorithm="verl", total_steps=1)
        store.log_step(run_id, {"step": 1}, [_sample(0, entropy, logprob)])
        (row,) = store.samples(run_id, 1)
        assert row["token_logprob"].dtype == np.float32
        assert row["token_logprob"][0] == np.float32(-1e6)  # not -inf
        assert row["token_logprob"][3] == np.float32(-70000.0)
        np.testing.assert_array_equal(np.isnan(row["token_entropy"]), np.isnan(entropy))
        jsonl, csv = tmp_path / "s.jsonl", tmp_path / "s.csv"
        assert export(store, run_id, "samples", "jsonl", jsonl) == 1
        assert export(store, run_id, "samples", "csv", csv) == 1
    for line in jsonl.read_text().splitlines():
        got = json.loads(line, parse_constant=_refuse)  # NaN / Infinity are not JSON
        assert got["token_entropy"] == [0.5, None, 1.0, None]
        assert got["token_logprob"] == [-1e6, -0.25, None, -70000.0]
    frame = pd.read_csv(csv, keep_default_na=False, dtype=str)
    cells = json.loads(frame.loc[0, "token_entropy"], parse_constant=_refuse)
    assert cells == [0.5, None, 1.0, None]
    assert "NaN" not in csv.read_text() and "inf" not in csv.read_text().lower()


def _refuse(name: str) -> float:
    raise AssertionError(f"non-JSON constant {name} in an export")


def test_non_finite_step_scalars_export_as_empty_csv_cells(store_url, tmp_path):
    with Store(store_url) as store:
        run_id = store.create_run({}, name="r", algorithm="verl", total_steps=2)
        store.log_step(run_id, {"step": 1, "loss": float("nan"), "kl": math.inf})
        store.log_step(run_id, {"step": 2, "loss": 0.5, "kl": 0.1})
        out = tmp_path / "steps.csv"
        export(store, run_id, "steps", "csv", out)
    frame = pd.read_csv(out, keep_default_na=False, dtype=str)
    assert list(frame["loss"]) == ["", "0.5"] and list(frame["kl"]) == ["", "0.1"]


def test_a_run_with_non_finite_hidden_states_fails_naming_step_and_response(tmp_path, monkeypatch):
    """A real tiny run whose captured hidden states get a NaN (the fault a diverging model or an
    fp16 overflow makes) fails at step 1 with the step, the response and a hint, and the store
    records that message as the run's error (before: LAPACK's "ill-conditioned")."""
    from contextlib import contextmanager

    from engine.runs.admission import AccessPolicy
    from engine.runs.service import submit
    from engine.training.train import main
    from engine.training.trainer import VerlTrainer
    from tests.conftest import require
    from tests.fixtures.training import data_root_at, embedded_model_ready, tiny_config

    require(embedded_model_ready(), "the embedded demo model (assets/demo-model)")
    keep = VerlTrainer._last_hidden_kept

    @contextmanager
    def poisoned(self, chunks, completion_length):
        with keep(self, chunks, completion_length):
            yield
        chunks[0][1, 0, :] = float("nan")  # the second row's first response token

    monkeypatch.setattr(VerlTrainer, "_last_hidden_kept", poisoned)
    root = data_root_at(tmp_path)
    cfg = tiny_config("run.eval_every=0", "run.max_steps=1")
    with Store(root.db_url) as store:
        run_id = submit(store, cfg, policy=AccessPolicy.command_line())
    with pytest.raises(NonFiniteRun) as err:
        main(cfg, root=root, run_id=run_id, progress=False)
    assert err.value.step == 1
    group, sample = divmod(err.value.row, cfg.grpo.num_generations)
    with Store(root.db_url) as store:
        run = store.get_run(run_id)
    assert str(run.status) == "failed"
    assert (
        f"step 1: non-finite hidden states (NaN or inf) in response {err.value.row} "
        f"(group {group}, sample {sample})" in run.error
    )
    assert "learning_rate" in run.error and "ill-conditioned" not in run.error
