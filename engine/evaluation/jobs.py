"""Eval jobs: pass@k of a run's checkpoints (the estimator is in passk.py).

An evaluation is an `eval` run in the store: `engine.runs.service.submit_eval(store, EvalConfig(...))` queues it, the
worker starts `verl-studio evaluate --run-id ID`, and `run_eval` loads each chosen checkpoint of
the source run (or a model by name), samples, scores with the source run's accuracy reward, and
writes one `evals` row per checkpoint under the eval run's id (`dataset` names what was used).
The eval run's progress (step / total) counts the models evaluated; a resumed eval run keeps the
rows it recorded (a resume keeps step 0, the base model) and evaluates only the other models.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from engine.config import BUILTIN_TASK, DEVICES, EMBEDDED_MODEL, DataConfig, StudioConfig
from engine.evaluation.passk import pass_at_k_curve, render_prompt, sample_completions, score

if TYPE_CHECKING:
    from engine.storage import Store

log = logging.getLogger(__name__)

EVAL_SECTION = "eval"  # an eval run's config is {"eval": EvalConfig.to_dict()}
HELDOUT = ""  # EvalConfig.dataset value meaning "the source run's held-out split"
BASE_STEP = 0  # the step an evaluation of the source run's starting model is recorded at


# ---------------------------------------------------------------- the eval job's config


def _f(default: Any, help: str) -> Any:
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata={"help": help})
    return field(default=default, metadata={"help": help})


@dataclass
class EvalConfig:
    """What one eval run measures: which models, on which problems, with how many samples."""

    source_run_id: int | None = _f(
        None, "Run whose checkpoints are evaluated (empty: evaluate `model` alone)."
    )
    model: str = _f(
        EMBEDDED_MODEL, "Model evaluated when there is no source run: 'embedded', a path, a hub id."
    )
    checkpoint_steps: list[int] = _f([], "Checkpoint steps to evaluate (empty = all of them).")
    include_base: bool = _f(
        False, "Also evaluate the source run's starting model (recorded as step 0)."
    )
    dataset: str = _f(
        HELDOUT,
        "Problems: empty = the source run's held-out split; 'arithmetic', a local "
        ".jsonl/.csv/.parquet file or a hub dataset id.",
    )
    num_problems: int = _f(50, "Problems evaluated (the first ones of the split).")
    n: int = _f(8, "n: samples per problem (n >= K).")
    k_max: int = _f(8, "K: pass@k is reported for k = 1 .. K.")
    temperature: float = _f(1.0, "Sampling temperature.")
    top_p: float = _f(1.0, "Nucleus sampling threshold.")
    max_new_tokens: int = _f(0, "Longest response (0 = the source run's max_completion_length).")
    batch_problems: int = _f(8, "Problems per generate call (each expands to n sequences).")
    seed: int = _f(0, "Sampling seed.")
    torch_threads: int = _f(1, "Torch CPU threads of the eval process.")
    device: str = _f("auto", "auto (CUDA when present), cpu or cuda.")

    def check(self) -> list[tuple[str, str]]:
        errs = []
        if self.source_run_id is None and not self.model.strip():
            errs.append(("model", "name a model or a source run"))
        if self.num_problems < 1:
            errs.append(("num_problems", "must be >= 1"))
        if self.k_max < 1:
            errs.append(("k_max", "must be >= 1"))
        if self.n < max(1, self.k_max):
            errs.append(("n", "the unbiased estimator needs n >= K (k_max)"))
        if not self.temperature > 0:
            errs.append(("temperature", "must be > 0"))
        if not 0 < self.top_p <= 1:
            errs.append(("top_p", "must be in (0, 1]"))
        if self.max_new_tokens < 0:
            errs.append(("max_new_tokens", "must be >= 0"))
        if self.batch_problems < 1:
            errs.append(("batch_problems", "must be >= 1"))
        if self.torch_threads < 1:
            errs.append(("torch_threads", "must be >= 1"))
        if self.device not in DEVICES:
            errs.append(("device", f"must be one of {', '.join(DEVICES)}"))
        if any(s < 0 for s in self.checkpoint_steps):
            errs.append(("checkpoint_steps", "steps are >= 0"))
        return errs

    @property
    def ks(self) -> list[int]:
        return list(range(1, self.k_max + 1))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EvalConfig:
        from engine.config import ConfigError

        known = {f.name for f in dataclasses.fields(cls)}
        unknown = [(f"eval.{k}", "unknown field") for k in data if k not in known]
        cfg = cls(**{k: v for k, v in data.items() if k in known})
        errors = unknown + [(f"eval.{p}", m) for p, m in cfg.check()]
        if errors:
            raise ConfigError(errors)
        return cfg


@dataclass(frozen=True)
class EvalTarget:
    """One model to evaluate: a checkpoint of the source run, or a model by name at step 0."""

    step: int
    path: str


@dataclass
class EvalResult:
    ks: list[int]
    pass_at_k: list[float]
    per_problem: list[int]  # c: correct samples of each problem, out of n


# ---------------------------------------------------------------- what an eval run evaluates


def source_config(store: Store, cfg: EvalConfig) -> StudioConfig | None:
    """The source run's training config (None when the eval names a model directly)."""
    if cfg.source_run_id is None:
        return None
    run = store.get_run(cfg.source_run_id)
    if run is None:
        raise ValueError(f"source run {cfg.source_run_id} does not exist")
    return StudioConfig.from_dict(run.config)


