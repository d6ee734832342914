"""Built-in reasoning tasks, local dataset files and hub datasets, as rows of `prompt` + `answer`.

The built-in task is multi-step integer arithmetic, generated from a seed:

    prompt      "Q: 23+48-17=?\\nA:"
    completion  "\\nStep 1: 23+48=71.\\nStep 2: 71-17=54.\\nAnswer: 54"

Operands are uniform `digits`-digit numbers; `-` is drawn with probability 1/2, but only when the
running total is at least the operand, so no intermediate result is negative. With 3 operands of
2 digits the completion is 33-39 tokens of the embedded tokenizer (every digit is one token).

Train / held-out split: a problem belongs to the held-out split when a stable hash of its question
falls in the held-out bucket (1 in `HELDOUT_BUCKETS`). Every generator rejects problems of the
other split, so the two splits never overlap whatever the seeds and sizes. The held-out rows are
drawn from `HELDOUT_SEED` (HELDOUT_SIZE rows, more when a larger limit asks); the first 200 are
the ones the embedded model's pass@1 is quoted on.

Local files (`.jsonl`, `.json`, `.csv`, `.parquet`, read by `engine.data.files`) and hub dataset ids (`openai/gsm8k:main` =
id and config name) load into the same shape: `prompt` (text from `data.prompt_template`, or a
list of chat messages when `data.chat_template`) and `answer` (the gold answer after
`engine.data.answers.extract_gold`), plus every original column (an original `answer` column is
replaced by the extracted gold). A local file without `data.eval_task` is split like the
arithmetic task: a stable hash of the question sends 1 in `HELDOUT_BUCKETS` rows to `eval`.
"""

from __future__ import annotations

import hashlib
import os
import random
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.config import BUILTIN_TASK, DataConfig
from engine.data.answers import extract_gold
from engine.data.files import FILE_SUFFIXES, DatasetLoadError, read_table

TRAIN = "train"
EVAL = "eval"
SPLITS = (TRAIN, EVAL)
HELDOUT_SEED = 999
HELDOUT_BUCKETS = 10
HELDOUT_SIZE = 500
OFFLINE_ENVS = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")
PROMPT_FORMAT = "Q: {question}\nA:"
HUB_DATASET_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?(:[\w.-]+)?$")
ANSWER_PREFIX = "Answer: "


@dataclass(frozen=True)
class Problem:
    """One arithmetic problem: `question` "23+48-17=?", its worked `solution`, gold `answer`."""

    question: str
    solution: str
    answer: str

    @property
    def prompt(self) -> str:
        return PROMPT_FORMAT.format(question=self.question)


@dataclass(frozen=True)
class ArithmeticTask:
    """Multi-step integer arithmetic with `n_ops` operands of `digits` digits.

    >>> p = ArithmeticTask(3, 2).sample(random.Random(1))
    >>> p.prompt
    'Q: 27+82-18=?\\nA:'
    >>> print(p.solution)
    <BLANKLINE>
    Step 1: 27+82=109.
    Step 2: 109-18=91.
    Answer: 91
    """

    n_ops: int = 3
    digits: int = 2

    def __post_init__(self) -> None:
        if self.n_ops < 2 or self.digits < 1:
            raise ValueError("ArithmeticTask needs n_ops >= 2 and digits >= 1")

    def sample(self, rng: random.Random) -> Problem:
        lo, hi = 10 ** (self.digits - 1), 10**self.digits - 1
        operands = [rng.randint(lo, hi) for _ in range(self.n_ops)]
        total, question, steps = operands[0], str(operands[0]), []
        for i, x in enumerate(operands[1:], start=1):
            subtract = rng.random() < 0.5 and total >= x
            new = total - x if subtract else total + x
            op = "-" if subtract else "+"
            question += f"{op}{x}"
            steps.append(f"Step {i}: {total}{op}{x}={new}.")
            total = new
        solution = "\n" + "\n".join(steps) + f"\n{ANSWER_PREFIX}{total}"
        return Problem(question=f"{question}=?", solution=solution, answer=str(total))


def split_of(question: str) -> str:
    """`eval` for 1 in HELDOUT_BUCKETS questions (stable hash), else `train`.

    >>> split_of("23+48-17=?")
    'train'
    """
    digest = hashlib.blake2b(question.encode(), digest_size=8).digest()
    return EVAL if int.from_bytes(digest, "big") % HELDOUT_BUCKETS == 0 else TRAIN


def make_problems(
    seed: int, n: int, n_ops: int = 3, digits: int = 2, split: str = TRAIN
) -> list[Problem]:
    """`n` problems of `split` drawn from `seed` (other-split draws are rejected).

    >>> [p.question for p in make_problems(7, 2)]
    ['51+29-60=?', '78+22+56=?']
    >>> {split_of(p.question) for p in make_problems(HELDOUT_SEED, 50, split=EVAL)}
    {'eval'}
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    task, rng, out = ArithmeticTask(n_ops, digits), random.Random(seed), []
    while len(out) < n:
        problem = task.sample(rng)
        if split_of(problem.question) == split:
            out.append(problem)
    return out


def heldout_problems(n: int = 200, n_ops: int = 3, digits: int = 2) -> list[Problem]:
    """The first `n` held-out problems (seed HELDOUT_SEED)."""
    return make_problems(HELDOUT_SEED, n, n_ops, digits, split=EVAL)


def load_dataset_for(cfg: DataConfig, split: str = TRAIN, *, limit: int | None = None):
    """A `datasets.Dataset` with `prompt` and `answer` columns for `split` ("train" or "eval")."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    source = cfg.eval_task.strip() if split == EVAL and cfg.eval_task.strip() else cfg.task.strip()
    if source == BUILTIN_TASK:
        rows = _arithmetic_rows(cfg, split, max(HELDOUT_SIZE, limit or 0))
    else:
        rows = _source_rows(cfg, split, source)
    if limit is not None:
        rows = rows[:limit]
    if not rows:
        raise DatasetLoadError(f"{source}: the {split} split has no rows")
    from datasets import Dataset

    return Dataset.from_list(rows)


