"""The submit-time check: what a run config may name, by who submits it.

Every way a run enters the store goes through `check_submission(cfg, policy)` (the run service
calls it, so no entry can skip it); eval jobs through `check_eval`, run names and notes through
`check_texts`, a model typed into the playground through `check_model`. Each raises the
project's `ConfigError` listing every (field path, one-line message) at once, or returns the
config with its sources made unambiguous (local paths absolute, so the worker reads what was
checked whatever its working directory).

Two policies:
- `AccessPolicy.command_line()` (trusted: `train`, `submit`, the user's own shell): any local
  file or folder, any hub id, any `module:function` reward; no resource limits.
- `AccessPolicy.network(root, ...)` (untrusted: every dashboard page and API endpoint):
  * rewards: registered names; `module:function` only in modules the operator allowed
    (`serve --allow-reward-module mypkg.rewards`, which also admits its submodules);
  * datasets: the built-in task, a file in `<data root>/uploads/`, a file under a folder the
    operator allowed (`serve --allow-path DIR`), or a hub dataset id that the hub answers for;
  * models: the embedded model, a folder under an allowed path or the data root's checkpoints,
    or a hub id resolved only through the hub (`org/name` never reads `./org/name`);
  * paths are resolved with symlinks followed before the folder test, so `../`, absolute names
    and links out of an allowed folder are refused; a refused path gets the same message
    whether or not it exists;
  * `Limits` (steps, rows, file sizes, text lengths) with a message naming the serve flag.

What is read: a model folder's `config.json` (and, for an adapter, `adapter_config.json`), the
names of its tokenizer files, a dataset file's size and its first `PEEK_ROWS` rows. Never
weights, never a whole file.

Extending it: append a `(cfg, policy) -> [(field, message)]` function to `SUBMIT_CHECKS`; it
runs on the normalized config after the source checks.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.config import (
    BUILTIN_TASK,
    EMBEDDED_MODEL,
    INT_MAX,
    INT_MIN,
    ConfigError,
    StudioConfig,
)
from engine.data.files import FILE_SUFFIXES, dataset_path_problem, iter_rows, read_table
from engine.runs.checks import config_fits_model

if TYPE_CHECKING:
    from engine.evaluation.jobs import EvalConfig

Errors = list[tuple[str, str]]
HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")
PEEK_ROWS = 5
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "tokenizer.model", "vocab.json")
MB = 1 << 20


def _limit(default: Any, help: str, flag: str) -> Any:
    return field(default=default, metadata={"help": help, "flag": flag})


@dataclass(frozen=True)
class Limits:
    """Operator-set ceilings on what one submission from the network may ask for."""

    max_steps: int = _limit(10_000, "Most optimizer steps a run may ask for.", "--max-steps")
    max_train_size: int = _limit(
        100_000, "Most generated training problems (data.train_size).", "--max-train-size"
    )
    max_eval_size: int = _limit(
        5_000, "Most held-out problems per evaluation or eval job.", "--max-eval-size"
    )
    max_completion_length: int = _limit(
        8_192, "Longest response in tokens a run or eval may ask for.", "--max-completion-length"
    )
    max_samples: int = _limit(
        256, "Most rollouts per prompt / samples per problem.", "--max-samples"
    )
    max_processes: int = _limit(8, "Most processes (GPUs) of one run.", "--max-processes")
    max_dataset_mb: float = _limit(
        64.0, "Largest dataset file a run may read, in MiB.", "--max-dataset-mb"
    )
    max_upload_mb: float = _limit(64.0, "Largest uploaded file, in MiB.", "--max-upload-mb")
    max_name_chars: int = _limit(200, "Longest run name.", "--max-name-chars")
    max_text_chars: int = _limit(
        10_000, "Longest notes or other text field (prompt template, ...).", "--max-text-chars"
    )
    max_list_items: int = _limit(32, "Most items in a list field.", "--max-list-items")


@dataclass(frozen=True)
class AccessPolicy:
    """Who submits, and what they may name. Build it with `command_line()` or `network()`."""

    trusted: bool
    uploads: Path | None = None
    checkpoints: Path | None = None
    allowed_paths: tuple[Path, ...] = ()
    reward_modules: tuple[str, ...] = ()
    limits: Limits = field(default_factory=Limits)

    @classmethod
    def command_line(cls) -> AccessPolicy:
        """The user's own shell: anything the user can read; relative paths from the cwd."""
        return cls(trusted=True)

    @classmethod
    def network(
        cls,
        root: Any,
        *,
        allow_paths: tuple[str | Path, ...] = (),
        allow_reward_modules: tuple[str, ...] = (),
        limits: Limits | None = None,
    ) -> AccessPolicy:
        """Dashboard and API callers of the app over the data root `root` (a DataRoot)."""
        return cls(
            trusted=False,
            uploads=Path(root.uploads).resolve(),
            checkpoints=Path(root.checkpoints).resolve(),
            allowed_paths=tuple(Path(p).expanduser().resolve() for p in allow_paths),
            reward_modules=tuple(m.strip() for m in allow_reward_modules if m.strip()),
            limits=limits or Limits(),
        )

    @property
    def data_roots(self) -> tuple[Path, ...]:
        return tuple(p for p in (self.uploads, *self.allowed_paths) if p is not None)

    @property
    def model_roots(self) -> tuple[Path, ...]:
        return tuple(p for p in (self.checkpoints, *self.allowed_paths) if p is not None)


