"""The table of bad inputs a careless or unlucky user gives the CLI and the API, and the verdict
on each: what tests/test_bad_inputs.py asserts and bench/bench_bad_inputs.py counts.

A row is (id, kind, call, named): `call` is CLI argv (in-process `engine.cli.main`, with
`{root}`, `{ro}`, `{files}` and run-id placeholders filled from the World) or ("api", endpoint,
argument) for the app's public API functions; `named` is the field, file or value the one line
must name. Verdicts:

    clear     refused: non-zero exit (or the API raised), ONE line, `named` in it, no
              "Traceback", nothing queued or changed in the store, no file changed
    trace     a stack trace reached the user (an exception escaped, or "Traceback" printed)
    accepted  it went through (exit 0 / an API answer): a run queued or the command ran
    lost      something changed that should not have: a run deleted or altered, a file written
    unclear   refused, but not in one line naming `named`

A new bad input found later is one more row.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import logging
import os
import sqlite3
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SET = "--set"
DEMO = ["--config", "demo-cpu"]


def S(*overrides: str) -> list[str]:
    """`submit --config demo-cpu --set ...` into the world's data root."""
    argv = ["submit", *DEMO]
    for item in overrides:
        argv += [SET, item]
    return [*argv, "--data-dir", "{root}"]


def F(name: str, command: str = "submit") -> list[str]:
    """`<command> --config <a prepared file>`."""
    return [command, "--config", "{files}/" + name, "--data-dir", "{root}"]


def DB(db: str, command: str = "runs") -> list[str]:
    return [command, "--data-dir", "{root}", "--db", db]


