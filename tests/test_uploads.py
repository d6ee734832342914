"""Uploaded dataset files (issue 15 item 7): stored under a safe name in the uploads folder,
never replacing another upload, size-limited, read by the one dataset reader; the reward's
verdict on the preview rows' golds."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from engine.config import DataConfig
from engine.data.files import DatasetLoadError
from engine.data.uploads import UploadError, gold_checks, preview, store_upload
from engine.paths import DataRoot
from engine.runs.admission import AccessPolicy, reward_problem

CLI = AccessPolicy.command_line()
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
    checks = gold_checks(rows, data, CLI)
    assert [(c.read, c.ok) for c in checks] == [("5", True), ("6", True), ("", False)]
    assert "no gold answer in field 'solution'" in checks[2].note
    # a wrong answer field: named for every row; a reward that reads letters: numbers refused
    wrong = gold_checks(rows, DataConfig(question_field="problem", answer_field="answer"), CLI)
    assert not any(c.ok for c in wrong) and "no field 'answer'" in wrong[0].note
    letters = [{**r, "choice_answer": r["solution"]} for r in rows]
    choice = gold_checks(letters, DataConfig(question_field="problem", answer_field="solution", reward="choice"), CLI)  # fmt: skip
    assert not any(c.ok for c in choice)


# ----------------------------------------------------------------------------- the verdict's reward
ROWS = [{"q": "What is 2+3?", "a": "#### 5"}]


def _network(tmp_path, allow: tuple[str, ...] = ()) -> AccessPolicy:
    return AccessPolicy.network(DataRoot(tmp_path / "root", ""), allow_reward_modules=allow)


@pytest.fixture
def sneaky(tmp_path, monkeypatch):
    """(name, marker) of an importable module that leaves `marker` behind when imported."""
    name, marker = "upload_sneaky_rewards", tmp_path / "imported"
    (tmp_path / f"{name}.py").write_text(
        f"open({str(marker)!r}, 'w').close()\n\ndef x(completions, **kw):\n    return [1.0]\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    yield name, marker
    sys.modules.pop(name, None)


@pytest.mark.parametrize("reward", ["json:dumps", "{sneaky}:x", "{sneaky}.sub:f", "os:system"])
def test_a_reward_the_policy_refuses_is_never_imported_for_the_verdict(tmp_path, sneaky, reward):
    module, marker = sneaky
    reward = reward.format(sneaky=module)
    policy = _network(tmp_path)
    data = DataConfig(question_field="q", answer_field="a", reward=reward)
    with pytest.raises(UploadError) as e:
        gold_checks(ROWS, data, policy)
    line = str(e.value)
    assert "\n" not in line and line.startswith("data.reward:")
    assert "--allow-reward-module" in line  # the fix, in the submit-time check's own words
    assert line == f"data.reward: {reward_problem(reward, policy)}"
    assert module not in sys.modules and not marker.exists()
    # the CLI user's own module is still imported and judged: the marker shows a real import
    if reward.startswith(f"{module}:"):
        assert [c.ok for c in gold_checks(ROWS, data, CLI)] == [True] and marker.exists()


def test_an_allowed_reward_module_still_gets_its_verdict(tmp_path):
    rewards = tmp_path / "myrewards_upl"
    rewards.mkdir()
    (rewards / "__init__.py").write_text(
        "def exact(completions, **kw):\n    return [1.0 for _ in completions]\n"
    )
    sys.path.insert(0, str(tmp_path))
    try:
        data = DataConfig(question_field="q", answer_field="a", reward="myrewards_upl:exact")
        checks = gold_checks(ROWS, data, _network(tmp_path, allow=("myrewards_upl",)))
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("myrewards_upl", None)
    assert [c.ok for c in checks] == [True]


# ----------------------------------------------------------------------------- empty files


def _parquet(table_columns: dict) -> bytes:
    import io

    import pyarrow as pa
    import pyarrow.parquet as pq

    buffer = io.BytesIO()
    pq.write_table(pa.table(table_columns), buffer)
    return buffer.getvalue()


def _empty_files() -> list[tuple[str, bytes, str]]:
    """(name, bytes, what the one line must say): every degenerate shape of a dataset file."""
    import pyarrow as pa

    no_rows = "has no rows: upload a file with at least one row of data"
    only = "has no rows (only the columns question, answer): add at least one row of data"
    blank = "holds only blank lines (no header, no rows)"
    no_columns = "has no columns: upload a file whose rows have named fields"
    return [
        ("head.csv", b"question,answer\n", only),
        ("head-excel.csv", b"\xef\xbb\xbfquestion;answer\r\n\r\n", only),
        ("empty.json", b"[]", no_rows),
        ("wrapped.json", b'{"data": []}', no_rows),
        ("wrapped-meta.json", b'{"version": "1", "data": []}', no_rows),
        ("columnar.json", b'{"question": [], "answer": []}', no_rows),
        (
            "zero.parquet",
            _parquet({"question": pa.array([], pa.string()), "answer": pa.array([], pa.string())}),
            only,
        ),  # fmt: skip
        ("nothing.parquet", _parquet({}), no_rows),
        ("blank.jsonl", b"\n \n\t\n", blank),
        ("blank.csv", b"\r\n\r\n", blank),
        ("blank.json", b"  \n", blank),
        ("objects.jsonl", b"{}\n", no_columns),
        ("objects.json", b"[{}, {}]", no_columns),
        (
            "one-column.csv",
            b"question\n1+1\n",
            "has only one column (question): add the gold answers",
        ),  # fmt: skip
        ("one-key.jsonl", b'{"q": "1+1"}\n{"q": "2+2"}\n', "has only one column (q)"),
    ]


@pytest.mark.parametrize(("name", "data", "message"), _empty_files(), ids=lambda v: v if isinstance(v, str) and "." in v[-8:] else "")  # fmt: skip
def test_a_file_without_rows_or_columns_is_refused_and_not_kept(tmp_path, name, data, message):
    """Headers only, an empty list, a zero-row Parquet, blank lines: one line naming the problem
    and the fix (the columns when the file declares them), and nothing kept."""
    uploads = tmp_path / "uploads"
    src = tmp_path / "incoming" / name
    src.parent.mkdir()
    src.write_bytes(data)
    with pytest.raises(UploadError) as e:
        store_upload(src, name, uploads, max_mb=1)
    line = str(e.value)
    assert line.startswith(name) and message in line and "\n" not in line, line
    assert not any(uploads.iterdir())


# ----------------------------------------------------------------------------- the name shown

SHOWN = "My Data (final).csv"


def _refusals(tmp_path: Path) -> dict[str, tuple[Path, str, Path, float]]:
    """kind -> (the uploaded temp file, its original name, the uploads folder, the MiB limit)."""
    uploads = tmp_path / "home" / "uploads"
    made_so_far = []

    def made(name: str, data: bytes, folder: Path = uploads, max_mb: float = 1) -> tuple:
        """Gradio's way: <temp dir>/<a hash>/<the name uploaded>."""
        made_so_far.append(name)
        path = tmp_path / "gradio" / f"{len(made_so_far):08x}" / name
        path.parent.mkdir(parents=True)
        path.write_bytes(data)
        return path, name, folder, max_mb

    in_a_file = tmp_path / "home" / "not-a-folder"
    in_a_file.parent.mkdir(parents=True, exist_ok=True)
    in_a_file.write_text("x")
    deep = "".join(f'{{"question": "{i}", "answer": "{i}"}}\n' for i in range(39)) + "{broken\n"
    import gzip

    return {
        "refused extension": made("My Data (final).txt", CSV.encode()),
        "too large": made(SHOWN, CSV.encode() * 2000, max_mb=0.01),
        "not text": made(SHOWN, gzip.compress(CSV.encode())),
        "wrong encoding": made(SHOWN, "question,answer\ncafé,1\n".encode("cp1252")),
        "broken line": made("My Data (final).jsonl", deep.encode()),
        "bad JSON layout": made("My Data (final).json", b'{"name": "x", "rows": 3}'),
        "not parquet": made("My Data (final).parquet", CSV.encode()),
        "no rows": made(SHOWN, b"question,answer\n"),
        "gone": (tmp_path / "gradio" / "gone" / SHOWN, SHOWN, uploads, 1),
        "folder unwritable": made(SHOWN, CSV.encode(), folder=in_a_file / "uploads"),
        "folder is a file": made(SHOWN, CSV.encode(), folder=in_a_file),
    }


