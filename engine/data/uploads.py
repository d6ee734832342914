"""Dataset files uploaded through the dashboard: stored safely, previewed, their golds judged.

`store_upload` copies an uploaded file into `<data root>/uploads/` (the folder the submit-time
check admits for network configs) under a cleaned name: only the last path component of the
untrusted name is kept, characters outside `[A-Za-z0-9._-]` become `_`, and an existing file
is never replaced (the same bytes reuse it, other bytes get `-2`, `-3`, ... before the suffix).
The file must be a dataset the one reader (`engine.data.files.iter_rows`) reads as rows, every
row of it, with at least one row and two columns, and fit the operator's size limit; otherwise
nothing is kept. A refusal is one line naming the file as its owner knows it (`shown_name`),
never a path on the server: where it lay goes to the log.

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
from itertools import islice
from pathlib import Path
from typing import Any

from engine.config import DataConfig
from engine.data.files import (
    FILE_SUFFIXES,
    DatasetLoadError,
    declared_columns,
    iter_rows,
    read_table,
)
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


def shown_name(name: str) -> str:
    """An untrusted upload name as its owner knows it, fit for one line of a message: the last
    path component, control characters removed, at most MAX_NAME_CHARS characters.

    >>> shown_name("C:\\\\Users\\\\me\\\\my set (1).csv"), shown_name("a\\nb.jsonl"), shown_name("")
    ('my set (1).csv', 'ab.jsonl', 'the file')
    """
    base = str(name).replace("\\", "/").rsplit("/", 1)[-1]
    base = "".join(ch for ch in base if ch.isprintable()).strip()
    if len(base) > MAX_NAME_CHARS:
        base = base[: MAX_NAME_CHARS - 1] + "…"
    return base or "the file"


def store_upload(src: Path, name: str, uploads: Path, max_mb: float) -> Path:
    """Copy the uploaded file `src` into `uploads` under `safe_name(name)`; returns its path.

    Raises UploadError (one line naming the file as `shown_name(name)`, never a server path:
    those go to the log) for a suffix other than .jsonl/.json/.csv/.parquet, a file over
    `max_mb` MiB, a file the dataset reader cannot read as rows (every row is read once: a
    broken line far down is refused now, not when a run starts), a file with no rows or no
    columns, or a copy that fails (disk full, unreadable source, unwritable folder); then
    nothing is kept.
    """
    stored_name, shown = safe_name(name), shown_name(name)
    suffix = Path(stored_name).suffix.lower()
    if suffix not in FILE_SUFFIXES:
        raise UploadError(f"{shown}: not a dataset file; upload a {', '.join(FILE_SUFFIXES)} file")
    size = _size(Path(src), shown)
    if size > max_mb * MB:
        raise UploadError(
            f"{shown} is {size / MB:.1f} MiB, over this server's {max_mb:g} MiB upload "
            "limit (serve --max-upload-mb): upload a smaller file"
        )
    target, fresh = _free_target(Path(src), _folder(uploads, shown), stored_name, shown)
    if fresh:
        try:
            _check_rows(target, shown)
        except UploadError as exc:
            target.unlink(missing_ok=True)
            log.info("upload %r refused, %s removed: %s", name, target, exc)
            raise
    return target


def _size(src: Path, shown: str) -> int:
    try:
        return src.stat().st_size
    except OSError as exc:
        log.warning("upload %s: cannot stat %s", shown, src, exc_info=True)
        raise UploadError(f"{shown}: the uploaded file is gone ({_reason(exc)}); upload it again") from None  # fmt: skip


def _folder(uploads: Path, shown: str) -> Path:
    """The uploads folder, made when missing; UploadError (no path) when it cannot be."""
    try:
        uploads.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        log.error("the uploads folder %s cannot be made", uploads, exc_info=True)
        raise UploadError(
            f"{shown}: could not be stored (the server's uploads folder cannot be written: "
            f"{_reason(exc)}); ask the operator to check the data root"
        ) from None
    return uploads


def _check_rows(path: Path, shown: str) -> None:
    """UploadError unless every row of the file reads and it has at least one row and two
    columns (a question and a gold answer)."""
    try:
        rows = iter_rows(path, shown)
        first = list(islice(rows, PREVIEW_ROWS))
        for _ in rows:  # the rest, read once: a broken line anywhere is named now
            pass
        if not first:
            declared = declared_columns(path, shown)
    except DatasetLoadError as exc:
        raise UploadError(_one_line(exc)) from None
    except Exception as exc:  # noqa: BLE001 - a reader's own failure: the trace goes to the log
        log.warning("upload %s (%s) could not be read", shown, path, exc_info=True)
        raise UploadError(f"{shown}: could not be read as a dataset ({_reason(exc)})") from None
    if not first:
        raise UploadError(_no_rows(shown, declared))
    columns = {str(key): None for row in first for key in row}
    if not columns:
        raise UploadError(
            f"{shown} has no columns: upload a file whose rows have named fields, e.g. "
            '{"question": ..., "answer": ...}'
        )
    if len(columns) == 1:  # data.question_field and data.answer_field must differ
        raise UploadError(
            f"{shown} has only one column ({next(iter(columns))[:80]}): add the gold answers "
            "as a second column (a question and an answer field are needed)"
        )


def _no_rows(shown: str, declared: list[str]) -> str:
    if declared:
        listed = ", ".join(map(str, declared[:8])) + (", ..." if len(declared) > 8 else "")
        return f"{shown} has no rows (only the columns {listed[:200]}): add at least one row of data under the header"  # fmt: skip
    return (
        f"{shown} has no rows: upload a file with at least one row of data, e.g. one "
        '{"question": ..., "answer": ...} object per line'
    )


def _free_target(src: Path, uploads: Path, stored_name: str, shown: str) -> tuple[Path, bool]:
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
        except OSError as exc:  # the folder is read-only, not a folder, ...
            raise _not_stored(shown, target, exc) from None
        try:
            with out, open(src, "rb") as inp:
                shutil.copyfileobj(inp, out)
        except OSError as exc:  # disk full, source unreadable: no partial file stays
            target.unlink(missing_ok=True)
            raise _not_stored(shown, target, exc) from None
        return target, True
    raise UploadError(f"{shown}: too many uploads of this name; rename the file")


def _not_stored(shown: str, target: Path, exc: OSError) -> UploadError:
    log.warning("storing upload %s as %s failed", shown, target, exc_info=True)
    return UploadError(
        f"{shown}: could not be stored ({_reason(exc)}); "
        "try again, or ask the operator to free space in the uploads folder"
    )


def preview(
    path: Path, n: int = PREVIEW_ROWS, shown: str | None = None
) -> tuple[list[str], list[dict[str, Any]]]:
    """(column names in first-seen order, the first `n` rows) of a stored upload, read by the
    one dataset reader. Raises DatasetLoadError (one line naming the file as `shown`, default
    its name in the uploads folder, never its path) for a file that is not rows."""
    rows = read_table(path, limit=n, shown=shown or path.name)
    columns: dict[str, None] = {}
    for row in rows:
        columns.update(dict.fromkeys(map(str, row)))
    return list(columns), rows


QUESTION_NAMES = ("question", "problem", "prompt", "query", "instruction", "input", "text")
ANSWER_NAMES = ("answer", "solution", "gold", "final_answer", "target", "output", "label")
_INDEX_COLUMN = re.compile(r"^(Unnamed: \d+|__index_level_\d+__|index|idx|id|)$", re.IGNORECASE)


def guess_fields(columns: list[str], question: str, answer: str) -> tuple[str, str]:
    """(question field, answer field) offered for an upload's `columns`: the form's current
    fields where the file has them, else a column with a usual name, else the first columns
    that are not a row index (pandas writes its index as 'Unnamed: 0', Parquet as
    '__index_level_0__').

    >>> guess_fields(["Unnamed: 0", "Problem", "Solution"], "question", "answer")
    ('Problem', 'Solution')
    >>> guess_fields(["id", "text_a", "text_b"], "question", "answer")
    ('text_a', 'text_b')
    """
    data = [c for c in columns if not _INDEX_COLUMN.match(c.strip())] or list(columns)

    def pick(current: str, names: tuple[str, ...], taken: str | None) -> str:
        if current in columns and current != taken:
            return current
        named = [c for c in data if c.strip().lower() in names and c != taken]
        named.sort(key=lambda c: names.index(c.strip().lower()))
        rest = [c for c in data if c != taken]
        return (named or rest or [taken or columns[0]])[0]

    q = pick(question, QUESTION_NAMES, None)
    return q, pick(answer, ANSWER_NAMES, q)


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
    nested = _not_text(row, data.question_field, whole_lists=True) or _not_text(row, data.answer_field)  # fmt: skip
    if nested:  # its Python form would be the prompt, or the answer a response must state
        return GoldCheck(i, gold, "", False, nested)
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


def _not_text(row: dict[str, Any], field: str, whole_lists: bool = False) -> str | None:
    """Why a nested value (Parquet struct / list columns, JSON objects) cannot be this field:
    an object, a list holding objects or lists, or for the question any list (chat messages
    are not read from files). None for text, numbers and flat lists of them (a list gold).

    >>> _not_text({"a": {"value": "5"}}, "a")
    "field 'a' holds an object ({'value': '5'}), not text: pick the field that holds it as text"
    >>> _not_text({"a": [3, 5]}, "a") is None, _not_text({"q": [{"role": "user"}]}, "q") is None
    (True, False)
    """
    value = row.get(field)
    if isinstance(value, dict):
        kind = "an object"
    elif isinstance(value, list) and (whole_lists or any(isinstance(v, dict | list) for v in value)):  # fmt: skip
        kind = "a list"
    else:
        return None
    return f"field {field!r} holds {kind} ({str(value)[:60]}), not text: pick the field that holds it as text"  # fmt: skip


def _finite_score(score: Any) -> float | None:
    """The score as a float, or None for a non-number (None, text, ...) or a NaN/inf."""
    if not isinstance(score, numbers.Real):
        return None
    value = float(score)
    return value if math.isfinite(value) else None


def _reason(exc: BaseException) -> str:
    """Why an OS or reader call failed, without the file names an OSError carries."""
    if isinstance(exc, OSError):
        return exc.strerror or type(exc).__name__
    return type(exc).__name__


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text[:300]