# (id, kind, call, named)
ROWS: list[tuple[str, str, Any, str]] = [
    # ---- config values: non-finite, out of range, wrong type -----------------------------------
    ("lr-nan", "config", S("grpo.learning_rate=.nan"), "grpo.learning_rate"),
    ("lr-inf", "config", S("grpo.learning_rate=.inf"), "grpo.learning_rate"),
    ("lr-1e308", "config", S("grpo.learning_rate=1e308"), "grpo.learning_rate"),
    ("lr-negative", "config", S("grpo.learning_rate=-1e-5"), "grpo.learning_rate"),
    ("lr-zero", "config", S("grpo.learning_rate=0"), "grpo.learning_rate"),
    ("lr-text", "config", S("grpo.learning_rate=fast"), "grpo.learning_rate"),
    ("beta-nan", "config", S("grpo.beta=.nan"), "grpo.beta"),
    ("beta-negative", "config", S("grpo.beta=-0.1"), "grpo.beta"),
    ("temperature-inf", "config", S("grpo.temperature=.inf"), "grpo.temperature"),
    ("temperature-zero", "config", S("grpo.temperature=0"), "grpo.temperature"),
    ("temperature-minus-inf", "config", S("grpo.temperature=-.inf"), "grpo.temperature"),
    ("temperature-1e6", "config", S("grpo.temperature=1e6"), "grpo.temperature"),
    ("epsilon-negative", "config", S("grpo.epsilon=-0.2"), "grpo.epsilon"),
    ("epsilon-nan", "config", S("grpo.epsilon=.nan"), "grpo.epsilon"),
    ("grad-norm-nan", "config", S("grpo.max_grad_norm=.nan"), "grpo.max_grad_norm"),
    ("grad-norm-negative", "config", S("grpo.max_grad_norm=-1"), "grpo.max_grad_norm"),
    ("weight-decay-inf", "config", S("grpo.weight_decay=.inf"), "grpo.weight_decay"),
    ("top-p-nan", "config", S("grpo.top_p=.nan"), "grpo.top_p"),
    ("top-p-above-1", "config", S("grpo.top_p=1.5"), "grpo.top_p"),
    ("aux-weight-nan", "config", S("shaping.aux_weight=.nan"), "shaping.aux_weight"),
    ("aux-weight-inf", "config", S("shaping.aux_weight=.inf"), "shaping.aux_weight"),
    ("aux-weight-negative", "config", S("shaping.aux_weight=-1"), "shaping.aux_weight"),
    ("kappa-inf", "config", S("shaping.kappa=.inf"), "shaping.kappa"),
    ("alpha-nan", "config", S("shaping.alpha=.nan"), "shaping.alpha"),
    ("gain-inf", "config", S("shaping.gain=.inf"), "shaping.gain"),
    ("weights-nan", "config", S("shaping.w_explore=[.nan, 0, 1]"), "shaping.w_explore"),
    ("weights-two", "config", S("shaping.w_exploit=[0, 1]"), "shaping.w_exploit"),
    ("lora-dropout-nan", "config", S("model.lora_dropout=.nan"), "model.lora_dropout"),
    ("lora-r-zero", "config", S("model.lora_r=0"), "model.lora_r"),
    ("max-steps-10e30", "config", S("run.max_steps=" + "1" + "0" * 30), "run.max_steps"),
    ("max-steps-1e30", "config", S("run.max_steps=1e30"), "run.max_steps"),
    ("max-steps-2e9", "config", S("run.max_steps=2200000000"), "run.max_steps"),
    ("max-steps-zero", "config", S("run.max_steps=0"), "run.max_steps"),
    ("max-steps-negative", "config", S("run.max_steps=-5"), "run.max_steps"),
    ("max-steps-fraction", "config", S("run.max_steps=2.5"), "run.max_steps"),
    ("max-steps-minus-1e12", "config", S("run.max_steps=-1000000000000"), "must be >= 1"),
    ("seed-minus-1e11", "config", S("run.seed=-99999999999"), "run.seed: must be >= 0"),
    ("n-ops-fraction", "config", S("data.n_ops=2.5"), "whole number"),
    ("lr-minus-inf", "config", S("grpo.learning_rate=-.inf"), "must be in (0, 1]"),
    ("top-p-inf", "config", S("grpo.top_p=.inf"), "must be in (0, 1]"),
    ("lr-past-any-float", "config", S("grpo.learning_rate=1" + "0" * 400), "must be in (0, 1]"),
    ("max-truncated-inf", "config", S("health.max_truncated=.inf"), "share in [0, 1]"),
    ("max-steps-text", "config", S("run.max_steps=abc"), "run.max_steps"),
    ("max-steps-list", "config", S("run.max_steps=[3]"), "run.max_steps"),
    ("seed-negative", "config", S("run.seed=-1"), "run.seed"),
    ("seed-huge", "config", S("run.seed=99999999999"), "run.seed"),
    ("data-seed-negative", "config", S("data.seed=-3"), "data.seed"),
    ("train-size-zero", "config", S("data.train_size=0"), "data.train_size"),
    ("name-list", "config", S("run.name=[1, 2]"), "run.name"),
    ("name-mapping", "config", S("run.name={a: 1}"), "run.name"),
    ("name-bool", "config", S("run.name=true"), "run.name"),
    ("task-list", "config", S("data.task=[a, b]"), "data.task"),
    ("model-mapping", "config", S("model.name_or_path={a: 1}"), "model.name_or_path"),
    ("reward-list", "config", S("data.reward=[accuracy]"), "data.reward"),
    ("template-list", "config", S("data.prompt_template=[x]"), "data.prompt_template"),
    ("template-no-question", "config", S("data.prompt_template=Q:"), "data.prompt_template"),
    ("question-field-empty", "config", S("data.question_field="), "data.question_field"),
    ("lora-bool-text", "config", S("model.lora=maybe"), "model.lora"),
    ("stride-over-completion", "config", S("shaping.stride=100"), "shaping.stride"),
    ("stride-equals-completion", "config", S("shaping.stride=48"), "shaping.stride"),
    ("stride-over-max-len", "config", S("shaping.max_len=8"), "shaping.stride"),
    ("stride-zero", "config", S("shaping.stride=0"), "shaping.stride"),
    (
        "completion-over-model",
        "config",
        S("grpo.max_completion_length=4096"),
        "grpo.max_completion_length",
    ),  # fmt: skip
    (
        "completion-equals-model",
        "config",
        S("grpo.max_completion_length=256", "shaping.stride=4"),
        "grpo.max_completion_length",
    ),  # fmt: skip
    (
        "completion-zero",
        "config",
        S("grpo.max_completion_length=0"),
        "grpo.max_completion_length",
    ),  # fmt: skip
    ("generations-one", "config", S("grpo.num_generations=1"), "grpo.num_generations"),
    (
        "batch-zero",
        "config",
        S("grpo.per_device_train_batch_size=0"),
        "grpo.per_device_train_batch_size",
    ),  # fmt: skip
    ("algorithm-unknown", "config", S("run.algorithm=ppo"), "run.algorithm"),
    ("dtype-unknown", "config", S("model.dtype=float8"), "model.dtype"),
    ("device-unknown", "config", S("run.device=tpu"), "run.device"),
    ("loss-type-unknown", "config", S("grpo.loss_type=ppo"), "grpo.loss_type"),
    ("bonus-on-unknown", "config", S("shaping.bonus_on=middle"), "shaping.bonus_on"),
    ("eval-every-negative", "config", S("run.eval_every=-1"), "run.eval_every"),
    ("threads-zero", "config", S("run.torch_threads=0"), "run.torch_threads"),
    ("n-ops-99", "config", S("data.n_ops=99"), "data.n_ops"),
    ("field-typo", "config", S("run.max_stepz=3"), "max_stepz"),
    ("section-typo", "config", S("trainer.lr=1"), "trainer"),
    ("override-no-section", "config", S("kappa=3"), "kappa=3"),
    ("override-no-equals", "config", S("shaping.kappa"), "shaping.kappa"),
    # ---- config files: empty, wrong shape, not YAML, not a file ---------------------------------
    ("file-empty", "file", F("empty.yaml"), "empty.yaml"),
    ("file-comments-only", "file", F("comments.yaml"), "comments.yaml"),
    ("file-empty-mapping", "file", F("braces.yaml"), "braces.yaml"),
    ("file-list", "file", F("list.yaml"), "list.yaml"),
    ("file-scalar-number", "file", F("number.yaml"), "number.yaml"),
    ("file-scalar-text", "file", F("text.yaml"), "text.yaml"),
    ("file-tabs", "file", F("tabs.yaml"), "tabs.yaml"),
    ("file-unclosed", "file", F("unclosed.yaml"), "unclosed.yaml"),
    ("file-bad-indent", "file", F("indent.yaml"), "indent.yaml"),
    ("file-section-list", "file", F("section-list.yaml"), "run"),
    ("file-section-scalar", "file", F("section-scalar.yaml"), "grpo"),
    ("file-binary", "file", F("binary.yaml"), "binary.yaml"),
    ("file-nan-inside", "file", F("nan.yaml"), "grpo.learning_rate"),
    ("file-section-typo", "file", F("typo.yaml"), "grpo2"),
    ("file-folder", "file", ["submit", "--config", "{files}", "--data-dir", "{root}"], "{files}"),
    ("file-missing", "file", F("missing.yaml"), "missing.yaml"),
    ("submit-no-config", "file", ["submit", "--data-dir", "{root}"], "--config"),
    ("train-empty", "file", F("empty.yaml", "train"), "empty.yaml"),
    ("train-list", "file", F("list.yaml", "train"), "list.yaml"),
    ("train-tabs", "file", F("tabs.yaml", "train"), "tabs.yaml"),
    (
        "train-nan",
        "config",
        ["train", *DEMO, SET, "grpo.learning_rate=.nan", "--data-dir", "{root}"],
        "grpo.learning_rate",
    ),  # fmt: skip
    ("train-nothing", "file", ["train", "--data-dir", "{root}"], "--config"),
    ("train-no-run", "run", ["train", "--run-id", "9999", "--data-dir", "{root}"], "9999"),
    # ---- model, dataset and reward: checked at submit (engine/runs/admission.py) ---------------
    (
        "model-missing-folder",
        "source",
        S("model.name_or_path=/no/such/model"),
        "model.name_or_path",
    ),  # fmt: skip
    (
        "model-is-a-file",
        "source",
        S("model.name_or_path={files}/empty.yaml"),
        "model.name_or_path",
    ),  # fmt: skip
    ("model-no-config", "source", S("model.name_or_path={files}"), "model.name_or_path"),
    ("dataset-missing", "source", S("data.task=/no/such/data.jsonl"), "data.task"),
    ("eval-dataset-missing", "source", S("data.eval_task=/no/such/eval.jsonl"), "data.eval_task"),
    ("reward-unknown", "source", S("data.reward=nope"), "data.reward"),
    ("reward-no-module", "source", S("data.reward=no_such_module_xyz:fn"), "data.reward"),
    ("reward-no-function", "source", S("data.reward=engine.data.rewards:nope"), "data.reward"),
    ("extra-reward-unknown", "source", S("data.extra_rewards=[nope]"), "data.extra_rewards"),
    # one answer names every problem: a bad config field no longer hides the source checks
    (
        "bad-field-and-unknown-reward",
        "source",
        S("shaping.kappa=0", "data.reward=nope"),
        "data.reward",
    ),  # fmt: skip
    ("dataset-folder", "source", S("data.task={files}"), "{files} is a folder"),
    # a folder however it is named: trailing slash, a symlink, no data file inside, eval data
    ("dataset-folder-slash", "source", S("data.task={files}/rows/"), "rows/ is a folder"),
    ("dataset-folder-link", "source", S("data.task={files}/rows-link"), "rows-link is a folder"),
    ("dataset-folder-example", "source", S("data.task={files}/rows"), "{files}/rows/train.jsonl"),
    ("dataset-folder-no-data", "source", S("data.task={files}/nodata"), "holds none"),
    ("eval-dataset-folder", "source", S("data.eval_task={files}/rows"), "data.eval_task"),
    ("dataset-empty-file", "source", S("data.task={files}/empty.jsonl"), "is empty"),
    ("dataset-fifo", "source", S("data.task={files}/pipe.jsonl"), "not a regular file"),
    (
        "api-dataset-folder",
        "api",
        ("api", "submit_run", "data:\n  task: batch\n"),
        "batch is a folder",
    ),  # fmt: skip
    (
        "api-dataset-folder-slash",
        "api",
        ("api", "submit_run", "data:\n  task: batch/\n"),
        "batch/ is a folder",
    ),  # fmt: skip
    ("dataset-broken-line", "source", S("data.task={files}/broken.jsonl"), "data.task"),
    (
        "question-field-is-answer-field",
        "config",
        S("data.task={files}/good.jsonl", "data.question_field=answer"),
        "data.answer_field",
    ),
    (
        "dataset-no-such-field",
        "source",
        S("data.task={files}/good.jsonl", "data.question_field=prompt"),
        "data.question_field",
    ),
    ("dataset-text-file", "source", S("data.task={files}/not-a-db.txt"), "data.task"),
    ("dataset-empty-answers", "data", S("data.task={files}/empty-answers.jsonl"), "every answer"),
    # files as people save them: compressed, an image, UTF-16, blank, the wrong suffix
    (
        "dataset-gzip-jsonl",
        "source",
        S("data.task={files}/packed.jsonl"),
        "it looks like a .gz file",
    ),
    ("dataset-png-csv", "source", S("data.task={files}/image.csv"), "it looks like a .png file"),
    ("dataset-utf16-csv", "source", S("data.task={files}/unicode.csv"), "UTF-16 text"),
    ("dataset-blank-lines", "source", S("data.task={files}/blank.jsonl"), "holds only blank lines"),
    ("dataset-header-only", "source", S("data.task={files}/header.csv"), "data.task"),
    ("dataset-json-splits", "source", S("data.task={files}/splits.json"), "several lists of rows"),
    ("dataset-text-parquet", "source", S("data.task={files}/text.parquet"), "not a Parquet file"),
    # ---- the store: what is not a database, a read-only data root --------------------------------
    ("db-text-file", "store", DB("{files}/not-a-db.txt"), "not-a-db.txt"),
    ("db-zeros", "store", DB("{files}/zeros.db"), "zeros.db"),
    ("db-folder", "store", DB("{files}"), "{files}"),
    ("db-sqlite-url-folder", "store", DB("sqlite:///{files}"), "{files}"),
    ("db-unknown-dialect", "store", DB("foo://x/y"), "foo"),
    ("db-missing-driver", "store", DB("mysql://u@localhost/db"), "mysql"),
    ("db-refused", "store", DB("postgresql+psycopg://u@127.0.0.1:9/x"), "127.0.0.1"),
    ("db-not-a-url", "store", DB("postgresql://u@[::1"), "postgresql://u@[::1"),
    ("db-submit-text-file", "store", [*S()[:-2], "--db", "{files}/not-a-db.txt"], "not-a-db.txt"),
    ("data-dir-is-a-file", "store", ["runs", "--data-dir", "{files}/empty.yaml"], "empty.yaml"),
    ("read-only-submit", "store", [*S()[:-2], "--data-dir", "{ro}"], "read-only"),
    ("read-only-cancel", "store", ["cancel", "{ro_run}", "--data-dir", "{ro}"], "read-only"),
    ("read-only-delete", "store", ["delete", "{ro_run}", "--data-dir", "{ro}"], "read-only"),
    ("read-only-resume", "store", ["resume", "{ro_run}", "--data-dir", "{ro}"], "read-only"),
    (
        "read-only-export-default",
        "store",
        ["export", "{ro_run}", "--data-dir", "{ro}"],
        "exports",
    ),  # fmt: skip
    # ---- run commands on the wrong run -------------------------------------------------------------
    ("cancel-missing", "run", ["cancel", "9999", "--data-dir", "{root}"], "9999"),
    ("resume-missing", "run", ["resume", "9999", "--data-dir", "{root}"], "9999"),
    ("resume-queued", "run", ["resume", "{queued}", "--data-dir", "{root}"], "queued"),
    ("resume-running", "run", ["resume", "{running}", "--data-dir", "{root}"], "running"),
    ("delete-running", "run", ["delete", "{running}", "--data-dir", "{root}"], "running"),
    ("delete-queued", "run", ["delete", "{queued}", "--data-dir", "{root}"], "queued"),
    ("delete-missing", "run", ["delete", "9999", "--data-dir", "{root}"], "9999"),
    ("export-missing", "run", ["export", "9999", "--data-dir", "{root}"], "9999"),
    (
        "export-under-a-file",
        "run",
        ["export", "{finished}", "--out", "{files}/empty.yaml/x.csv", "--data-dir", "{root}"],
        "empty.yaml",
    ),  # fmt: skip
    (
        "export-format",
        "run",
        ["export", "{finished}", "--format", "xlsx", "--data-dir", "{root}"],
        "--format",
    ),  # fmt: skip
    (
        "evaluate-train-run",
        "run",
        ["evaluate", "--run-id", "{finished}", "--data-dir", "{root}"],
        "not an eval job",
    ),  # fmt: skip
    ("evaluate-missing", "run", ["evaluate", "--run-id", "9999", "--data-dir", "{root}"], "9999"),
    ("cancel-not-a-number", "run", ["cancel", "abc", "--data-dir", "{root}"], "run_id"),
    (
        "worker-poll-negative",
        "worker",
        ["worker", "--poll-s", "-1", "--data-dir", "{root}"],
        "--poll-s",
    ),  # fmt: skip
    (
        "worker-poll-zero",
        "worker",
        ["worker", "--poll-s", "0", "--data-dir", "{root}"],
        "--poll-s",
    ),  # fmt: skip
    (
        "worker-poll-nan",
        "worker",
        ["worker", "--poll-s", "nan", "--data-dir", "{root}"],
        "--poll-s",
    ),  # fmt: skip
    (
        "worker-concurrency-zero",
        "worker",
        ["worker", "--concurrency", "0", "--data-dir", "{root}"],
        "--concurrency",
    ),  # fmt: skip
    (
        "worker-both",
        "worker",
        ["worker", "--poll-s", "-1", "--concurrency", "0", "--data-dir", "{root}"],
        "--",
    ),  # fmt: skip
    # ---- the public API (the app's handlers, as gradio calls them) ---------------------------------
    ("api-empty", "api", ("api", "submit_run", ""), "empty"),
    ("api-comments", "api", ("api", "submit_run", "# nothing here\n"), "empty"),
    ("api-braces", "api", ("api", "submit_run", "{}"), "empty"),
    ("api-list", "api", ("api", "submit_run", "- a\n- b\n"), "list"),
    ("api-scalar", "api", ("api", "submit_run", "3"), "single value"),
    ("api-tabs", "api", ("api", "submit_run", "run:\n\tmax_steps: 3\n"), "tabs"),
    ("api-unclosed", "api", ("api", "submit_run", "run: [1, 2\n"), "not valid YAML"),
    (
        "api-defaults",
        "api",
        ("api", "submit_run", "run: {max_steps: 3}\n"),
        "grpo.max_completion_length",
    ),  # fmt: skip
    (
        "api-lr-nan",
        "api",
        ("api", "submit_run", "grpo: {learning_rate: .nan}\n"),
        "grpo.learning_rate",
    ),  # fmt: skip
    ("api-steps-1e30", "api", ("api", "submit_run", "run: {max_steps: 1e30}\n"), "run.max_steps"),
    ("api-name-list", "api", ("api", "submit_run", "run: {name: [1, 2]}\n"), "run.name"),
    # a value past what the store holds is refused by the field's real rule: the server's limit
    # (its serve flag) or the field's range, never the store's 32-bit bound
    (
        "api-steps-past-the-store",
        "api",
        ("api", "submit_run", "run: {max_steps: 99999999999}\n"),
        "--max-steps",
    ),  # fmt: skip
    (
        "api-accumulation-past-the-store",
        "api",
        ("api", "submit_run", "grpo: {gradient_accumulation_steps: 99999999999}\n"),
        "--max-samples",
    ),  # fmt: skip
    # one answer names every problem: a bad config field no longer hides a server limit
    (
        "api-bad-field-and-over-limit",
        "api",
        ("api", "submit_run", "shaping: {kappa: 0}\nrun: {max_steps: 20000}\n"),
        "--max-steps",
    ),  # fmt: skip
    ("api-section-list", "api", ("api", "submit_run", "run: [1, 2]\n"), "run"),
    ("api-cancel-missing", "api", ("api", "cancel_run", 9999), "9999"),
    # ids past the store's 32 bits, not whole, not finite, negative: one line, no OverflowError
    ("api-status-huge-id", "api", ("api", "run_status", 10**30), "run_id"),
    ("api-cancel-huge-id", "api", ("api", "cancel_run", 10**30), "run_id"),
    ("api-monitor-huge-id", "api", ("api", "monitor_refresh", 1e300), "run_id"),
    ("api-inspector-infinite-id", "api", ("api", "inspector_data", float("inf")), "run_id"),
    ("api-monitor-negative-id", "api", ("api", "monitor_refresh", -1), "run_id"),
    ("api-status-fraction", "api", ("api", "run_status", 1.5), "run_id"),
]

