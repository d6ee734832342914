"""VERL shaping, one test per regime, against values computed by hand in the comments."""

from __future__ import annotations

import json
import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.config import ShapingConfig
from engine.shaping import (
    ShapingState,
    apply_bonus,
    compute_bonus,
    deviations,
    global_means,
    shape_generation,
    task_scores,
    update_baselines,
)

F64 = torch.float64


def t(*rows):
    return torch.tensor(rows, dtype=F64)


def state_at(m, ema_score=0.0, n=5):
    return ShapingState(m=t(*m), ema_score=ema_score, n=n)


def no_ties(b):
    return torch.zeros(b, dtype=torch.bool)


def test_group_tie_gives_exactly_no_bonus():
    """A float group mean leaves |A| ~ 1e-13 on a tied group; the std-zero mask forces 0."""
    x = t([1.0, 1.0, 3.0], [1.0, 1.0, 3.0])  # d_ER = 2 -> aux > 0
    a = t(1e-13, -1e-13)
    out = compute_bonus(x, a, torch.tensor([True, True]), state_at([1, 1, 1]), ShapingConfig())
    assert out.aux.min() > 0.4
    assert out.bonus.tolist() == [0.0, 0.0]


def test_negative_aux_gives_no_bonus():
    # m = 1: d = [0, 0, -0.5]; explore_weight = sigmoid(0) = 0.5; w = [0, 0.5, 0.5]
    # aux = 0.5 * tanh(0) + 0.5 * tanh(-0.5) = -0.23105857863
    out = compute_bonus(
        t([1.0, 1.0, 0.5]), t(1.0), no_ties(1), state_at([1, 1, 1]), ShapingConfig()
    )
    assert out.aux.item() == pytest.approx(0.5 * math.tanh(-0.5), rel=1e-7)
    assert out.bonus.item() == 0.0


def test_bonus_is_clipped_at_abs_advantage_over_kappa():
    # d = [0, 0, 2]; w = [0, 0.5, 0.5]; aux = 0.5 * tanh(2) = 0.48201379003790845
    x = t([1.0, 1.0, 3.0], [1.0, 1.0, 3.0], [1.0, 1.0, 3.0])
    a = t(0.5, 2.0, -0.6)
    out = compute_bonus(x, a, no_ties(3), state_at([1, 1, 1]), ShapingConfig(kappa=2.0))
    # min(0.482, 0.25) = 0.25 (clipped); min(0.482, 1.0) = 0.482; min(0.482, 0.3) = 0.3
    assert out.bonus.tolist() == pytest.approx([0.25, 0.5 * math.tanh(2.0), 0.3], rel=1e-7)


@settings(max_examples=200, deadline=None, derandomize=True)
@given(
    x=st.lists(st.floats(-50, 50), min_size=3, max_size=3),
    m=st.lists(st.floats(-50, 50), min_size=3, max_size=3),
    a=st.floats(-5, 5),
    kappa=st.floats(1, 10),
    aux_weight=st.floats(0, 100),
)
def test_sign_never_flips_and_bonus_in_range(x, m, a, kappa, aux_weight):
    cfg = ShapingConfig(kappa=kappa, aux_weight=aux_weight)
    out = compute_bonus(t(x), t(a), no_ties(1), state_at(m), cfg)
    bonus = out.bonus.item()
    assert 0.0 <= bonus <= abs(a) / kappa + 1e-15
    shaped = apply_bonus(t(a), out.bonus, torch.ones(1, 4), "all_tokens").item()
    assert shaped == 0.0 or a == 0.0 or math.copysign(1, shaped) == math.copysign(1, a)


def test_explore_weight_goes_to_one_when_era_jumps():
    # m_ERA = 1, x_ERA = 7 -> d_ERA = clamp(6) = 5; explore_weight = sigmoid(2 * 5) = 0.9999546
    # w = ew * [0, 0, 1] + (1 - ew) * [0, 1, 0]; d = [5, -0.5, 0.5]
    x = t([7.0, 0.5, 1.5])
    out = compute_bonus(x, t(4.0), no_ties(1), state_at([1, 1, 1]), ShapingConfig())
    ew = 1 / (1 + math.exp(-10))
    assert out.explore_weight.item() == pytest.approx(ew, rel=1e-7)
    assert out.d[0].tolist() == pytest.approx([5.0, -0.5, 0.5])
    expected = ew * math.tanh(0.5) + (1 - ew) * math.tanh(-0.5)
    assert out.aux.item() == pytest.approx(expected, rel=1e-7)
    # and falls to 0 when ERA collapses: d_ERA = -5 -> the exploit weights (ERV) take over
    low = compute_bonus(
        t([-4.0, 1.5, 0.5]), t(4.0), no_ties(1), state_at([1, 1, 1]), ShapingConfig()
    )
    assert low.explore_weight.item() == pytest.approx(1 - ew, rel=1e-7)