Check = Callable[[StudioConfig, AccessPolicy], Errors]


# ----------------------------------------------------------------------------- entry points


def check_submission(cfg: StudioConfig, policy: AccessPolicy) -> StudioConfig:
    """`cfg` with its model and data sources made unambiguous, or ConfigError listing every
    (field path, message) that `submission_problems` finds."""
    cfg, errors = submission_problems(cfg, policy)
    if errors:
        raise ConfigError(errors)
    return cfg


def review_submission(
    data: dict[str, Any], policy: AccessPolicy
) -> tuple[StudioConfig | None, Errors]:
    """(the config, []) or (None, every (field path, message)) of a config dict, in one pass:
    the config's own checks and this server's (sources, rewards, dataset fields, limits) on
    every field whose value is well-formed, as `check_submission` runs them. What a form shows
    after one press of Launch (`StudioConfig.parse` keeps going where `from_dict` stops)."""
    cfg, config_errors = StudioConfig.parse(data)
    cfg, errors = submission_problems(cfg, policy, config_errors)
    return (None if errors else cfg), errors


def submission_problems(
    cfg: StudioConfig, policy: AccessPolicy, config_errors: Errors | None = None
) -> tuple[StudioConfig, Errors]:
    """(`cfg` with its sources made unambiguous, every (field path, message)): the config's
    own problems (`config_errors`, or `cfg.problems()`), then the source checks and every
    function in `SUBMIT_CHECKS` (`_merged`: a field the config already refuses keeps the
    config's message, unless the value is past what the store holds and this server's limit
    for it is the rule that matters). Reads a dataset file's head and size, never raises."""
    if config_errors is None:
        config_errors = cfg.problems()  # a config built in code was never validated
    errors: Errors = []
    # a refused source is replaced by a harmless one, so the later checks never read it
    model, errs = _model_source(cfg.model.name_or_path, policy, "model.name_or_path")
    errors, model = errors + errs, EMBEDDED_MODEL if errs else model
    model_refused = bool(errs)
    task, errs = _dataset_source(cfg.data.task, policy, "data.task")
    errors, task = errors + errs, BUILTIN_TASK if errs else task
    eval_task, errs = ("", [])
    if cfg.data.eval_task.strip():
        eval_task, errs = _dataset_source(cfg.data.eval_task, policy, "data.eval_task")
    errors, eval_task = errors + errs, "" if errs else eval_task
    cfg = dataclasses.replace(
        cfg,
        model=dataclasses.replace(cfg.model, name_or_path=model),
        data=dataclasses.replace(cfg.data, task=task, eval_task=eval_task),
    )
    for check in SUBMIT_CHECKS:
        errors += check(cfg, policy)
    if not model_refused:  # what the config asks of its model (its config.json only)
        errors += config_fits_model(cfg)
    return cfg, _merged(config_errors, errors, cfg)


