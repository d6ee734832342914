"""VERL advantage shaping (Velocity-Exploiting Rank Learning, arXiv:2509.23808; code hf618/VERL).

Pure torch: no storage, TRL or Gradio. All arithmetic in float64 on the CPU.

Per response i the trainer measures three indicators on the post-norm last-layer hidden states
of its response tokens (`engine.rank.scheduling.rank_dynamics`), ordered here as

    x_i = [x_ERA, x_ERV, x_ER]                          # (B, 3), the order of w_explore/w_exploit

and keeps one EMA baseline m_k per indicator (`ShapingState.m`, shape (3,)). For training
generation n = 1, 2, ... (evaluation generations never shape and never update anything):

    d_k   = clamp((x_k - m_k) / (|m_k| + 1e-8), -5, 5)                  relative deviation
    explore_weight = sigmoid(gain * d_ERA)                             the paper's beta
    w     = explore_weight * w_explore + (1 - explore_weight) * w_exploit      over [ERA, ERV, ER]
    aux   = c * sum_k w_k * tanh(d_k)
    c     = aux_weight                                         (dynamic_weight off, the default)
    c     = aux_weight * (1 - (ema_score + 1) / 2)             (dynamic_weight on)
    bonus = 0                             if n <= warmup_steps
            min(relu(aux), |A| / kappa)   otherwise                       aux uses the current m
    A'    = A + bonus
    mu    = batch mean of x over all processes                 (`global_means`, one all-reduce)
    m     = mu                                  on the first update with baseline_init "first_batch"
            (1 - alpha) * m + alpha * mu        otherwise (m starts at 0 with baseline_init "zero")

A bonus reads only the baselines from before its generation, so a generation may be shaped
slice by slice (`generation_bonus`, as the trainer does when micro-steps consume it) and the
baselines advanced once at its end (`advance_baselines`); `shape_generation` is both at once.

Defaults (the paper's): stride s = 40 over the last 512 response tokens, kappa = 2, alpha = 0.3,
gain = 2, w_explore = [0, 0, 1] (ER), w_exploit = [0, 1, 0] (ERV), aux_weight = 1.

Properties that hold by construction: the bonus is never negative, never exceeds |A| / kappa, so
with kappa >= 1 (validated in `engine.config`) it never flips the sign of A; it is exactly zero
for every response of a group whose reward std is 0 (forced from the `std_zero` mask, because a
float group mean can leave |A| ~ 1e-13 there, and min(relu(aux), 1e-13 / kappa) is not zero).

Where `bonus_on` puts the bonus, and how strong it then is:
- "all_tokens" (default): a per-response advantage A' of shape (B,), added on every response
  token. The bonus then multiplies L_i token terms of response i instead of one, so it weighs
  about L (the response length) times more than with "last_token": under a token-averaged loss
  (TRL's `dapo`, the product's default, and `bnpo`: every token term divided by the batch's
  token count) exactly L_i x per response, so longer responses' bonuses weigh more; for the
  paper's responses of up to 1536 tokens that is up to ~1500 x, for the demo's ~37 tokens ~37 x.
- "last_token": per-token advantages (B, C) equal to A on every token plus the bonus on the last
  response token only, as the reference code writes it (ray_trainer.py L157-167: relu, min with
  |A| / kappa, added to the per-token advantages, where aux is non-zero only at the last valid
  token, reward_manager_versions.py L233).

The reference code (github hf618/VERL @ 3de68f1), rule by rule, and the `reference` preset
(`shaping.preset: reference`, `engine.config.REFERENCE_SHAPING`) that reproduces it:
- baselines m and the score EMA start at 0 (reward_manager_versions.py L64, L72):
  baseline_init = "zero";
- no bonus on step 1 (L105: `metrics_old` is empty on the first step, ray_trainer.py L1514):
  warmup_steps = 1;
- m is updated at the end of step n >= 2 with step n - 1's batch means (L241-245 read
  `metrics_old`, the previous step's metrics, ray_trainer.py L1746, their `/mean`, L438), so
  step n's bonus uses means up to n - 2: baseline_lag = 1;
- the score EMA is updated at the end of step n >= 2 with step n's own mean score (L236-239,
  `reward_tensor_0` of this call) and the score has 4 levels (`task_scores`): score_rule =
  "reference"; c = aux_weight * (1 - (ema + 1) / 2) when dynamic_weight (L119-120; its train.sh
  L77 passes --aux_fix True, i.e. dynamic_weight off);
- d, explore_weight, w and aux as above (L166-173, L184-185, L220-233), bonus = min(relu(aux),
  |A| / kappa) on the last token (ray_trainer.py L160-167): bonus_on = "last_token";
- hidden states of decoding (hidden_vllm/worker/model_runner.py L1414-1420: at prefill the state
  at the selected index, the last prompt position, which produces response token 0; L1480-1501:
  each decode step's input position, response token j - 1, which produces token j; the last
  response token is never fed back, so its own state is never captured):
  hidden_alignment = "produced".
Not reproduced, deliberately: the reference keeps the reward tensors in bfloat16 (L89-90; aux is
rounded to bf16 there, here float64), and with its `add_reward` true the aux term also enters the
reward before group normalisation (ray_trainer.py L1663-1668); the preset shapes advantages only
(its `add_adv` path). Its released train.sh (L67) passes `--add_reward False --add_adv True`, and
aux is computed only when add_reward is true (L105), so that script trains plain GRPO.

Deliberate departures of the default (`preset: custom`) from the reference code, each a setting:
- baseline_init = "first_batch" (default): m starts at the first batch mean. The reference starts
  m at 0, so at its step 2 every deviation saturates at +-5; baseline_init = "zero" reproduces
  that.
- baseline_lag = 0 (default): generation n's bonus uses a baseline holding the means up to
  n - 1. The reference updates m from the previous generation's mean, so step n's baseline holds
  means up to n - 2; baseline_lag = 1 reproduces that. With the lag, generation n's update uses
  mu_{n-1} (generation 1 updates nothing); "the first update" above is then generation 2's.
  Until m has been set with "first_batch", every deviation is 0 (no baseline, no bonus).
- score_rule = "binary" (default): the task score behind dynamic_weight is +1 for a correct and
  -1 for an incorrect response, and ema_score follows m's rule (same alpha, init and lag; 0
  before its first update). score_rule = "reference" is the reference's rule above.
- hidden_alignment = "produced" (default) is the reference's; "read" (the states that have read
  token j, what this product measured before) is kept to compare. On the demo
  (bench/bench_alignment.py: the embedded model, the demo recipe, 12 generations x 64 responses,
  both alignments on the same responses) produced vs read moves ER by a median 2.0% per response
  (means 22.20 vs 21.75, r = 0.996), ERV by 0.6% (6.39 vs 6.38, r = 0.986) and ERA by 9.5%
  (0.831 vs 0.754, r = 0.875); the bonus (aux_weight 3) by a median 0.2% of |A| (mean 0.8%),
  mean bonus 0.0317 vs 0.0306, 43.2% vs 43.0% of responses shaped, 2.4% shaped under one
  alignment only, median bonus share of |A| 9.4% vs 8.7%.
- TRL's `beta` is the KL coefficient; the VERL beta is called `explore_weight` everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from engine.config import ShapingConfig

INDICATORS = ("era", "erv", "er")  # column order of x, m, d, w_explore, w_exploit
CLAMP = 5.0
EPS = 1e-8
ALL_TOKENS, LAST_TOKEN = "all_tokens", "last_token"
FIRST_BATCH = "first_batch"
REFERENCE = "reference"


@dataclass
class ShapingState:
    """What shaping carries between generations; saved in checkpoints (`state_dict`)."""

    m: torch.Tensor | None = None  # (3,) float64 baselines over [ERA, ERV, ER]; None = not set yet
    ema_score: float | None = None  # EMA of the mean task score in [-1, 1]; None = not set yet
    n: int = 0  # training generations seen
    pending: torch.Tensor | None = None  # (4,) last generation's [mu_ERA, mu_ERV, mu_ER, score]

    def state_dict(self) -> dict[str, Any]:
        """Plain JSON-able values."""
        return {
            "m": None if self.m is None else self.m.tolist(),
            "ema_score": self.ema_score,
            "n": self.n,
            "pending": None if self.pending is None else self.pending.tolist(),
        }

    @classmethod
    def from_state_dict(cls, d: dict[str, Any]) -> ShapingState:
        def tensor(v):
            return None if v is None else torch.tensor(v, dtype=torch.float64)

        return cls(
            m=tensor(d["m"]), ema_score=d["ema_score"], n=int(d["n"]), pending=tensor(d["pending"])
        )

    def initial(self, cfg: ShapingConfig) -> None:
        """Baselines before any update: unset for first_batch, zero for the reference's init."""
        if self.n == 0 and self.m is None and cfg.baseline_init != FIRST_BATCH:
            self.m = torch.zeros(len(INDICATORS), dtype=torch.float64)
            self.ema_score = 0.0


