"""An independent transcription of the reference code's shaping loop, for tests only.

Source: github hf618/VERL at commit 3de68f1. Transcribed line by line from
`verl/trainer/reward_manager_versions.py` (RewardManager.__init__ / __call__),
`verl/trainer/ppo/ray_trainer.py` (compute_advantage's add_adv branch, the fit loop's
`metrics_old`, compute_calculator_metrics) and `verl/utils/reward_score/hf_math_verify.py`
(the 4-level score). It imports nothing from `engine`: plain Python floats and lists, so a test
that compares it with `engine.shaping` compares two separate readings of the reference.

Per response the loop is given the three indicators in the reference's `indicator_names` order
['Effective Rank diff 2', 'Effective Rank diff', 'Effective Rank'] (= ERA, ERV, ER), the
4-level score, the GRPO advantage (the same scalar on every valid token,
core_algos.compute_grpo_outcome_advantage L151-153) and the response length. It runs the case
the `reference` preset reproduces: `add_reward` true so that aux is computed (L105), `add_adv`
true (ray_trainer.py L158), the advantages given (the GRPO part is not under test; with
add_reward true the reference's would also include aux, ray_trainer.py L1663-1665), and the
reward tensors in float64 instead of bfloat16 (L89-90).
"""

from __future__ import annotations

import math
import re

NAMES = ["Effective Rank diff 2", "Effective Rank diff", "Effective Rank"]  # L58-59
LAYER_KEY = "1"  # L102
EPSILON = 1e-8  # L68
BOXED = r"\\boxed\{((?:[^{}]|\{(?:[^{}]|\{[^{}]*\})*\})*)\}"  # hf_math_verify.py L92


def reference_score(correct: bool, text: str) -> float:
    """hf_math_verify.py L201-209 (REWORD_FUNCTION_TYPE=independent, train.sh L37) with
    format_penalty_value = -1 (L158); `is_boxed_matched` is a match of L92's pattern (L111-116)."""
    boxed = re.search(BOXED, text) is not None
    if correct and boxed:
        return 1.0
    if correct and not boxed:
        return 0.5
    if not correct and boxed:
        return -0.5
    return -1.0


def _sigmoid(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-z))


def _clamp(v: float, lo: float, hi: float) -> float:
    return max(lo, min(hi, v))


class ReferenceLoop:
    """RewardManager state + the trainer loop's `metrics_old`, one `step` per training step."""

    def __init__(
        self,
        *,
        ema_alpha: float,  # train.sh L77 --reward_ema_alpha 0.3
        modulation_gain: float,  # --modulation_gain 2.0
        weights: list[float],  # --reward_weights [0, 0, 1]
        weights_exploit: list[float],  # --reward_weights_exploit [0, 1, 0]
        aux_reward_global_weight: float,  # --aux_reward_global_weight 1.0
        aux_fix: bool,  # --aux_fix True
        kappa: float,  # --adv_shaping_kappa 2.0
    ):
        self.ema_alpha = ema_alpha
        self.modulation_gain = modulation_gain
        self.weights_explore = list(weights)  # L61
        self.weights_exploit = list(weights_exploit)  # L62
        self.mids = {name: 0.0 for name in NAMES}  # L64
        self.ema_performance_score = 0.0  # L72
        self.aux_reward_global_weight = aux_reward_global_weight  # L73
        self.aux_fix = aux_fix  # L74
        self.kappa = kappa  # ray_trainer.py L161
        self.metrics_old: dict[str, float] = {}  # ray_trainer.py L1514

    def step(
        self,
        indicators: list[list[float]],
        scores: list[float],
        advantages: list[float],
        lengths: list[int],
        width: int,
    ) -> list[list[float]]:
        """One training step; returns the per-token advantages (B, width) after shaping."""
        aux_rows = self._reward_manager_call(indicators, scores, lengths, width)
        out = []
        for i, a in enumerate(advantages):
            adv_0 = [a if t < lengths[i] else 0.0 for t in range(width)]  # core_algos L153
            row = []
            for t in range(width):  # ray_trainer.py L162-167
                bonus = max(0.0, aux_rows[i][t])  # relu
                clipping_threshold = abs(adv_0[t]) / self.kappa
                row.append(adv_0[t] + min(bonus, clipping_threshold))
            out.append(row)
        metrics = {}  # compute_calculator_metrics, ray_trainer.py L429-438
        for k, name in enumerate(NAMES):
            values = [x[k] for x in indicators]
            metrics[f"cal/overall/layer_{LAYER_KEY}/{name}/mean"] = sum(values) / len(values)
        self.metrics_old = dict(metrics)  # ray_trainer.py L1746
        return out

    def _reward_manager_call(self, indicators, scores, lengths, width):
        """RewardManager.__call__ (L80-251): the aux term at each response's last token, and the
        EMA updates at its end. Returns aux_rewards = reward_tensor - reward_tensor_0 (B, width)
        (ray_trainer.py L1674)."""
        use_aux_reward = bool(self.metrics_old)  # L105 (add_reward, calculator_enabled true)
        performance_scaling_factor = 1.0  # L107
        if use_aux_reward:
            if self.aux_fix:  # L113-115
                performance_scaling_factor = self.aux_reward_global_weight
            else:  # L118-120
                normalized_performance = (self.ema_performance_score + 1.0) / 2.0
                performance_scaling_factor = self.aux_reward_global_weight * (
                    1.0 - normalized_performance
                )
        aux = [[0.0] * width for _ in indicators]
        for i, values in enumerate(indicators):
            if not use_aux_reward:  # L164
                continue
            by_name = dict(zip(NAMES, values, strict=True))
            guidance = by_name[NAMES[0]]  # L166-167
            baseline = self.mids[NAMES[0]]  # L168
            deviation = _clamp((guidance - baseline) / (abs(baseline) + EPSILON), -5.0, 5.0)
            tendency = _sigmoid(self.modulation_gain * deviation)  # L184 (PlanB)
            dynamic_weights = [
                tendency * we + (1.0 - tendency) * wx
                for we, wx in zip(self.weights_explore, self.weights_exploit, strict=True)
            ]  # L185
            weights_map = dict(zip(NAMES, dynamic_weights, strict=True))  # L204
            total = 0.0
            for name in NAMES:  # L220-230
                mid = self.mids[name]
                rel = _clamp((by_name[name] - mid) / (abs(mid) + EPSILON), -5.0, 5.0)
                total += math.tanh(rel) * weights_map[name]
            aux[i][lengths[i] - 1] = total * performance_scaling_factor  # L232-233
        if use_aux_reward:  # L236 (training, not validation)
            mean_score = sum(scores) / len(scores)  # reward_tensor_0.sum(-1).mean(), L150, L239
            self.ema_performance_score = (
                1 - self.ema_alpha
            ) * self.ema_performance_score + self.ema_alpha * mean_score  # L238-239
            for name in NAMES:  # L241-245
                key = f"cal/overall/layer_{LAYER_KEY}/{name}/mean"
                if key in self.metrics_old:
                    v = self.metrics_old[key]
                    self.mids[name] = (1 - self.ema_alpha) * self.mids[name] + self.ema_alpha * v
        return aux