def eval_targets(store: Store, cfg: EvalConfig, src: StudioConfig | None) -> list[EvalTarget]:
    """Models to evaluate, in step order; an error names the steps that have no checkpoint."""
    if src is None:
        return [EvalTarget(BASE_STEP, cfg.model)]
    by_step = {int(c["step"]): str(c["path"]) for c in store.checkpoints(cfg.source_run_id)}
    wanted = cfg.checkpoint_steps or sorted(by_step)
    missing = [s for s in wanted if s not in by_step and s != BASE_STEP]
    if missing:
        raise ValueError(
            f"run {cfg.source_run_id} has no checkpoint at step(s) {missing}; "
            f"it has {sorted(by_step)}"
        )
    targets = [EvalTarget(s, by_step[s]) for s in sorted(set(wanted)) if s in by_step]
    if cfg.include_base or BASE_STEP in wanted:
        targets.insert(0, EvalTarget(BASE_STEP, src.model.name_or_path))
    if not targets:
        raise ValueError(f"run {cfg.source_run_id} has no checkpoints to evaluate")
    return targets


def eval_data_config(cfg: EvalConfig, src: StudioConfig | None) -> DataConfig:
    """The DataConfig whose `eval` split holds the problems (held-out unless a dataset is named)."""
    data = src.data if src is not None else DataConfig()
    if cfg.dataset == HELDOUT:
        return data
    if cfg.dataset == BUILTIN_TASK:
        return dataclasses.replace(data, task=BUILTIN_TASK, eval_task="")
    return dataclasses.replace(data, eval_task=cfg.dataset)


def dataset_label(cfg: EvalConfig, data: DataConfig) -> str:
    if cfg.dataset != HELDOUT:
        return cfg.dataset
    return f"held-out:{data.eval_task or data.task}"


def load_problems(cfg: EvalConfig, data: DataConfig) -> list[dict[str, Any]]:
    """The first `num_problems` rows of the eval split, as dicts with `prompt` and `answer`."""
    from engine.data.tasks import EVAL, load_dataset_for

    ds = load_dataset_for(data, split=EVAL, limit=cfg.num_problems)
    return [ds[i] for i in range(len(ds))]