def test_deviation_clamps_and_is_relative_to_abs_baseline():
    d = deviations(t([3.0, -3.0, 100.0]), t(-2.0, 2.0, 1.0))
    # (3 - -2) / 2 = 2.5; (-3 - 2) / 2 = -2.5; (100 - 1) / 1 -> 5
    assert d[0].tolist() == pytest.approx([2.5, -2.5, 5.0])


def run_generations(cfg, xs, a=1.0):
    """Feed one response per generation; returns (bonus, m after) per generation."""
    state, out = ShapingState(), []
    for x in xs:
        sh = shape_generation(state, t(x), t(a), no_ties(1), t(1.0), cfg)
        out.append(
            (sh.bonus.item(), None if state.m is None else state.m.tolist(), sh.d[0].tolist())
        )
    return state, out


def test_update_order_first_batch_with_warmup():
    cfg = ShapingConfig(warmup_steps=1, alpha=0.3, baseline_init="first_batch", baseline_lag=0)
    _, out = run_generations(cfg, [[1, 1, 10], [1, 1, 12], [1, 1, 10]])
    # gen 1: no bonus (warm-up); m = mu_1 = [1, 1, 10]
    assert out[0][0] == 0.0 and out[0][1] == [1, 1, 10]
    # gen 2: d_ER = (12 - 10) / 10 = 0.2; aux = 0.5 * tanh(0.2) = 0.09868766; m = 0.7 m + 0.3 mu_2
    assert out[1][2] == pytest.approx([0, 0, 0.2])
    assert out[1][0] == pytest.approx(0.5 * math.tanh(0.2), rel=1e-7)
    assert out[1][1] == pytest.approx([1, 1, 10.6])
    # gen 3: d_ER = (10 - 10.6) / 10.6 < 0 -> no bonus; m_ER = 0.7 * 10.6 + 0.3 * 10 = 10.42
    assert out[2][0] == 0.0 and out[2][1][2] == pytest.approx(10.42)


def test_warmup_steps_hold_back_the_bonus():
    cfg = ShapingConfig(warmup_steps=2)
    _, out = run_generations(cfg, [[1, 1, 10], [1, 1, 20], [1, 1, 20]])
    # gen 2 would have aux > 0 (d_ER = 1) but is still warm-up; gen 3 is shaped
    assert [b for b, _, _ in out][:2] == [0.0, 0.0]
    # m after gen 2 = [1, 1, 13]; gen 3: d_ER = 7 / 13; aux = 0.5 tanh(7/13); clip |A|/2 = 0.5
    assert out[2][0] == pytest.approx(0.5 * math.tanh(7 / 13), rel=1e-7)


def test_zero_init_starts_the_ema_at_zero():
    cfg = ShapingConfig(baseline_init="zero", warmup_steps=0)
    _, out = run_generations(cfg, [[1, 1, 10], [1, 1, 10]])
    # gen 1: m = 0 -> d saturates at +5 on every indicator; aux = 0.5 * tanh(5) + 0.5 * tanh(5)
    assert out[0][2] == [5.0, 5.0, 5.0]
    assert out[0][0] == pytest.approx(min(math.tanh(5.0), 0.5))
    # m = 0.3 * mu_1 = [0.3, 0.3, 3]; gen 2: d = (1 - 0.3) / 0.3 = (10 - 3) / 3 = 7 / 3 each
    assert out[0][1] == pytest.approx([0.3, 0.3, 3.0])
    assert out[1][2] == pytest.approx([7 / 3, 7 / 3, 7 / 3])


def test_lag_one_with_zero_init_reproduces_the_reference():
    """Reference: m starts at 0 and step n's baseline holds means up to n - 2."""
    cfg = ShapingConfig(baseline_init="zero", baseline_lag=1, warmup_steps=1)
    _, out = run_generations(cfg, [[1, 1, 10], [1, 1, 20], [1, 1, 30]])
    assert out[0][0] == 0.0 and out[0][1] == [0, 0, 0]  # gen 1 updates nothing
    # gen 2: m = 0 -> all deviations saturate at +5 (the reference's step-2 jump)
    assert out[1][2] == [5.0, 5.0, 5.0]
    assert out[1][1] == pytest.approx([0.3, 0.3, 3.0])  # updated with mu_1 only
    # gen 3: m holds mu_1 only; after: 0.7 * 0.3 * mu_1 + 0.3 * mu_2
    assert out[2][2][2] == pytest.approx(5.0)
    assert out[2][1] == pytest.approx([0.51, 0.51, 0.7 * 3 + 0.3 * 20])


def test_lag_one_with_first_batch_waits_for_a_baseline():
    cfg = ShapingConfig(baseline_init="first_batch", baseline_lag=1, warmup_steps=0)
    _, out = run_generations(cfg, [[1, 1, 10], [1, 1, 20], [1, 1, 12]])
    # gen 1 and 2: no baseline yet -> d = 0, no bonus; after gen 2: m = mu_1
    assert out[0][2] == [0, 0, 0] and out[0][0] == 0.0 and out[0][1] is None
    assert out[1][2] == [0, 0, 0] and out[1][1] == [1, 1, 10]
    # gen 3: d_ER = (12 - 10) / 10 = 0.2 against mu_1, not mu_2
    assert out[2][2] == pytest.approx([0, 0, 0.2])
    assert out[2][1] == pytest.approx([1, 1, 0.7 * 10 + 0.3 * 20])


