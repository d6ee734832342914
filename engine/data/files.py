"""Local dataset files as users have them: `.jsonl`, `.json`, `.csv`, `.parquet` -> rows (dicts).

What is read, and what is refused with one line naming the file and the fix:
- UTF-8, with or without a byte-order mark. A text file that is not UTF-8 is refused naming the
  line and the byte (`latin-1` / Windows-1252 files are the usual case: save them as UTF-8);
  UTF-16 / UTF-32 text (Excel's "Unicode Text") is named as such.
- A file that is not text at all (gzip, zip, an image, an Excel workbook, random bytes) is named
  as not a text file, with what its signature says it is (the `filetype` library's magic
  numbers; NUL and control bytes otherwise), never as a text encoding.
- A text file holding only blank lines is named as such (no header, no rows).
- JSON lines (`.jsonl`, or a `.json` file holding one object per line) are streamed line by line;
  a broken line names the file and its line number.
- A single JSON document (`.json`) is read whole, so it has a lower size limit
  (`MAX_JSON_DOCUMENT_BYTES`, named in the message). Layouts read: a list of objects, columnar
  (`{"question": [...], "answer": [...]}`, equal lengths), an object keyed by id
  (`{"0": {...}, "1": {...}}`, the key kept as `id` when rows have none) and one list of objects
  under a key beside other metadata (`{"version": 1, "data": [...]}`), and pandas' `to_json`
  layouts ("columns", its default: `{column: {index: value}}`; "split", "index", "records",
  "table"). Several lists of objects
  (`{"train": [...], "test": [...]}`) and any other layout are refused with a message naming it.
- CSV through pandas (`dtype=str`, empty cells stay "", in chunks). The separator is sniffed
  from the header (`csv.Sniffer` over `, ; TAB |`: Excel writes `;` where the decimal mark is a
  comma), Excel's `sep=;` first line is honoured, and a space after a separator is not part
  of the next field (`question, answer`). Parquet through pyarrow record batches; a
  file without Parquet's `PAR1` marker is named by what it holds instead.
- A folder (with an example of the file inside it to give), a missing path, an empty file or
  another suffix is named as such (`dataset_path_problem`, also what submit checks).

Every message names the file as `shown` (default: the path as given): an uploaded file is
named as its owner knows it, never by where the server keeps it.
"""

from __future__ import annotations

import codecs
import csv
import json
import os
import re
from collections.abc import Iterator
from itertools import islice
from pathlib import Path
from typing import Any

FILE_SUFFIXES = (".jsonl", ".json", ".csv", ".parquet")
MAX_JSON_DOCUMENT_BYTES = 100 * 1024 * 1024  # a whole .json document is parsed in memory
BOM = b"\xef\xbb\xbf"
HEAD_BYTES = 8192  # what the text / signature checks look at (filetype reads as many)
CSV_SEPARATORS = ",;\t|"
_WIDE_BOMS = (
    (codecs.BOM_UTF32_LE, "UTF-32"),  # before UTF-16 LE: it starts with the same two bytes
    (codecs.BOM_UTF32_BE, "UTF-32"),
    (codecs.BOM_UTF16_LE, "UTF-16"),
    (codecs.BOM_UTF16_BE, "UTF-16"),
)
_CONTROL = frozenset(range(32)) - {9, 10, 11, 12, 13, 27}  # text has tabs, newlines, ESC
_SEP_LINE = re.compile(rb"^(?:\xef\xbb\xbf)?sep=(.)\r?\n")
_JSON_LAYOUTS = (
    "a list of objects, JSON lines, columnar ({column: [values]}), "
    "an object keyed by id ({id: {row}}) or {key: [objects]}"
)
_SAVE_AS_TEXT = "save it as UTF-8 JSON lines / CSV, or upload Parquet"


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