def _arithmetic_rows(cfg: DataConfig, split: str, n_eval: int) -> list[dict[str, Any]]:
    if split == TRAIN:
        problems = make_problems(cfg.seed, cfg.train_size, cfg.n_ops, cfg.digits, TRAIN)
    else:
        problems = make_problems(HELDOUT_SEED, n_eval, cfg.n_ops, cfg.digits, EVAL)
    return [
        {
            "prompt": _wrap(cfg, p.prompt),
            "answer": p.answer,
            "question": p.question,
            "solution": p.solution,
        }
        for p in problems
    ]


def _wrap(cfg: DataConfig, text: str) -> str | list[dict[str, str]]:
    return [{"role": "user", "content": text}] if cfg.chat_template else text


def _source_rows(cfg: DataConfig, split: str, source: str) -> list[dict[str, Any]]:
    """Rows of a local file or hub dataset, shaped into prompt + answer."""
    own_eval_file = split == EVAL and bool(cfg.eval_task.strip())
    if _is_local(source):
        raw = read_table(Path(source))
        if not own_eval_file:
            raw = [r for r in raw if split_of(str(r.get(cfg.question_field, ""))) == split]
    else:
        hub_split = cfg.split if split == TRAIN else cfg.eval_split
        raw = load_hub_rows(source, hub_split)
    return [shape_row(cfg, row, source, i) for i, row in enumerate(raw)]


def _is_local(source: str) -> bool:
    """A file (written as a path, or with a data-file suffix), else a hub id: `org/name` is
    never read from a local folder of that name (submissions store files as absolute paths)."""
    path = Path(source).expanduser()
    if source.startswith(("/", ".", "~")) or path.suffix.lower() in FILE_SUFFIXES:
        return True
    return not HUB_DATASET_ID.match(source) and path.exists()


def shape_row(cfg: DataConfig, row: dict[str, Any], source: str, i: int) -> dict[str, Any]:
    """One dataset row as training sees it: `prompt` from the template, `answer` the gold read
    from `cfg.answer_field` ("" when none). DatasetLoadError when a field is missing."""
    for name in (cfg.question_field, cfg.answer_field):
        if name not in row:
            raise DatasetLoadError(
                f"{source}: row {i} has no field {name!r} (fields: {', '.join(map(str, row))}); "
                "set data.question_field / data.answer_field"
            )
    text = cfg.prompt_template.replace("{question}", str(row[cfg.question_field]))
    gold = extract_gold(row[cfg.answer_field])
    return {**row, "prompt": _wrap(cfg, text), "answer": "" if gold is None else gold}


def hub_offline() -> str | None:
    """The environment variable that forbids hub access, if one is set."""
    for name in OFFLINE_ENVS:
        if os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on"):
            return name
    return None


def load_hub_rows(dataset_id: str, split: str) -> list[dict[str, Any]]:
    """Rows of a hub dataset `id` or `id:config`: from the hub, or with the hub off (HF_HUB_OFFLINE
    / HF_DATASETS_OFFLINE) from its snapshot in the local Hugging Face cache, else from
    `datasets`' own cache of an earlier load (its offline path)."""
    name, _, config = dataset_id.partition(":")
    import datasets

    source = name
    offline = hub_offline()
    if offline:
        from engine.hub import NotCached, cached_snapshot, hub_cache_dir

        try:
            source = str(cached_snapshot(name, repo_type="dataset"))
        except NotCached:
            # datasets' offline path (its cache of an earlier load_dataset), unless a local
            # folder of that name would be read instead
            source = None if Path(name).exists() else name
        not_cached = (
            f"hub dataset {dataset_id!r} is not in the local Hugging Face cache "
            f"({hub_cache_dir()}) nor in datasets' cache, and {offline}=1 is set; download it "
            f"where there is a network (`hf download {name} --repo-type dataset`) and copy the "
            "cache here, unset it, or point data.task at a local .jsonl/.csv/.parquet file"
        )
    elif Path(name).exists():  # a local folder of that name would shadow the hub id
        from huggingface_hub import snapshot_download

        source = snapshot_download(name, repo_type="dataset")
    if source is None:
        raise DatasetLoadError(not_cached)
    try:
        ds = datasets.load_dataset(source, config or None, split=split)
    except Exception as exc:  # noqa: BLE001 - datasets raises many types; name the id either way
        if offline and source == name:
            raise DatasetLoadError(not_cached) from exc
        raise DatasetLoadError(
            f"could not load hub dataset {dataset_id!r} split {split!r}: {exc}"
        ) from exc
    return list(ds)
