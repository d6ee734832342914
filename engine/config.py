"""Run configuration: one typed dataclass per concern, the paper's defaults, help text per field.

A run is described by a `StudioConfig` with six sections, addressed in YAML, on the command line
(`--set shaping.kappa=3`) and in the app by dotted paths:

    model.*     which policy to train (the embedded tiny model, a local folder or a hub id; LoRA)
    data.*      the task or dataset and the verifiable reward
    grpo.*      TRL GRPOConfig settings (TRL's `beta` is the KL coefficient)
    shaping.*   the VERL advantage shaping (arXiv:2509.23808); off when run.algorithm == "grpo"
    run.*       name, algorithm, seed, steps, evaluation, checkpoints, recording, processes
    health.*    thresholds of the GRPO health flags, and whether a flag stops the run

Every field's help text is its `metadata["help"]`; the CLI and the app's launch form show it.
`StudioConfig.validate()` checks every field and raises one `ConfigError` listing every
(field path, message) at once.
"""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, get_args, get_origin, get_type_hints

import yaml

ALGORITHMS = ("grpo", "verl")
BONUS_TARGETS = ("all_tokens", "last_token")
BASELINE_INITS = ("first_batch", "zero")
HIDDEN_ALIGNMENTS = ("produced", "read")
SCORE_RULES = ("binary", "reference")
SHAPING_PRESETS = ("custom", "reference")
# The rules (not the numbers) of the reference code's shaping, hf618/VERL @ 3de68f1; see
# engine/shaping.py for the file and line of each. kappa, alpha, gain, the weights and
# aux_weight stay free: the reference exposes them as settings too.
REFERENCE_SHAPING = {
    "baseline_init": "zero",
    "baseline_lag": 1,
    "bonus_on": "last_token",
    "score_rule": "reference",
    "warmup_steps": 1,
    "hidden_alignment": "produced",
}
DTYPES = ("auto", "float32", "bfloat16", "float16")
DEVICES = ("auto", "cpu", "cuda")
EMBEDDED_MODEL = "embedded"
BUILTIN_TASK = "arithmetic"
SCALE_REWARDS = ("group", "batch", "none")
LOSS_TYPES = ("grpo", "dr_grpo", "dapo", "bnpo")
# transformers' reporting integrations (transformers.integrations.INTEGRATION_TO_CALLBACK)
REPORTERS = (
    "none", "all", "azure_ml", "clearml", "codecarbon", "comet_ml", "dagshub", "dvclive", "flyte",
    "kubeflow", "mlflow", "neptune", "swanlab", "tensorboard", "trackio", "wandb",
)  # fmt: skip
# Well-formed values: integers the store's INTEGER columns hold on every backend (PostgreSQL's
# is 32-bit), finite floats, and sane ceilings where a larger value is always a typo.
INT_MIN, INT_MAX = -(2**31), 2**31 - 1
MAX_LEARNING_RATE = 1.0
MAX_TEMPERATURE = 10.0
MIN_CURVE_POINTS = 3  # ERA needs 3 curve points (ERV 2): ER at s, 2s, 3s of a response
# the fields the rules across sections read: checked once each of them is fine on its own
CROSS_SECTION_FIELDS = ("shaping.stride", "shaping.max_len", "grpo.max_completion_length")


class ConfigError(ValueError):
    """Every problem found in a config, as (field path, message) pairs; its text is one line,
    "invalid config: path: message; path: message" (a path of "config" names the document)."""

    def __init__(self, errors: list[tuple[str, str]]):
        self.errors = list(errors)
        parts = [m if p in ("", "config") else f"{p}: {m}" for p, m in self.errors]
        super().__init__("invalid config: " + "; ".join(" ".join(x.split()) for x in parts))


def _f(default: Any, help: str, **kw: Any) -> Any:
    """A dataclass field with its help text; list defaults are copied per instance."""
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata={"help": help, **kw})
    return field(default=default, metadata={"help": help, **kw})


@dataclass
class ModelConfig:
    name_or_path: str = _f(
        EMBEDDED_MODEL,
        "Policy model: 'embedded' (the shipped tiny Qwen2 reasoner), a local folder, or a hub id "
        "(from the hub, or with HF_HUB_OFFLINE=1 from the local Hugging Face cache).",
    )
    dtype: str = _f(
        "auto",
        "Weights dtype: auto (float32 on CPU, bfloat16 on GPU), float32, bfloat16, float16.",
        choices=DTYPES,
    )
    lora: bool = _f(False, "Train LoRA adapters (PEFT) instead of all weights.")
    lora_r: int = _f(8, "LoRA rank.")
    lora_alpha: int = _f(16, "LoRA scaling alpha.")
    lora_dropout: float = _f(0.0, "LoRA dropout.")
    lora_target_modules: list[str] = _f(
        ["q_proj", "k_proj", "v_proj", "o_proj"], "Module names LoRA wraps."
    )

    def check(self) -> list[tuple[str, str]]:
        errs = []
        if not self.name_or_path.strip():
            errs.append(("name_or_path", "must not be empty"))
        if self.dtype not in DTYPES:
            errs.append(("dtype", f"must be one of {', '.join(DTYPES)}"))
        if self.lora_r < 1:
            errs.append(("lora_r", "must be >= 1"))
        if self.lora_alpha < 1:
            errs.append(("lora_alpha", "must be >= 1"))
        if not 0.0 <= self.lora_dropout < 1.0:
            errs.append(("lora_dropout", "must be in [0, 1)"))
        if self.lora and not self.lora_target_modules:
            errs.append(("lora_target_modules", "LoRA needs at least one target module"))
        return errs


