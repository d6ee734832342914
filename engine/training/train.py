"""One training run end to end: `main(cfg, root=..., run_id=...)` (its CLI: engine.cli.jobs).

`verl-studio train --config demo-cpu [--set shaping.kappa=3 ...]` creates a run in the store and
trains it headless with a progress bar; `--run-id ID` trains a queued run whose config is in the
store (what the worker starts). Either way the run's status, heartbeat and cancellation go through
`engine.runs.lifecycle.RunLifecycle`, and a run with a checkpoint resumes from its last one (weights,
optimizer, scheduler, RNG and the shaping state).
"""

from __future__ import annotations

import logging
import os
import socket
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from engine.config import ConfigError, ModelConfig, StudioConfig, report_targets
from engine.paths import DataRoot
from engine.resources import recipe_path

if TYPE_CHECKING:
    from engine.storage import Store

log = logging.getLogger(__name__)

CPU, CUDA, AUTO = "cpu", "cuda", "auto"


@dataclass
class TrainResult:
    run_id: int
    steps: int
    cancelled: bool
    trainer: Any
    callback: Any
    stop_reason: str | None = None  # a health check stopped the run (None: a cancel or the end)


def device_of(cfg: StudioConfig) -> str:
    if cfg.run.device == AUTO:
        return CUDA if torch.cuda.is_available() else CPU
    return cfg.run.device


# transformers 5.x calls `gradient_checkpointing(_kwargs)`, which TRL 1.16's GRPOConfig still
# sets, deprecated aliases of `activation_checkpointing(_kwargs)`: a FutureWarning at every config
# and trainer built, in every run's log and dozens of times in a benchmark. Nothing to act on here.
CHECKPOINTING_ALIAS_WARNING = (
    r"`gradient_checkpointing(_kwargs)?` is deprecated and will be removed in v6\."
)


@contextmanager
def no_checkpointing_alias_warning() -> Iterator[None]:
    """Silence exactly the FutureWarning above (message and category) while building."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", CHECKPOINTING_ALIAS_WARNING, FutureWarning)
        yield


def grpo_args(cfg: StudioConfig, output_dir: Path):
    """TRL's GRPOConfig from the studio config (CPU: fp32, no checkpointing, no completions log)."""
    from trl import GRPOConfig

    g, run = cfg.grpo, cfg.run
    on_cpu = device_of(cfg) == CPU
    bf16 = not on_cpu and cfg.model.dtype in (AUTO, "bfloat16") and torch.cuda.is_bf16_supported()
    with no_checkpointing_alias_warning():
        return GRPOConfig(
            output_dir=str(output_dir),
            use_cpu=on_cpu,
            bf16=bf16,
            fp16=False,
            gradient_checkpointing=not on_cpu,
            learning_rate=g.learning_rate,
            lr_scheduler_type=g.lr_scheduler_type,
            per_device_train_batch_size=g.per_device_train_batch_size,
            gradient_accumulation_steps=g.gradient_accumulation_steps,
            num_generations=g.num_generations,
            max_completion_length=g.max_completion_length,
            temperature=g.temperature,
            top_p=g.top_p,
            beta=g.beta,
            num_iterations=g.num_iterations,
            epsilon=g.epsilon,
            loss_type=g.loss_type,
            scale_rewards=g.scale_rewards,
            max_grad_norm=g.max_grad_norm,
            weight_decay=g.weight_decay,
            max_steps=run.max_steps,
            seed=run.seed,
            data_seed=run.seed,
            logging_steps=1,
            save_strategy="no",  # the recording callback decides when (and registers each one)
            report_to=report_targets(run.report_to) or "none",
            log_completions=False,
            disable_tqdm=True,
            dataloader_num_workers=0,
        )


def lora_config(model: ModelConfig):
    """PEFT config for the trainer, or None when model.lora is off."""
    from engine.models.loading import lora_spec_from_config, peft_lora_config

    spec = lora_spec_from_config(model)
    return peft_lora_config(spec) if spec else None