FILES = {
    "empty.yaml": b"",
    "comments.yaml": b"# a config\n# nothing else\n",
    "braces.yaml": b"{}\n",
    "list.yaml": b"- run\n- grpo\n",
    "number.yaml": b"42\n",
    "text.yaml": b"hello\n",
    "tabs.yaml": b"run:\n\tmax_steps: 3\n",
    "unclosed.yaml": b"run: [1, 2\n",
    "indent.yaml": b"run:\n  max_steps: 3\n   seed: 1\n",
    "section-list.yaml": b"run: [1, 2]\n",
    "section-scalar.yaml": b"grpo: 3\n",
    "binary.yaml": bytes(range(256)),
    "nan.yaml": b"grpo:\n  learning_rate: .nan\n",
    "typo.yaml": b"grpo2:\n  learning_rate: 1.0e-5\n",
    "not-a-db.txt": b"question,answer\n1+1,2\n",
    "zeros.db": b"\x00" * 4096,
    "good.jsonl": b'{"question": "1+1", "answer": "2"}\n{"question": "2+3", "answer": "5"}\n',
    "broken.jsonl": b'{"question": "1+1", "answer": "2"}\n{"question": "2+3", broken\n',
    "empty-answers.jsonl": b'{"question": "1+1", "answer": ""}\n{"question": "2+3", "answer": ""}\n',
    "empty.jsonl": b"",
    "packed.jsonl": bytes.fromhex("1f8b0800000000000003") + b"\xab\xe6\x02\x00" + bytes(8),
    "image.csv": b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(64)),
    "unicode.csv": "question\tanswer\n1+1\t2\n".encode("utf-16"),
    "blank.jsonl": b"\n \n\r\n",
    "header.csv": b"question;answer\r\n",
    "splits.json": b'{"train": [{"question": "1+1", "answer": "2"}], "test": [{"question": "2+3", "answer": "5"}]}',
    "text.parquet": b"question,answer\n1+1,2\n",
}


