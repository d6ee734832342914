"""The `reference` shaping preset against an independent transcription of the reference's loop
(tests/reference_verl.py, hf618/VERL @ 3de68f1), over several steps: pure, then through the
trainer on the embedded model."""

from __future__ import annotations

import random

import pytest
import torch

from engine.config import ConfigError, StudioConfig
from engine.shaping import ShapingState, apply_bonus, shape_generation, task_scores
from tests.reference_verl import ReferenceLoop, reference_score

F64 = torch.float64
G = 4  # rollouts per prompt


def reference_cfg(**shaping):
    return StudioConfig.from_dict({"shaping": {"preset": "reference", **shaping}}).shaping


def loop_for(cfg) -> ReferenceLoop:
    return ReferenceLoop(
        ema_alpha=cfg.alpha,
        modulation_gain=cfg.gain,
        weights=cfg.w_explore,
        weights_exploit=cfg.w_exploit,
        aux_reward_global_weight=cfg.aux_weight,
        aux_fix=not cfg.dynamic_weight,
        kappa=cfg.kappa,
    )


def group_advantages(scores: list[float]) -> list[float]:
    """Any group-normalised advantage will do (the GRPO part is not under test); ties give 0."""
    out = []
    for g in range(0, len(scores), G):
        s = torch.tensor(scores[g : g + G], dtype=F64)
        std = s.std()
        out += [0.0] * G if std == 0 else ((s - s.mean()) / (std + 1e-4)).tolist()
    return out


def random_generation(rng: random.Random, n: int, width: int):
    texts = [
        rng.choice(["so 12", r"so \boxed{12}", r"\boxed{\frac{1}{2}}", "no"]) for _ in range(n)
    ]
    correct = [rng.random() < 0.5 for _ in range(n)]
    if n >= 2 * G:  # one tied group, so std_zero is exercised
        correct[:G] = [True] * G
        texts[:G] = ["so 12"] * G
    # indicators on the scale the demo sees: ERA around 0 (either sign), ERV, ER positive
    x = [[rng.gauss(0.0, 0.05), rng.uniform(0.5, 1.5), rng.uniform(5.0, 20.0)] for _ in range(n)]
    lengths = [rng.randint(1, width) for _ in range(n)]
    return texts, correct, x, lengths


@pytest.mark.parametrize("dynamic_weight", [False, True])
def test_reference_preset_matches_the_transcribed_loop_over_several_steps(dynamic_weight):
    """Every per-token advantage of 8 steps equals the transcription's: the zero baselines and
    score EMA (reward_manager_versions.py L64, L72), no bonus on step 1 (L105), baselines lagged
    one step (L241-245 + ray_trainer.py L1746), the score EMA on the current step's 4-level score
    from step 2 (L236-239, hf_math_verify.py L201-209), dynamic c (L118-120) and the last-token
    bonus clipped at |A| / kappa (ray_trainer.py L160-167)."""
    cfg = reference_cfg(dynamic_weight=dynamic_weight, aux_weight=1.5)
    loop, state = loop_for(cfg), ShapingState()
    rng, width, n = random.Random(0), 12, 4 * G
    shaped_steps = 0
    for step in range(8):
        texts, correct, x, lengths = random_generation(rng, n, width)
        scores = [reference_score(c, t) for c, t in zip(correct, texts, strict=True)]
        adv = group_advantages(scores)
        expected = loop.step(x, scores, adv, lengths, width)  # (B, width)

        boxed = torch.tensor([r"\boxed{" in t for t in texts])
        product_scores = task_scores(torch.tensor(correct), boxed, cfg.score_rule)
        assert product_scores.tolist() == scores
        a = torch.tensor(adv, dtype=F64)
        std_zero = torch.tensor([v == 0.0 for v in adv])
        sh = shape_generation(state, torch.tensor(x, dtype=F64), a, std_zero, product_scores, cfg)
        mask = torch.arange(width)[None] < torch.tensor(lengths)[:, None]  # (B, width)
        got = apply_bonus(a, sh.bonus, mask, cfg.bonus_on) * mask  # (B, width)
        torch.testing.assert_close(got, torch.tensor(expected, dtype=F64), rtol=0, atol=1e-12)
        shaped_steps += bool(sh.bonus.gt(0).any())
        assert (step == 0) <= bool(sh.bonus.eq(0).all())  # step 1: no bonus
    assert shaped_steps >= 5  # the comparison was not about zeros
    assert state.ema_score == pytest.approx(loop.ema_performance_score, abs=1e-12)
    assert state.m.tolist() == pytest.approx(list(loop.mids.values()), abs=1e-12)