@dataclass
class DataConfig:
    task: str = _f(
        BUILTIN_TASK,
        "Training data: 'arithmetic' (built-in multi-step arithmetic, generated from data.seed), "
        "a local .jsonl/.csv/.parquet file, or a hub dataset id (from the hub, or offline from "
        "the local Hugging Face cache).",
    )
    split: str = _f("train", "Split to read from a hub dataset.")
    eval_task: str = _f(
        "", "Held-out data: empty = the task's own held-out split (arithmetic) or data.eval_split."
    )
    eval_split: str = _f("test", "Held-out split of a hub dataset.")
    question_field: str = _f("question", "Field holding the question in a file or hub dataset.")
    answer_field: str = _f("answer", "Field holding the gold answer in a file or hub dataset.")
    prompt_template: str = _f(
        "{question}", "Prompt text; {question} is replaced by the question field."
    )
    chat_template: bool = _f(False, "Wrap prompts in the tokenizer's chat template.")
    n_ops: int = _f(3, "Arithmetic task: operands per problem.")
    digits: int = _f(2, "Arithmetic task: digits per operand.")
    train_size: int = _f(5000, "Arithmetic task: training problems generated.")
    seed: int = _f(
        7, "Arithmetic task: generator seed of the training split (held-out uses its own)."
    )
    reward: str = _f(
        "accuracy",
        "Accuracy reward: a registered name or 'module:function' of an installed module.",
    )
    extra_rewards: list[str] = _f(
        [], "Further reward functions (names or module:function), summed with the accuracy reward."
    )

    def check(self) -> list[tuple[str, str]]:
        errs = []
        if not self.task.strip():
            errs.append(("task", "must not be empty"))
        if "{question}" not in self.prompt_template:
            errs.append(("prompt_template", "must contain {question}"))
        if not 2 <= self.n_ops <= 8:
            errs.append(("n_ops", "must be in [2, 8]"))
        if not 1 <= self.digits <= 6:
            errs.append(("digits", "must be in [1, 6]"))
        if self.train_size < 1:
            errs.append(("train_size", "must be >= 1"))
        if self.seed < 0:
            errs.append(("seed", "must be >= 0"))
        for name in ("split", "question_field", "answer_field"):
            if not getattr(self, name).strip():
                errs.append((name, "must not be empty"))
        if self.answer_field.strip() and self.answer_field.strip() == self.question_field.strip():
            # the model would be prompted with its own gold answer
            errs.append(("answer_field", "must differ from data.question_field"))
        if not self.reward.strip():
            errs.append(("reward", "must not be empty"))
        return errs


@dataclass
class GRPOSettings:
    learning_rate: float = _f(1e-6, "Optimizer learning rate.")
    lr_scheduler_type: str = _f(
        "constant", "Learning-rate schedule (a transformers scheduler name)."
    )
    per_device_train_batch_size: int = _f(8, "Completions per device per optimizer step.")
    gradient_accumulation_steps: int = _f(1, "Gradient accumulation steps.")
    num_generations: int = _f(8, "Rollouts per prompt (the GRPO group size).")
    max_completion_length: int = _f(1536, "Longest response in tokens.")
    temperature: float = _f(1.0, "Sampling temperature of the rollouts.")
    top_p: float = _f(1.0, "Nucleus sampling threshold.")
    beta: float = _f(
        0.0, "KL coefficient against the reference model (TRL's beta; 0 = no reference model)."
    )
    num_iterations: int = _f(1, "Optimisation passes over each generation batch (GRPO's mu).")
    epsilon: float = _f(0.2, "PPO clip range.")
    loss_type: str = _f(
        "dapo", "Loss normalisation: grpo, dr_grpo, dapo or bnpo.", choices=LOSS_TYPES
    )
    scale_rewards: str = _f(
        "group", "Advantage scaling: group std, batch std or none.", choices=SCALE_REWARDS
    )
    max_grad_norm: float = _f(1.0, "Gradient clipping norm.")
    weight_decay: float = _f(0.0, "AdamW weight decay.")

    def check(self) -> list[tuple[str, str]]:
        errs = []
        if not 0 < self.learning_rate <= MAX_LEARNING_RATE:
            errs.append(
                ("learning_rate", f"must be in (0, {MAX_LEARNING_RATE:g}] (typical: 1e-6 to 1e-4)")
            )
        if self.per_device_train_batch_size < 1:
            errs.append(("per_device_train_batch_size", "must be >= 1"))
        if self.gradient_accumulation_steps < 1:
            errs.append(("gradient_accumulation_steps", "must be >= 1"))
        if self.num_generations < 2:
            errs.append(("num_generations", "GRPO needs at least 2 rollouts per prompt"))
        elif (
            self.per_device_train_batch_size * self.gradient_accumulation_steps
        ) % self.num_generations:
            errs.append(
                (
                    "num_generations",
                    "per_device_train_batch_size x gradient_accumulation_steps must be a multiple of num_generations",
                )
            )
        if self.max_completion_length < 1:
            errs.append(("max_completion_length", "must be >= 1"))
        if not 0 < self.temperature <= MAX_TEMPERATURE:
            errs.append(("temperature", f"must be in (0, {MAX_TEMPERATURE:g}]"))
        if not 0 < self.top_p <= 1:
            errs.append(("top_p", "must be in (0, 1]"))
        for name in ("beta", "epsilon", "max_grad_norm", "weight_decay"):
            if not getattr(self, name) >= 0:
                errs.append((name, "must be >= 0"))
        if self.num_iterations < 1:
            errs.append(("num_iterations", "must be >= 1"))
        if self.loss_type not in LOSS_TYPES:
            errs.append(("loss_type", f"must be one of {', '.join(LOSS_TYPES)}"))
        if self.scale_rewards not in SCALE_REWARDS:
            errs.append(("scale_rewards", f"must be one of {', '.join(SCALE_REWARDS)}"))
        return errs