KINDS = [
    "refused extension", "too large", "not text", "wrong encoding", "broken line",
    "bad JSON layout", "not parquet", "no rows", "gone", "folder unwritable", "folder is a file",
]  # fmt: skip


@pytest.mark.parametrize("kind", KINDS)
def test_a_refusal_names_the_file_as_uploaded_never_a_server_path(tmp_path, kind):
    """Upload errors showed the server path of the temp or stored file (/tmp/gradio/.../x.csv,
    <data root>/uploads/x.csv); the visitor sees the name they uploaded, the log the path."""
    src, name, uploads, max_mb = _refusals(tmp_path)[kind]
    with pytest.raises(UploadError) as e:
        store_upload(src, name, uploads, max_mb=max_mb)
    line = str(e.value)
    assert line.startswith(Path(name).stem) and "\n" not in line, line
    assert str(tmp_path) not in line and "/tmp" not in line and "uploads/" not in line, line
    assert not uploads.is_dir() or not any(uploads.iterdir())
    if kind == "broken line":
        assert "My Data (final).jsonl:40: not valid JSON" in line  # past the previewed rows


def test_a_copy_failure_and_an_unreadable_file_log_the_path(tmp_path, caplog):
    refusals = _refusals(tmp_path)
    for kind in ("gone", "folder unwritable", "not text"):
        src, name, uploads, _ = refusals[kind]
        with caplog.at_level("INFO", logger="engine.data.uploads"):
            pytest.raises(UploadError, store_upload, src, name, uploads, 1)
    logged = caplog.text
    assert str(refusals["gone"][0]) in logged and str(refusals["folder unwritable"][2]) in logged
    assert str(refusals["not text"][2]) in logged  # where the refused copy lay