# a server check of the key field also reads these: skipped while one of them is refused
READS = {
    "grpo.per_device_train_batch_size": ("grpo.gradient_accumulation_steps",),
    "grpo.max_completion_length": ("model.name_or_path",),
    "data.question_field": ("data.task", "data.eval_task"),
    "data.answer_field": ("data.task", "data.eval_task"),
}


def _merged(config_errors: Errors, server_errors: Errors, cfg: StudioConfig) -> Errors:
    """Every config error, then each server error on a field the config does not refuse (nor
    a field its check reads); except that a value past the store's bound (10**12 steps) is
    said by the server's limit on it, the rule a user must meet, and not by that bound."""
    refused = {_field_of(p) for p, _ in config_errors}
    too_large = {
        f for f in map(_field_of, (p for p, _ in server_errors))
        if f in refused and _past_the_store(cfg, f)
    }  # fmt: skip
    kept = [e for e in config_errors if e[0] not in too_large]
    for path, message in server_errors:
        field_path = _field_of(path)
        if field_path in too_large or not (
            field_path in refused or refused & set(READS.get(field_path, ()))
        ):
            kept.append((path, message))
    return kept


def _field_of(path: str) -> str:
    """`data.extra_rewards[1]` and `run.name (characters)` -> the field's path."""
    return path.split("[", 1)[0].split(" ", 1)[0]


def _past_the_store(cfg: StudioConfig, path: str) -> bool:
    section, _, name = path.partition(".")
    value = getattr(getattr(cfg, section, None), name, None)
    return (
        isinstance(value, int) and not isinstance(value, bool) and not INT_MIN <= value <= INT_MAX
    )


def check_eval(cfg: EvalConfig, policy: AccessPolicy) -> EvalConfig:
    """An eval job's model and dataset under the same rules as a run's, plus the limits."""
    errors: Errors = []
    model = cfg.model
    if cfg.source_run_id is None:
        model, errs = _model_source(cfg.model, policy, "eval.model")
        errors += errs
    dataset = cfg.dataset.strip()
    if dataset:
        dataset, errs = _dataset_source(dataset, policy, "eval.dataset")
        errors += errs
    if not policy.trusted:
        lim = policy.limits
        errors += _over("eval.num_problems", cfg.num_problems, lim.max_eval_size, "max_eval_size")
        errors += _over("eval.n", cfg.n, lim.max_samples, "max_samples")
        errors += _over(
            "eval.max_new_tokens",
            cfg.max_new_tokens,
            lim.max_completion_length,
            "max_completion_length",
        )
    if errors:
        raise ConfigError(errors)
    return dataclasses.replace(cfg, model=model, dataset=dataset)


def check_texts(policy: AccessPolicy, *, name: str = "", notes: str = "") -> None:
    """A run's name and notes against the text limits (ConfigError over them)."""
    errors = _texts(policy, name, notes)
    if errors:
        raise ConfigError(errors)


def check_model(name_or_path: str, policy: AccessPolicy, field_path: str = "model") -> str:
    """One model name (the playground's picker): the source `load_policy` should be given."""
    source, errors = _model_source(name_or_path, policy, field_path)
    if errors:
        raise ConfigError(errors)
    return source


