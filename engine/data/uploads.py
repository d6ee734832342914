"""Dataset files uploaded through the dashboard: stored safely, previewed, their golds judged.

`store_upload` copies an uploaded file into `<data root>/uploads/` (the folder the submit-time
check admits for network configs) under a cleaned name: only the last path component of the
untrusted name is kept, characters outside `[A-Za-z0-9._-]` become `_`, and an existing file
is never replaced (the same bytes reuse it, other bytes get `-2`, `-3`, ... before the suffix).
The file must be a dataset the one reader (`engine.data.files.read_table`) reads as rows, and
fit the operator's size limit; otherwise nothing is kept.

`preview` reads the first rows with that reader and `gold_checks` gives the reward's verdict on
each row's gold answer: the row is shaped as training shapes it (`engine.data.tasks.shape_row`),
the gold the reward compares is read as the answer audit reads it (`rewards.answer_audit`), and
the reward itself scores a response that states that gold. A gold that is missing, or that the
reward does not accept even when stated verbatim, is flagged before any training starts.
"""

from __future__ import annotations

import filecmp
import logging
import math
import numbers
import re
import shutil
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from engine.config import DataConfig
from engine.data.files import FILE_SUFFIXES, DatasetLoadError, read_table
from engine.data.rewards import answer_audit, get_reward
from engine.data.tasks import shape_row
from engine.runs.admission import AccessPolicy, reward_problem

log = logging.getLogger(__name__)

PREVIEW_ROWS = 5
MAX_NAME_CHARS = 100
MAX_COPIES = 1000
MB = 1 << 20
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


class UploadError(ValueError):
    """An upload that is refused: one line naming the problem and the fix."""


@dataclass(frozen=True)
class GoldCheck:
    """The reward's verdict on one preview row's gold answer."""

    row: int  # 0-based row of the file
    gold: str  # the raw value of the answer field ("" when absent)
    read: str  # the gold the reward compares ("" when none was read)
    ok: bool
    note: str  # why not ok; "" when ok


def safe_name(name: str) -> str:
    """The file name an untrusted upload name is stored under (no folders, no odd characters).

    >>> safe_name("../../etc/passwd.csv"), safe_name("C:\\\\data\\\\my set (1).jsonl")
    ('passwd.csv', 'my_set_1.jsonl')
    >>> safe_name(".hidden.csv"), safe_name("..csv")
    ('hidden.csv', 'upload.csv')
    """
    base = str(name).replace("\\", "/").rsplit("/", 1)[-1]
    stem, dot, suffix = base.rpartition(".")
    if not dot:
        stem, suffix = suffix, ""
    stem = _UNSAFE.sub("_", stem).strip("._-")[:MAX_NAME_CHARS] or "upload"
    suffix = _UNSAFE.sub("", suffix).lower()
    return f"{stem}.{suffix}" if suffix else stem


def store_upload(src: Path, name: str, uploads: Path, max_mb: float) -> Path:
    """Copy the uploaded file `src` into `uploads` under `safe_name(name)`; returns its path.

    Raises UploadError (one line) for a suffix other than .jsonl/.json/.csv/.parquet, a file
    over `max_mb` MiB, a file the dataset reader cannot read as rows, a file with no rows or
    no columns, or a copy that fails (disk full, unreadable source); then nothing is kept.
    """
    stored_name = safe_name(name)
    suffix = Path(stored_name).suffix.lower()
    if suffix not in FILE_SUFFIXES:
        raise UploadError(
            f"{stored_name}: not a dataset file; upload a {', '.join(FILE_SUFFIXES)} file"
        )
    size = Path(src).stat().st_size
    if size > max_mb * MB:
        raise UploadError(
            f"{stored_name} is {size / MB:.1f} MiB, over this server's {max_mb:g} MiB upload "
            "limit (serve --max-upload-mb): upload a smaller file"
        )
    uploads.mkdir(parents=True, exist_ok=True)
    target, fresh = _free_target(Path(src), uploads, stored_name)
    if fresh:
        try:
            _check_shape(read_table(target, limit=PREVIEW_ROWS), stored_name)
        except (DatasetLoadError, OSError, UnicodeDecodeError) as exc:
            target.unlink(missing_ok=True)
            raise UploadError(f"{stored_name}: {_one_line(exc)}") from None
        except UploadError:
            target.unlink(missing_ok=True)
            raise
    return target


def _check_shape(rows: list[dict[str, Any]], stored_name: str) -> None:
    """UploadError unless the first rows hold at least one row and one column."""
    if not rows:
        raise UploadError(
            f"{stored_name} has no rows: upload a file with a header (or keys) and at least one "
            "row of data"
        )
    if not any(len(row) for row in rows):
        raise UploadError(
            f"{stored_name} has no columns: upload a file whose rows have named fields, e.g. "
            '{"question": ..., "answer": ...}'
        )