def test_a_missing_field_in_the_verdict_names_no_path(tmp_path):
    stored = store_upload(_file(tmp_path, "a.csv", CSV), "My Data.csv", tmp_path / "up", 1)
    _, rows = preview(stored)
    (check, *_) = gold_checks(rows, DataConfig(question_field="problem", answer_field="gold"), CLI)
    assert "no field 'gold'" in check.note and str(tmp_path) not in check.note
    stored.unlink()  # removed after the upload: the preview names the stored name only
    with pytest.raises(DatasetLoadError) as e:
        preview(stored)
    assert str(e.value) == "dataset file not found: My_Data.csv"


# ----------------------------------------------------------------------------- a failed copy


def test_a_copy_that_fails_leaves_no_partial_file_and_names_the_reason(tmp_path):
    """/proc/self/mem opens, but reading it at offset 0 fails with a real EIO mid-copy."""
    src = Path("/proc/self/mem")
    if not src.exists():
        pytest.skip("needs Linux /proc")
    uploads = tmp_path / "uploads"
    with pytest.raises(UploadError) as e:
        store_upload(src, "data.csv", uploads, max_mb=1)
    line = str(e.value)
    assert line.startswith("data.csv: could not be stored (") and "\n" not in line
    assert "Input/output error" in line
    assert not any(uploads.iterdir())


# ----------------------------------------------------------------------------- odd scores


def _reward_returning(tmp_path, name: str, value: str) -> str:
    (tmp_path / f"{name}.py").write_text(f"def score(completions, **kw):\n    return [{value}]\n")
    return f"{name}:score"


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("float('nan')", "nan"),
        ("float('inf')", "inf"),
        ("'1.0'", "'1.0'"),
        ("'yes'", "'yes'"),
        ("None", "None"),
        ("[1.0]", "[1.0]"),
    ],
)
def test_a_score_that_is_not_a_finite_number_is_not_ok_and_named(tmp_path, value, shown):
    name = f"odd_reward_{abs(hash(value))}"
    reward = _reward_returning(tmp_path, name, value)
    sys.path.insert(0, str(tmp_path))
    try:
        data = DataConfig(question_field="q", answer_field="a", reward=reward)
        (check,) = gold_checks(ROWS, data, CLI)
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop(name, None)
    assert not check.ok
    assert f"returned {shown}, not a finite number" in check.note


# ----------------------------------------------------------------------------- the Launch form


def test_the_reward_field_updates_only_the_verdict(tmp_path, sneaky):
    """The form's reward field re-judges the upload's golds without touching the question /
    answer fields (a hand edit stays); the upload's column pickers still fill them; a reward
    the server does not allow is one line in the verdict and never imported."""
    from app.main import build_app
    from engine.paths import resolve
    from engine.storage import Store

    root = resolve(tmp_path / "home")
    (root.uploads / "set.csv").write_text(CSV)
    with Store(root.db_url) as store:
        blocks = build_app(store, root, policy=AccessPolicy.network(root))
    ids = {b.elem_id: i for i, b in blocks.blocks.items() if getattr(b, "elem_id", None)}

    def handlers(elem_id: str) -> list:  # the upload's (each field's input also re-checks it)
        return [
            f for f in blocks.fns.values()
            if (ids[elem_id], "input") in f.targets and f.name != "recheck"
        ]  # fmt: skip

    (on_reward,) = handlers("cfg-data-reward")
    assert [b._id for b in on_reward.outputs] == [ids["upload-verdict"]]
    assert "by the `choice` reward" in on_reward.fn("set.csv", "problem", "solution", "choice")
    module, marker = sneaky
    refused = on_reward.fn("set.csv", "problem", "solution", f"{module}:x").replace("\\", "")
    assert refused.startswith("data.reward: reward ") and "--allow-reward-module" in refused
    assert "\n" not in refused and module not in sys.modules and not marker.exists()
    (on_pick,) = handlers("upload-question")
    filled = {b.elem_id for b in on_pick.outputs}
    assert {"cfg-data-question-field", "cfg-data-answer-field"} <= filled


