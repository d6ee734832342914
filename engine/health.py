"""GRPO health: per-step numbers in, named failures ("flags") out. Pure: no storage, TRL or Gradio.

The signs that a GRPO run is learning nothing, each checked on every optimizer step against a
threshold of `engine.config.HealthConfig` (0 turns a check off):

    truncation        share of completions that hit grpo.max_completion_length without EOS
                      (truncated answers are scored without their answer: TRL issue 5697)
    tied_groups       share of prompt groups whose rollouts all got the same reward: their
                      group-normalised advantage is 0, so they give no gradient
    entropy_collapse  token entropy of the step fell by a factor >= N since the run's first step
    missing_reward    a reward function returned no value (None / NaN) for responses of the step
    nan_loss          the step's loss is NaN or infinite

    health = step_health(step, rows, loss=..., entropy=...)    # rows: one dict per response
    tracker = HealthTracker(cfg, first_entropy=None)
    update = tracker.update(health)    # flags now held, raised / cleared since the last step,
                                       # and a stop reason once a `stop_on` flag held `stop_after`
                                       # consecutive steps
    flagged_responses(kind, rows, ...)  # the responses behind a flag, with a reason each

A response row carries `group_idx`, `sample_idx`, `reward`, `rewards` (reward function name ->
value or None), `length`, `truncated` and `entropy` (nats); missing keys are treated as unknown.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from engine.config import HEALTH_FLAGS, HealthConfig

TRUNCATION, TIED_GROUPS, ENTROPY_COLLAPSE, MISSING_REWARD, NAN_LOSS = HEALTH_FLAGS
# run-event kinds: f"{FLAG}{name}" when a flag is raised, CLEAR when it no longer holds, STOP
# when it stopped the run
FLAG, CLEAR, STOP = "flag:", "clear:", "stop:"
HEALTH_EVENT_PREFIX = "health: "  # how a flag's message starts in the run's log
TIE_ATOL = 1e-9  # rewards closer than this count as equal (TRL: std == 0 after float sums)


@dataclass(frozen=True)
class StepHealth:
    """What the checks read about one optimizer step. None: not known for this step."""

    step: int
    responses: int = 0  # responses of the generation the step consumed (0: none)
    truncated: int | None = None  # of them, hit the length limit without EOS
    groups: int = 0
    tied_groups: int | None = None
    missing: dict[str, int] = field(default_factory=dict)  # reward function -> responses w/o value
    entropy: float | None = None  # mean token entropy, nats
    loss: float | None = None  # as logged (may be NaN: that is what nan_loss checks)

    @property
    def truncated_share(self) -> float | None:
        return (
            None
            if self.truncated is None or not self.responses
            else self.truncated / self.responses
        )

    @property
    def tied_share(self) -> float | None:
        return (
            None if self.tied_groups is None or not self.groups else self.tied_groups / self.groups
        )


@dataclass(frozen=True)
class Flag:
    """One failure held at one step: its kind, the measured value, the threshold, a sentence."""

    kind: str
    step: int
    value: float
    threshold: float
    message: str


@dataclass(frozen=True)
class HealthUpdate:
    flags: tuple[Flag, ...]  # held at this step
    raised: tuple[Flag, ...]  # held now, not at the previous step
    cleared: tuple[str, ...]  # kinds held at the previous step, not now
    stop_reason: str | None  # set once a `stop_on` flag held `stop_after` consecutive steps
    stop_kind: str | None = None  # that flag


def _missing_value(v: Any) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


def tied_group_ids(rows: Iterable[dict]) -> dict[int, float]:
    """Group index -> the shared reward, for every group whose rewards are all equal."""
    by_group: dict[int, list[float]] = {}
    for r in rows:
        reward = r.get("reward")
        by_group.setdefault(int(r.get("group_idx") or 0), []).append(
            math.nan if reward is None else float(reward)
        )
    tied = {}
    for g, rewards in by_group.items():
        finite = [x for x in rewards if math.isfinite(x)]
        if len(finite) == len(rewards) and max(finite) - min(finite) <= TIE_ATOL:
            tied[g] = finite[0]
    return tied


def step_health(
    step: int,
    rows: Sequence[dict],
    *,
    loss: float | None = None,
    entropy: float | None = None,
) -> StepHealth:
    """The health numbers of one step from every response of its generation (all processes).

    rows: one dict per response (module docstring); empty when the step consumed no new
    generation, then only loss and entropy are known."""
    if not rows:
        return StepHealth(step=step, entropy=entropy, loss=loss)
    truncated = [r.get("truncated") for r in rows]
    missing: dict[str, int] = {}
    for r in rows:
        for name, value in (r.get("rewards") or {}).items():
            if _missing_value(value):
                missing[name] = missing.get(name, 0) + 1
    groups = {int(r.get("group_idx") or 0) for r in rows}
    return StepHealth(
        step=step,
        responses=len(rows),
        truncated=None if any(t is None for t in truncated) else sum(map(bool, truncated)),
        groups=len(groups),
        tied_groups=len(tied_group_ids(rows)),
        missing=missing,
        entropy=entropy,
        loss=loss,
    )


def check(cfg: HealthConfig, h: StepHealth, first_entropy: float | None) -> list[Flag]:
    """Every flag that holds at step `h.step` (in HEALTH_FLAGS order)."""
    flags = []
    share = h.truncated_share
    if cfg.max_truncated and share is not None and share >= cfg.max_truncated:
        flags.append(
            Flag(
                TRUNCATION, h.step, share, cfg.max_truncated,
                f"{share:.0%} of completions truncated ({h.truncated} of {h.responses} hit "
                f"max_completion_length without end of sequence; flag at {cfg.max_truncated:.0%})",
            )
        )  # fmt: skip
    share = h.tied_share
    if cfg.max_tied_groups and share is not None and share >= cfg.max_tied_groups:
        flags.append(
            Flag(
                TIED_GROUPS, h.step, share, cfg.max_tied_groups,
                f"{share:.0%} of groups tied: little or no gradient ({h.tied_groups} of "
                f"{h.groups} groups gave every response the same reward; flag at "
                f"{cfg.max_tied_groups:.0%})",
            )
        )  # fmt: skip
    drop = entropy_drop(first_entropy, h.entropy)
    if cfg.max_entropy_drop and drop is not None and drop >= cfg.max_entropy_drop:
        flags.append(
            Flag(
                ENTROPY_COLLAPSE, h.step, drop, cfg.max_entropy_drop,
                f"entropy fell by {drop:.1f}x since step 1 ({first_entropy:.3g} -> "
                f"{h.entropy:.3g} nats; flag at {cfg.max_entropy_drop:g}x)",
            )
        )  # fmt: skip
    missing = {k: n for k, n in sorted(h.missing.items()) if n >= cfg.min_missing_rewards}
    if cfg.min_missing_rewards and missing:
        parts = "; ".join(
            f"reward function {k} returned no value for {n}" for k, n in missing.items()
        )
        flags.append(
            Flag(
                MISSING_REWARD, h.step, float(max(missing.values())), cfg.min_missing_rewards,
                f"{parts} of {h.responses} responses",
            )
        )  # fmt: skip
    if cfg.nan_loss and h.loss is not None and not math.isfinite(h.loss):
        flags.append(Flag(NAN_LOSS, h.step, h.loss, 0.0, f"loss is {h.loss} at step {h.step}"))
    return flags


def entropy_drop(first: float | None, now: float | None) -> float | None:
    """first / now (how many times smaller the entropy is now); inf when it reached 0; None
    when either is unknown or the first is not positive."""
    if first is None or now is None or not (math.isfinite(first) and math.isfinite(now)):
        return None
    if first <= 0:
        return None
    return math.inf if now <= 0 else first / now


class HealthTracker:
    """Checks step after step; remembers the first step's entropy, the flags held at the previous
    step and how many consecutive steps each has held (for `stop_on`)."""

    def __init__(self, cfg: HealthConfig, first_entropy: float | None = None):
        self.cfg = cfg
        self.first_entropy = first_entropy
        self.held: dict[str, Flag] = {}
        self.streak: dict[str, int] = {}

    def update(self, h: StepHealth) -> HealthUpdate:
        """Check step `h`. A flag whose data this step lacks (no new generation: nothing about
        responses) keeps its previous state and streak."""
        if self.first_entropy is None and h.entropy is not None and math.isfinite(h.entropy):
            self.first_entropy = h.entropy
        flags = check(self.cfg, h, self.first_entropy)
        now = {f.kind: f for f in flags}
        unknown = {k for k in self.held if k not in now and not _known(k, h)}
        raised = tuple(f for f in flags if f.kind not in self.held)
        cleared = tuple(k for k in self.held if k not in now and k not in unknown)
        self.streak = {k: self.streak.get(k, 0) + (k in now) for k in [*now, *unknown]}
        self.held = now | {k: self.held[k] for k in unknown}
        stop_kind = self._stop_kind()
        reason = None
        if stop_kind is not None:
            reason = (
                f"stopped by the health check '{stop_kind}' after {self.streak[stop_kind]} "
                f"consecutive steps (health.stop_on): {self.held[stop_kind].message}"
            )
        return HealthUpdate(tuple(flags), raised, cleared, reason, stop_kind)

    def _stop_kind(self) -> str | None:
        """The first `stop_on` flag that held `stop_after` consecutive steps, or None."""
        for kind in self.cfg.stop_on:
            if self.streak.get(kind, 0) >= self.cfg.stop_after:
                return kind
        return None


def _known(kind: str, h: StepHealth) -> bool:
    """Whether step `h` carries the data that flag `kind` is checked on."""
    if kind in (TRUNCATION, TIED_GROUPS, MISSING_REWARD):
        return h.responses > 0
    if kind == ENTROPY_COLLAPSE:
        return h.entropy is not None
    return h.loss is not None


def update_events(update: HealthUpdate) -> list[dict]:
    """Run events (message, level, kind) for what changed at a step: raised, cleared, stop."""
    events = [
        {"message": HEALTH_EVENT_PREFIX + f.message, "level": "warning", "kind": FLAG + f.kind}
        for f in update.raised
    ]
    events += [
        {"message": f"{HEALTH_EVENT_PREFIX}{k} no longer holds", "level": "info", "kind": CLEAR + k}
        for k in update.cleared
    ]
    if update.stop_kind:
        events.append(
            {"message": update.stop_reason, "level": "warning", "kind": STOP + update.stop_kind}
        )
    return events


# ----------------------------------------------------------------------------- responses behind a flag


def flagged_responses(kind: str, rows: Sequence[dict], *, loss: float | None = None) -> list[dict]:
    """The responses of one step behind a flag of `kind`, each with a `reason`.

    rows: that step's responses (module docstring). Returns copies of the chosen rows in
    (group, sample) order, except entropy_collapse: every response, lowest entropy first."""
    chosen: list[tuple[dict, str]] = []
    if kind == TRUNCATION:
        chosen = [
            (r, f"truncated at {r.get('length')} tokens without end of sequence")
            for r in rows
            if r.get("truncated")
        ]
    elif kind == TIED_GROUPS:
        tied = tied_group_ids(rows)
        chosen = [
            (
                r,
                f"group {r.get('group_idx')} tied: every reward {tied[int(r.get('group_idx') or 0)]:.4g}",
            )
            for r in rows
            if int(r.get("group_idx") or 0) in tied
        ]
    elif kind == ENTROPY_COLLAPSE:
        finite = [r for r in rows if r.get("entropy") is not None and math.isfinite(r["entropy"])]
        finite.sort(key=lambda r: r["entropy"])
        chosen = [(r, f"token entropy {r['entropy']:.3g} nats") for r in finite]
    elif kind == MISSING_REWARD:
        for r in rows:
            names = [k for k, v in (r.get("rewards") or {}).items() if _missing_value(v)]
            if names:
                chosen.append((r, f"no value from {', '.join(names)}"))
    elif kind == NAN_LOSS:
        what = "not finite" if loss is None else str(loss)
        chosen = [(r, f"the step's loss is {what}") for r in rows]
    else:
        raise ValueError(f"unknown health flag {kind!r}; known: {', '.join(HEALTH_FLAGS)}")
    if kind != ENTROPY_COLLAPSE:
        chosen.sort(key=lambda rr: (rr[0].get("group_idx") or 0, rr[0].get("sample_idx") or 0))
    return [dict(r, reason=reason) for r, reason in chosen]