def _free_target(src: Path, uploads: Path, stored_name: str) -> tuple[Path, bool]:
    """(where the upload lies, whether it was written now): an identical file is reused."""
    stem, suffix = Path(stored_name).stem, Path(stored_name).suffix
    for n in range(1, MAX_COPIES + 1):
        target = uploads / (stored_name if n == 1 else f"{stem}-{n}{suffix}")
        try:
            out = open(target, "xb")  # noqa: SIM115 (closed below) -- never replaces a file
        except FileExistsError:
            if target.is_file() and filecmp.cmp(target, src, shallow=False):
                return target, False
            continue
        try:
            with out, open(src, "rb") as inp:
                shutil.copyfileobj(inp, out)
        except OSError as exc:  # disk full, source unreadable: no partial file stays
            target.unlink(missing_ok=True)
            log.warning("storing upload %s failed", stored_name, exc_info=True)
            raise UploadError(
                f"{stored_name}: could not be stored ({exc.strerror or _one_line(exc)}); "
                "try again, or ask the operator to free space in the uploads folder"
            ) from None
        return target, True
    raise UploadError(f"{stored_name}: too many uploads of this name; rename the file")


def preview(path: Path, n: int = PREVIEW_ROWS) -> tuple[list[str], list[dict[str, Any]]]:
    """(column names in first-seen order, the first `n` rows) of a dataset file, read by the
    one dataset reader. Raises DatasetLoadError (one line) for a file that is not rows."""
    rows = read_table(path, limit=n)
    columns: dict[str, None] = {}
    for row in rows:
        columns.update(dict.fromkeys(map(str, row)))
    return list(columns), rows


def gold_checks(
    rows: list[dict[str, Any]], data: DataConfig, policy: AccessPolicy
) -> list[GoldCheck]:
    """The verdict of `data.reward` on the gold (`data.answer_field`) of each row.

    The reward is first checked under `policy` by the submit-time check
    (`engine.runs.admission.reward_problem`): a reward the caller may not use is never
    imported; UploadError (one line naming data.reward and the fix) instead.

    >>> cfg, cli = DataConfig(question_field="q", answer_field="a"), AccessPolicy(trusted=True)
    >>> [c.ok for c in gold_checks([{"q": "1+1", "a": "#### 2"}, {"q": "x", "a": ""}], cfg, cli)]
    [True, False]
    """
    problem = reward_problem(data.reward.strip(), policy)
    if problem:
        raise UploadError(f"data.reward: {problem}")
    try:
        reward = get_reward(data.reward)
    except KeyError as exc:
        return [GoldCheck(i, "", "", False, _one_line(exc)) for i in range(len(rows))]
    return [_check(reward, data, row, i) for i, row in enumerate(rows)]


def _check(reward, data: DataConfig, row: dict[str, Any], i: int) -> GoldCheck:
    raw = row.get(data.answer_field)
    gold = "" if raw is None else str(raw)
    try:
        shaped = shape_row(replace(data, prompt_template="{question}"), row, "the file", i)
    except DatasetLoadError as exc:
        return GoldCheck(i, gold, "", False, _one_line(exc))
    read = answer_audit(data.reward, "", shaped)[1]
    if not read:
        return GoldCheck(i, gold, "", False, f"no gold answer in field {data.answer_field!r}")
    stated = f"Answer: {read}"
    try:
        kwargs = {k: [v] for k, v in shaped.items() if k not in ("prompt", "completion")}
        score = reward([stated], prompts=[shaped["prompt"]], **kwargs)[0]
        value = _finite_score(score)
    except Exception as exc:  # a user's reward module: its failure is the verdict
        log.warning("reward %s failed on preview row %d", data.reward, i, exc_info=True)
        return GoldCheck(i, gold, read, False, f"the reward failed: {_one_line(exc)}")
    if value is None:
        note = f"the {data.reward} reward returned {str(repr(score))[:80]}, not a finite number"
        return GoldCheck(i, gold, read, False, note)
    if value < 1.0:
        note = f"the {data.reward} reward scores even a response stating {read!r} as wrong"
        return GoldCheck(i, gold, read, False, note)
    return GoldCheck(i, gold, read, True, "")


def _finite_score(score: Any) -> float | None:
    """The score as a float, or None for a non-number (None, text, ...) or a NaN/inf."""
    if not isinstance(score, numbers.Real):
        return None
    value = float(score)
    return value if math.isfinite(value) else None


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text[:300]