def test_a_refused_upload_clears_the_earlier_preview_and_says_why(tmp_path):
    """A refused file showed bare 'Error' pills over the previous file's preview and verdict
    (which then seemed to vouch for it); the reason is now the verdict and the rest is cleared."""
    from app.main import build_app
    from engine.paths import resolve
    from engine.storage import Store

    root = resolve(tmp_path / "home")
    good, header_only = tmp_path / "good.csv", tmp_path / "header.csv"
    good.write_text(CSV)
    header_only.write_text("question,answer\n")
    with Store(root.db_url) as store:
        blocks = build_app(store, root, policy=AccessPolicy.network(root))
    (on_upload,) = [f for f in blocks.fns.values() if f.name == "on_upload"]
    first = on_upload.fn(
        str(good), "accuracy", "question", "answer", "embedded", "{question}", None
    )
    assert first[0] == "good.csv" and "verify" in first[4]
    out = on_upload.fn(
        str(header_only), "accuracy", "question", "answer", "embedded", "{question}", None
    )
    stored, question, answer, rows, verdict = out[:5]
    assert stored is None and "has no rows" in verdict and verdict.startswith("**Not stored:**")
    assert question.choices == [] and answer.choices == [] and rows.value["data"] in ([], [[]])
    assert rows.visible is False  # an empty frame showed Gradio's placeholder headers "1 2 3"
    assert not (root.uploads / "header.csv").exists()


# ----------------------------------------------------------------------------- named at Launch


@pytest.mark.parametrize("name", ["packed.jsonl", "deep.jsonl", "no-answers-then-broken.jsonl"])
def test_the_submit_check_names_an_uploaded_file_as_the_visitor_does(tmp_path, name):
    """A file in the uploads folder named in the form (or the API) and refused at submit named
    the server's uploads path; one whose first rows had no answer and a broken line further
    down raised a bare DatasetLoadError from the all-answers-empty scan (a trace)."""
    import gzip
    from dataclasses import replace

    from engine.config import ConfigError, StudioConfig
    from engine.paths import resolve
    from engine.runs.admission import check_submission

    root = resolve(tmp_path / "home")
    row = '{{"question": "{i}", "answer": "{a}"}}\n'
    files = {
        "packed.jsonl": gzip.compress(row.format(i=1, a=1).encode()),
        "deep.jsonl": ("".join(row.format(i=i, a=i) for i in range(3)) + "{broken\n").encode(),
        "no-answers-then-broken.jsonl": (
            "".join(row.format(i=i, a="") for i in range(40)) + "{broken\n"
        ).encode(),
    }
    (root.uploads / name).write_bytes(files[name])
    cfg = StudioConfig()
    with pytest.raises(ConfigError) as e:
        check_submission(
            replace(cfg, data=replace(cfg.data, task=name)), AccessPolicy.network(root)
        )
    (message,) = [m for path, m in e.value.errors if path == "data.task"]
    assert f"({name}" in message and str(tmp_path) not in message and "uploads/" not in message


def test_the_column_pickers_skip_a_written_row_index(tmp_path):
    """pandas' `to_csv()` writes its index as a first column 'Unnamed: 0': the upload offered it
    as the question field (and the next column as the answer)."""
    import pandas as pd

    from app.main import build_app
    from engine.paths import resolve
    from engine.storage import Store

    root = resolve(tmp_path / "home")
    src = tmp_path / "saved by pandas.csv"
    pd.DataFrame([{"Problem": "What is 2+3?", "Solution": "#### 5"}]).to_csv(src)
    with Store(root.db_url) as store:
        blocks = build_app(store, root, policy=AccessPolicy.network(root))
    (on_upload,) = [f for f in blocks.fns.values() if f.name == "on_upload"]
    out = on_upload.fn(str(src), "accuracy", "question", "answer", "embedded", "{question}", None)
    assert (out[1].value, out[2].value) == ("Problem", "Solution")
    assert out[1].choices == [("Unnamed: 0",) * 2, ("Problem",) * 2, ("Solution",) * 2]
    assert "1 of 1 verify" in out[4]