def check_dataset_path(path: Path, shown: str | None = None) -> Path:
    """The path of a readable dataset file, else DatasetLoadError naming what it is instead
    (dataset_path_problem; the file named as `shown`, default the path)."""
    problem = dataset_path_problem(path, shown)
    if problem:
        raise DatasetLoadError(problem)
    return path.expanduser()


def read_table(path: Path, limit: int | None = None, shown: str | None = None) -> list[dict[str, Any]]:  # fmt: skip
    """Rows of a local .jsonl / .json / .csv / .parquet file (values keep their JSON types).

    `limit` reads only the first rows (JSON lines and CSV stop reading there). Errors:
    DatasetLoadError with one line naming the file (as `shown`, default the path), the place
    and the fix.
    """
    return list(islice(iter_rows(path, shown), limit))


def iter_rows(path: Path, shown: str | None = None) -> Iterator[dict[str, Any]]:
    """The rows of a dataset file, lazily where the format allows (see the module docstring).

    The path, the text-or-binary check and a blank file are checked at once; a bad line when
    the iterator reaches it. Messages name the file as `shown` (default the path)."""
    shown = shown or str(path)
    path = check_dataset_path(path, shown)
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        _check_parquet(path, shown)
        return _parquet_rows(path, shown)
    _check_text(path, shown)
    if suffix == ".jsonl":
        return _jsonl_rows(path, shown)
    if suffix == ".json":
        return _json_rows(path, shown)
    return _csv_rows(path, shown)


def declared_columns(path: Path, shown: str | None = None) -> list[str]:
    """The column names a file declares without rows: a CSV's header, a Parquet schema ([] for
    JSON, whose fields exist only in rows). DatasetLoadError as `iter_rows`."""
    shown = shown or str(path)
    path = check_dataset_path(path, shown)
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        import pyarrow.parquet as pq

        _check_parquet(path, shown)
        try:
            return list(pq.ParquetFile(path).schema_arrow.names)
        except Exception as exc:  # noqa: BLE001 - pyarrow raises several types; name the file
            raise DatasetLoadError(f"{shown}: not a readable Parquet file ({_one_line(exc)})") from None  # fmt: skip
    if suffix != ".csv":
        return []
    _check_text(path, shown)
    return [str(c) for c in _read_csv(path, shown, nrows=0).columns]


# ----------------------------------------------------------------------------- text or not


def not_text_problem(head: bytes) -> str | None:
    """Why the first bytes of a file are not UTF-8 text (one clause), or None when they may be.

    A signature (`filetype`) counts only where the bytes are binary (a NUL or another control
    byte): some signatures are letters a text header may start with ("BM", "ID3", "MZ").

    >>> not_text_problem(b'{"question": "1+1"}'), not_text_problem(b"\\x1f\\x8b\\x08\\x00" + bytes(20))
    (None, 'not a text file: it looks like a .gz file (application/gzip)')
    >>> not_text_problem("q,a".encode("utf-16")), not_text_problem(b"BMI,answer\\n25,1\\n")
    ('UTF-16 text, not UTF-8', None)
    """
    for bom, name in _WIDE_BOMS:
        if head.startswith(bom):
            return f"{name} text, not UTF-8"
    nuls = head.count(0)
    if (
        nuls
        and nuls * 3 >= len(head)
        and (head[0::2].count(0) == nuls or head[1::2].count(0) == nuls)
    ):
        return "UTF-16 text (no byte-order mark), not UTF-8"
    control = sum(byte in _CONTROL for byte in head)
    if not control:
        return None
    import filetype

    kind = filetype.guess(head)
    if kind is not None:
        return f"not a text file: it looks like a .{kind.extension} file ({kind.mime})"
    if nuls or control * 10 > len(head):
        return "not a text file: it holds binary data (NUL or control bytes)"
    return None


def _head(path: Path, n: int = HEAD_BYTES) -> bytes:
    with path.open("rb") as f:
        return f.read(n)