def test_dynamic_weight_scales_c_by_the_score_ema():
    # ema_score = 0.5 -> c = aux_weight * (1 - 0.75) = 0.5 with aux_weight 2
    cfg = ShapingConfig(aux_weight=2.0, dynamic_weight=True)
    out = compute_bonus(t([1, 1, 3.0]), t(5.0), no_ties(1), state_at([1, 1, 1], 0.5), cfg)
    assert out.c == pytest.approx(0.5)
    assert out.aux.item() == pytest.approx(0.5 * 0.5 * math.tanh(2.0))
    # the score EMA follows m's rule: first batch, then alpha
    state = ShapingState()
    update_baselines(state, t(1, 1, 1, -1.0), cfg)
    update_baselines(state, t(1, 1, 1, 1.0), cfg)
    assert state.ema_score == pytest.approx(-1 * 0.7 + 0.3)


def test_state_round_trips_through_a_checkpoint(tmp_path):
    cfg = ShapingConfig(baseline_lag=1, dynamic_weight=True, warmup_steps=0)
    gen = torch.Generator().manual_seed(0)
    batches = [torch.rand(4, 3, generator=gen, dtype=F64) + 1 for _ in range(6)]
    scores = t(1.0, -1.0, 1.0, -1.0)
    adv = t(1.0, -1.0, 0.5, -0.5)

    def go(state, xs):
        return [shape_generation(state, x, adv, no_ties(4), scores, cfg).bonus.tolist() for x in xs]

    straight = ShapingState()
    expected = go(straight, batches)
    first = ShapingState()
    go(first, batches[:3])
    path = tmp_path / "shaping_state.json"
    path.write_text(json.dumps(first.state_dict()))
    resumed = ShapingState.from_state_dict(json.loads(path.read_text()))
    assert go(resumed, batches[3:]) == expected[3:]
    assert resumed.state_dict() == straight.state_dict()


def test_last_token_versus_all_tokens():
    a = t(1.0, -2.0, 0.5)
    bonus = t(0.25, 0.5, 0.1)
    mask = torch.tensor([[1, 1, 1, 0], [1, 1, 1, 1], [0, 0, 0, 0]])
    assert apply_bonus(a, bonus, mask, "all_tokens").tolist() == [1.25, -1.5, 0.6]
    per_token = apply_bonus(a, bonus, mask, "last_token")
    assert per_token.tolist() == [
        [1.0, 1.0, 1.25, 1.0],
        [-2.0, -2.0, -2.0, -1.5],
        [0.5, 0.5, 0.5, 0.5],  # no response token: nowhere to put the bonus
    ]


def test_global_means_all_reduce_on_one_process(tmp_path):
    x = t([1.0, 2.0], [3.0, 6.0], [5.0, 1.0])
    assert global_means(x).tolist() == [3.0, 3.0]
    dist = torch.distributed
    dist.init_process_group(
        "gloo", init_method=f"file://{tmp_path / 'rendezvous'}", rank=0, world_size=1
    )
    try:
        assert global_means(x).tolist() == [3.0, 3.0]
    finally:
        dist.destroy_process_group()


def test_reference_score_rule_updates_the_score_ema_unlagged_from_generation_two():
    """hf618/VERL reward_manager_versions.py L236-239: the score EMA takes the current step's
    mean score, and only on steps with an aux term (L105: never step 1), while m stays lagged.
    Before `score_rule` the product lagged the score EMA like m."""
    cfg = ShapingConfig(baseline_init="zero", baseline_lag=1, score_rule="reference")
    state = ShapingState()
    update_baselines(state, t(1, 1, 10, 0.5), cfg)
    assert state.ema_score == 0.0 and state.m.tolist() == [0, 0, 0]  # generation 1: nothing
    update_baselines(state, t(2, 2, 20, -1.0), cfg)
    assert state.ema_score == pytest.approx(0.3 * -1.0)  # the current score, not 0.5
    assert state.m.tolist() == pytest.approx([0.3, 0.3, 3.0])  # m: the previous mean
    update_baselines(state, t(3, 3, 30, 1.0), cfg)
    assert state.ema_score == pytest.approx(0.7 * -0.3 + 0.3)


def test_task_scores_binary_and_four_levels():
    correct = torch.tensor([True, True, False, False])
    boxed = torch.tensor([True, False, True, False])
    assert task_scores(correct, boxed, "binary").tolist() == [1.0, 1.0, -1.0, -1.0]
    assert task_scores(correct, boxed, "reference").tolist() == [1.0, 0.5, -0.5, -1.0]