@dataclass
class Shaping:
    """One generation's shaping terms, all (B,) float64 unless noted."""

    d: torch.Tensor  # (B, 3) clamped relative deviations over [ERA, ERV, ER]
    explore_weight: torch.Tensor
    aux: torch.Tensor
    bonus: torch.Tensor
    c: float
    m: torch.Tensor | None = field(default=None)  # (3,) the baselines the bonus used


def deviations(x: torch.Tensor, m: torch.Tensor | None) -> torch.Tensor:
    """d_k = clamp((x_k - m_k) / (|m_k| + 1e-8), -5, 5); zeros while there is no baseline."""
    if m is None:
        return torch.zeros_like(x)
    return ((x - m) / (m.abs() + EPS)).clamp(-CLAMP, CLAMP)


def compute_bonus(
    x: torch.Tensor,
    advantages: torch.Tensor,
    std_zero: torch.Tensor,
    state: ShapingState,
    cfg: ShapingConfig,
    *,
    active: bool = True,
) -> Shaping:
    """The bonus of one generation from the current baselines (no state change).

    x: (B, 3) indicators [ERA, ERV, ER]; advantages: (B,) TRL's A; std_zero: (B,) bool, True where
    the response's group had reward std 0. `active=False` (plain GRPO, warm-up) gives a zero bonus
    but still reports d, explore_weight and aux.
    """
    x = x.to(torch.float64)
    a = advantages.detach().to("cpu", torch.float64)
    d = deviations(x, state.m)  # (B, 3)
    explore_weight = torch.sigmoid(cfg.gain * d[:, 0])  # (B,)
    w_explore = torch.tensor(cfg.w_explore, dtype=torch.float64)
    w_exploit = torch.tensor(cfg.w_exploit, dtype=torch.float64)
    w = explore_weight[:, None] * w_explore + (1 - explore_weight[:, None]) * w_exploit  # (B, 3)
    score = 0.0 if state.ema_score is None else state.ema_score
    c = cfg.aux_weight * (1 - (score + 1) / 2) if cfg.dynamic_weight else cfg.aux_weight
    aux = c * (w * torch.tanh(d)).sum(dim=1)  # (B,)
    bonus = torch.minimum(aux.clamp(min=0), a.abs() / cfg.kappa)
    bonus = torch.where(std_zero.to("cpu", torch.bool), torch.zeros_like(bonus), bonus)
    if not active:
        bonus = torch.zeros_like(bonus)
    return Shaping(d=d, explore_weight=explore_weight, aux=aux, bonus=bonus, c=c, m=state.m)


