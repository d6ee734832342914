"""`RecordingCallback`: writes each optimizer step and its responses into the run store.

Per step, in one `store.log_step` transaction: TRL's metrics (renamed to the store's columns, the
rest in the JSON payload), the trainer's generation statistics (ER / ERV / ERA, baselines,
explore_weight, bonus) and every response row of the generation the step consumed first (a
generation's samples belong to the first optimizer step that consumes them). Also:

- held-out accuracy every `run.eval_every` steps (and once before training), sampled at the
  training temperature with a fixed seed and the training RNG left untouched;
- a checkpoint every `run.checkpoint_every` steps and at the last step, registered in the store
  with the shaping state beside it (`shaping_state.json`); older ones are pruned to
  `run.save_total_limit` (folder and row together; the newest is never pruned);
- a cancel check at each step boundary: checkpoint, then stop training;
- the GRPO health checks (`engine.health`) of every step, on every response of its generation:
  flags raised or cleared are written as run events in the step's transaction, and a
  `health.stop_on` flag that held `health.stop_after` consecutive steps stops the run like a
  cancel (checkpoint, then stop), with the reason in `stop_reason`.

Only the main process writes; every process takes part in evaluation.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from accelerate.utils import broadcast_object_list
from transformers import TrainerCallback

from engine.config import HealthConfig
from engine.health import HealthTracker, step_health, update_events
from engine.runs.lifecycle import register_checkpoint
from engine.shaping import ShapingState
from engine.storage.schema import STEP_METRICS
from engine.training.heldout import HeldOut

if TYPE_CHECKING:
    from engine.storage import Store

log = logging.getLogger(__name__)

SHAPING_STATE_FILE = "shaping_state.json"
HELDOUT_DATASET = "heldout"
CHECKPOINT_PREFIX = "checkpoint-"

# TRL log key -> store step column
TRL_COLUMNS = {
    "reward": "reward_mean",
    "reward_std": "reward_std",
    "frac_reward_zero_std": "frac_zero_std",
    "loss": "loss",
    "kl": "kl",
    "entropy": "entropy",
    "completions/mean_length": "completion_length",
    "num_tokens": "tokens",
    "completions/clipped_ratio": "clipped_ratio",
}
REWARD_MEAN_KEY = re.compile(r"rewards/(.+)/mean")  # TRL: one reward function's mean


def first_entropy(store: Store, run_id: int) -> float | None:
    """The entropy of the run's first recorded step (a resumed run keeps its reference)."""
    values = store.step_columns(run_id, ["entropy"])["entropy"]
    values = values[np.isfinite(values)]
    return float(values[0]) if values.size else None


def save_shaping_state(folder: str | Path, state: ShapingState) -> None:
    Path(folder, SHAPING_STATE_FILE).write_text(json.dumps(state.state_dict()))


def load_shaping_state(folder: str | Path) -> ShapingState:
    path = Path(folder, SHAPING_STATE_FILE)
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: this checkpoint has no shaping state")
    return ShapingState.from_state_dict(json.loads(path.read_text()))


