"""engine/health.py: one regime per test, against hand-counted responses (no training, no store)."""

from __future__ import annotations

import math

import pytest

from engine.config import ConfigError, HealthConfig, StudioConfig
from engine.health import (
    ENTROPY_COLLAPSE,
    MISSING_REWARD,
    NAN_LOSS,
    TIED_GROUPS,
    TRUNCATION,
    HealthTracker,
    StepHealth,
    check,
    entropy_drop,
    flagged_responses,
    step_health,
    update_events,
)


def rows(rewards_by_group, truncated=(), missing=(), entropy=0.5, length=10):
    """One response dict per reward; (g, s) pairs in `truncated` / `missing` are marked."""
    out = []
    for g, rewards in enumerate(rewards_by_group):
        for s, r in enumerate(rewards):
            out.append(
                {
                    "group_idx": g,
                    "sample_idx": s,
                    "reward": r,
                    "rewards": {"accuracy": None if (g, s) in missing else r, "format": 0.1},
                    "truncated": (g, s) in truncated,
                    "length": length,
                    "entropy": entropy + 0.01 * s,
                }
            )
    return out


def kinds(flags):
    return [f.kind for f in flags]


def test_truncation_share_counts_responses_without_eos():
    r = rows([[0, 1, 0, 1], [1, 1, 0, 0]], truncated={(0, 0), (1, 3)})
    h = step_health(1, r)
    assert (h.truncated, h.responses, h.truncated_share) == (2, 8, 0.25)
    assert kinds(check(HealthConfig(max_truncated=0.25), h, None)) == [TRUNCATION]
    assert kinds(check(HealthConfig(max_truncated=0.26), h, None)) == []
    assert kinds(check(HealthConfig(max_truncated=0.0), h, None)) == []  # 0 = off


def test_tied_groups_are_groups_whose_rewards_are_all_equal():
    r = rows([[0, 0, 0, 0], [1, 1, 1, 1], [0, 1, 0, 0], [0.5, 0.5, 0.5, 0.5], [0, 0, 0, 1e-3]])
    h = step_health(3, r)
    assert (h.tied_groups, h.groups) == (3, 5)
    (flag,) = check(HealthConfig(max_tied_groups=0.6), h, None)
    assert flag.kind == TIED_GROUPS and flag.value == pytest.approx(0.6)
    assert "60% of groups tied: little or no gradient" in flag.message
    assert check(HealthConfig(max_tied_groups=0.61), h, None) == []


def test_entropy_collapse_is_a_factor_since_the_first_step():
    cfg = HealthConfig(max_entropy_drop=10.0)
    tracker = HealthTracker(cfg)
    assert tracker.update(StepHealth(1, entropy=0.8)).flags == ()
    assert tracker.update(StepHealth(2, entropy=0.081)).flags == ()  # 9.9x
    (flag,) = tracker.update(StepHealth(3, entropy=0.08)).flags  # 10x
    assert flag.kind == ENTROPY_COLLAPSE and "fell by 10.0x since step 1" in flag.message
    assert entropy_drop(0.8, 0.0) == math.inf and entropy_drop(None, 0.1) is None
    # a resumed run keeps its first step's entropy
    resumed = HealthTracker(cfg, first_entropy=0.8)
    assert kinds(resumed.update(StepHealth(9, entropy=0.05)).flags) == [ENTROPY_COLLAPSE]


def test_missing_reward_names_the_function_and_the_count():
    r = rows([[1, 0, 1, 0]], missing={(0, 1), (0, 2)})
    h = step_health(1, r)
    assert h.missing == {"accuracy": 2}
    (flag,) = check(HealthConfig(), h, None)
    assert flag.kind == MISSING_REWARD
    assert flag.message == "reward function accuracy returned no value for 2 of 4 responses"
    assert check(HealthConfig(min_missing_rewards=3), h, None) == []
    nan = rows([[1, 0]])
    nan[0]["rewards"]["accuracy"] = float("nan")
    assert step_health(1, nan).missing == {"accuracy": 1}


@pytest.mark.parametrize("loss", [float("nan"), float("inf")])
def test_nan_loss(loss):
    assert kinds(check(HealthConfig(), StepHealth(4, loss=loss), None)) == [NAN_LOSS]
    assert check(HealthConfig(nan_loss=False), StepHealth(4, loss=loss), None) == []
    assert check(HealthConfig(), StepHealth(4, loss=0.3), None) == []