def one_line(exc: ConfigError) -> str:
    """Every (field, message) of a ConfigError on one line, for a page or an API answer.

    >>> one_line(ConfigError([("run.max_steps", "must be >= 1"), ("data.task", "no\\nfile")]))
    'run.max_steps: must be >= 1; data.task: no file'
    """
    parts = (f"{p}: {m}" if p else m for p, m in exc.errors)
    return " ".join("; ".join(parts).split())


# ----------------------------------------------------------------------------- rewards


def _reward_errors(cfg: StudioConfig, policy: AccessPolicy) -> Errors:
    names = [("data.reward", cfg.data.reward)]
    names += [(f"data.extra_rewards[{i}]", r) for i, r in enumerate(cfg.data.extra_rewards)]
    errors = []
    for path, name in names:
        problem = reward_problem(name.strip(), policy)
        if problem:
            errors.append((path, problem))
    return errors


def reward_problem(name: str, policy: AccessPolicy) -> str | None:
    """Why reward `name` may not be used under `policy` (one line), or None when it may.

    THE reward check: submit-time admission and the upload preview's verdict both call it. A
    `module:function` outside the operator's allowed modules is refused BEFORE anything is
    imported; only an admitted (or the CLI user's own) module is imported, to see that the
    function exists.

    >>> reward_problem("accuracy", AccessPolicy(trusted=False))
    >>> reward_problem("json:dumps", AccessPolicy(trusted=False)).split(" from ")[0]
    "reward 'json:dumps' is not allowed"
    """
    from engine.data.rewards import REGISTRY, get_reward

    if name in REGISTRY:
        return None
    registered = ", ".join(sorted(REGISTRY))
    module, sep, attr = name.partition(":")
    if not sep or not module or not attr.isidentifier():
        return f"unknown reward {name!r}: use one of {registered} or 'package.module:function'"
    if not policy.trusted and not _module_allowed(module, policy.reward_modules):
        return (
            f"reward {name!r} is not allowed from the dashboard or API: use one of {registered}, "
            "or start serve with --allow-reward-module naming its module"
        )
    try:  # the module is the user's own (CLI) or one the operator allowed: importing is fine
        get_reward(name)
    except KeyError as exc:
        return str(exc.args[0]) if exc.args else f"unknown reward {name!r}"
    return None


def _module_allowed(module: str, allowed: tuple[str, ...]) -> bool:
    """`mypkg.rewards` allows itself and its submodules, never a sibling or a parent.

    >>> _module_allowed("mypkg.rewards.math", ("mypkg.rewards",))
    True
    >>> _module_allowed("mypkg.rewardsx", ("mypkg.rewards",)), _module_allowed("os", ())
    (False, False)
    """
    return any(module == m or module.startswith(m + ".") for m in allowed)


# ----------------------------------------------------------------------------- paths


def _refused(field_path: str, what: str, policy: AccessPolicy) -> Errors:
    """The one message for a path outside what the network may name (existence never shown)."""
    if what == "dataset":
        where = (
            f"'{BUILTIN_TASK}', a file in the uploads folder, a file under a folder allowed with "
            "serve --allow-path, or a hub dataset id"
        )
    else:
        where = (
            f"'{EMBEDDED_MODEL}', a run checkpoint, a folder under one allowed with "
            "serve --allow-path, or a hub model id"
        )
    return [(field_path, f"not a {what} the dashboard or API may use: name {where}")]


def _inside(path: Path, roots: tuple[Path, ...]) -> bool:
    return any(path == r or path.is_relative_to(r) for r in roots)


def _explicit_path(name: str) -> bool:
    return name.startswith(("/", "./", "../", "~")) or name in (".", "..") or "\\" in name


def _looks_like_file(name: str) -> bool:
    return _explicit_path(name) or Path(name).suffix.lower() in FILE_SUFFIXES


def _resolve_under(name: str, base: Path | None) -> Path:
    """`name` resolved (symlinks followed); relative names from `base` (or the cwd)."""
    path = Path(name).expanduser()
    if not path.is_absolute() and base is not None:
        path = base / path
    return path.resolve()


