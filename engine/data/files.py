"""Local dataset files as users have them: `.jsonl`, `.json`, `.csv`, `.parquet` -> rows (dicts).

What is read, and what is refused with one line naming the file and the fix:
- UTF-8, with or without a byte-order mark. A file that is not UTF-8 is refused naming the line
  and the byte (`latin-1` / Windows-1252 files are the usual case: save them as UTF-8).
- JSON lines (`.jsonl`, or a `.json` file holding one object per line) are streamed line by line;
  a broken line names the file and its line number.
- A single JSON document (`.json`) is read whole, so it has a lower size limit
  (`MAX_JSON_DOCUMENT_BYTES`, named in the message). Layouts read: a list of objects, columnar
  (`{"question": [...], "answer": [...]}`, equal lengths), an object keyed by id
  (`{"0": {...}, "1": {...}}`, the key kept as `id` when rows have none) and one list of objects
  under a key (`{"data": [...]}`). Any other layout is refused with a message naming it.
- CSV through pandas (`dtype=str`, empty cells stay "", in chunks), Parquet through pyarrow
  record batches.
- A folder (with an example of the file inside it to give), a missing path, an empty file or
  another suffix is named as such (`dataset_path_problem`, also what submit checks).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from itertools import islice
from pathlib import Path
from typing import Any

FILE_SUFFIXES = (".jsonl", ".json", ".csv", ".parquet")
MAX_JSON_DOCUMENT_BYTES = 100 * 1024 * 1024  # a whole .json document is parsed in memory
BOM = b"\xef\xbb\xbf"
_JSON_LAYOUTS = (
    "a list of objects, JSON lines, columnar ({column: [values]}), "
    "an object keyed by id ({id: {row}}) or {key: [objects]}"
)


class DatasetLoadError(ValueError):
    """A dataset that cannot be loaded, with the reason and the fix."""


def dataset_path_problem(path: Path, shown: str | None = None) -> str | None:
    """What keeps `path` from being read as a dataset file, in one line naming it (as `shown`,
    default the path), or None for a non-empty .jsonl/.json/.csv/.parquet file.

    A folder (a trailing slash or a symlink to one included) is named as a folder, with an
    example of a dataset file inside it when it holds one; a missing path, something that is
    not a regular file (a FIFO, a device), an empty file and an unsupported suffix each get
    their own words. Symlinks are followed; nothing is read but the folder's listing.
    """
    shown = shown or str(path)
    path = path.expanduser()
    if path.is_dir():
        return f"{shown} is a folder, not a dataset file; give the file inside it, {_example(path, shown)}"
    if not path.exists():
        return f"dataset file not found: {shown}"
    if not path.is_file():
        return f"{shown} is not a regular file; give a dataset file"
    if path.suffix.lower() not in FILE_SUFFIXES:
        return f"{shown}: unsupported file type {path.suffix or '(none)'!r}; use one of {', '.join(FILE_SUFFIXES)}"  # fmt: skip
    if path.stat().st_size == 0:
        return f"{shown} is empty (0 bytes); give a dataset file with rows"
    return None


def _example(folder: Path, shown: str, limit: int = 1000) -> str:
    """'e.g. <shown>/<a dataset file in the folder>' (the folder as the user named it), or which
    suffixes to look for when it holds none; at most `limit` entries are listed."""
    try:
        names = sorted(
            entry.name
            for entry in islice(os.scandir(folder), limit)
            if Path(entry.name).suffix.lower() in FILE_SUFFIXES and entry.is_file()
        )
    except OSError:
        names = []
    if names:
        return f"e.g. {shown.rstrip('/')}/{names[0]}"
    return f"a {'/'.join(FILE_SUFFIXES)} file (this folder holds none)"


def check_dataset_path(path: Path) -> Path:
    """The path of a readable dataset file, else DatasetLoadError naming what it is instead
    (dataset_path_problem)."""
    problem = dataset_path_problem(path)
    if problem:
        raise DatasetLoadError(problem)
    return path.expanduser()


def read_table(path: Path, limit: int | None = None) -> list[dict[str, Any]]:
    """Rows of a local .jsonl / .json / .csv / .parquet file (values keep their JSON types).

    `limit` reads only the first rows (JSON lines and CSV stop reading there). Errors:
    DatasetLoadError with one line naming the file, the place and the fix.
    """
    return list(islice(iter_rows(path), limit))


def iter_rows(path: Path) -> Iterator[dict[str, Any]]:
    """The rows of a dataset file, lazily where the format allows (see the module docstring)."""
    path = check_dataset_path(path)
    suffix = path.suffix.lower()
    if suffix == ".jsonl":
        return _jsonl_rows(path)
    if suffix == ".json":
        return _json_rows(path)
    if suffix == ".csv":
        return _csv_rows(path)
    return _parquet_rows(path)


def _decode(path: Path, number: int, raw: bytes) -> str:
    if number == 1:
        raw = raw.removeprefix(BOM)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        byte = raw[exc.start : exc.start + 1].hex()
        raise DatasetLoadError(
            f"{path}:{number}: not UTF-8 (byte 0x{byte} at column {exc.start + 1}); the file is "
            "probably latin-1 / Windows-1252: save it as UTF-8"
        ) from None


def _jsonl_rows(path: Path) -> Iterator[dict[str, Any]]:
    """One object per line, streamed; blank lines are skipped."""
    with path.open("rb") as f:
        for number, raw in enumerate(f, start=1):
            line = _decode(path, number, raw)
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DatasetLoadError(
                    f"{path}:{number}: not valid JSON ({exc.msg} at column {exc.colno}); "
                    "fix or remove that line"
                ) from None
            if not isinstance(row, dict):
                raise DatasetLoadError(
                    f"{path}:{number}: a JSON {_kind(row)}, not an object; JSON lines need one "
                    '{"field": value} object per line'
                )
            yield row


def _kind(value: Any) -> str:
    names = {dict: "object", list: "list", str: "string", bool: "boolean", type(None): "null"}
    return names.get(type(value), "number")


def _json_rows(path: Path) -> Iterator[dict[str, Any]]:
    """A single JSON document in one of the layouts; one object per line falls to JSON lines."""
    size = path.stat().st_size
    with path.open("rb") as f:
        head = f.read(64 * 1024).removeprefix(BOM).lstrip()
    if head.startswith(b"{") and _looks_like_json_lines(path):
        return _jsonl_rows(path)
    if size > MAX_JSON_DOCUMENT_BYTES:
        raise DatasetLoadError(
            f"{path}: a single JSON document of {size / 2**20:.0f} MiB is over the "
            f"{MAX_JSON_DOCUMENT_BYTES / 2**20:.0f} MiB limit for .json (it is read whole); "
            "save it as JSON lines (.jsonl), which is streamed"
        )
    return iter(_layout_rows(path, _load_document(path)))


def _looks_like_json_lines(path: Path) -> bool:
    """Is the first non-blank line a complete JSON object with more text after it?"""
    with path.open("rb") as f:
        first = True
        while line := f.readline(MAX_JSON_DOCUMENT_BYTES):
            line, first = (line.removeprefix(BOM) if first else line), False
            if not line.strip():
                continue
            try:
                json.loads(line)
            except (json.JSONDecodeError, UnicodeDecodeError):
                return False
            return any(rest.strip() for rest in iter(lambda: f.readline(1 << 16), b""))
    return False


def _load_document(path: Path) -> Any:
    raw = path.read_bytes()
    lines = raw.split(b"\n")
    text = "\n".join(_decode(path, n, line) for n, line in enumerate(lines, start=1))
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise DatasetLoadError(
            f"{path}:{exc.lineno}: not valid JSON ({exc.msg} at column {exc.colno})"
        ) from None


def _layout_rows(path: Path, data: Any) -> list[dict[str, Any]]:
    """Rows of a parsed JSON document, or DatasetLoadError naming its layout."""
    if isinstance(data, list):
        bad = next((i for i, r in enumerate(data) if not isinstance(r, dict)), None)
        if bad is None:
            return data
        raise DatasetLoadError(
            f"{path}: a JSON list whose item {bad} is a {_kind(data[bad])}, not an object; "
            f"use {_JSON_LAYOUTS}"
        )
    if not isinstance(data, dict) or not data:
        what = "an empty object" if data == {} else f"a single JSON {_kind(data)}"
        raise DatasetLoadError(f"{path}: {what} is not a table; use {_JSON_LAYOUTS}")
    values = list(data.values())
    if all(isinstance(v, dict) for v in values):
        return [{"id": key, **row} if "id" not in row else row for key, row in data.items()]
    if all(isinstance(v, list) for v in values):
        return _columnar_or_wrapped(path, data)
    lists = [k for k, v in data.items() if isinstance(v, list) and v and isinstance(v[0], dict)]
    if len(lists) == 1:
        return _layout_rows(path, data[lists[0]])
    raise DatasetLoadError(
        f"{path}: a JSON object mixing {', '.join(sorted({_kind(v) for v in values}))} values "
        f"is not a table; use {_JSON_LAYOUTS}"
    )


def _columnar_or_wrapped(path: Path, data: dict[str, list[Any]]) -> list[dict[str, Any]]:
    if len(data) == 1:
        ((key, items),) = data.items()
        if items and all(isinstance(r, dict) for r in items):
            return items  # {"data": [{...}, ...]}
    lengths = {k: len(v) for k, v in data.items()}
    if len(set(lengths.values())) > 1:
        shown = ", ".join(f"{k}={n}" for k, n in list(lengths.items())[:6])
        raise DatasetLoadError(
            f"{path}: columnar JSON with columns of different lengths ({shown}); "
            "every column needs one value per row"
        )
    keys = list(data)
    return [dict(zip(keys, values, strict=True)) for values in zip(*data.values(), strict=True)]


def _first_bad_line(path: Path) -> None:
    """Raise the not-UTF-8 error for the first line that does not decode, if any."""
    with path.open("rb") as f:
        for number, raw in enumerate(f, start=1):
            _decode(path, number, raw)


def _csv_rows(path: Path) -> Iterator[dict[str, Any]]:
    import pandas as pd

    _first_bad_line(path)
    try:
        chunks = pd.read_csv(
            path, dtype=str, keep_default_na=False, encoding="utf-8-sig", chunksize=10_000
        )
        for frame in chunks:
            yield from frame.to_dict(orient="records")
    except pd.errors.EmptyDataError:
        raise DatasetLoadError(f"{path}: the CSV file is empty") from None
    except pd.errors.ParserError as exc:
        raise DatasetLoadError(f"{path}: not a valid CSV file ({_one_line(exc)})") from None


def _parquet_rows(path: Path) -> Iterator[dict[str, Any]]:
    """Rows in record batches (pyarrow), so the first rows never read the whole file."""
    import pyarrow.parquet as pq

    try:
        for batch in pq.ParquetFile(path).iter_batches(batch_size=10_000):
            yield from batch.to_pylist()
    except Exception as exc:  # noqa: BLE001 - pyarrow raises several types; name the file
        raise DatasetLoadError(f"{path}: not a readable Parquet file ({_one_line(exc)})") from None


def _one_line(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__