def test_a_step_without_responses_checks_only_loss_and_entropy():
    h = step_health(5, [], loss=0.1, entropy=0.2)
    assert h.truncated_share is None and h.tied_share is None
    assert check(HealthConfig(max_truncated=0.01, max_tied_groups=0.01), h, None) == []


def test_tracker_reports_raised_and_cleared_once_and_stops_after_n_consecutive_steps():
    cfg = HealthConfig(max_truncated=0.5, stop_on=["truncation"], stop_after=2)
    tracker = HealthTracker(cfg)
    bad = step_health(1, rows([[0, 1]], truncated={(0, 0), (0, 1)}))
    good = step_health(2, rows([[0, 1]]))
    u1 = tracker.update(bad)
    assert kinds(u1.raised) == [TRUNCATION] and u1.stop_reason is None
    u2 = tracker.update(good)
    assert u2.cleared == (TRUNCATION,) and u2.flags == ()
    tracker.update(bad)
    u4 = tracker.update(step_health(4, rows([[0, 1]], truncated={(0, 0), (0, 1)})))
    assert u4.raised == () and kinds(u4.flags) == [TRUNCATION]  # held, not raised again
    assert u4.stop_reason and "'truncation' after 2 consecutive steps" in u4.stop_reason
    assert "100% of completions truncated" in u4.stop_reason


def test_flags_not_in_stop_on_never_stop():
    tracker = HealthTracker(HealthConfig(stop_on=["nan_loss"], stop_after=1))
    h = step_health(1, rows([[0, 0]], truncated={(0, 0), (0, 1)}))
    assert tracker.update(h).stop_reason is None


def test_flagged_responses_pick_the_rows_behind_each_flag_with_a_reason():
    r = rows([[0, 0], [1, 0]], truncated={(1, 1)}, missing={(0, 1)})
    (t,) = flagged_responses(TRUNCATION, r)
    assert (t["group_idx"], t["sample_idx"]) == (1, 1) and "truncated at 10 tokens" in t["reason"]
    tied = flagged_responses(TIED_GROUPS, r)
    assert [(x["group_idx"], x["sample_idx"]) for x in tied] == [(0, 0), (0, 1)]
    assert tied[0]["reason"] == "group 0 tied: every reward 0"
    (m,) = flagged_responses(MISSING_REWARD, r)
    assert (m["group_idx"], m["sample_idx"], m["reason"]) == (0, 1, "no value from accuracy")
    low = flagged_responses(ENTROPY_COLLAPSE, r)
    assert [x["entropy"] for x in low] == sorted(x["entropy"] for x in r)
    assert len(flagged_responses(NAN_LOSS, r, loss=math.nan)) == len(r)
    with pytest.raises(ValueError, match="unknown health flag"):
        flagged_responses("nope", r)


def test_health_config_is_validated_with_field_names():
    with pytest.raises(ConfigError) as err:
        StudioConfig.from_dict(
            {"health": {"max_truncated": 1.5, "max_entropy_drop": 0.5, "stop_on": ["typo"]}}
        )
    fields = {p for p, _ in err.value.errors}
    assert fields == {"health.max_truncated", "health.max_entropy_drop", "health.stop_on"}
    assert StudioConfig.from_dict({}).health == HealthConfig()


def test_a_step_without_a_generation_keeps_response_flags_as_they_were():
    """num_iterations > 1: steps that reuse a generation carry no responses; a truncation flag
    must neither clear nor count towards stop_after there."""
    tracker = HealthTracker(HealthConfig(stop_on=["truncation"], stop_after=2))
    bad = rows([[0, 1]], truncated={(0, 0), (0, 1)})
    assert kinds(tracker.update(step_health(1, bad, loss=0.1)).raised) == [TRUNCATION]
    between = tracker.update(step_health(2, [], loss=0.1))
    assert between.cleared == () and between.stop_reason is None
    assert tracker.update(step_health(3, bad, loss=0.1)).stop_kind == TRUNCATION


def test_update_events_name_the_flag_in_their_kind():
    tracker = HealthTracker(HealthConfig(stop_on=["nan_loss"], stop_after=1))
    events = update_events(tracker.update(StepHealth(1, loss=math.nan)))
    assert [e["kind"] for e in events] == ["flag:nan_loss", "stop:nan_loss"]
    assert events[1]["message"].startswith("stopped by the health check 'nan_loss'")
    (cleared,) = update_events(tracker.update(StepHealth(2, loss=0.5)))
    assert cleared["kind"] == "clear:nan_loss" and cleared["level"] == "info"
