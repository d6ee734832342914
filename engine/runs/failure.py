"""Why a run stopped, in words: a stored error (a traceback's tail, a worker's reason) classified.

`explain_failure(error)` reads the last exception line of what the lifecycle or the worker
stored as the run's error and returns a `FailureExplanation`: what failed, the config field to
change (when one is to blame) and the fix. The page and the API show its one paragraph; the
full stored text stays available as it was. Pure: no storage, no Gradio, no file access.

Kinds, first match wins (each matched on the last exception line, case-insensitive):
interrupted (killed by a signal, stopped on SIGTERM, process gone), out of memory, no space
left, non-finite reward, dataset encoding
(not UTF-8), dataset fields (a question/answer field missing), dataset (file missing, empty,
unreadable), reward (unknown name, import failure), model (missing folder, no config.json or
weights, tokenizer), non-finite model (NaN/inf hidden states or loss), else a generic explanation that still quotes the last line, shortened at a
word boundary, never cut mid-word.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

DETAIL_LIMIT = 400  # characters of the quoted last line
# "SomeError: text" or "pkg.mod.SomeError: text" (a traceback's final line)
EXCEPTION_LINE = re.compile(r"^(?:[A-Za-z_][\w.]*\.)?([A-Z]\w*(?:Error|Exception|Exit|Interrupt|Cancelled|Run))\b:?\s*(.*)$")  # fmt: skip


@dataclass(frozen=True)
class FailureExplanation:
    """What a stored error means for the user.

    kind: one of KINDS' keys ("model", "dataset", ..., "other"); what: one sentence on what
    failed; field: the config field path to change, or "" when none is to blame; fix: one
    sentence; detail: the last exception line, at most DETAIL_LIMIT characters, cut at a word.
    """

    kind: str
    what: str
    field: str
    fix: str
    detail: str

    def paragraph(self) -> str:
        """The one paragraph the page shows: what failed, the field, the fix, the last line."""
        field = f" The field to change: {self.field}." if self.field else ""
        detail = f" (The error: {self.detail})" if self.detail else ""
        return f"{self.what}{field} {self.fix}{detail}"


@dataclass(frozen=True)
class _Kind:
    pattern: re.Pattern[str]
    what: str
    field: str
    fix: str


def _kind(pattern: str, what: str, field: str, fix: str) -> _Kind:
    return _Kind(re.compile(pattern, re.IGNORECASE), what, field, fix)


KINDS: dict[str, _Kind] = {
    "interrupted": _kind(
        r"killed by signal|\bSIGTERM\b|\bSIGKILL\b|KeyboardInterrupt|is gone|stopped by",
        "The training process was stopped from outside (a signal, a restart, or the system).",
        "",
        "Press Resume to continue from its last checkpoint; if nobody stopped it and it was "
        "SIGKILL, the machine likely ran out of memory: lower grpo.per_device_train_batch_size "
        "or grpo.max_completion_length first.",
    ),
    "out_of_memory": _kind(
        r"out of memory|OutOfMemoryError|\bMemoryError\b|can't allocate memory|DefaultCPUAllocator",
        "The run ran out of memory.",
        "grpo.per_device_train_batch_size",
        "Lower grpo.per_device_train_batch_size (raise grpo.gradient_accumulation_steps to keep "
        "the batch), or shorten grpo.max_completion_length, or choose a smaller model.",
    ),
    "no_space": _kind(
        r"no space left|ENOSPC|\[Errno 28\]",
        "The disk holding the run's checkpoints is full.",
        "run.save_total_limit",
        "Free disk space (delete old runs' checkpoints) or lower run.save_total_limit, then "
        "press Resume.",
    ),
    "nan_reward": _kind(
        r"reward function .* returned (nan|inf|-inf)\b",
        "The reward function returned a value that is not a finite number (NaN or inf).",
        "data.reward",
        "Fix the reward so it returns a finite number, or None for 'not applicable', for "
        "every completion.",
    ),
    "dataset_not_text": _kind(  # before the encoding: a gzip is no latin-1 text
        r"not a text file|binary data, not text|UTF-(16|32) text",
        "The dataset file is not UTF-8 text: it is binary (compressed, an image, a workbook) "
        "or UTF-16 text.",
        "data.task",
        "Save it as UTF-8 JSON lines or CSV (decompress it first; Excel: 'CSV UTF-8'), or use a "
        "Parquet file, then launch again.",
    ),
    "dataset_encoding": _kind(
        r"not UTF-8|UnicodeDecodeError|codec can't decode",
        "The dataset file is not UTF-8 text.",
        "data.task",
        "Save the file as UTF-8 (it is probably latin-1 / Windows-1252) and launch again.",
    ),
    "dataset_fields": _kind(
        r"has no field|no field '|no column|KeyError: '(question|answer)",
        "The dataset has no column with the configured question or answer field.",
        "data.question_field",
        "Set data.question_field and data.answer_field to the file's column names.",
    ),
    "dataset": _kind(
        r"DatasetLoadError|dataset file|dataset|split has no rows|CSV file is empty|"
        r"not valid JSON|not a readable Parquet|unsupported file type",
        "The dataset could not be read.",
        "data.task",
        "Point data.task at an existing .jsonl/.json/.csv/.parquet file with rows (or a hub "
        "dataset id), then launch again.",
    ),
    "reward": _kind(
        r"unknown reward|reward '.*': cannot import|has no function|RewardError",
        "The reward function could not be found or used.",
        "data.reward",
        "Set data.reward to a registered reward name or an importable 'package.module:function'.",
    ),
    "model": _kind(
        r"ModelLoadError|model folder|not a model folder|no config\.json|config\.json|"
        r"no model weights|cannot load the (model|tokenizer)|a model is a folder|"
        r"not a folder|is not a local folder|does not appear to have a file named",
        "The model could not be loaded: the folder is missing or is not a model folder.",
        "model.name_or_path",
        "Set model.name_or_path to a folder with config.json and weights (or 'embedded' for the "
        "demo model, or a cached hub id), then launch again.",
    ),
    "nan": _kind(
        r"non-finite|\bNaN\b|\binf\b",
        "The model's numbers became NaN or infinite: training diverged or overflowed.",
        "grpo.learning_rate",
        "Lower grpo.learning_rate, or set model.dtype to bfloat16 (not float16), then launch "
        "again.",
    ),
}
OTHER = (
    "The run stopped with an error.",
    "Open the full log below for where it happened; fix the cause, then Resume or launch again.",
)


def last_exception_line(error: str | None) -> str:
    """The line of a stored error that says what went wrong: a traceback's final
    "Type: message" line (the last such line when a log tail follows), else the first line.

    >>> last_exception_line('Traceback (most recent call last):\\n  File "x.py"\\nKeyError: 3')
    'KeyError: 3'
    >>> last_exception_line("killed by signal SIGKILL\\nmore")
    'killed by signal SIGKILL'
    """
    lines = [line.strip() for line in (error or "").strip().splitlines() if line.strip()]
    if not lines:
        return ""
    raised = [line for line in lines if EXCEPTION_LINE.match(line)]
    if raised:
        return raised[-1]
    return lines[-1] if lines[0].startswith("Traceback") else lines[0]


def shorten(text: str, limit: int = DETAIL_LIMIT) -> str:
    """`text` on one line, at most `limit` characters, cut at a word boundary with "…".

    >>> shorten("model folder not found: /data/models/missing", 30)
    'model folder not found…'
    """
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    space = cut.rfind(" ")
    if space > limit // 2:
        cut = cut[:space]
    return cut.rstrip(" ,;:(") + "…"


def explain_failure(error: str | None, config: dict | None = None) -> FailureExplanation | None:
    """The explanation of a stored run error, or None when there is none.

    error: the run's stored error (a traceback tail, or a worker's one-line reason);
    config: the run's config as a dict (optional): a dataset error naming its `data.eval_task`
    file blames that field instead of `data.task`.
    """
    line = last_exception_line(error)
    if not line:
        return None
    for name, kind in KINDS.items():
        if kind.pattern.search(line):
            field = kind.field
            eval_task = str(((config or {}).get("data") or {}).get("eval_task") or "").strip()
            if field == "data.task" and eval_task and eval_task in line:
                field = "data.eval_task"
            return FailureExplanation(name, kind.what, field, kind.fix, shorten(line))
    return FailureExplanation("other", OTHER[0], "", OTHER[1], shorten(line))