class RecordingCallback(TrainerCallback):
    """Records steps, samples, held-out accuracy and checkpoints of one run (module docstring)."""

    def __init__(
        self,
        trainer,
        store: Store,
        run_id: int,
        *,
        run_cfg,
        health_cfg=None,
        heldout: HeldOut | None,
        should_stop: Callable[[], bool] = lambda: False,
        run_gone: Callable[[], bool] = lambda: False,
        on_step: Callable[[dict], None] | None = None,
    ):
        self.trainer = trainer
        self.store = store
        self.run_id = run_id
        self.run_cfg = run_cfg
        self.heldout = heldout
        self.should_stop = should_stop
        self.run_gone = run_gone
        self.on_step = on_step
        self.cancelled = False
        self.stop_reason: str | None = None  # why a health check stopped the run
        self.health = HealthTracker(health_cfg or HealthConfig(), first_entropy(store, run_id))
        self.store_seconds = 0.0
        self._t_step = time.perf_counter()
        self._t_start = time.perf_counter()
        self._heldout_now: float | None = None
        self._step_seconds: float | None = None

    # ---- helpers --------------------------------------------------------------------------
    @property
    def is_main(self) -> bool:
        return self.trainer.accelerator.is_main_process

    def stop_agreed(self) -> tuple[bool, bool]:
        """The main process's (stop, save a checkpoint first) decision, on every process (they
        must stop together). A run deleted under the process stops without saving."""
        decision = [(False, False)]
        if self.is_main and self.should_stop():
            decision = [(True, not self.run_gone())]
        if self.trainer.accelerator.num_processes > 1:
            broadcast_object_list(decision, from_process=0)
        stop, save = decision[0]
        return bool(stop), bool(save)

    def _evaluate(self, step: int) -> float | None:
        if self.heldout is None:
            return None
        counts = self.heldout.counts(self.trainer)
        acc = sum(counts) / (len(counts) * self.heldout.n_samples)
        if self.is_main:
            self.store.add_eval(
                self.run_id,
                step=step,
                dataset=HELDOUT_DATASET,
                n=self.heldout.n_samples,
                ks=[1],
                pass_at_k=[acc],
                per_problem=counts,
            )
        return acc

    # ---- events ---------------------------------------------------------------------------
    def on_train_begin(self, args, state, control, **kwargs):
        if state.global_step == 0 and self.run_cfg.eval_every:
            acc = self._evaluate(0)
            log.info("held-out accuracy before training: %s", acc)
        self._t_start = self._t_step = time.perf_counter()

    def on_step_begin(self, args, state, control, **kwargs):
        self._t_step = time.perf_counter()

    def on_step_end(self, args, state, control, **kwargs):
        step = state.global_step
        self._step_seconds = time.perf_counter() - self._t_step
        every = self.run_cfg.eval_every
        self._heldout_now = self._evaluate(step) if every and step % every == 0 else None
        if step % self.run_cfg.checkpoint_every == 0 or step >= state.max_steps:
            control.should_save = True
        stop, save = self.stop_agreed()
        if stop:
            self.cancelled = True
            control.should_save = save
            control.should_training_stop = True
        return control

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not logs or "loss" not in logs:
            return
        reason = None
        if self.is_main:
            t0 = time.perf_counter()
            step, samples, every = self.step_row(state.global_step, logs)
            health = step_health(
                step["step"], every, loss=logs.get("loss"), entropy=logs.get("entropy")
            )
            update = self.health.update(health)
            self.store.log_step(self.run_id, step, samples, events=update_events(update))
            self.store_seconds += time.perf_counter() - t0
            reason = update.stop_reason
            if self.on_step:
                self.on_step(step)
        reason = self._agreed(reason)
        if reason:
            log.warning("run %d: %s", self.run_id, reason)
            self.cancelled, self.stop_reason = True, reason
            control.should_save = True  # saved right after this log, then training stops
            control.should_training_stop = True
        return control

    def _agreed(self, value):
        """The main process's value, on every process."""
        box = [value]
        if self.trainer.accelerator.num_processes > 1:
            broadcast_object_list(box, from_process=0)
        return box[0]

    def on_save(self, args, state, control, **kwargs):
        folder = Path(args.output_dir) / f"{CHECKPOINT_PREFIX}{state.global_step}"
        if not self.is_main:
            return
        save_shaping_state(folder, self.trainer.shaping_state)
        register_checkpoint(
            self.store, self.run_id, state.global_step, folder, self.run_cfg.save_total_limit
        )

    # ---- the step row ---------------------------------------------------------------------
    def step_row(self, step: int, logs: dict[str, Any]) -> tuple[dict, list[dict], list[dict]]:
        """The store's step dict, the sample rows of the generation this step consumed that are
        recorded (`run.record_samples`), and all of them (what the health checks read)."""
        row: dict[str, Any] = {"step": step, "payload": {}}
        for key, column in TRL_COLUMNS.items():
            if logs.get(key) is not None:
                row[column] = logs[key]
        means = {m.group(1): v for k, v in logs.items() if (m := REWARD_MEAN_KEY.fullmatch(k))}
        row["reward_means"] = means or None
        samples: list[dict] = []
        every: list[dict] = []
        generations = self.trainer.generations
        if generations:
            record = generations.popleft()
            for name, value in record.stats.items():
                (row if name in STEP_METRICS else row["payload"])[name] = value
            row["payload"]["generation"] = record.generation
            samples, every = self._select(record.samples), list(record.samples)
            while generations:  # never expected with logging_steps=1; keep rows, lose none
                extra = generations.popleft()
                samples += self._select(extra.samples)
                every += extra.samples
        row["payload"].update({k: v for k, v in logs.items() if k not in TRL_COLUMNS})
        row["heldout_accuracy"] = self._heldout_now
        row["step_seconds"] = self._step_seconds
        row["wall_time"] = time.time()
        row["payload"]["elapsed_s"] = time.perf_counter() - self._t_start
        return row, samples, every

    def _select(self, rows: list[dict]) -> list[dict]:
        """All responses, or the first whole groups holding `run.record_samples` of them."""
        k = self.run_cfg.record_samples
        if not k or k >= len(rows):
            return rows
        groups = sorted({r["group_idx"] for r in rows})
        per_group = max(1, len(rows) // len(groups))
        keep = set(groups[: max(1, -(-k // per_group))])
        return [r for r in rows if r["group_idx"] in keep]
