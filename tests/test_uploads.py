"""Uploaded dataset files (issue 15 item 7): stored under a safe name in the uploads folder,
never replacing another upload, size-limited, read by the one dataset reader; the reward's
verdict on the preview rows' golds."""

from __future__ import annotations

import pytest

from engine.config import DataConfig
from engine.data.uploads import UploadError, gold_checks, preview, store_upload

CSV = "problem,solution\nWhat is 2+3?,#### 5\nWhat is 10-4?,\\boxed{6}\nWhat is 7*2?,\n"


def _file(tmp_path, name: str, text: str):
    path = tmp_path / "incoming" / name
    path.parent.mkdir(exist_ok=True)
    path.write_text(text)
    return path


def test_an_untrusted_name_stays_inside_the_uploads_folder(tmp_path):
    uploads = tmp_path / "uploads"
    src = _file(tmp_path, "a.csv", CSV)
    stored = store_upload(src, "../../../etc/evil name.csv", uploads, max_mb=1)
    assert stored == uploads / "evil_name.csv" and stored.read_text() == CSV
    assert sorted(p.name for p in tmp_path.iterdir()) == ["incoming", "uploads"]


def test_another_file_of_the_same_name_never_replaces_the_first(tmp_path):
    uploads = tmp_path / "uploads"
    first = store_upload(_file(tmp_path, "a.csv", CSV), "data.csv", uploads, max_mb=1)
    other = CSV.replace("5", "50")
    second = store_upload(_file(tmp_path, "b.csv", other), "data.csv", uploads, max_mb=1)
    again = store_upload(_file(tmp_path, "c.csv", CSV), "data.csv", uploads, max_mb=1)
    assert (first.name, second.name, again) == ("data.csv", "data-2.csv", first)
    assert first.read_text() == CSV and second.read_text() == other


@pytest.mark.parametrize(
    ("name", "text", "max_mb", "message"),
    [
        ("notes.txt", CSV, 1, "not a dataset file"),
        ("big.csv", CSV * 2000, 0.01, "0.01 MiB upload limit (serve --max-upload-mb)"),
        ("bad.jsonl", '{"question": "x"\n', 1, "bad.jsonl"),
    ],
)
def test_a_refused_upload_is_one_line_and_leaves_nothing(tmp_path, name, text, max_mb, message):
    uploads = tmp_path / "uploads"
    with pytest.raises(UploadError, match=message.replace("(", r"\(").replace(")", r"\)")) as e:
        store_upload(_file(tmp_path, name, text), name, uploads, max_mb=max_mb)
    assert "\n" not in str(e.value)
    assert not uploads.exists() or not any(uploads.iterdir())


def test_preview_and_the_verdict_on_each_gold(tmp_path):
    columns, rows = preview(_file(tmp_path, "a.csv", CSV))
    assert columns == ["problem", "solution"] and len(rows) == 3
    data = DataConfig(question_field="problem", answer_field="solution")
    checks = gold_checks(rows, data)
    assert [(c.read, c.ok) for c in checks] == [("5", True), ("6", True), ("", False)]
    assert "no gold answer in field 'solution'" in checks[2].note
    # a wrong answer field: named for every row; a reward that reads letters: numbers refused
    wrong = gold_checks(rows, DataConfig(question_field="problem", answer_field="answer"))
    assert not any(c.ok for c in wrong) and "no field 'answer'" in wrong[0].note
    letters = [{**r, "choice_answer": r["solution"]} for r in rows]
    choice = gold_checks(letters, DataConfig(question_field="problem", answer_field="solution", reward="choice"))  # fmt: skip
    assert not any(c.ok for c in choice)