def apply_bonus(
    advantages: torch.Tensor, bonus: torch.Tensor, completion_mask: torch.Tensor, bonus_on: str
) -> torch.Tensor:
    """A' = A + bonus: (B,) for all_tokens; (B, C) with the bonus on the last response token."""
    b = bonus.to(advantages.device, advantages.dtype)
    if bonus_on == ALL_TOKENS:
        return advantages + b
    if bonus_on != LAST_TOKEN:
        raise ValueError(f"bonus_on must be {ALL_TOKENS} or {LAST_TOKEN}, not {bonus_on!r}")
    mask = completion_mask.to(advantages.device).bool()  # (B, C)
    per_token = advantages[:, None].expand(mask.shape).clone()  # (B, C)
    has_tokens = mask.any(dim=1)
    # index of the last response token: the highest column where the mask is set
    cols = torch.arange(mask.size(1), device=mask.device)
    last = torch.where(mask, cols, -1).max(dim=1).values.clamp(min=0)  # (B,)
    rows = torch.arange(mask.size(0), device=mask.device)
    per_token[rows, last] += torch.where(has_tokens, b, torch.zeros_like(b))
    return per_token


def global_means(x: torch.Tensor, device: torch.device | str = "cpu") -> torch.Tensor:
    """Column means of x (B, K) over every process's rows: one all-reduce of [sums, count].

    Without an initialised torch.distributed group (one process) it is the local mean. `device`
    is where the collective runs (the accelerator's device for NCCL).
    """
    x = x.to(torch.float64)
    packed = torch.cat([x.sum(dim=0), x.new_tensor([x.size(0)])]).to(device)  # (K + 1,)
    dist = torch.distributed
    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        dist.all_reduce(packed, op=dist.ReduceOp.SUM)
    packed = packed.to("cpu")
    return packed[:-1] / packed[-1].clamp(min=1)