def test_preset_fills_its_rules_and_reports_a_contradiction():
    s = reference_cfg()
    assert (s.baseline_init, s.baseline_lag, s.bonus_on) == ("zero", 1, "last_token")
    assert (s.score_rule, s.warmup_steps, s.hidden_alignment) == ("reference", 1, "produced")
    with pytest.raises(ConfigError) as err:
        reference_cfg(bonus_on="all_tokens")
    assert [p for p, _ in err.value.errors] == ["shaping.bonus_on"]
    assert "reference preset" in err.value.errors[0][1]


def test_preset_set_on_a_recipe_replaces_its_rule_fields():
    from engine.resources import recipe_path

    cfg = StudioConfig.load(recipe_path("demo-cpu"), ["shaping.preset=reference"])
    assert cfg.shaping.bonus_on == "last_token" and cfg.shaping.baseline_lag == 1
    assert cfg.shaping.aux_weight == 3.0  # the numbers stay the recipe's
    # a rule field set alongside the preset is kept, and contradicts it
    with pytest.raises(ConfigError):
        StudioConfig.load(
            recipe_path("demo-cpu"), ["shaping.preset=reference", "shaping.baseline_lag=0"]
        )
    # a config written out with the preset reads back the same
    assert StudioConfig.from_yaml(cfg.to_yaml()) == cfg


@pytest.mark.slow
def test_trainer_with_the_reference_preset_matches_the_transcription(tmp_path):
    """Through the real trainer (TRL, capture, rank dynamics, the store): the recorded bonus of
    every response of 4 steps equals the transcription fed with the recorded indicators,
    correctness, texts and TRL's advantages."""
    from engine.runs.admission import AccessPolicy
    from engine.runs.service import submit
    from engine.storage import Store
    from engine.training.train import train
    from tests.conftest import require
    from tests.fixtures.training import data_root_at, embedded_model_ready, tiny_config

    require(embedded_model_ready(), "the embedded demo model (assets/demo-model)")
    cfg = tiny_config(
        "shaping.preset=reference", "shaping.dynamic_weight=true", "run.max_steps=4",
        "run.eval_every=0", "run.checkpoint_every=4",
    )  # fmt: skip
    root = data_root_at(tmp_path / "home")
    with Store(root.db_url) as store:
        run_id = submit(store, cfg, policy=AccessPolicy.command_line())
        train(cfg, store=store, root=root, run_id=run_id, progress=False)
        steps = [store.samples(run_id, s) for s in store.sample_steps(run_id)]
    assert len(steps) == 4
    loop = loop_for(cfg.shaping)
    shaped = 0
    for rows in steps:
        x = [[r["era"], r["erv"], r["er"]] for r in rows]
        scores = [reference_score(r["correct"], r["completion"]) for r in rows]
        adv = [r["advantage"] for r in rows]
        lengths = [max(1, r["length"]) for r in rows]
        expected = loop.step(x, scores, adv, lengths, max(lengths))
        want = [expected[i][lengths[i] - 1] - adv[i] for i in range(len(rows))]
        got = [r["bonus"] for r in rows]
        assert got == pytest.approx(want, abs=1e-9)
        shaped += sum(b > 0 for b in got)
    assert shaped > 0