def _unusable_name_is_a_field_error(source: Callable) -> Callable:
    """A name the file system refuses (too long, a NUL byte) is the field's one-line error, not
    a crash; the message quotes the reason, never the server path it was resolved to."""

    @functools.wraps(source)
    def checked(value: str, policy: AccessPolicy, field_path: str) -> tuple[str, Errors]:
        try:
            return source(value, policy, field_path)
        except (OSError, ValueError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            shown = value.strip()[:60] + ("…" if len(value.strip()) > 60 else "")
            return value.strip(), [
                (
                    field_path,
                    f"{shown!r} cannot be used as a file name ({reason}): give a shorter, plain name",
                )  # fmt: skip
            ]

    return checked


def _names_a_local_path(name: str, policy: AccessPolicy) -> bool:
    """Whether a bare name (no path prefix, no file suffix) is taken as a local path rather
    than a hub id: one that exists where this policy may read, or one that leads outside those
    folders (refused as a path, without looking whether anything is there)."""
    path = _resolve_under(name, None if policy.trusted else policy.uploads)
    if not policy.trusted and not _inside(path, policy.data_roots):
        return True
    return path.exists()


@_unusable_name_is_a_field_error
def _dataset_source(value: str, policy: AccessPolicy, field_path: str) -> tuple[str, Errors]:
    """(normalized source, errors) of a `data.task`-like value."""
    name = value.strip()
    if name == BUILTIN_TASK:
        return name, []
    base = None if policy.trusted else policy.uploads
    if not _looks_like_file(name) and not _names_a_local_path(name, policy):
        if not HUB_ID.match(name.partition(":")[0]):
            return name, [(field_path, f"{name!r} is neither a file nor a hub dataset id")]
        return name, [] if policy.trusted else _hub_dataset_errors(name, field_path)
    path = _resolve_under(name, base)
    if not policy.trusted and not _inside(path, policy.data_roots):
        return name, _refused(field_path, "dataset", policy)
    problem = dataset_path_problem(path, shown=name)
    if problem:
        return name, [(field_path, problem)]
    if not policy.trusted and path.stat().st_size > policy.limits.max_dataset_mb * MB:
        mb = policy.limits.max_dataset_mb
        return name, [(field_path, f"the file is over this server's {mb:g} MiB limit (serve --max-dataset-mb)")]  # fmt: skip
    return str(path), []


def _hub_dataset_errors(name: str, field_path: str) -> Errors:
    """A hub dataset id over the network: the hub (or its local cache) must answer for it."""
    repo = name.partition(":")[0]
    try:
        from huggingface_hub import HfApi

        HfApi().dataset_info(repo, timeout=10)
    except Exception:  # noqa: BLE001 - offline, missing, private: one answer for all
        return [(field_path, f"hub dataset {repo!r} cannot be reached from this server")]
    return []


@_unusable_name_is_a_field_error
def _model_source(value: str, policy: AccessPolicy, field_path: str) -> tuple[str, Errors]:
    """(normalized source, errors) of a model name: 'embedded', a folder, or a hub id."""
    name = value.strip()
    if name == EMBEDDED_MODEL:
        return name, []
    local = _explicit_path(name) or (policy.trusted and Path(name).exists())
    if not local:
        if not HUB_ID.match(name):
            return name, _refused(field_path, "model", policy)
        return name, [] if policy.trusted else _hub_model_errors(name, field_path)
    folder = _resolve_under(name, None)
    if not policy.trusted and not _inside(folder, policy.model_roots):
        return name, _refused(field_path, "model", policy)
    problem = _model_folder_problem(folder, policy)
    return str(folder), [(field_path, problem)] if problem else []


def _hub_model_errors(name: str, field_path: str) -> Errors:
    """A hub model over the network: its config.json must come from the hub (or its cache)."""
    try:
        from huggingface_hub import hf_hub_download

        hf_hub_download(name, "config.json", etag_timeout=10)
    except Exception:  # noqa: BLE001 - offline, missing, gated: one answer for all
        return [(field_path, f"hub model {name!r} cannot be reached from this server")]
    return []


def _model_folder_problem(folder: Path, policy: AccessPolicy) -> str | None:
    """What is wrong with a local model folder (reads config files only), or None."""
    if not folder.is_dir():
        return "no such model folder (a folder with config.json and weights)"
    adapter = folder / "adapter_config.json"
    if adapter.is_file():
        base = _json_object(adapter).get("base_model_name_or_path")
        if not isinstance(base, str) or not base.strip():
            return "adapter_config.json names no base_model_name_or_path"
        _, errs = _model_source(base, policy, "base")
        return f"the adapter's base model: {errs[0][1]}" if errs else None
    if not isinstance(_json_object(folder / "config.json").get("model_type"), str):
        return "the folder has no readable config.json with a model_type"
    if not any((folder / f).is_file() for f in TOKENIZER_FILES):
        return f"the folder has no tokenizer files ({', '.join(TOKENIZER_FILES)})"
    return None


def _json_object(path: Path) -> dict:
    try:
        if path.stat().st_size > MB:
            return {}
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


# ----------------------------------------------------------------------------- dataset rows


def first_rows(path: Path, n: int = PEEK_ROWS, shown: str | None = None) -> list[dict]:
    """The first `n` rows of a .jsonl/.json/.csv/.parquet file, read by the one dataset reader
    (`engine.data.files.read_table`: JSON lines, CSV and Parquet stop after `n` rows; a .json
    document is read whole, under its size limit).

    Raises ValueError (DatasetLoadError) with one line, naming the file as `shown` (default its
    path), when the file cannot be read as rows."""
    return read_table(path, limit=n, shown=shown)


def _shown_file(path: Path, policy: AccessPolicy) -> str:
    """A dataset file as a message names it: its path for the command line; for the network,
    its name in the uploads folder (what the visitor gives), never the server's path."""
    if policy.trusted:
        return str(path)
    resolved, uploads = path.resolve(), policy.uploads and policy.uploads.resolve()
    if uploads is not None and _inside(resolved, (uploads,)):
        return resolved.relative_to(uploads).as_posix()
    return path.name


def _dataset_field_errors(cfg: StudioConfig, policy: AccessPolicy) -> Errors:
    """Each local dataset file is readable and has the question and answer fields."""
    errors = []
    for path_name, source in (("data.task", cfg.data.task), ("data.eval_task", cfg.data.eval_task)):
        if not source or not Path(source).is_absolute():
            continue
        shown = _shown_file(Path(source), policy)
        try:
            rows = first_rows(Path(source), shown=shown)
        except (OSError, ValueError, UnicodeDecodeError) as exc:
            errors.append((path_name, f"cannot read the file as rows ({_first_line(exc)})"))
            continue
        if not rows or not all(isinstance(r, dict) for r in rows):
            errors.append((path_name, "the file has no rows of named fields"))
            continue
        missing = False
        for field_name in ("question_field", "answer_field"):
            want = getattr(cfg.data, field_name)
            if any(want not in r for r in rows):
                missing = True
                have = ", ".join(map(str, rows[0]))[:200]
                errors.append((f"data.{field_name}", f"no field {want!r} in the first rows (fields: {have})"))  # fmt: skip
        try:  # a bad line past the peeked rows raised from here (a trace, the server's path)
            empty = not missing and _all_answers_empty(Path(source), rows, cfg.data.answer_field, shown)  # fmt: skip
        except (OSError, ValueError, UnicodeDecodeError) as exc:
            errors.append((path_name, f"cannot read the file as rows ({_first_line(exc)})"))
            continue
        if empty:
            errors.append((path_name, f"every answer in the file is empty (field {cfg.data.answer_field!r}): fill it, or set data.answer_field to the column that holds the gold answers"))  # fmt: skip
    return errors


def _all_answers_empty(path: Path, peeked: list[dict], answer_field: str, shown: str) -> bool:
    """True when no row has a non-blank gold answer: a run on it would train on zero reward.

    Decided on the peeked rows when any of them has an answer; otherwise the file is streamed
    (its size is already under the operator's dataset limit) until one answer is found."""
    if any(_has_answer(r, answer_field) for r in peeked):
        return False
    return not any(_has_answer(r, answer_field) for r in iter_rows(path, shown))


def _has_answer(row: dict, answer_field: str) -> bool:
    value = row.get(answer_field)
    return value is not None and str(value).strip() not in ("", "nan", "None")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:200]