@dataclass
class ShapingConfig:
    stride: int = _f(
        40, "s: rank-curve stride in tokens (ER is computed on prefixes of s, 2s, ... rows)."
    )
    max_len: int | None = _f(512, "Curve over the last max_len response tokens (empty = all).")
    kappa: float = _f(
        2.0, "kappa: the bonus is clipped to |A| / kappa, so it never dominates the task advantage."
    )
    alpha: float = _f(0.3, "alpha: EMA rate of the baselines m_k <- (1 - alpha) m_k + alpha mu_k.")
    gain: float = _f(2.0, "Gain of explore_weight = sigmoid(gain * d_ERA) (the paper's beta).")
    w_explore: list[float] = _f([0.0, 0.0, 1.0], "Explore weights over [ERA, ERV, ER].")
    w_exploit: list[float] = _f([0.0, 1.0, 0.0], "Exploit weights over [ERA, ERV, ER].")
    aux_weight: float = _f(1.0, "c: scale of the auxiliary signal.")
    dynamic_weight: bool = _f(
        False, "Scale c by 1 - (ema_score + 1) / 2 (less shaping as the task score rises)."
    )
    score_rule: str = _f(
        "binary",
        "Task score behind dynamic_weight. binary: +1 correct / -1 incorrect, its EMA lagged like "
        "m; reference: 1 / 0.5 / -0.5 / -1 (correct with / without a \\boxed answer, incorrect "
        "with / without), its EMA taking the current generation's score from generation 2 on.",
        choices=SCORE_RULES,
    )
    bonus_on: str = _f(
        "all_tokens",
        "all_tokens: the bonus on every response token; last_token: on the last token only (the "
        "reference code). Under a token-averaged loss (dapo, bnpo, dr_grpo) all_tokens weighs the "
        "bonus about response-length times (L x) more than last_token.",
        choices=BONUS_TARGETS,
    )
    warmup_steps: int = _f(1, "Generations with no bonus at the start (baselines still update).")
    baseline_init: str = _f(
        "first_batch",
        "first_batch: m starts at the first batch mean; zero: the reference's m = 0.",
        choices=BASELINE_INITS,
    )
    baseline_lag: int = _f(
        0,
        "0: m holds means up to the previous generation; 1: the reference's extra one-step lag.",
        choices=(0, 1),
    )
    hidden_alignment: str = _f(
        "produced",
        "Hidden state measured for response token j. produced: the state that produced token j "
        "(position prompt_len - 1 + j; the reference's decode-time capture); read: the state that "
        "has read token j (prompt_len + j).",
        choices=HIDDEN_ALIGNMENTS,
    )
    preset: str = _f(
        "custom",
        "custom: the settings as given; reference: the reference code's rules (zero baselines, "
        "lag 1, last-token bonus, its score rule, produced alignment, warm-up 1), filled in "
        "where not given.",
        choices=SHAPING_PRESETS,
    )

    def check(self) -> list[tuple[str, str]]:
        errs = []
        if self.stride < 1:
            errs.append(("stride", "must be >= 1"))
        if self.max_len is not None and self.max_len < 2:
            errs.append(("max_len", "must be >= 2 or empty"))
        if not self.kappa >= 1:
            errs.append(
                ("kappa", "must be >= 1 (a smaller kappa lets the bonus flip a negative A)")
            )
        if not 0 < self.alpha <= 1:
            errs.append(("alpha", "must be in (0, 1]"))
        if not math.isfinite(self.gain):
            errs.append(("gain", "must be finite"))
        for name in ("w_explore", "w_exploit"):
            w = getattr(self, name)
            if len(w) != 3:
                errs.append((name, "needs 3 weights over [ERA, ERV, ER]"))
            elif not all(math.isfinite(x) for x in w):
                errs.append((name, "weights must be finite"))
        if not self.aux_weight >= 0:
            errs.append(("aux_weight", "must be >= 0"))
        if self.bonus_on not in BONUS_TARGETS:
            errs.append(("bonus_on", f"must be one of {', '.join(BONUS_TARGETS)}"))
        if self.warmup_steps < 0:
            errs.append(("warmup_steps", "must be >= 0"))
        if self.baseline_init not in BASELINE_INITS:
            errs.append(("baseline_init", f"must be one of {', '.join(BASELINE_INITS)}"))
        if self.baseline_lag not in (0, 1):
            errs.append(("baseline_lag", "must be 0 or 1"))
        for name, choices in (
            ("hidden_alignment", HIDDEN_ALIGNMENTS),
            ("score_rule", SCORE_RULES),
            ("preset", SHAPING_PRESETS),
        ):
            if getattr(self, name) not in choices:
                errs.append((name, f"must be one of {', '.join(choices)}"))
        if self.preset == "reference":
            errs += [
                (name, f"the reference preset needs {want!r}; set it or use preset custom")
                for name, want in REFERENCE_SHAPING.items()
                if getattr(self, name) != want
            ]
        return errs


