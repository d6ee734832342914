"""Verifiable rewards: crafted completions, real benchmark golds, adversarial strings."""

from __future__ import annotations

import json
import threading

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.data.rewards import (
    REGISTRY,
    answers_match,
    extract_answer,
    extract_choice,
    extract_gold,
    get_reward,
    is_correct,
    last_boxed,
    make_accuracy_reward,
    make_format_reward,
    normalize_number,
)

BENCHMARKS = ("gsm8k", "math500", "gaokao2024_mix", "aime24", "amc23")


def rows(shared_dir, name):
    path = shared_dir / "data" / "benchmarks" / f"{name}.jsonl"
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


@pytest.mark.parametrize(
    "text, expected",
    [
        ("\nStep 1: 23+48=71.\nStep 2: 71-17=54.\nAnswer: 54", "54"),
        ("Answer: 54 apples", "54"),
        ("the answer is 1,234.", "1234"),
        ("#### 1,000\nAnswer: 3", "1000"),  # #### outranks Answer:
        ("so \\boxed{\\frac{1}{2}} then Answer: 7", "\\frac{1}{2}"),
        ("\\boxed{\\boxed{12}}", "12"),
        ("first \\boxed{3} last \\boxed{4.0}", "4"),
        ("\\boxed{1} and a broken \\boxed{2", "1"),
        ("He has 3 then 5 then 12.0 eggs", "12"),
        ("#### $18", "18"),
        ("#### -7", "-7"),
        ("Answer: **42**", "42"),
        ("答案是 １２", "12"),
        ("nothing here", None),
        ("", None),
    ],
)
def test_extract_answer_exact(text, expected):
    assert extract_answer(text) == expected


def test_extract_order_prefers_boxed_then_hashes_then_answer_then_last_number():
    assert extract_answer("Answer: 1\n#### 2\n\\boxed{3}\n4") == "3"
    assert extract_answer("Answer: 1\n#### 2\n4") == "2"
    assert extract_answer("Answer: 1\n4") == "1"
    assert extract_answer("1\n4") == "4"


@pytest.mark.parametrize(
    "completion, gold, expected",
    [
        ("Answer: 54", "54", True),
        ("Answer: 54", "#### 54", True),
        ("Answer: 54.0", "54", True),
        ("Answer: 054", "54", True),
        ("Answer: 1,054", "1054", True),
        ("Answer: 55", "54", False),
        ("Answer: -54", "54", False),
        ("\\boxed{0.5}", "\\frac{1}{2}", True),
        ("\\boxed{\\dfrac{14}{3}}", "\\frac{14}{3}", True),
        (
            "\\boxed{\\left( 3, \\frac{\\pi}{2} \\right)}",
            "\\left( 3, \\frac{\\pi}{2} \\right)",
            True,
        ),
        ("\\boxed{\\frac{14}{5}}", "\\frac{14}{3}", False),
        ("\\boxed{2\\sqrt{3}}", "\\sqrt{12}", True),
        ("no answer", "5", False),
        ("Answer: 5", "", False),
        ([{"role": "assistant", "content": "Answer: 9"}], "9", True),
    ],
)
def test_is_correct_exact(completion, gold, expected):
    assert is_correct(completion, gold) is expected


def test_gold_numbers_from_json_floats_and_ints():
    assert extract_gold(27.0) == "27"
    assert extract_gold(-1.0) == "-1"
    assert extract_gold(2.5) == "2.5"
    assert extract_gold(7) == "7"
    assert extract_gold(None) is None
    assert extract_gold("   ") is None


def test_reward_functions_have_trl_signature_and_exact_values():
    completions = ["Answer: 5", "Answer: 6", "\\boxed{5}", "five"]
    assert REGISTRY["accuracy"](completions, answer=["5"] * 4) == [1.0, 0.0, 1.0, 0.0]
    assert REGISTRY["format"](completions, answer=["5"] * 4) == [1.0, 1.0, 0.0, 0.0]
    assert REGISTRY["boxed_format"](completions) == [0.0, 0.0, 1.0, 0.0]
    choice = REGISTRY["choice"](
        ["(A)", "Answer: B", "\\boxed{C}", "none"], choice_answer=["A", "A", "C", "D"]
    )
    assert choice == [1.0, 0.0, 1.0, 0.0]
    chat = [[{"role": "assistant", "content": "Answer: 5"}]]
    assert REGISTRY["accuracy"](chat, answer=["5"], prompts=["x"], trainer_state=None) == [1.0]


def test_accuracy_factory_reads_its_field_and_names_missing_columns():
    reward = make_accuracy_reward("target")
    assert reward(["Answer: 2"], target=["2"]) == [1.0]
    with pytest.raises(KeyError, match="target"):
        reward(["Answer: 2"], answer=["2"])


def test_format_factory_pattern():
    assert make_format_reward(r"^\nStep 1:")(["\nStep 1: 1+1=2.", "Step 1"]) == [1.0, 0.0]


def test_get_reward_by_name_and_module_function():
    assert get_reward("accuracy") is REGISTRY["accuracy"]
    assert get_reward("engine.data.rewards:is_correct") is is_correct
    for bad in ("nope", "__import__('os').system('true')", "engine.data.rewards:", "os:path.join"):
        with pytest.raises(KeyError):
            get_reward(bad)
    with pytest.raises(KeyError, match="cannot import"):
        get_reward("no_such_module_xyz:fn")
    with pytest.raises(KeyError, match="no function"):
        get_reward("engine.data.rewards:REGISTRY_NOT_THERE")