def _check_text(path: Path, shown: str) -> None:
    """DatasetLoadError for a file that is not UTF-8 text, or holds only blank lines."""
    head = _head(path)
    problem = not_text_problem(head)
    if problem:
        raise DatasetLoadError(f"{shown}: {problem}; {_SAVE_AS_TEXT}")
    if not head.removeprefix(BOM).strip() and _only_blank(path):
        raise DatasetLoadError(
            f"{shown} holds only blank lines (no header, no rows); give a dataset file with rows"
        )


def _only_blank(path: Path) -> bool:
    with path.open("rb") as f:
        first = True
        while chunk := f.read(1 << 16):
            chunk, first = (chunk.removeprefix(BOM) if first else chunk), False
            if chunk.strip():
                return False
    return True


def _decode(shown: str, number: int, raw: bytes) -> str:
    if number == 1:
        raw = raw.removeprefix(BOM)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        byte = raw[exc.start : exc.start + 1].hex()
        if not_text_problem(raw):
            raise DatasetLoadError(
                f"{shown}:{number}: binary data, not text (byte 0x{byte} at column "
                f"{exc.start + 1}); {_SAVE_AS_TEXT}"
            ) from None
        raise DatasetLoadError(
            f"{shown}:{number}: not UTF-8 (byte 0x{byte} at column {exc.start + 1}); the file is "
            "probably latin-1 / Windows-1252: save it as UTF-8"
        ) from None


# ----------------------------------------------------------------------------- JSON


def _jsonl_rows(path: Path, shown: str) -> Iterator[dict[str, Any]]:
    """One object per line, streamed; blank lines are skipped."""
    with path.open("rb") as f:
        for number, raw in enumerate(f, start=1):
            line = _decode(shown, number, raw)
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DatasetLoadError(
                    f"{shown}:{number}: not valid JSON ({exc.msg} at column {exc.colno}); "
                    "fix or remove that line"
                ) from None
            if not isinstance(row, dict):
                raise DatasetLoadError(
                    f"{shown}:{number}: a JSON {_kind(row)}, not an object; JSON lines need one "
                    '{"field": value} object per line'
                )
            yield row


def _kind(value: Any) -> str:
    names = {dict: "object", list: "list", str: "string", bool: "boolean", type(None): "null"}
    return names.get(type(value), "number")


def _json_rows(path: Path, shown: str) -> Iterator[dict[str, Any]]:
    """A single JSON document in one of the layouts; one object per line falls to JSON lines."""
    size = path.stat().st_size
    head = _head(path, 64 * 1024).removeprefix(BOM).lstrip()
    if head.startswith(b"{") and _looks_like_json_lines(path):
        return _jsonl_rows(path, shown)
    if size > MAX_JSON_DOCUMENT_BYTES:
        raise DatasetLoadError(
            f"{shown}: a single JSON document of {size / 2**20:.0f} MiB is over the "
            f"{MAX_JSON_DOCUMENT_BYTES / 2**20:.0f} MiB limit for .json (it is read whole); "
            "save it as JSON lines (.jsonl), which is streamed"
        )
    return iter(_layout_rows(shown, _load_document(path, shown)))


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


def _load_document(path: Path, shown: str) -> Any:
    raw = path.read_bytes()
    lines = raw.split(b"\n")
    text = "\n".join(_decode(shown, n, line) for n, line in enumerate(lines, start=1))
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise DatasetLoadError(
            f"{shown}:{exc.lineno}: not valid JSON ({exc.msg} at column {exc.colno})"
        ) from None