@dataclass
class RunSettings:
    name: str = _f("", "Run name shown in the dashboard (empty = generated).")
    algorithm: str = _f(
        "verl", "grpo: plain GRPO; verl: GRPO with VERL advantage shaping.", choices=ALGORITHMS
    )
    seed: int = _f(0, "Seed of sampling, initialisation and data order.")
    max_steps: int = _f(100, "Optimizer steps.")
    eval_every: int = _f(10, "Held-out accuracy every N steps (0 = off).")
    eval_size: int = _f(100, "Held-out problems per evaluation.")
    checkpoint_every: int = _f(25, "Checkpoint every N steps (a final one is always written).")
    save_total_limit: int = _f(
        3, "Checkpoints kept per run (the one a resume needs is never deleted)."
    )
    record_samples: int = _f(0, "Responses recorded per step with their curves (0 = all).")
    num_processes: int = _f(1, "Processes (GPUs); more than 1 runs under accelerate launch.")
    device: str = _f("auto", "auto (CUDA when present), cpu or cuda.", choices=DEVICES)
    torch_threads: int = _f(
        1, "Torch CPU threads of the training process (keep 1-2 so the app stays live)."
    )
    report_to: str = _f(
        "none",
        "Trackers TRL also logs to, beside the Studio's store: none, or comma-separated names "
        "(tensorboard, trackio, wandb, mlflow, ...; the tracker's package must be installed). "
        "TensorBoard writes under the run's checkpoint folder, runs/.",
    )

    def check(self) -> list[tuple[str, str]]:
        errs = []
        if self.algorithm not in ALGORITHMS:
            errs.append(("algorithm", f"must be one of {', '.join(ALGORITHMS)}"))
        if self.max_steps < 1:
            errs.append(("max_steps", "must be >= 1"))
        if self.seed < 0:
            errs.append(("seed", "must be >= 0"))
        for name in ("eval_every", "record_samples"):
            if getattr(self, name) < 0:
                errs.append((name, "must be >= 0"))
        if self.eval_size < 1:
            errs.append(("eval_size", "must be >= 1"))
        if self.checkpoint_every < 1:
            errs.append(("checkpoint_every", "must be >= 1"))
        if self.save_total_limit < 1:
            errs.append(("save_total_limit", "must be >= 1"))
        if self.num_processes < 1:
            errs.append(("num_processes", "must be >= 1"))
        if self.device not in DEVICES:
            errs.append(("device", f"must be one of {', '.join(DEVICES)}"))
        if self.torch_threads < 1:
            errs.append(("torch_threads", "must be >= 1"))
        names = [n.strip() for n in str(self.report_to).split(",")]
        if names != ["none"] and any(n not in REPORTERS[1:] for n in names):
            errs.append(
                (
                    "report_to",
                    f"must be none or comma-separated names among {', '.join(REPORTERS[1:])}",
                )
            )
        return errs


def report_targets(report_to: str) -> list[str]:
    """`run.report_to` as TRL's list of tracker names ("none" = [])."""
    names = [n.strip() for n in str(report_to).split(",") if n.strip()]
    return [] if names == ["none"] else names


# ---- health (issue 17): flags of a GRPO run that is learning nothing -----------------------------
HEALTH_FLAGS = ("truncation", "tied_groups", "entropy_collapse", "missing_reward", "nan_loss")


