"""Dataset files as users have them: byte-order marks, JSON layouts, broken lines, encodings."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

import engine.data.files as files
from engine.config import DataConfig
from engine.data.files import DatasetLoadError, read_table
from engine.data.tasks import EVAL, load_dataset_for

ROWS = [{"question": f"{i}+1=?", "answer": str(i + 1)} for i in range(30)]


def _jsonl(rows):
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)


def _both_splits(path):
    cfg = DataConfig(task=str(path), eval_task=str(path))
    return load_dataset_for(cfg, EVAL)


def test_byte_order_mark_is_read_in_every_text_format(tmp_path):
    """A UTF-8 BOM made .jsonl/.json fail to load while the same data as .csv loaded."""
    contents = {
        "bom.jsonl": _jsonl(ROWS),
        "bom.json": json.dumps(ROWS),
        "bom.csv": pd.DataFrame(ROWS).to_csv(index=False),
    }
    for name, text in contents.items():
        path = tmp_path / name
        path.write_bytes(b"\xef\xbb\xbf" + text.encode())
        assert read_table(path) == ROWS, name
        assert _both_splits(path)["answer"] == [r["answer"] for r in ROWS]


@pytest.mark.parametrize(
    "layout",
    ["list", "lines_in_json", "columnar", "keyed_by_id", "wrapped"]
    + ["pandas_columns", "pandas_split", "pandas_table", "pandas_index"],
)
def test_json_layouts_are_read(tmp_path, layout):
    """Columnar and keyed-by-id JSON used to load as zero rows ("the split has no rows")."""
    documents = {
        "list": json.dumps(ROWS, indent=2),
        "lines_in_json": _jsonl(ROWS),
        "columnar": json.dumps({k: [r[k] for r in ROWS] for k in ROWS[0]}),
        "keyed_by_id": json.dumps({str(i): r for i, r in enumerate(ROWS)}, indent=1),
        "wrapped": json.dumps({"data": ROWS}),
        # pandas' own layouts; to_json()'s default ("columns") was read transposed: one row
        # per column, keyed by id
        "pandas_columns": pd.DataFrame(ROWS).to_json(),
        "pandas_split": pd.DataFrame(ROWS).to_json(orient="split"),
        "pandas_table": pd.DataFrame(ROWS).to_json(orient="table"),
        "pandas_index": pd.DataFrame(ROWS).to_json(orient="index"),
    }
    path = tmp_path / f"{layout}.json"
    path.write_text(documents[layout], encoding="utf-8")
    rows = read_table(path)
    assert [{k: r[k] for k in ("question", "answer")} for r in rows] == ROWS
    if layout in ("keyed_by_id", "pandas_index"):
        assert [r["id"] for r in rows] == [str(i) for i in range(len(ROWS))]
    assert len(_both_splits(path)) == len(ROWS)


@pytest.mark.parametrize(
    "document, named",
    [
        ('["1+1", "2+2"]', "item 0 is a string, not an object"),
        ("42", "a single JSON number is not a table"),
        ('"text"', "a single JSON string is not a table"),
        ("{}", "an empty object is not a table"),
        ('{"question": ["a", "b"], "answer": ["1"]}', "columns of different lengths"),
        ('{"name": "x", "rows": 3, "meta": {"a": 1}}', "mixing number, object, string values"),
    ],
)
def test_other_json_layouts_are_refused_naming_the_layout(tmp_path, document, named):
    path = tmp_path / "odd.json"
    path.write_text(document)
    with pytest.raises(DatasetLoadError) as err:
        _both_splits(path)
    message = str(err.value)
    assert named in message and str(path) in message and "\n" not in message
    assert "list of objects" in message or "different lengths" in message


def test_broken_lines_name_the_file_and_line(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text(_jsonl(ROWS[:3]) + '{"question": "x", "answer": \n' + _jsonl(ROWS[3:5]))
    with pytest.raises(DatasetLoadError, match=r"bad\.jsonl:4: not valid JSON"):
        read_table(bad)
    not_object = tmp_path / "list_line.jsonl"
    not_object.write_text(_jsonl(ROWS[:2]) + "[1, 2]\n")
    with pytest.raises(DatasetLoadError, match=r"list_line\.jsonl:3: a JSON list, not an object"):
        read_table(not_object)


def test_a_broken_json_document_never_raises_a_bare_decode_error(tmp_path):
    """A .json file with a syntax error reached the user as a bare JSONDecodeError."""
    bad = tmp_path / "bad.json"
    bad.write_text('[\n {"question": "1", "answer": "1"},\n {"question": "2" "answer": "2"}\n]')
    with pytest.raises(DatasetLoadError, match=r"bad\.json:3: not valid JSON") as err:
        _both_splits(bad)
    assert not isinstance(err.value, json.JSONDecodeError)


def test_not_utf8_names_the_encoding_and_the_line(tmp_path):
    text = _jsonl(ROWS[:2]) + _jsonl([{"question": "café au lait?", "answer": "1"}])
    for name, data in (
        ("latin.jsonl", text.encode("latin-1")),
        ("latin.json", ("[" + text.replace("}\n{", "},\n{") + "]").encode("latin-1")),
        (
            "latin.csv",
            pd.DataFrame(ROWS[:2] + [{"question": "é", "answer": "1"}])
            .to_csv(index=False)
            .encode("cp1252"),
        ),
    ):
        path = tmp_path / name
        path.write_bytes(data)
        with pytest.raises(DatasetLoadError) as err:
            _both_splits(path)
        message = str(err.value)
        assert f"{path}:" in message and "not UTF-8" in message and "latin-1" in message, message
        assert "0xe9" in message
    csv_message = str(pytest.raises(DatasetLoadError, read_table, tmp_path / "latin.csv").value)
    assert "latin.csv:4:" in csv_message


def test_a_folder_is_named_as_a_folder_with_the_file_to_give(tmp_path):
    """A folder (also with a trailing slash or through a symlink) is named as a folder with an
    example of the file inside it to give; an empty file is named as empty, not read as 0 rows."""
    folder = tmp_path / "my_data"
    folder.mkdir()
    (folder / "train.jsonl").write_text(_jsonl(ROWS))
    (tmp_path / "link").symlink_to(folder, target_is_directory=True)
    for task in (str(folder), str(folder) + "/", str(tmp_path / "link")):
        message = str(
            pytest.raises(DatasetLoadError, load_dataset_for, DataConfig(task=task)).value
        )
        shown = Path(task)  # as the reader was given it, less a trailing slash
        assert message == (
            f"{shown} is a folder, not a dataset file; give the file inside it, "
            f"e.g. {shown}/train.jsonl"
        )
    (tmp_path / "empty_folder").mkdir()
    with pytest.raises(DatasetLoadError, match=r"is a folder, .* \(this folder holds none\)"):
        read_table(tmp_path / "empty_folder")
    (tmp_path / "empty.csv").write_bytes(b"")
    with pytest.raises(DatasetLoadError, match=r"empty\.csv is empty \(0 bytes\)"):
        load_dataset_for(DataConfig(task=str(tmp_path / "empty.csv")))
    with pytest.raises(DatasetLoadError, match="not found"):
        read_table(folder / "nope.jsonl")
    (folder / "notes.txt").write_text("x")
    with pytest.raises(DatasetLoadError, match="unsupported file type '.txt'"):
        read_table(folder / "notes.txt")


def test_json_lines_are_streamed_and_a_document_has_a_size_limit(tmp_path, monkeypatch):
    lines = tmp_path / "big.jsonl"
    lines.write_text(_jsonl(ROWS[:3]) + "{broken\n")
    assert read_table(lines, limit=3) == ROWS[:3]  # stops before the broken line
    monkeypatch.setattr(files, "MAX_JSON_DOCUMENT_BYTES", 1024)
    doc = tmp_path / "big.json"
    doc.write_text(json.dumps(ROWS, indent=2))
    with pytest.raises(DatasetLoadError, match=r"over the 0 MiB limit.*\.jsonl"):
        read_table(doc)
    jsonl_named_json = tmp_path / "lines.json"
    jsonl_named_json.write_text(_jsonl(ROWS))
    assert read_table(jsonl_named_json) == ROWS  # JSON lines stream whatever their size


def test_empty_and_broken_csv_are_named(tmp_path):
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(DatasetLoadError, match=r"empty\.csv is empty \(0 bytes\)"):
        read_table(empty)
    ragged = tmp_path / "ragged.csv"
    ragged.write_text('question,answer\n"1+1",2\n"2+2",4,extra,more\n')
    with pytest.raises(DatasetLoadError, match="ragged.csv: not a valid CSV file"):
        read_table(ragged)


def test_the_submit_check_peeks_with_the_same_reader(tmp_path):
    """The submit-time check reads a file's first rows with this reader: a columnar .json has
    rows there too, and a latin-1 file is named as such before the run is queued."""
    from engine.runs.admission import first_rows

    columnar = tmp_path / "columnar.json"
    columnar.write_text(json.dumps({k: [r[k] for r in ROWS] for k in ROWS[0]}))
    assert first_rows(columnar, 2) == ROWS[:2]
    latin = tmp_path / "latin.csv"
    latin.write_bytes("question,answer\ncafé,1\n".encode("latin-1"))
    with pytest.raises(ValueError, match=r"latin\.csv:2: not UTF-8"):
        first_rows(latin, 2)


# ----------------------------------------------------------------------------- not text at all


def _zip(names: dict[str, str]) -> bytes:
    import io
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, text in names.items():
            archive.writestr(name, text)
    return buffer.getvalue()


def _binary_files() -> dict[str, tuple[bytes, str]]:
    """name -> (bytes as people end up uploading them, what the message must say it is)."""
    import gzip
    import random
    import sqlite3
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        db = Path(folder) / "x.db"
        with sqlite3.connect(db) as conn:
            conn.execute("create table t (question text, answer text)")
        conn.close()
        sqlite_bytes = db.read_bytes()
    png = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(64))
    return {
        "gzipped.jsonl": (gzip.compress(_jsonl(ROWS).encode()), ".gz file"),
        "gzipped.json": (gzip.compress(json.dumps(ROWS).encode()), ".gz file"),
        "zipped.csv": (_zip({"train.csv": "question,answer\n1+1,2\n"}), ".zip file"),
        "workbook.csv": (_zip({"[Content_Types].xml": "x", "xl/workbook.xml": "x"}), ".xlsx file"),
        "image.csv": (png, ".png file"),
        "database.json": (sqlite_bytes, ".sqlite file"),
        "random.jsonl": (random.Random(0).randbytes(4096), "binary data"),
        "unicode-text.csv": ("question\tanswer\n1+1\t2\n".encode("utf-16"), "UTF-16 text"),
        "no-bom-utf16.csv": ("question,answer\n1+1,2\n".encode("utf-16-le"), "UTF-16 text"),
    }


@pytest.mark.parametrize("name", list(_binary_files()))
def test_a_file_that_is_not_text_is_named_by_what_it_is(tmp_path, name):
    """A gzip, a zip, a PNG, random bytes... uploaded as .jsonl/.csv was reported as text that is
    'probably latin-1'; it is named as not text, by its signature where it has one."""
    data, what = _binary_files()[name]
    path = tmp_path / name
    path.write_bytes(data)
    message = str(pytest.raises(DatasetLoadError, read_table, path, 3).value)
    assert what in message and "latin-1" not in message and "\n" not in message, message
    assert "save it as UTF-8" in message and name in message
    if what != "UTF-16 text":
        assert "not a text file" in message


def test_binary_data_after_text_is_named_as_binary_on_its_line(tmp_path):
    """The first 8 KiB are text; then a gzip was appended (`cat rows.jsonl more.jsonl.gz`)."""
    import gzip

    path = tmp_path / "mixed.jsonl"
    path.write_bytes(_jsonl(ROWS * 20).encode() + gzip.compress(_jsonl(ROWS).encode()))
    message = str(pytest.raises(DatasetLoadError, read_table, path).value)
    assert f"mixed.jsonl:{len(ROWS) * 20 + 1}: binary data, not text" in message, message


def test_a_parquet_suffix_on_another_format_names_what_the_file_holds(tmp_path):
    import gzip

    text = tmp_path / "renamed.parquet"
    text.write_text("question,answer\n1+1,2\n")
    with pytest.raises(
        DatasetLoadError, match=r"renamed\.parquet: not a Parquet file: it holds text"
    ):
        read_table(text)
    packed = tmp_path / "packed.parquet"
    packed.write_bytes(gzip.compress(b"x" * 100))
    with pytest.raises(DatasetLoadError, match=r"packed\.parquet: not a Parquet file: .*\.gz file"):
        read_table(packed)


@pytest.mark.parametrize("name", ["blank.jsonl", "blank.json", "blank.csv", "bom-blank.csv"])
def test_a_file_of_blank_lines_is_named_as_such(tmp_path, name):
    """Blank lines only: a .json said 'Expecting value', a .csv 'the CSV file is empty' and a
    .jsonl loaded as zero rows."""
    path = tmp_path / name
    path.write_bytes((b"\xef\xbb\xbf" if name.startswith("bom") else b"") + b"\n  \r\n\t\n\n")
    with pytest.raises(DatasetLoadError, match=f"{name} holds only blank lines"):
        read_table(path)


# ----------------------------------------------------------------------------- the file's name


def _bad_files() -> dict[str, bytes]:
    return {
        "broken.jsonl": _jsonl(ROWS[:2]).encode() + b'{"question": \n',
        "not-object.jsonl": b"[1, 2]\n",
        "latin.csv": "question,answer\ncafé,1\n".encode("latin-1"),
        "gzipped.jsonl": _binary_files()["gzipped.jsonl"][0],
        "layout.json": b'{"name": "x", "rows": 3}',
        "several.json": json.dumps({"train": ROWS[:2], "test": ROWS[2:4]}).encode(),
        "ragged.csv": b'question,answer\n"1+1",2\n"2+2",4,extra,more\n',
        "blank.csv": b"\n\n",
        "text.parquet": b"question,answer\n1+1,2\n",
        "cut.parquet": b"PAR1" + bytes(100),
        "empty.jsonl": b"",
    }


def test_every_message_names_the_file_as_shown_never_by_its_path(tmp_path):
    """An uploaded file's errors named the server path it is stored under: `shown` is what the
    reader calls it, in every kind of message."""
    folder = tmp_path / "server" / "uploads"
    folder.mkdir(parents=True)
    for name, data in _bad_files().items():
        (folder / name).write_bytes(data)
        message = str(
            pytest.raises(DatasetLoadError, read_table, folder / name, None, f"my {name}").value
        )
        assert f"my {name}" in message and str(tmp_path) not in message, message
    missing = str(
        pytest.raises(DatasetLoadError, read_table, folder / "gone.csv", 2, "gone.csv").value
    )
    assert missing == "dataset file not found: gone.csv"


# ----------------------------------------------------------------------------- CSV as Excel saves it

CSV_ROWS = [
    {"question": "What is 1,5 + 1?", "answer": "2,5"},
    {"question": 'Say "hi"\nthen 2', "answer": "2"},
]


@pytest.mark.parametrize(
    "name, data",
    [
        ("semicolons.csv", 'question;answer\r\nWhat is 1,5 + 1?;2,5\r\n"Say ""hi""\nthen 2";2\r\n'),
        (
            "bom-semicolons.csv",
            '\ufeffquestion;answer\nWhat is 1,5 + 1?;2,5\n"Say ""hi""\nthen 2";2\n',
        ),
        (
            "sep-line.csv",
            'sep=;\r\nquestion;answer\r\nWhat is 1,5 + 1?;2,5\r\n"Say ""hi""\nthen 2";2\r\n',
        ),
        ("tabs.csv", 'question\tanswer\nWhat is 1,5 + 1?\t2,5\n"Say ""hi""\nthen 2"\t2\n'),
        ("spaced.csv", 'question, answer\n"What is 1,5 + 1?", "2,5"\n"Say ""hi""\nthen 2", 2\n'),
        ("commas.csv", 'question,answer\r\n"What is 1,5 + 1?","2,5"\r\n"Say ""hi""\nthen 2",2\r\n'),
    ],
    ids=lambda v: v if v.endswith(".csv") else "",
)
def test_csv_as_spreadsheets_save_it(tmp_path, name, data):
    """Excel in a comma-decimal locale writes ';' (and sometimes a 'sep=;' line first): such a
    file was read as one column named 'question;answer', its cells cut at the commas."""
    path = tmp_path / name
    path.write_bytes(data.encode())
    assert read_table(path) == CSV_ROWS
    assert files.declared_columns(path) == ["question", "answer"]


def test_semicolons_inside_a_comma_file_do_not_change_its_separator(tmp_path):
    path = tmp_path / "prose.csv"
    path.write_text('question,answer\nWhat is 1; 2; 3 summed?,6\n"a; b; c; d",4\n')
    assert [r["answer"] for r in read_table(path)] == ["6", "4"]


# ----------------------------------------------------------------------------- JSON objects of lists


def test_one_list_of_rows_beside_metadata_is_read_and_several_are_refused(tmp_path):
    """{"train": [...], "test": [...]} of equal lengths was read as columnar: rows of
    {"train": {...}, "test": {...}} with no question field anywhere."""
    with_meta = tmp_path / "meta.json"
    with_meta.write_text(json.dumps({"version": "1.0", "count": 30, "data": ROWS}))
    assert read_table(with_meta) == ROWS
    no_rows = tmp_path / "none.json"
    no_rows.write_text(json.dumps({"version": "1.0", "data": []}))
    assert read_table(no_rows) == []
    splits = tmp_path / "splits.json"
    splits.write_text(json.dumps({"train": ROWS[:3], "test": ROWS[3:6]}))
    with pytest.raises(
        DatasetLoadError, match=r"splits\.json: .*several lists of rows \(train, test\)"
    ):
        read_table(splits)


def test_columns_a_file_declares_without_rows(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    header = tmp_path / "header.csv"
    header.write_text("question;answer\r\n")
    assert read_table(header) == [] and files.declared_columns(header) == ["question", "answer"]
    empty = tmp_path / "empty.parquet"
    pq.write_table(pa.table({"q": pa.array([], pa.string()), "a": pa.array([], pa.int64())}), empty)
    assert read_table(empty) == [] and files.declared_columns(empty) == ["q", "a"]
    nested = tmp_path / "nested.parquet"
    pq.write_table(pa.table({"q": ["1+1"], "meta": [{"level": 1, "tags": ["a"]}]}), nested)
    assert read_table(nested) == [{"q": "1+1", "meta": {"level": 1, "tags": ["a"]}}]
    lines = tmp_path / "rows.jsonl"
    lines.write_text(_jsonl(ROWS[:1]))
    assert files.declared_columns(lines) == []  # JSON fields exist only in rows


@pytest.mark.parametrize("header", ["BMI", "ID3", "MZ", "OggS", "GIF89a", "fLaC"])
def test_a_text_header_that_starts_like_a_signature_is_still_text(tmp_path, header):
    """Some magic numbers are letters: a CSV whose first column is 'BMI' is no bitmap."""
    path = tmp_path / "measures.csv"
    path.write_text(f"{header},question,answer\n25,What is 1+1?,2\n")
    assert read_table(path) == [{header: "25", "question": "What is 1+1?", "answer": "2"}]
    latin = tmp_path / "latin.csv"
    latin.write_bytes(f"{header};question;answer\n25;café?;2\n".encode("latin-1"))
    with pytest.raises(DatasetLoadError, match=r"latin\.csv:2: not UTF-8 .* latin-1"):
        read_table(latin)