# ----------------------------------------------------------------------------- limits


def _over(path: str, value: int | float, ceiling: int | float, limit: str) -> Errors:
    if value <= ceiling:
        return []
    flag = Limits.__dataclass_fields__[limit].metadata["flag"]
    return [(path, f"{value:,} is over this server's limit of {ceiling:,} (serve {flag})")]


def _limit_errors(cfg: StudioConfig, policy: AccessPolicy) -> Errors:
    if policy.trusted:
        return []
    lim = policy.limits
    errors = _over("run.max_steps", cfg.run.max_steps, lim.max_steps, "max_steps")
    if cfg.data.task == BUILTIN_TASK:
        errors += _over("data.train_size", cfg.data.train_size, lim.max_train_size, "max_train_size")  # fmt: skip
    errors += _over("run.eval_size", cfg.run.eval_size, lim.max_eval_size, "max_eval_size")
    errors += _over(
        "grpo.max_completion_length",
        cfg.grpo.max_completion_length,
        lim.max_completion_length,
        "max_completion_length",
    )
    errors += _over("grpo.num_generations", cfg.grpo.num_generations, lim.max_samples, "max_samples")  # fmt: skip
    errors += _over(
        "grpo.gradient_accumulation_steps",
        cfg.grpo.gradient_accumulation_steps,
        lim.max_samples,
        "max_samples",
    )
    errors += _over(
        "grpo.per_device_train_batch_size",
        cfg.grpo.per_device_train_batch_size * cfg.grpo.gradient_accumulation_steps,
        lim.max_samples,
        "max_samples",
    )
    errors += _over("run.num_processes", cfg.run.num_processes, lim.max_processes, "max_processes")
    return errors + _field_text_errors(cfg, policy)


def _field_text_errors(cfg: StudioConfig, policy: AccessPolicy) -> Errors:
    lim, errors = policy.limits, []
    for section_name, section in (
        ("model", cfg.model),
        ("data", cfg.data),
        ("grpo", cfg.grpo),
        ("shaping", cfg.shaping),
    ):
        for f in dataclasses.fields(section):
            value = getattr(section, f.name)
            path = f"{section_name}.{f.name}"
            if isinstance(value, str):
                errors += _over(f"{path} (characters)", len(value), lim.max_text_chars, "max_text_chars")  # fmt: skip
            elif isinstance(value, list):
                errors += _over(f"{path} (items)", len(value), lim.max_list_items, "max_list_items")  # fmt: skip
    return errors + _texts(policy, cfg.run.name, "")


def _texts(policy: AccessPolicy, name: str, notes: str) -> Errors:
    if policy.trusted:
        return []
    lim = policy.limits
    return _over(
        "run.name (characters)", len(name or ""), lim.max_name_chars, "max_name_chars"
    ) + _over(  # fmt: skip
        "notes (characters)", len(notes or ""), lim.max_text_chars, "max_text_chars"
    )


SUBMIT_CHECKS: list[Check] = [_reward_errors, _dataset_field_errors, _limit_errors]