def build_trainer(cfg: StudioConfig, output_dir: Path):
    """The VerlTrainer for `cfg`, its model, data and rewards loaded (no callback yet)."""
    from engine.data.rewards import get_reward
    from engine.data.tasks import load_dataset_for
    from engine.models.loading import load_policy
    from engine.training.reward_check import checked_reward
    from engine.training.trainer import VerlTrainer

    model, tokenizer = load_policy(
        cfg.model.name_or_path,
        dtype=cfg.model.dtype,
        device=device_of(cfg),
        require_chat_template=cfg.data.chat_template,
    )
    names = [cfg.data.reward, *cfg.data.extra_rewards]
    rewards = [checked_reward(get_reward(name)) for name in names]
    with no_checkpointing_alias_warning():  # TRL reads and copies the args while it builds
        return VerlTrainer(
            model=model,
            reward_funcs=rewards,
            args=grpo_args(cfg, output_dir),
            train_dataset=load_dataset_for(cfg.data, "train"),
            processing_class=tokenizer,
            peft_config=lora_config(cfg.model),
            shaping=cfg.shaping,
            algorithm=cfg.run.algorithm,
        )


def build_heldout(cfg: StudioConfig):
    if not cfg.run.eval_every:
        return None
    from engine.data.rewards import get_reward
    from engine.data.tasks import load_dataset_for
    from engine.training.heldout import HeldOut
    from engine.training.reward_check import checked_reward

    rows = list(load_dataset_for(cfg.data, "eval", limit=cfg.run.eval_size))
    return HeldOut(
        rows=rows,
        reward_fn=checked_reward(get_reward(cfg.data.reward)),
        temperature=cfg.grpo.temperature,
        top_p=cfg.grpo.top_p,
        max_new_tokens=cfg.grpo.max_completion_length,
        seed=cfg.run.seed,
    )


class Progress:
    """tqdm bar over optimizer steps showing step, reward, accuracy and ER (main process only)."""

    def __init__(self, total: int, initial: int, enabled: bool):
        from tqdm.auto import tqdm

        self.bar = tqdm(total=total, initial=initial, unit="step", disable=not enabled)

    def __call__(self, step: dict) -> None:
        def fmt(key):
            v = step.get(key)
            return "-" if v is None else f"{v:.3f}"

        self.bar.set_postfix(
            step=step["step"], reward=fmt("reward_mean"), acc=fmt("accuracy"), ER=fmt("er_mean")
        )
        self.bar.update(step["step"] - self.bar.n)

    def close(self) -> None:
        self.bar.close()


class CheckpointFolderTaken(RuntimeError):
    """A new run's checkpoint folder already holds files it did not write."""


def refuse_foreign_checkpoints(store, run_id: int, folder: Path, last: dict | None) -> None:
    """A run's first attempt, with no checkpoint recorded, never writes into a folder that
    already holds files (a database replaced under its data root, ids from another store):
    they belong to some other run and would be overwritten or pruned. Raises
    CheckpointFolderTaken naming the folder."""
    run = store.get_run(run_id)
    if last is not None or run is None or run.attempt > 1 or not folder.is_dir():
        return
    if any(folder.iterdir()):
        raise CheckpointFolderTaken(
            f"the checkpoint folder {folder} of new run {run_id} already holds files from "
            "another run (was the database replaced?): move it away, then resume the run"
        )