def test_a_nested_question_or_gold_is_flagged_not_vouched_for(tmp_path):
    """Parquet struct / list columns: a gold {'value': '5'} was 'verified' (a response would
    have to state the Python dict), a question of chat messages became its Python repr; the
    preview showed Python's repr of them."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from app.main import build_app
    from engine.paths import resolve
    from engine.storage import Store

    src = tmp_path / "nested.parquet"
    table = {
        "question": ["What is 2+3?", "What is 1+1?"],
        "messages": [[{"role": "user", "content": "What is 2+3?"}]] * 2,
        "answer": ["5", "2"],
        "meta": [{"value": "5", "tags": ["sum"]}, {"value": "2", "tags": []}],
        "answers": [["5"], ["2"]],
    }
    pq.write_table(pa.table(table), src)
    root = resolve(tmp_path / "home")
    stored = store_upload(src, src.name, root.uploads, max_mb=1)
    _, rows = preview(stored)

    def verdicts(question: str, answer: str) -> list:
        return gold_checks(rows, DataConfig(question_field=question, answer_field=answer), CLI)

    assert [c.ok for c in verdicts("question", "answer")] == [True, True]
    assert [c.ok for c in verdicts("question", "answers")] == [True, True]  # a flat list gold
    meta = verdicts("question", "meta")
    assert not any(c.ok for c in meta) and "field 'meta' holds an object" in meta[0].note
    chat = verdicts("messages", "answer")
    assert not any(c.ok for c in chat) and "field 'messages' holds a list" in chat[0].note
    with Store(root.db_url) as store:
        blocks = build_app(store, root, policy=AccessPolicy.network(root))
    (on_upload,) = [f for f in blocks.fns.values() if f.name == "on_upload"]
    cells = on_upload.fn(
        str(src), "accuracy", "question", "answer", "embedded", "{question}", None
    )[3].value["data"][0]
    assert '{"value": "5", "tags": ["sum"]}' in cells and '["5"]' in cells


def test_the_form_shows_each_refusal_without_a_server_path(tmp_path):
    """The same kinds through the Launch form's upload handler: the verdict names the file as
    uploaded (Gradio keeps it as <temp>/<hash>/<name>) and never a path; the table is hidden."""
    from app.main import build_app
    from engine.paths import resolve
    from engine.storage import Store

    root = resolve(tmp_path / "home")
    refusals = _refusals(tmp_path / "files")
    with Store(root.db_url) as store:
        blocks = build_app(store, root, policy=AccessPolicy.network(root))
    (on_upload,) = [f for f in blocks.fns.values() if f.name == "on_upload"]
    for kind in ("refused extension", "not text", "wrong encoding", "broken line", "bad JSON layout", "not parquet", "no rows", "gone"):  # fmt: skip
        src, name, _, _ = refusals[kind]
        stored, *_, rows, verdict = on_upload.fn(str(src), "accuracy", "question", "answer", "embedded", "{question}", None)[:5]  # fmt: skip
        plain = verdict.replace("\\", "")
        assert stored is None and plain.startswith(f"**Not stored:** {Path(name).stem}"), plain
        assert str(tmp_path) not in plain and "uploads/" not in plain, (kind, plain)
        assert rows.visible is False


def test_an_upload_for_the_embedded_model_sets_its_prompt_format(tmp_path):
    """An uploaded CSV of plain questions verified (its golds parse) but the run learned
    nothing: the embedded model answers only prompts written 'Q: ...' / 'A:'; the upload now
    sets data.prompt_template to that (and says so), unless the user wrote a template or
    picked another model."""
    from app.main import build_app
    from app.pages.launch import PROMPT_NOTE
    from engine.data.tasks import PROMPT_FORMAT
    from engine.paths import resolve
    from engine.storage import Store

    root = resolve(tmp_path / "home")
    src = tmp_path / "plain.csv"
    src.write_text(CSV)
    with Store(root.db_url) as store:
        blocks = build_app(store, root, policy=AccessPolicy.network(root))
    (on_upload,) = [f for f in blocks.fns.values() if f.name == "on_upload"]
    out = on_upload.fn(str(src), "accuracy", "question", "answer", "embedded", "{question}", None)
    assert out[9] == PROMPT_FORMAT and PROMPT_NOTE in out[4]
    for model, template in (("embedded", "Problem: {question}"), ("org/model", "{question}")):
        out = on_upload.fn(str(src), "accuracy", "question", "answer", model, template, None)
        assert out[9] == gr_skip() and PROMPT_NOTE not in out[4]


def gr_skip():
    import gradio as gr

    return gr.skip()