def task_scores(correct: torch.Tensor, boxed: torch.Tensor, rule: str) -> torch.Tensor:
    """The task score in [-1, 1] behind dynamic_weight, (B,) float64.

    correct, boxed: (B,) bool (the accuracy reward gave full marks; the response has a
    `\\boxed{...}`). "binary": +1 / -1 by `correct`. "reference": the reference's 4-level score
    (hf_math_verify.py L201-209 with REWORD_FUNCTION_TYPE=independent, set by its train.sh L37,
    and FORMAT_PENALTY_VALUE -1, L158): 1 correct and boxed, 0.5 correct not boxed, -0.5 incorrect
    boxed, -1 incorrect not boxed.

    >>> task_scores(torch.tensor([True, True, False, False]),
    ...             torch.tensor([True, False, True, False]), "reference").tolist()
    [1.0, 0.5, -0.5, -1.0]
    """
    c = correct.to(torch.bool)
    if rule == REFERENCE:
        b = boxed.to(torch.bool)
        hi = torch.where(b, 1.0, 0.5)
        lo = torch.where(b, -0.5, -1.0)
        return torch.where(c, hi, lo).to(torch.float64)
    return c.to(torch.float64) * 2 - 1


def update_baselines(state: ShapingState, mu: torch.Tensor, cfg: ShapingConfig) -> None:
    """Advance one training generation. mu: (4,) this generation's [mu_ERA, mu_ERV, mu_ER, score]."""
    state.initial(cfg)
    state.n += 1
    reference_score = cfg.score_rule == REFERENCE
    if reference_score:  # never lagged, never on generation 1, from 0
        state.ema_score = 0.0 if state.ema_score is None else state.ema_score
        if state.n >= 2:
            state.ema_score = (1 - cfg.alpha) * state.ema_score + cfg.alpha * float(mu[3])
    if cfg.baseline_lag:
        mu, state.pending = state.pending, mu.clone()
        if mu is None:
            return
    mu = mu.to(torch.float64)
    if state.m is None:  # the first update with baseline_init "first_batch"
        state.m = mu[:3].clone()
        if not reference_score:
            state.ema_score = float(mu[3])
        return
    state.m = (1 - cfg.alpha) * state.m + cfg.alpha * mu[:3]
    if not reference_score:
        state.ema_score = (1 - cfg.alpha) * state.ema_score + cfg.alpha * float(mu[3])


def generation_bonus(
    state: ShapingState,
    x: torch.Tensor,
    advantages: torch.Tensor,
    std_zero: torch.Tensor,
    cfg: ShapingConfig,
    *,
    enabled: bool = True,
) -> Shaping:
    """The bonus of some responses of the next training generation, from the current baselines
    (zero during warm-up and for plain GRPO); the state is not advanced."""
    state.initial(cfg)
    active = enabled and state.n + 1 > cfg.warmup_steps
    return compute_bonus(x, advantages, std_zero, state, cfg, active=active)


def advance_baselines(
    state: ShapingState,
    x: torch.Tensor,
    scores: torch.Tensor,
    cfg: ShapingConfig,
    device: torch.device | str = "cpu",
) -> None:
    """End one training generation: m and ema_score take in the mean of every process's x and
    task scores. x: (B, 3) [ERA, ERV, ER]; scores: (B,) in [-1, 1]."""
    mu = global_means(
        torch.cat([x.to(torch.float64), scores.to(torch.float64)[:, None]], 1), device
    )
    update_baselines(state, mu, cfg)


def shape_generation(
    state: ShapingState,
    x: torch.Tensor,
    advantages: torch.Tensor,
    std_zero: torch.Tensor,
    scores: torch.Tensor,
    cfg: ShapingConfig,
    *,
    enabled: bool = True,
    device: torch.device | str = "cpu",
) -> Shaping:
    """One whole training generation in the documented order: bonus from the current m, then
    update m.

    x: (B, 3) [ERA, ERV, ER]; advantages: (B,); std_zero: (B,) bool; scores: (B,) task scores in
    [-1, 1]. `enabled=False` is plain GRPO: the same measurements and baselines, a zero bonus.
    """
    out = generation_bonus(state, x, advantages, std_zero, cfg, enabled=enabled)
    advance_baselines(state, x, scores, cfg, device)
    return out