@dataclass
class HealthConfig:
    """Thresholds of the GRPO health flags (engine/health.py); 0 turns a check off.

    Defaults: truncated answers are scored without their answer, so once one completion in five
    is cut off the reward mostly measures length (healthy runs stay under a few percent; TRL
    issue 5697 had 97-99%). A tied group has zero advantage; when four groups in five tie, the
    step's gradient comes from a fifth of the batch. Entropy typically falls 2-3x over a healthy
    run; a 10x fall is the collapse that precedes a plateau. A reward function that returns None
    is a bug until shown otherwise, so one response is enough. Stopping is off by default; when
    on, 3 consecutive steps keep a single noisy step of a small batch from stopping a run.
    """

    max_truncated: float = _f(
        0.2,
        "Flag a step when at least this share of its completions hit grpo.max_completion_length "
        "without end of sequence (0-1; 0 = off).",
    )
    max_tied_groups: float = _f(
        0.8,
        "Flag a step when at least this share of its prompt groups gave every rollout the same "
        "reward (zero advantage: no gradient) (0-1; 0 = off).",
    )
    max_entropy_drop: float = _f(
        10.0,
        "Flag when token entropy fell by this factor or more since the run's first step "
        "(> 1; 0 = off).",
    )
    min_missing_rewards: int = _f(
        1,
        "Flag when a reward function returned no value (None/NaN) for at least this many "
        "responses of a step (0 = off).",
    )
    nan_loss: bool = _f(True, "Flag a step whose loss is NaN or infinite.")
    stop_on: list[str] = _f(
        [],
        "Stop the run (cancelled, with a checkpoint and the reason) when one of these flags "
        f"holds for health.stop_after consecutive steps: any of {', '.join(HEALTH_FLAGS)}.",
    )
    stop_after: int = _f(3, "Consecutive flagged steps before health.stop_on stops the run.")

    def check(self) -> list[tuple[str, str]]:
        errs = []
        for name in ("max_truncated", "max_tied_groups"):
            value = getattr(self, name)
            if not (math.isfinite(value) and 0 <= value <= 1):
                errs.append((name, "must be a share in [0, 1] (0 = off)"))
        drop = self.max_entropy_drop
        if not (math.isfinite(drop) and (drop == 0 or drop > 1)):
            errs.append(("max_entropy_drop", "must be a factor > 1, or 0 for off"))
        if self.min_missing_rewards < 0:
            errs.append(("min_missing_rewards", "must be >= 0 (0 = off)"))
        unknown = [k for k in self.stop_on if k not in HEALTH_FLAGS]
        if unknown:
            errs.append(
                ("stop_on", f"unknown flag {unknown[0]!r}: use any of {', '.join(HEALTH_FLAGS)}")
            )
        if self.stop_after < 1:
            errs.append(("stop_after", "must be >= 1"))
        return errs


SECTIONS: dict[str, type] = {
    "model": ModelConfig,
    "data": DataConfig,
    "grpo": GRPOSettings,
    "shaping": ShapingConfig,
    "run": RunSettings,
    "health": HealthConfig,
}