def _layout_rows(shown: str, data: Any) -> list[dict[str, Any]]:
    """Rows of a parsed JSON document, or DatasetLoadError naming its layout."""
    if isinstance(data, list):
        bad = next((i for i, r in enumerate(data) if not isinstance(r, dict)), None)
        if bad is None:
            return data
        raise DatasetLoadError(
            f"{shown}: a JSON list whose item {bad} is a {_kind(data[bad])}, not an object; "
            f"use {_JSON_LAYOUTS}"
        )
    if not isinstance(data, dict) or not data:
        what = "an empty object" if data == {} else f"a single JSON {_kind(data)}"
        raise DatasetLoadError(f"{shown}: {what} is not a table; use {_JSON_LAYOUTS}")
    values = list(data.values())
    if all(isinstance(v, dict) for v in values):
        if _columns_by_index(data):  # pandas' default `to_json()`: {column: {index: value}}
            index = list(values[0])
            return [{column: data[column][i] for column in data} for i in index]
        return [{"id": key, **row} if "id" not in row else row for key, row in data.items()]
    if isinstance(data.get("columns"), list) and isinstance(data.get("data"), list):
        return _split_rows(shown, data)  # pandas' `to_json(orient="split")`
    return _object_of_lists(shown, data)


def _columns_by_index(data: dict[str, dict]) -> bool:
    """Is {key: {inner: value}} pandas' column layout (inner keys the same row index labels
    everywhere, outer keys names) rather than rows keyed by id ({id: {field: value}})?"""
    inner = [set(v) for v in data.values()]
    labels = inner[0]
    return (
        bool(labels)
        and all(keys == labels for keys in inner)
        and all(_int_like(k) for k in labels)
        and not all(_int_like(k) for k in data)
    )


def _int_like(key: str) -> bool:
    return key.lstrip("-").isdigit()


def _split_rows(shown: str, data: dict[str, Any]) -> list[dict[str, Any]]:
    columns, rows = [str(c) for c in data["columns"]], data["data"]
    bad = next((i for i, r in enumerate(rows) if not isinstance(r, list) or len(r) != len(columns)), None)  # fmt: skip
    if bad is not None:
        raise DatasetLoadError(
            f"{shown}: a JSON object with 'columns' and 'data' whose row {bad} is not a list of "
            f"{len(columns)} values; every row of 'data' needs one value per column"
        )
    return [dict(zip(columns, row, strict=True)) for row in rows]


def _object_of_lists(shown: str, data: dict[str, Any]) -> list[dict[str, Any]]:
    """Columnar ({column: [values]}), or the one list of objects among other keys."""
    lists = [k for k, v in data.items() if isinstance(v, list)]
    row_lists = [k for k in lists if data[k] and all(isinstance(r, dict) for r in data[k])]
    if len(row_lists) > 1:
        raise DatasetLoadError(
            f"{shown}: a JSON object with several lists of rows ({', '.join(row_lists[:6])}); "
            "save the rows to train on as their own file, or as one list"
        )
    if len(lists) == len(data) and (len(data) > 1 or not row_lists):
        return _columnar(shown, data)
    if row_lists or (len(lists) == 1 and not data[lists[0]]):
        return (row_lists and data[row_lists[0]]) or []  # {"version": 1, "data": [...]}
    raise DatasetLoadError(
        f"{shown}: a JSON object mixing {', '.join(sorted({_kind(v) for v in data.values()}))} "
        f"values is not a table; use {_JSON_LAYOUTS}"
    )


def _columnar(shown: str, data: dict[str, list[Any]]) -> list[dict[str, Any]]:
    lengths = {k: len(v) for k, v in data.items()}
    if len(set(lengths.values())) > 1:
        listed = ", ".join(f"{k}={n}" for k, n in list(lengths.items())[:6])
        raise DatasetLoadError(
            f"{shown}: columnar JSON with columns of different lengths ({listed}); "
            "every column needs one value per row"
        )
    keys = list(data)
    return [dict(zip(keys, values, strict=True)) for values in zip(*data.values(), strict=True)]


# ----------------------------------------------------------------------------- CSV and Parquet


def _first_bad_line(path: Path, shown: str) -> None:
    """Raise the not-UTF-8 error for the first line that does not decode, if any."""
    with path.open("rb") as f:
        for number, raw in enumerate(f, start=1):
            _decode(shown, number, raw)