def slow_number(text: str) -> str:
    """Independent canonical form of a plain decimal: int / Fraction arithmetic."""
    from fractions import Fraction

    value = Fraction(text.replace(",", ""))
    if value.denominator == 1:
        return str(value.numerator)
    return format(float(value), "f").rstrip("0")


@settings(max_examples=200, deadline=None, derandomize=True)
@given(
    n=st.integers(min_value=-(10**12), max_value=10**12),
    sep=st.booleans(),
    zero=st.booleans(),
)
def test_answer_line_numbers_match_slow_reference(n, sep, zero):
    text = f"{n:,}" if sep else str(n)
    text += ".0" if zero else ""
    assert extract_answer(f"Step 1: ...\nAnswer: {text}") == slow_number(text)
    assert normalize_number(text) == slow_number(text)


@pytest.mark.parametrize("name", BENCHMARKS)
def test_every_benchmark_gold_parses_and_matches_itself(shared_dir, name):
    for row in rows(shared_dir, name):
        gold = extract_gold(row["answer"])
        assert gold, (name, row["answer"])
        assert is_correct(f"so the answer is \\boxed{{{gold}}}.", row["answer"]), (name, gold)


def test_gsm8k_gold_is_the_number_after_hashes(shared_dir):
    for row in rows(shared_dir, "gsm8k"):
        slow = row["answer"].rsplit("####", 1)[1].strip().replace(",", "")
        assert extract_gold(row["answer"]) == str(int(slow))
        assert is_correct(row["answer"], row["answer"])


def test_aime_and_amc_golds_are_integers(shared_dir):
    for name in ("aime24", "amc23"):
        for row in rows(shared_dir, name):
            assert extract_gold(row["answer"]) == str(int(float(row["answer"])))


def test_math500_solutions_box_their_gold(shared_dir):
    """The last \\boxed{} of every worked solution (nested braces) matches the gold answer."""
    for row in rows(shared_dir, "math500"):
        assert last_boxed(row["solution"]) is not None
        assert is_correct(row["solution"], row["answer"]), row["unique_id"]


def test_distinct_numeric_golds_do_not_match(shared_dir):
    golds = [extract_gold(r["answer"]) for r in rows(shared_dir, "amc23")]
    for a, b in zip(golds, golds[1:], strict=False):
        if a != b:
            assert not is_correct(f"Answer: {a}", b)


def test_gaokao_choice_letters(shared_dir):
    data = [r for r in rows(shared_dir, "gaokao2024_mix") if r["choice_answer"]]
    assert data
    reward = REGISTRY["choice"]
    right = reward([f"答案: {r['choice_answer']}" for r in data], **_cols(data))
    wrong_letters = ["A" if r["choice_answer"] != "A" else "B" for r in data]
    wrong = reward([f"Answer: ({x})" for x in wrong_letters], **_cols(data))
    assert right == [1.0] * len(data)
    assert wrong == [0.0] * len(data)
    assert extract_choice(data[0]["answer"]) == data[0]["choice_answer"]


def _cols(data):
    return {k: [r[k] for r in data] for k in data[0]}


ADVERSARIAL = [
    "9" * 100_000,
    "Answer: " + "9" * 50_000,
    "\\boxed{" * 20_000,
    "}" * 20_000 + "\\boxed{" * 5_000 + "{" * 20_000,
    "\\boxed{" + "{" * 10_000 + "1" + "}" * 10_000 + "}",
    "#### " + "{[(" * 30_000,
    "١٢٣ ٤٥ Answer: ٦",
    "Answer: ".join(["x"] * 10_000),
    "𝟙𝟚𝟛 Answer: ４２",
    "",
    "\x00\ud7ff\ufffe" * 1000,
    ("lorem ipsum 12,34,567 " * 5_000)[:100_000],
    "1," * 30_000,
    "\\boxed{\\frac{" + "\\frac{" * 200 + "}" * 200 + "}",
]


@pytest.mark.timeout(60)
@pytest.mark.parametrize("text", ADVERSARIAL, ids=lambda t: f"{len(t)}chars:{t[:12]!r}")
def test_adversarial_strings_return_without_raising(text):
    answer = extract_answer(text)
    assert answer is None or isinstance(answer, str)
    assert isinstance(is_correct(text, text), bool)
    assert isinstance(is_correct(text, "42"), bool)
    for fn in REGISTRY.values():
        assert len(fn([text], answer=[text], choice_answer=["A"])) == 1


def test_unicode_digits_fold_to_ascii():
    assert extract_answer("Answer: ４２") == "42"
    assert extract_answer("Answer: ٤٢") == "42"


@settings(max_examples=100, deadline=None, derandomize=True)
@given(st.text(max_size=300))
def test_any_text_never_raises(text):
    assert isinstance(is_correct(text, "\\frac{1}{2}"), bool)
    assert isinstance(answers_match(extract_answer(text), "x^2"), bool)


def test_latex_check_works_off_the_main_thread():
    """math-verify's signal timeout only works in the main thread; the app calls from workers."""
    results = []
    thread = threading.Thread(target=lambda: results.append(is_correct("\\boxed{0.5}", "\\frac12")))
    thread.start()
    thread.join()
    assert results == [True]


def test_registered_rewards_are_named_by_their_key():
    """TRL logs each reward as rewards/<__name__>/mean; two rewards must not share a name."""
    assert {name: fn.__name__ for name, fn in REGISTRY.items()} == {n: n for n in REGISTRY}