@dataclass
class StudioConfig:
    """One run: model, data, GRPO, shaping and run settings."""

    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    grpo: GRPOSettings = field(default_factory=GRPOSettings)
    shaping: ShapingConfig = field(default_factory=ShapingConfig)
    run: RunSettings = field(default_factory=RunSettings)
    health: HealthConfig = field(default_factory=HealthConfig)

    def validate(self) -> StudioConfig:
        errors = self.problems()
        if errors:
            raise ConfigError(errors)
        return self

    def problems(self) -> list[tuple[str, str]]:
        """Every (field path, message) at once: each section's fields (`_section_problems`:
        wrong types, then the field's own rule, which also speaks for a NaN, an infinity or an
        integer the store cannot hold), then the rules across sections once the fields they
        read are fine (or only past the store's bound: then the rule is the tighter message)."""
        errors, bound_only = [], set()
        for name in SECTIONS:
            found, only = _section_problems(getattr(self, name))
            errors += [(f"{name}.{p}", m) for p, m in found]
            bound_only |= {f"{name}.{p}" for p in only}
        if ({p for p, _ in errors} - bound_only) & set(CROSS_SECTION_FIELDS):
            return errors
        cross = self._cross_section_problems()
        said = {p for p, _ in cross} & bound_only
        return [e for e in errors if e[0] not in said] + cross

    def _cross_section_problems(self) -> list[tuple[str, str]]:  # reads CROSS_SECTION_FIELDS
        """Rules that join two sections: under verl the rank curve needs room in the response
        window (a grpo run only records ER/ERV/ERA: a coarse curve changes no update)."""
        if self.run.algorithm != "verl":
            return []
        window, source = self.grpo.max_completion_length, "grpo.max_completion_length"
        if self.shaping.max_len is not None and self.shaping.max_len < window:
            window, source = self.shaping.max_len, "shaping.max_len"
        if MIN_CURVE_POINTS * self.shaping.stride >= window:
            most = max(1, (window - 1) // MIN_CURVE_POINTS)
            return [
                (
                    "shaping.stride",
                    f"{self.shaping.stride} tokens leaves fewer than {MIN_CURVE_POINTS} rank-curve "
                    f"points in a response window of {window} tokens ({source}), so ERV and ERA "
                    f"would be 0: use a stride of at most {most}, or raise {source}",
                )
            ]
        return []

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> StudioConfig:
        """Build and validate a config; unknown keys and wrong types are errors, all reported at once."""
        config, errors = cls.parse(data)
        if errors:
            raise ConfigError(errors)
        return config

    @classmethod
    def parse(cls, data: dict[str, Any] | None) -> tuple[StudioConfig, list[tuple[str, str]]]:
        """(config, every (field path, message)) of a config dict, never raising: what
        `from_dict` refuses, for a caller that checks more on top (the submit-time review).

        A value of the wrong type is replaced by the field's default (and reported); a number
        that is ill-formed only by its size (NaN, infinity, an integer the store cannot hold)
        is kept, so later checks (a server's limit on run.max_steps) see what was typed."""
        data = data or {}
        errors: list[tuple[str, str]] = []
        if not isinstance(data, dict):
            return cls(), [("", "the config must be a mapping of sections")]
        for key in data:
            if key not in SECTIONS:
                errors.append(
                    (str(key), f"unknown section (expected one of {', '.join(SECTIONS)})")
                )
        sections = {}
        for name, section_cls in SECTIONS.items():
            values = data.get(name) or {}
            if not isinstance(values, dict):
                errors.append((name, "must be a mapping"))
                values = {}
            if name == "shaping":
                values = with_preset(values)
            sections[name], section_errors = _build_section(section_cls, values)
            errors += [(f"{name}.{p}", m) for p, m in section_errors]
        config = cls(**sections)
        flagged = {p for p, _ in errors}
        errors += [e for e in config.problems() if e[0] not in flagged]
        return config, errors

    @classmethod
    def from_yaml(cls, text: str, where: str = "the config") -> StudioConfig:
        """Parse and validate a YAML document; an empty one (nothing but comments or `{}`), a
        list, a scalar or text that is not YAML is a ConfigError of one line naming `where`."""
        return cls.from_dict(parse_config_yaml(text, where))

    @classmethod
    def load(cls, path: str | Path, overrides: list[str] = ()) -> StudioConfig:
        """Read a YAML file and apply `key.path=value` overrides."""
        return cls.from_dict(read_config(path, overrides))

    def with_overrides(self, overrides: list[str]) -> StudioConfig:
        return StudioConfig.from_dict(apply_overrides(self.to_dict(), overrides))


def read_config(path: str | Path, overrides: list[str] = ()) -> dict[str, Any]:
    """The config dict of a YAML file with `key.path=value` overrides applied, not yet
    validated (`StudioConfig.from_dict` / `parse`); ConfigError when the file is missing,
    unreadable or not a mapping of sections."""
    path = Path(path)
    if path.is_dir():
        raise ConfigError([("config", f"{path} is a folder; give a YAML file")])
    if not path.is_file():
        raise ConfigError([("config", f"config file not found: {path}")])
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([("config", f"cannot read {path}: {exc}")]) from None
    data = parse_config_yaml(text, str(path))
    return apply_overrides(data, overrides)


def parse_config_yaml(text: str, where: str = "the config") -> dict[str, Any]:
    """The mapping of sections in a YAML document, or ConfigError with one line naming `where`:
    text that is not YAML (tabs, unclosed brackets) with the line and column, a list or a scalar
    instead of a mapping, or an empty document (a run of all defaults is never what was meant)."""
    if not isinstance(text, str):
        raise ConfigError([("config", f"{where} must be YAML text")])
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(
            [("config", f"{where} is not valid YAML: {_yaml_problem(exc)}")]
        ) from None
    if data is None or data == {}:
        raise ConfigError(
            [
                (
                    "config",
                    f"{where} is empty: give at least one section ({', '.join(SECTIONS)}), "
                    "e.g. start from the demo-cpu recipe",
                )
            ]
        )
    if not isinstance(data, dict):
        kind = "a list" if isinstance(data, list) else f"a single value ({type(data).__name__})"
        raise ConfigError(
            [("config", f"{where} is {kind}; it must be a mapping of sections like 'run:'")]
        )
    return data


def _yaml_problem(exc: yaml.YAMLError) -> str:
    """One line from a YAML error: what, and where (line and column, 1-based)."""
    mark = getattr(exc, "problem_mark", None)
    what = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    if mark is not None:
        what = f"{what} at line {mark.line + 1}, column {mark.column + 1}"
    if "\\t" in what or "tab" in what.lower():
        what += " (indent with spaces, not tabs)"
    return what


_EXPONENT_FLOAT = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)[eE][-+]?\d+")


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """`shaping.kappa=3` style overrides; values are parsed as YAML scalars or lists."""
    data = {k: dict(v) if isinstance(v, dict) else v for k, v in (data or {}).items()}
    errors = []
    for item in overrides:
        key, sep, raw = item.partition("=")
        section, dot, name = key.strip().partition(".")
        if not sep or not dot or not name:
            errors.append((item, "overrides look like section.field=value"))
            continue
        try:
            value = yaml.safe_load(raw) if raw.strip() else None
        except yaml.YAMLError:
            value = raw
        if isinstance(value, str) and _EXPONENT_FLOAT.fullmatch(value.strip()):
            value = float(value)  # YAML 1.1 reads 1e-4 (no dot) as a string
        data.setdefault(section, {})[name] = value
    if errors:
        raise ConfigError(errors)
    set_here = {o.partition("=")[0].strip() for o in overrides}
    if "shaping.preset" in set_here and isinstance(data.get("shaping"), dict):
        # a preset set here replaces the recipe's rule fields, except those also set here
        shaping = data["shaping"]
        for name, want in _preset_rules(shaping.get("preset")).items():
            if f"shaping.{name}" not in set_here:
                shaping[name] = want
    return data


def _preset_rules(preset: Any) -> dict[str, Any]:
    return dict(REFERENCE_SHAPING) if preset == "reference" else {}


def with_preset(values: dict[str, Any]) -> dict[str, Any]:
    """A shaping section with its preset's rule fields filled in where not given (a given one
    that disagrees is reported by `ShapingConfig.check`)."""
    return {**_preset_rules(values.get("preset")), **values}


def field_specs() -> list[dict[str, Any]]:
    """Every field as {path, type, default, help, choices, optional}: what the CLI and the app's
    form show (`optional`: None is a value, e.g. shaping.max_len's "all")."""
    specs = []
    for name, section_cls in SECTIONS.items():
        hints = get_type_hints(section_cls)
        default = section_cls()
        for f in fields(section_cls):
            specs.append(
                {
                    "path": f"{name}.{f.name}",
                    "type": _type_name(hints[f.name]),
                    "default": getattr(default, f.name),
                    "help": f.metadata.get("help", ""),
                    "choices": f.metadata.get("choices"),
                    "optional": type(None) in get_args(hints[f.name]),
                }
            )
    return specs