def csv_dialect(head: bytes) -> tuple[str, int]:
    """(separator, lines to skip) of a CSV file from its first bytes: Excel's `sep=X` first
    line, else what `csv.Sniffer` finds among `, ; TAB |` when it splits the header into more
    fields than a comma does, else a comma.

    >>> csv_dialect(b"question;answer\\n1+1;2\\n"), csv_dialect(b"sep=;\\nq;a\\n")
    ((';', 0), (';', 1))
    >>> csv_dialect(b'question,answer\\n"a; b; c",1\\n"d; e",2\\n')
    (',', 0)
    """
    declared = _SEP_LINE.match(head)
    if declared:
        return declared.group(1).decode("latin-1"), 1
    text = head.removeprefix(BOM).decode("utf-8", errors="replace")
    lines = text.splitlines()[:50] if len(head) < HEAD_BYTES else text.splitlines()[:-1][:50]
    if not lines:
        return ",", 0
    try:
        sep = csv.Sniffer().sniff("\n".join(lines), delimiters=CSV_SEPARATORS).delimiter
    except csv.Error:
        return ",", 0
    header = lines[0]
    fields = lambda s: len(next(csv.reader([header], delimiter=s), []))  # noqa: E731
    return (sep, 0) if sep != "," and fields(sep) > fields(",") else (",", 0)


def _read_csv(path: Path, shown: str, **kwargs: Any):
    import pandas as pd

    sep, skip = csv_dialect(_head(path))
    try:
        return pd.read_csv(
            path,
            sep=sep,
            skiprows=skip or None,
            skipinitialspace=True,  # "question, answer": no ' answer' column, '"a, b"' quoted
            dtype=str,
            keep_default_na=False,
            encoding="utf-8-sig",
            **kwargs,
        )
    except pd.errors.EmptyDataError:
        raise DatasetLoadError(f"{shown}: the CSV file has no header row") from None
    except pd.errors.ParserError as exc:
        raise DatasetLoadError(f"{shown}: not a valid CSV file ({_one_line(exc)})") from None


def _csv_rows(path: Path, shown: str) -> Iterator[dict[str, Any]]:
    import pandas as pd

    _first_bad_line(path, shown)
    try:
        for frame in _read_csv(path, shown, chunksize=10_000):
            yield from frame.to_dict(orient="records")
    except pd.errors.ParserError as exc:
        raise DatasetLoadError(f"{shown}: not a valid CSV file ({_one_line(exc)})") from None


def _check_parquet(path: Path, shown: str) -> None:
    """DatasetLoadError naming what a .parquet file holds when it lacks Parquet's markers."""
    head = _head(path)
    with path.open("rb") as f:
        f.seek(max(path.stat().st_size - 4, 0))
        tail = f.read(4)
    if head.startswith(b"PAR1") and tail == b"PAR1":
        return
    problem = not_text_problem(head)
    if problem is None:
        what = "it holds text: give it the suffix of its format (.csv, .jsonl or .json)"
    elif problem.startswith("not a text file: it looks like"):
        what = f"{problem.removeprefix('not a text file: ')}; upload the Parquet file itself"
    else:
        what = "it lacks Parquet's PAR1 markers (a cut-off or damaged file?); save it again"
    raise DatasetLoadError(f"{shown}: not a Parquet file: {what}")


def _parquet_rows(path: Path, shown: str) -> Iterator[dict[str, Any]]:
    """Rows in record batches (pyarrow), so the first rows never read the whole file."""
    import pyarrow.parquet as pq

    try:
        for batch in pq.ParquetFile(path).iter_batches(batch_size=10_000):
            yield from batch.to_pylist()
    except Exception as exc:  # noqa: BLE001 - pyarrow raises several types; name the file
        raise DatasetLoadError(f"{shown}: not a readable Parquet file ({_one_line(exc)})") from None


def _one_line(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__