def _folders(base: Path) -> None:
    """Folders given where a dataset file belongs: rows/ (holding train.jsonl), a symlink to it,
    nodata/ (no dataset file inside), batch/ (in the uploads: what the API may name); and a
    FIFO with a dataset suffix (reading it would block)."""
    for folder in ("rows", "batch"):
        (base / folder).mkdir(parents=True, exist_ok=True)
        (base / folder / "train.jsonl").write_bytes(FILES["good.jsonl"])
    if base.name == "uploads":
        return
    (base / "rows-link").symlink_to(base / "rows", target_is_directory=True)
    (base / "nodata").mkdir()
    (base / "nodata" / "notes.txt").write_bytes(b"data comes later\n")
    os.mkfifo(base / "pipe.jsonl")


@dataclass
class World:
    """Where the rows run: a data root with a finished, a queued and a running run, a read-only
    data root with one run, and the prepared files."""

    root: Path
    ro: Path
    files: Path
    ids: dict[str, int]

    def fill(self, value: Any) -> Any:
        if isinstance(value, str):
            names = {"root": self.root, "ro": self.ro, "files": self.files, **self.ids}
            for name, filled in names.items():
                value = value.replace("{" + name + "}", str(filled))
            return value
        if isinstance(value, list | tuple):
            return type(value)(self.fill(v) for v in value)
        return value


