"""Built-in arithmetic task, local dataset files and hub ids, checked against slow references."""

from __future__ import annotations

import json
import random
import re

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.config import DataConfig
from engine.data.rewards import extract_answer, extract_gold
from engine.data.tasks import (
    EVAL,
    HELDOUT_BUCKETS,
    TRAIN,
    ArithmeticTask,
    DatasetLoadError,
    heldout_problems,
    load_dataset_for,
    make_problems,
    split_of,
)


def slow_eval(question: str) -> tuple[list[int], list[int]]:
    """Operands and running totals of "a+b-c=?", left to right, by hand."""
    tokens = re.findall(r"[+-]|\d+", question.removesuffix("=?"))
    operands, totals = [int(tokens[0])], [int(tokens[0])]
    for op, x in zip(tokens[1::2], tokens[2::2], strict=True):
        operands.append(int(x))
        totals.append(totals[-1] + int(x) if op == "+" else totals[-1] - int(x))
    return operands, totals


@settings(max_examples=60, deadline=None, derandomize=True)
@given(seed=st.integers(0, 10**6), n_ops=st.integers(2, 6), digits=st.integers(1, 4))
def test_problems_are_correct_worked_solutions(seed, n_ops, digits):
    problem = ArithmeticTask(n_ops, digits).sample(random.Random(seed))
    operands, totals = slow_eval(problem.question)
    assert len(operands) == n_ops
    assert all(len(str(x)) == digits for x in operands)
    assert min(totals) >= 0
    assert problem.answer == str(totals[-1])
    assert extract_answer(problem.solution) == problem.answer
    lines = problem.solution.strip().split("\n")
    assert len(lines) == n_ops  # n_ops - 1 steps + the answer line
    for i, line in enumerate(lines[:-1], start=1):
        assert line.startswith(f"Step {i}: ") and line.endswith(f"={totals[i]}.")
    assert problem.prompt == f"Q: {problem.question}\nA:"


def test_generation_is_deterministic_per_seed():
    assert make_problems(3, 50) == make_problems(3, 50)
    assert make_problems(3, 50) != make_problems(4, 50)


def test_heldout_never_overlaps_train():
    held = {p.question for p in heldout_problems(500)}
    assert len(held) > 450
    for seed in (0, 1, 7, 123):
        train = {p.question for p in make_problems(seed, 3000)}
        assert not held & train
    assert {split_of(q) for q in held} == {EVAL}


def test_split_hash_sends_about_one_in_buckets_to_eval():
    questions = [f"{a}+{b}=?" for a in range(10, 60) for b in range(10, 60)]
    share = sum(split_of(q) == EVAL for q in questions) / len(questions)
    assert abs(share - 1 / HELDOUT_BUCKETS) < 0.02


def test_arithmetic_dataset_columns_and_splits():
    cfg = DataConfig(train_size=64, seed=5)
    train = load_dataset_for(cfg, TRAIN)
    assert len(train) == 64
    assert {"prompt", "answer"} <= set(train.column_names)
    assert train[0]["prompt"].startswith("Q: ") and train[0]["prompt"].endswith("\nA:")
    assert train[0]["answer"] == str(slow_eval(train[0]["question"])[1][-1])
    held = load_dataset_for(cfg, EVAL, limit=200)
    assert [r["question"] for r in held] == [p.question for p in heldout_problems(200)]
    assert not set(held["question"]) & set(train["question"])


def test_chat_template_flag_wraps_prompts_as_messages():
    ds = load_dataset_for(DataConfig(train_size=3, chat_template=True), TRAIN)
    assert ds[0]["prompt"] == [{"role": "user", "content": make_problems(7, 1)[0].prompt}]


def gsm8k_config(shared_dir, **kw):
    path = shared_dir / "data" / "benchmarks" / "gsm8k.jsonl"
    return DataConfig(task=str(path), **kw), path


def test_local_jsonl_train_and_eval_partition_the_file(shared_dir):
    cfg, path = gsm8k_config(shared_dir, prompt_template="Question: {question}\nAnswer:")
    raw = [json.loads(line) for line in path.read_text().splitlines()]
    train, held = load_dataset_for(cfg, TRAIN), load_dataset_for(cfg, EVAL)
    assert len(train) + len(held) == len(raw)
    assert 0 < len(held) < len(raw) / 5
    assert not set(train["idx"]) & set(held["idx"])
    by_idx = {r["idx"]: r for r in raw}
    for row in list(train)[:50] + list(held)[:50]:
        original = by_idx[row["idx"]]
        assert row["prompt"] == f"Question: {original['question']}\nAnswer:"
        assert row["answer"] == original["answer"].rsplit("####", 1)[1].strip().replace(",", "")


def test_csv_and_parquet_load_like_jsonl(shared_dir, tmp_path):
    cfg, path = gsm8k_config(shared_dir)
    frame = pd.read_json(path, lines=True, dtype=False).head(200)
    expected = load_dataset_for(DataConfig(task=str(_write_jsonl(frame, tmp_path))), TRAIN)
    for suffix, write in ((".csv", frame.to_csv), (".parquet", frame.to_parquet)):
        target = tmp_path / f"g{suffix}"
        write(target, index=False)
        got = load_dataset_for(DataConfig(task=str(target)), TRAIN)
        assert got["prompt"] == expected["prompt"]
        assert got["answer"] == expected["answer"]


def _write_jsonl(frame, tmp_path):
    target = tmp_path / "g.jsonl"
    frame.to_json(target, orient="records", lines=True)
    return target


def test_eval_task_file_and_fields(shared_dir):
    bench = shared_dir / "data" / "benchmarks"
    cfg = DataConfig(
        task=str(bench / "gsm8k.jsonl"),
        eval_task=str(bench / "math500.jsonl"),
        question_field="question",
    )
    with pytest.raises(DatasetLoadError, match="'question'.*question_field"):
        load_dataset_for(cfg, EVAL)
    cfg = DataConfig(task=str(bench / "math500.jsonl"), question_field="problem")
    rows = load_dataset_for(cfg, TRAIN)
    first = rows[0]
    assert first["prompt"] == first["problem"]
    assert first["answer"] == extract_gold(first["answer"])
    amc = load_dataset_for(
        DataConfig(task=str(bench / "amc23.jsonl"), eval_task=str(bench / "amc23.jsonl")), EVAL
    )
    assert len(amc) == 40 and amc[0]["answer"] == "27"


def test_missing_file_and_bad_json_are_clear(tmp_path):
    with pytest.raises(DatasetLoadError, match="not found"):
        load_dataset_for(DataConfig(task=str(tmp_path / "nope.jsonl")), TRAIN)
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"question": "1+1", "answer": "2"}\n{oops\n')
    with pytest.raises(DatasetLoadError, match="bad.jsonl:2"):
        load_dataset_for(DataConfig(task=str(bad)), TRAIN)


def test_hub_id_offline_names_the_id_and_the_setting(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(DatasetLoadError, match=r"openai/gsm8k:main.*HF_HUB_OFFLINE=1"):
        load_dataset_for(DataConfig(task="openai/gsm8k:main"), TRAIN)
    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    with pytest.raises(DatasetLoadError, match=r"HuggingFaceH4/MATH-500.*HF_DATASETS_OFFLINE"):
        load_dataset_for(DataConfig(task="HuggingFaceH4/MATH-500", split="test"), TRAIN)


def test_heldout_grows_past_its_default_size_as_a_prefix():
    cfg = DataConfig()
    big = load_dataset_for(cfg, EVAL, limit=700)
    assert len(big) == 700
    assert big["question"][:200] == [p.question for p in heldout_problems(200)]