def train(
    cfg: StudioConfig,
    *,
    store: Store,
    root: DataRoot,
    run_id: int,
    should_stop=lambda: False,
    run_gone=lambda: False,
    progress: bool = True,
) -> TrainResult:
    """Train run `run_id` to cfg.run.max_steps (or until should_stop), recording to `store`."""
    from transformers import PrinterCallback

    from engine.training.callbacks import RecordingCallback, load_shaping_state

    torch.set_num_threads(cfg.run.torch_threads)
    output_dir = root.run_checkpoints(run_id)
    last = store.last_checkpoint(run_id)
    refuse_foreign_checkpoints(store, run_id, output_dir, last)
    trainer = build_trainer(cfg, output_dir)
    trainer.remove_callback(PrinterCallback)
    start = last["step"] if last else 0
    bar = Progress(cfg.run.max_steps, start, progress and trainer.accelerator.is_main_process)
    callback = RecordingCallback(
        trainer,
        store,
        run_id,
        run_cfg=cfg.run,
        health_cfg=cfg.health,
        heldout=build_heldout(cfg),
        should_stop=should_stop,
        run_gone=run_gone,
        on_step=bar,
    )
    trainer.add_callback(callback)
    if last:
        trainer.shaping_state = load_shaping_state(last["path"])
        store.add_event(run_id, f"resuming from checkpoint {last['step']}")
    try:
        trainer.train(resume_from_checkpoint=str(last["path"]) if last else None)
    finally:
        bar.close()
    if trainer.state.global_step == start < cfg.run.max_steps and not callback.cancelled:
        raise ValueError(no_step_reason(trainer))
    return TrainResult(
        run_id,
        trainer.state.global_step,
        callback.cancelled,
        trainer,
        callback,
        callback.stop_reason,
    )


def no_step_reason(trainer) -> str:
    """Why training ended without one step: Transformers stops quietly ("not a single sample in
    your epoch_iterator") when the dataset holds fewer prompts than one step draws."""
    rows = len(trainer.train_dataset) if trainer.train_dataset is not None else 0
    prompts = trainer.args.generation_batch_size // trainer.num_generations
    return (
        f"the dataset has {rows} rows, fewer than the {prompts} prompts one step draws "
        f"(grpo.per_device_train_batch_size x processes x steps per generation / "
        f"grpo.num_generations): no step was trained; add rows to data.task or lower "
        f"grpo.per_device_train_batch_size"
    )


def is_main_process() -> bool:
    """Rank 0 of an `accelerate launch` (or the only process); known before accelerate starts."""
    return int(os.environ.get("RANK", "0")) == 0


def main(cfg: StudioConfig, *, root: DataRoot, run_id: int | None = None, progress=True) -> int:
    """Train one run under its lifecycle (creates the run when `run_id` is None); exit code."""
    from engine.runs import service
    from engine.runs.admission import AccessPolicy, check_submission
    from engine.runs.lifecycle import RunCancelled, RunLifecycle
    from engine.storage import Store

    store = Store(root.db_url)
    try:
        if run_id is None and not is_main_process():
            raise ConfigError(
                [
                    (
                        "run_id",
                        "several processes need a queued run: verl-studio submit, then a worker",
                    )
                ]
            )
        if run_id is None:  # trained here, not through the queue: no worker may claim it
            trusted = AccessPolicy.command_line()
            cfg = check_submission(cfg, trusted)  # local paths absolute, as the store keeps them
            run_id = service.submit(store, cfg, policy=trusted, claimed_by=socket.gethostname())
        log.info("run %s: %s", run_id, service.default_name(cfg))
        if not is_main_process():  # under accelerate launch the main process owns the status
            train(cfg, store=store, root=root, run_id=run_id, progress=False)
            return 0
        with RunLifecycle(store, run_id) as life:
            result = train(
                cfg, store=store, root=root, run_id=run_id, should_stop=life.should_stop,
                run_gone=life.gone, progress=progress,
            )  # fmt: skip
            if result.cancelled:
                raise RunCancelled(result.stop_reason or "")
    finally:
        store.close()
    return 0


def config_from_args(args, store: Store | None = None) -> StudioConfig:
    """--config (a recipe name or a path) + --set, or the queued run's stored config."""
    overrides = list(getattr(args, "overrides", None) or [])
    if getattr(args, "run_id", None) is not None:
        info = store.get_run(args.run_id)
        if info is None:
            raise ConfigError([("run_id", f"no run {args.run_id} in the store")])
        return StudioConfig.from_dict(info.config).with_overrides(overrides)
    if not args.config:
        raise ConfigError([("config", "give --config (a recipe name or a YAML file) or --run-id")])
    return StudioConfig.load(recipe_path(args.config), overrides)


def quiet_transformers() -> None:
    """No weight-loading / shard-writing bars or v6 deprecation notes in the run's log."""
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    warnings.filterwarnings("ignore", category=FutureWarning, module=r"transformers\.")