def field_help(path: str) -> str:
    """The help text of one field by its path ("grpo.temperature"); KeyError for an unknown one."""
    section, _, name = path.partition(".")
    return next(f.metadata["help"] for f in fields(SECTIONS[section]) if f.name == name)


def field_problems(values: dict[str, Any]) -> list[tuple[str, str]]:
    """(path, message) of each value judged as the run config judges that field, the others
    at their defaults: its type (a whole number, a finite number), then its section's rule
    (grpo.temperature "must be in (0, 10]"), in `values`' order. For a form that takes a few
    of a run's quantities under its own labels (the Playground). KeyError for an unknown path.

    >>> field_problems({"grpo.temperature": 1e12, "grpo.max_completion_length": 64})
    [('grpo.temperature', 'must be in (0, 10]')]
    """
    by_section: dict[str, dict[str, Any]] = {}
    for path, value in values.items():
        section, _, name = path.partition(".")
        if name not in {f.name for f in fields(SECTIONS[section])}:
            raise KeyError(path)
        by_section.setdefault(section, {})[name] = value
    found: dict[str, str] = {}
    for section, given in by_section.items():
        built, typed = _build_section(SECTIONS[section], given)
        ruled, _ = _section_problems(built)
        for name, message in typed + ruled:
            if name in given:
                found.setdefault(f"{section}.{name}", message)
    return [(p, found[p]) for p in values if p in found]


def _type_name(tp: Any) -> str:
    if get_origin(tp) is list:
        return f"list[{get_args(tp)[0].__name__}]"
    args = [a for a in get_args(tp) if a is not type(None)]
    if args:
        return args[0].__name__
    return tp.__name__


def _build_section(section_cls: type, values: dict[str, Any]) -> tuple[Any, list[tuple[str, str]]]:
    hints = get_type_hints(section_cls)
    known = {f.name for f in fields(section_cls)}
    errors = [(str(k), "unknown field") for k in values if k not in known]
    kwargs = {}
    for f in fields(section_cls):
        if f.name not in values:
            continue
        value, problem = _coerce(values[f.name], hints[f.name])
        if problem and _is_number(value):
            kwargs[f.name] = value  # too large, NaN or infinite: `problems()` says by which rule
        elif problem:
            errors.append((f.name, problem))
        else:
            kwargs[f.name] = value
    return section_cls(**kwargs), errors


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _coerce(value: Any, tp: Any) -> tuple[Any, str | None]:
    """Check one value against its annotation; ints widen to floats, nothing else is converted."""
    optional = type(None) in get_args(tp)
    if value is None:
        return (None, None) if optional else (None, "must not be empty")
    base = next((a for a in get_args(tp) if a is not type(None)), tp) if optional else tp
    if base in (int, float) and isinstance(value, str) and _EXPONENT_FLOAT.fullmatch(value.strip()):
        value = float(value)  # YAML 1.1 reads 1e-4 (no dot) as a string
    if get_origin(base) is list:
        item_tp = get_args(base)[0]
        if not isinstance(value, list):
            return None, f"must be a list of {item_tp.__name__}"
        out = []
        for item in value:
            coerced, problem = _coerce(item, item_tp)
            if problem:
                return None, f"list items: {problem}"
            out.append(coerced)
        return out, None
    if base is bool:
        return (value, None) if isinstance(value, bool) else (None, "must be true or false")
    if base is int:
        if isinstance(value, float) and value.is_integer() and math.isfinite(value):
            value = int(value)  # 1e3 from YAML
        if isinstance(value, float):
            return None, f"must be a whole number, not {value:g}"
        if isinstance(value, bool) or not isinstance(value, int):
            return None, "must be a whole number"
        return value, _int_problem(value)
    if base is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            return None, "must be a number"
        try:
            value = float(value)
        except OverflowError:  # an integer past any float: judged as an infinity would be
            value = math.inf if value > 0 else -math.inf
        return value, _float_problem(value)
    if base is str:
        if isinstance(value, str):
            return value, None
        if isinstance(value, int | float) and not isinstance(value, bool):
            return str(value), None
        return None, f"must be text, not {_kind(value)} (quote it in YAML)"
    return value, None


def _kind(value: Any) -> str:
    return {list: "a list", dict: "a mapping", bool: "true/false"}.get(
        type(value), type(value).__name__
    )


def _int_problem(value: int) -> str | None:
    """The store's bound, said only for a field whose own rule allows the value (a field with
    a range says its range instead: `_section_problems`)."""
    if value > INT_MAX:
        return f"{value:,} is too large: use at most {INT_MAX:,}"
    if value < INT_MIN:
        return f"{value:,} is too small: use at least {INT_MIN:,}"
    return None


def _float_problem(value: float) -> str | None:
    return None if math.isfinite(value) else "must be a finite number (not NaN or infinity)"