def build_world(base: Path) -> World:
    from engine.paths import resolve
    from engine.storage import RunStatus, Store

    files = base / "files"
    files.mkdir(parents=True)
    for name, data in FILES.items():
        (files / name).write_bytes(data)
    _folders(files)
    root = resolve(base / "home").root
    _folders(root / "uploads")
    ids = {}
    with Store.open(resolve(root)) as store:
        config = {"run": {"seed": 1}}
        for name in ("finished", "queued", "running"):
            ids[name] = store.create_run(config, name=name, algorithm="verl", total_steps=3)
        store.log_step(ids["finished"], {"step": 1, "reward_mean": 0.5})
        store.claim_run(ids["finished"], "host")
        store.finish_run(ids["finished"], RunStatus.COMPLETED)
        store.claim_run(ids["running"], "host")
    ro = resolve(base / "ro").root
    with Store.open(resolve(ro)) as store:
        ids["ro_run"] = store.create_run(config, name="ro", algorithm="verl", total_steps=3)
        store.claim_run(ids["ro_run"], "host")
        store.finish_run(ids["ro_run"], RunStatus.FAILED, error="x")
    return World(root=root, ro=ro, files=files, ids={k: str(v) for k, v in ids.items()})


@contextlib.contextmanager
def read_only(folder: Path) -> Iterator[None]:
    """`folder` read-only: a read-only bind mount as root (root ignores permission bits), the
    permission bits otherwise."""
    if os.geteuid() != 0:
        modes = {p: p.stat().st_mode for p in [folder, *folder.rglob("*")]}
        for p, mode in modes.items():
            p.chmod(mode & ~0o222)
        try:
            yield
        finally:
            for p, mode in modes.items():
                p.chmod(mode)
        return
    subprocess.run(["mount", "--bind", str(folder), str(folder)], check=True)
    try:
        subprocess.run(["mount", "-o", "remount,bind,ro", str(folder), str(folder)], check=True)
        yield
    finally:
        subprocess.run(["umount", str(folder)], check=True)