def evaluate_model(
    model,
    tokenizer,
    problems: list[dict[str, Any]],
    reward_fn: Callable,
    cfg: EvalConfig,
    *,
    max_new_tokens: int,
    should_stop: Callable[[], bool] = lambda: False,
) -> EvalResult:
    """Per-problem correct counts c_p from n samples each, and the mean pass@k curve."""
    counts: list[int] = []
    B = cfg.batch_problems
    for start in range(0, len(problems), B):
        if should_stop():
            from engine.runs.lifecycle import RunCancelled

            raise RunCancelled()
        batch = problems[start : start + B]
        prompts = [render_prompt(r["prompt"], tokenizer) for r in batch]
        samples = sample_completions(
            model,
            tokenizer,
            prompts,
            n=cfg.n,
            max_new_tokens=max_new_tokens,
            temperature=cfg.temperature,
            top_p=cfg.top_p,
            generator_seed=cfg.seed * 1_000_003 + start,
        )
        counts += [sum(score(reward_fn, r, s)) for r, s in zip(batch, samples, strict=True)]
    return EvalResult(cfg.ks, pass_at_k_curve(counts, cfg.n, cfg.ks), counts)


# ---------------------------------------------------------------- the eval job


def _evaluate_target(
    store: Store, run_id: int, cfg: EvalConfig, target: EvalTarget, problems, reward_fn,
    data, max_new: int, label: str, should_stop,
) -> EvalResult:  # fmt: skip
    """Load one model, evaluate it, record its `evals` row and a one-line event."""
    from engine.models.loading import load_policy

    model, tok = load_policy(
        target.path, device=cfg.device, require_chat_template=data.chat_template
    )
    model.eval()
    res = evaluate_model(
        model, tok, problems, reward_fn, cfg, max_new_tokens=max_new, should_stop=should_stop
    )
    store.add_eval(
        run_id,
        step=target.step,
        dataset=label,
        n=cfg.n,
        ks=res.ks,
        pass_at_k=res.pass_at_k,
        per_problem=res.per_problem,
    )
    store.add_event(
        run_id,
        f"step {target.step}: pass@1 {res.pass_at_k[0]:.3f}, "
        f"pass@{cfg.k_max} {res.pass_at_k[-1]:.3f}",
    )
    log.info("step %d: pass@k %s", target.step, np.round(res.pass_at_k, 3))
    return res


def run_eval(store: Store, run_id: int) -> list[EvalResult]:
    """Execute eval run `run_id` under its lifecycle; one `evals` row per evaluated model."""
    import torch

    from engine.data.rewards import get_reward
    from engine.runs.lifecycle import RunLifecycle
    from engine.runs.service import RunError
    from engine.storage import RunKind
    from engine.training.reward_check import checked_reward

    run = store.get_run(run_id)
    if run is None:
        raise RunError(f"no run {run_id}")
    if run.kind != RunKind.EVAL:
        raise RunError(
            f"run {run_id} is not an eval job (it is a {run.kind} run): queue an evaluation of "
            "it on the Evaluate page, then pass that job's id"
        )
    cfg = EvalConfig.from_dict(run.config.get(EVAL_SECTION, {}))
    results = []
    threads = torch.get_num_threads()
    torch.set_num_threads(cfg.torch_threads)
    try:
        with RunLifecycle(store, run_id) as life:
            src = source_config(store, cfg)
            targets = eval_targets(store, cfg, src)
            data = eval_data_config(cfg, src)
            problems = load_problems(cfg, data)
            reward_fn = checked_reward(get_reward(data.reward))
            max_new = cfg.max_new_tokens or (src.grpo.max_completion_length if src else 256)
            label = dataset_label(cfg, data)
            store.add_event(
                run_id, f"evaluating {len(targets)} model(s) on {len(problems)} problems of {label}"
            )
            recorded = {int(r["step"]) for r in store.evals(run_id)}  # kept by a resume
            todo = [t for t in targets if t.step not in recorded]
            already = len(targets) - len(todo)
            if already:
                store.add_event(run_id, f"resuming: {already} model(s) already evaluated")
            store.set_progress(run_id, already, total_steps=len(targets))  # models done / total
            for done, target in enumerate(todo, start=already + 1):
                res = _evaluate_target(
                    store, run_id, cfg, target, problems, reward_fn, data, max_new, label,
                    should_stop=life.should_stop,
                )  # fmt: skip
                store.set_progress(run_id, done)
                results.append(res)
    finally:
        torch.set_num_threads(threads)
    return results
