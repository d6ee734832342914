"""The answer audit: what the verifier read is recorded, and likely misjudged responses are found."""

from __future__ import annotations

import numpy as np
import pytest
from sqlalchemy import create_engine, text

from engine.data.audit import LENIENT, MISSED, NOT_RECORDED, answer_label, audit, gold_in_text
from engine.data.rewards import answer_audit
from engine.storage import Store
from engine.storage.schema import SCHEMA_VERSION


def _row(step, i, completion, correct, answer, gold, prompt="Q"):
    return {
        "step": step,
        "group_idx": 0,
        "sample_idx": i,
        "prompt": prompt,
        "completion": completion,
        "correct": correct,
        "reward": float(correct),
        "answer_read": answer,
        "gold_read": gold,
    }


def test_gold_in_final_answer_text_is_whole_numbers_and_after_think():
    assert gold_in_text("54", "so 54 apples")
    assert not gold_in_text("54", "so 154 apples, or 54.5, or -54")
    assert gold_in_text("-3", "falls to −3 degrees")
    assert gold_in_text("1000", "costs 1,000 dollars")
    assert gold_in_text("\\frac{1}{2}", "it is $\\frac{1}{2}$ exactly")
    assert not gold_in_text("", "anything")


def test_audit_finds_both_kinds_and_counts_unrecorded_rows():
    rows = [
        _row(1, 0, "Answer: 54", True, "54", "54"),  # right, literal: fine
        _row(
            1, 1, "the total is 54 apples, I think. Answer: fifty-four", False, "fifty-four", "54"
        ),
        _row(1, 2, "\\boxed{0.5}", True, "0.5", "\\frac{1}{2}"),  # right, not literal
        _row(2, 0, "<think>54?</think> Answer: 55", False, "55", "54"),  # 54 only while thinking
        _row(2, 1, "Answer: 55", False, "55", "54"),  # wrong, gold absent: fine
        _row(2, 2, "old run", False, None, None),
        _row(3, 0, "I don't know", False, "", "54"),
    ]
    result = audit(rows)
    assert result.responses == 7 and result.not_recorded == 1
    assert result.counts == {MISSED: 1, LENIENT: 1}
    assert [(s.step, s.sample_idx, s.reason) for s in result.suspects] == [
        (1, 1, MISSED),
        (1, 2, LENIENT),
    ]
    assert result.suspects[0].answer == "fifty-four" and result.suspects[0].gold == "54"


def test_answer_labels():
    assert (answer_label("7"), answer_label(""), answer_label(None)) == (
        "7",
        "none found",
        NOT_RECORDED,
    )


def test_answer_audit_reads_what_the_reward_compared():
    assert answer_audit("accuracy", "Answer: 35 m/s", {"answer": "#### 35"}) == ("35", "35")
    assert answer_audit("accuracy", "<think>3", {"answer": "3"}) == ("", "3")
    row = {"choice_answer": "B"}
    assert answer_audit("choice", "Answer: (B), since D is big.", row) == ("B", "B")
    assert answer_audit("accuracy", "Answer: 3", {}) == ("3", "")


def _samples(n: int) -> list[dict]:
    rng = np.random.default_rng(0)
    out = []
    for i in range(n):
        out.append(
            {
                "group_idx": 0,
                "sample_idx": i,
                "prompt": "Q: 2+3=?\nA:",
                "completion": f"Step 1: 2+3=5.\nAnswer: {5 + i % 2}",
                "token_ids": rng.integers(0, 100, 6),
                "token_entropy": rng.random(6).astype(np.float32),
                "token_logprob": -rng.random(6).astype(np.float32),
                "reward": float(i % 2 == 0),
                "correct": i % 2 == 0,
                "length": 6,
                "answer_read": str(5 + i % 2),
                "gold_read": "5",
            }
        )
    return out


def _downgrade_to_v4(url: str) -> None:
    """Make the database look as schema v4 wrote it: no audit columns, float16 token blobs."""
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            rows = conn.execute(text("SELECT id, token_entropy, token_logprob FROM samples"))
            for sid, ent, lp in list(rows):
                old = {
                    "e": np.frombuffer(ent, "<f4").astype("<f2").tobytes(),
                    "l": np.frombuffer(lp, "<f4").astype("<f2").tobytes(),
                    "i": sid,
                }
                conn.execute(
                    text("UPDATE samples SET token_entropy = :e, token_logprob = :l WHERE id = :i"),
                    old,
                )
            conn.execute(text("ALTER TABLE samples DROP COLUMN answer_read"))
            conn.execute(text("ALTER TABLE samples DROP COLUMN gold_read"))
            from tests.test_storage import ADDED_IN  # columns later versions added

            for sql in (q for v, qs in ADDED_IN.items() if v > 5 for q in qs):
                conn.execute(text(sql))
            conn.execute(text("UPDATE schema_version SET version = 4"))
    finally:
        engine.dispose()


def test_migrates_a_v4_database_to_the_answer_audit(store_url):
    """A database written by schema v4 (no answer columns, float16 per-token blobs) opens: its
    responses say "not recorded", its per-token values still decode, new steps record answers."""
    assert SCHEMA_VERSION >= 5
    with Store(store_url) as store:
        run_id = store.create_run({}, name="r", algorithm="verl", total_steps=3)
        store.log_step(run_id, {"step": 1}, _samples(4))
        before = store.samples(run_id, 1)
    _downgrade_to_v4(store_url)
    with Store(store_url) as store:
        assert store.schema_version == SCHEMA_VERSION
        after = store.samples(run_id, 1)
        for old, new in zip(before, after, strict=True):
            assert new["answer_read"] is None and new["gold_read"] is None
            np.testing.assert_allclose(new["token_entropy"], old["token_entropy"], rtol=1e-3)
            assert new["token_logprob"].dtype == np.float32
        store.log_step(run_id, {"step": 2}, _samples(4))
        rows = store.sample_records(run_id, ["answer_read", "gold_read", "correct"], 1, 2)
        assert [r["answer_read"] for r in rows] == [None] * 4 + ["5", "6", "5", "6"]
        assert [r["correct"] for r in rows[4:]] == [True, False, True, False]
        assert store.samples(run_id, 2)[1]["token_logprob"].dtype == np.float32


def test_sample_records_refuse_array_columns(store_url):
    with Store(store_url) as store, pytest.raises(ValueError, match="token_ids"):
        store.sample_records(1, ["token_ids"])


def test_a_real_run_records_answers_and_audits(trained_run):
    """The shared tiny training run: every response has its answer read and gold recorded."""
    from app import queries

    with Store(trained_run.store_url) as store:
        rows = store.sample_records(
            trained_run.run_id, ["completion", "correct", "answer_read", "gold_read"]
        )
        assert rows and all(r["gold_read"] for r in rows)
        assert all(r["answer_read"] is not None for r in rows)
        for r in rows:
            assert r["correct"] == (r["answer_read"] == r["gold_read"]), r
        result = queries.answer_audit(store, trained_run.run_id)
    assert result.responses == len(rows) and result.not_recorded == 0