# ---- state snapshots --------------------------------------------------------------------------


def files_state(*folders: Path) -> dict[str, str]:
    """Every file under `folders` (but the SQLite files, compared as rows) with its digest."""
    state = {}
    for folder in folders:
        for path in sorted(folder.rglob("*")):
            if path.is_file() and ".db" not in path.name:
                state[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest()
    return state


def store_state(root: Path) -> list[tuple]:
    """Every run's row and its counts of steps and events, read with plain sqlite3 (read-only)."""
    immutable = "&immutable=1" if not os.access(root, os.W_OK) else ""  # a read-only mount
    uri = f"file:{root / 'studio.db'}?mode=ro{immutable}"
    with contextlib.closing(sqlite3.connect(uri, uri=True)) as conn:
        return conn.execute(
            "SELECT r.*, (SELECT count(*) FROM events e WHERE e.run_id = r.id),"
            " (SELECT count(*) FROM steps s WHERE s.run_id = r.id) FROM runs r ORDER BY r.id"
        ).fetchall()


def snapshot(world: World) -> tuple:
    return (
        files_state(world.root, world.ro, world.files),
        store_state(world.root),
        store_state(world.ro),
    )


# ---- running one row ---------------------------------------------------------------------------


@dataclass
class Outcome:
    refused: bool
    escaped: BaseException | None
    lines: list[str]


class _Lines(logging.Handler):
    """Log records at WARNING and above: what the user would see besides the printed lines."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines += self.format(record).splitlines()


def run_cli(argv: list[str]) -> Outcome:
    """`engine.cli.main(argv)` in this process, stdout/stderr and warnings captured."""
    from engine.cli import main

    out, err, handler = io.StringIO(), io.StringIO(), _Lines()
    logging.getLogger().addHandler(handler)
    escaped, code = None, 0
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main(argv)
            except SystemExit as exc:  # argparse
                code = exc.code if isinstance(exc.code, int) else 1
    except Exception as exc:  # noqa: BLE001 - an escaped exception is what the verdict records
        escaped = exc
    finally:
        logging.getLogger().removeHandler(handler)
    text = out.getvalue() + err.getvalue()
    lines = [line for line in [*text.splitlines(), *handler.lines] if line.strip()]
    return Outcome(refused=escaped is not None or code != 0, escaped=escaped, lines=lines)


def run_api(app_fns: dict[str, Callable], endpoint: str, argument: Any) -> Outcome:
    try:
        app_fns[endpoint](argument)
    except Exception as exc:  # noqa: BLE001 - gr.Error is the refusal; anything else escaped
        is_refusal = type(exc).__name__ == "Error" and type(exc).__module__.startswith("gradio")
        message = str(getattr(exc, "message", exc))
        return Outcome(True, None if is_refusal else exc, message.splitlines())
    return Outcome(False, None, [])


def verdict(outcome: Outcome, named: str, changed: bool) -> str:
    text = "\n".join(outcome.lines)
    if changed:
        return "lost"
    if outcome.escaped is not None or "Traceback" in text:
        return "trace"
    if not outcome.refused:
        return "accepted"
    if len(outcome.lines) != 1 or named not in text:
        return "unclear"
    return "clear"


def run_row(world: World, app_fns: dict[str, Callable], call: Any, named: str) -> tuple[str, str]:
    """(verdict, what the user saw) of one row."""
    before = snapshot(world)
    call, named = world.fill(call), world.fill(named)
    if isinstance(call, tuple) and call[0] == "api":
        outcome = run_api(app_fns, call[1], call[2])
    else:
        outcome = run_cli(list(call))
    after = snapshot(world)
    seen = "\n".join(outcome.lines) or repr(outcome.escaped)
    if outcome.escaped is not None:
        seen = f"{type(outcome.escaped).__name__}: {outcome.escaped}"
    if not outcome.refused and after != before:
        return "accepted", seen  # it went through: a queued run is the change
    return verdict(outcome, named, after != before), seen


def app_functions(root: Path) -> tuple[Any, dict[str, Callable]]:
    """The app's handlers over the world's store, as the server would call them."""
    from app.main import build_app
    from engine.paths import resolve
    from engine.storage import Store

    data = resolve(root)
    store = Store.open(data)
    blocks = build_app(store, data)
    return store, {f.name: f.fn for f in blocks.fns.values()}