def _section_problems(section: Any) -> tuple[list[tuple[str, str]], set[str]]:
    """Every (field name, message) of one section in field order, and the names whose only
    problem is the store's bound.

    A value of the wrong type gets its type's message. A number outside what the store holds
    (an integer past 32 bits, NaN, infinity) is judged by the field's own rule first
    (`section.check()` compares it as it is: -10**12 steps "must be >= 1", an infinite
    learning rate "must be in (0, 1]"); only when that rule allows it is the store's bound
    said. The range rules run on every field, whatever is wrong with the others."""
    bad = dict(_ill_formed(section))
    typed = {n for n in bad if not _is_number(getattr(section, n))}
    defaults = {f.name: _default(f) for f in fields(section) if f.name in typed}
    ruled: dict[str, list[str]] = {}
    for name, message in dataclasses.replace(section, **defaults).check():
        if name not in typed:  # a default stood in: its rule says nothing of what was typed
            ruled.setdefault(name, []).append(message)
    out = []
    for f in fields(section):
        messages = ruled.get(f.name) or ([bad[f.name]] if f.name in bad else [])
        out += [(f.name, m) for m in messages]
    return out, set(bad) - typed - set(ruled)


def _default(f: dataclasses.Field) -> Any:
    return f.default_factory() if f.default is dataclasses.MISSING else f.default


def _ill_formed(section: Any) -> list[tuple[str, str]]:
    """Fields of a section whose value does not fit its annotation (a config built in code)."""
    errors = []
    hints = get_type_hints(type(section))
    for f in fields(section):
        _, problem = _coerce(getattr(section, f.name), hints[f.name])
        if problem:
            errors.append((f.name, problem))
    return errors


# ----------------------------------------------------------------------------- Hugging Face Spaces


SPACES_ENV = {  # field -> environment variable (Space variables and secrets arrive as env vars)
    "space_id": "SPACE_ID",
    "owner": "SPACE_AUTHOR_NAME",
    "admin_token": "VERL_STUDIO_ADMIN_TOKEN",
    "try_it": "VERL_STUDIO_TRY_IT",
    "try_it_max_steps": "VERL_STUDIO_TRY_IT_MAX_STEPS",
    "snapshot_dir": "VERL_STUDIO_SNAPSHOTS",
    "snapshot_keep": "VERL_STUDIO_SNAPSHOT_KEEP",
    "snapshot_poll_s": "VERL_STUDIO_SNAPSHOT_POLL_S",
}


@dataclass
class SpacesSettings:
    """Running as a Hugging Face Space: set by the Space's runtime variables and secrets, read
    once by `serve` (`from_env`). On a Space anyone may browse; launching, cancelling and deleting
    need the owner's Hugging Face login or the admin token."""

    space_id: str = _f("", "SPACE_ID, 'user/name', set by the Spaces runtime ('' = not a Space).")
    owner: str = _f("", "SPACE_AUTHOR_NAME: the user or org owning the Space.")
    admin_token: str = field(
        default="",
        repr=False,
        metadata={"help": "Secret VERL_STUDIO_ADMIN_TOKEN: lets its holder act as the owner."},
    )
    try_it: bool = _f(False, "Anonymous 'try it' runs of the demo recipe on at start.")
    try_it_max_steps: int = _f(30, "Step cap of an anonymous 'try it' run.")
    snapshot_dir: str = _f(
        "", "Folder on a bucket mount for database snapshots ('' = runs are lost at restart)."
    )
    snapshot_keep: int = _f(3, "Snapshots kept in snapshot_dir.")
    snapshot_poll_s: float = _f(10.0, "Seconds between checks for finished runs to snapshot.")

    @property
    def on_spaces(self) -> bool:
        return bool(self.space_id)

    @classmethod
    def from_env(cls, environ: dict[str, str]) -> SpacesSettings:
        """The settings from environment variables; ConfigError names the variable and the fix."""
        values: dict[str, Any] = {}
        errors: list[tuple[str, str]] = []
        hints = get_type_hints(cls)
        for name, var in SPACES_ENV.items():
            raw = environ.get(var, "").strip()
            if not raw:
                continue
            value, problem = _env_value(raw, hints[name])
            if problem:
                errors.append((var, problem))
            values[name] = value
        settings = cls(**{k: v for k, v in values.items() if v is not None})
        if settings.try_it_max_steps < 1:
            errors.append((SPACES_ENV["try_it_max_steps"], "must be >= 1"))
        if settings.snapshot_keep < 1:
            errors.append((SPACES_ENV["snapshot_keep"], "must be >= 1"))
        if not (settings.snapshot_poll_s > 0 and math.isfinite(settings.snapshot_poll_s)):
            errors.append((SPACES_ENV["snapshot_poll_s"], "must be a number of seconds > 0"))
        if errors:
            raise ConfigError(errors)
        return settings


def _env_value(raw: str, tp: Any) -> tuple[Any, str | None]:
    """An environment string as `tp` (str, bool, int, float), or (None, what to write instead)."""
    if tp is bool:
        low = raw.lower()
        if low in ("1", "true", "yes", "on"):
            return True, None
        if low in ("0", "false", "no", "off"):
            return False, None
        return None, f"must be true or false, not {raw[:40]!r}"
    if tp in (int, float):
        try:
            return tp(raw), None
        except ValueError:
            return None, f"must be a{'n integer' if tp is int else ' number'}, not {raw[:40]!r}"
    return raw, None
