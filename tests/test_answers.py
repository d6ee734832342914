"""Answer checking on answers written the way models and benchmark files write them (issue 13).

One test per kind of fault; each holds the issue's example with its right value and more cases
of the same kind. A regression's docstring says what broke.
"""

from __future__ import annotations

import json

import pytest

from engine.data.answers import (
    extract_answer,
    extract_choice,
    extract_gold,
    final_answer_text,
    judge,
    normalize_choice,
    normalize_text,
    split_list,
)
from engine.data.rewards import REGISTRY


def _check(cases):
    for completion, gold, want in cases:
        verdict = judge(completion, gold)
        assert verdict.correct is want, (completion, gold, verdict)


def test_kind1_several_boxes_against_a_list_gold():
    """Only the last box was read: three boxed roots against `3, 5, 7` scored 0."""
    _check(
        [
            (r"The roots are \boxed{3}, \boxed{5}, and \boxed{7}.", "3, 5, 7", True),
            (r"\boxed{7}", "3, 5, 7", False),  # a subset stays 0
            (r"\boxed{3}, \boxed{5}", "3, 5, 7", False),
            (r"\boxed{3}, \boxed{5}, \boxed{7}, \boxed{9}", "3, 5, 7", False),  # a superset too
            (r"\boxed{3, 5, 7}", "3, 5, 7", True),
            (r"\boxed{7, 3, 5}", "3, 5, 7", True),  # a set: order is free
            (r"So $x = \boxed{1}$ or $x = \boxed{-2}$.", "1,-2", True),
            (r"\boxed{\frac{1}{2}} and \boxed{-\frac12}", r"\frac{1}{2}, -\frac{1}{2}", True),
            ("The solutions are 3, 5 and 7.\nAnswer: 3, 5, and 7", "3, 5, 7", True),
            (r"\boxed{3} ... no wait, \boxed{4}", "4", True),  # not a list: the last box counts
            (r"\boxed{3} ... no wait, \boxed{4}", "3", False),
            (r"\boxed{58,500}", "58,500", True),  # a thousands separator is not a list
        ]
    )
    assert split_list("3, 5, and 7") == ["3", "5", "7"]
    assert split_list(r"\left(1, 2\right)") == [r"\left(1, 2\right)"]


def test_kind2_think_blocks():
    """A box inside <think> outranked the final answer written after it."""
    _check(
        [
            (
                "<think>First try: \\boxed{3}. Recount gives 4.</think>\nThe final answer is 4.",
                "4",
                True,
            ),
            (
                "<think>First try: \\boxed{3}. Recount gives 4.</think>\nThe final answer is 4.",
                "3",
                False,
            ),
            ("<think>I get 12.</think> The answer is \\boxed{13}.", "13", True),
            ("<think>Guess \\boxed{5}</think><think>Check: 6</think>Answer: 6", "6", True),
            ("<think>The answer is \\boxed{5}", "5", False),  # never closed: no final answer
            ("<think>a</think> fine <think> then \\boxed{5}", "5", False),
            ("Plain text, no tags. Answer: 5", "5", True),
        ]
    )
    assert judge("4 is it.</think> Answer: 4", "4", prompt="Q?\n<think>\n").correct
    assert not judge("Answer: 4", "4", prompt="Q?\n<think>\n").correct  # the prompt opened it
    chat_prompt = [{"role": "user", "content": "Q"}, {"role": "assistant", "content": "<think>"}]
    assert not judge("Answer: 4", "4", prompt=chat_prompt).correct
    assert judge("Answer: 4", "4", prompt="<think>x</think> Q").correct
    assert final_answer_text("<think>x") is None


def test_kind3_empty_boxes_are_no_answer():
    """An empty \\boxed{} was read as the answer, and boxed_format paid 1.0 for it."""
    _check(
        [
            ("I will put my final answer within \\boxed{}. It is 7.", "7", True),
            ("Put the answer in \\boxed{ }. Answer: 12", "12", True),
            ("\\boxed{9} and the template says \\boxed{}", "9", True),
        ]
    )
    assert extract_answer("\\boxed{}") is None
    fmt = REGISTRY["boxed_format"]
    assert fmt(["\\boxed{}", "\\boxed{ }", "\\boxed{3}", "\\fbox{x}", "none"]) == [
        0.0,
        0.0,
        1.0,
        1.0,
        0.0,
    ]


def test_kind4_units_after_the_number():
    """`Answer: 35 m/s` and `25 m²` (NFKC made it m2, so the last number became 2) scored 0."""
    _check(
        [
            ("Answer: 35 m/s", "35", True),
            ("Answer: 35 cm^2", "35", True),
            ("The area of the floor is 25 m².", "25", True),
            ("The volume is 8 m³ in all.", "8", True),
            ("Answer: 9.8 m/s^2", "9.8", True),
            ("Answer: 9.8 m·s⁻²", "9.8", True),
            ("Answer: 60 km/h", "60", True),
            ("Answer: 12kg", "12", True),
            ("\\boxed{35\\text{ cm}^2}", "35", True),
            ("\\boxed{35 \\mathrm{m}}", "35", True),
            ("The answer is $45^\\circ$.", "45", True),
            ("Answer: 45°", "45", True),
            ("Answer: 35%", "35", True),
            ("\\boxed{35\\%}", "35\\%", True),
            ("Answer: \\$18.50", "18.5", True),
            ("Answer: 18 dollars", "#### 18", True),
            ("The answer is 54 apples.", "54", True),
            ("\\boxed{5.4}", "5.4 \\text{ cents}", True),
            ("\\boxed{\\frac{270}{7}}", "\\frac{270}7\\text{ degrees}", True),
            ("\\boxed{2x}", "2", False),  # algebra, not a unit
            ("Answer: 36 m/s", "35", False),
        ]
    )


def test_kind5_thousands_separators():
    """`$8{,}000` read as 0 and `\\boxed{10\\,080}` against `10,\\!080` scored 0."""
    _check(
        [
            ("So the total cost is $8{,}000.", "8000", True),
            ("So the total cost is $8{,}000.", "#### 8,000", True),
            ("\\boxed{10\\,080}", "10,\\!080", True),
            ("\\boxed{2\\,500}", "2500", True),
            ("\\boxed{1{,}234{,}567}", "1234567", True),
            ("The count is 12\\;345.", "12345", True),
            ("The count is 12\u202f345.", "12345", True),
            ("The count is 12\u2009345.", "12345", True),
            ("\\boxed{11,111,111,100}", "11,\\! 111,\\! 111,\\! 100", True),
            ("\\boxed{32,348}", "\\$32,\\!348", True),
            ("\\boxed{10\\,080}", "1080", False),
        ]
    )
    assert normalize_text("x\\,dx") == "x\\,dx"  # a thin space that separates no digits stays


def test_kind6_unicode_minus_and_dashes():
    """`falls to −3 degrees` (U+2212) was read as 3."""
    _check(
        [
            ("Overnight the temperature falls to −3 degrees.", "#### -3", True),
            ("Overnight the temperature falls to −3 degrees.", "#### 3", False),
            ("The balance is \u20137 dollars.", "-7", True),  # en dash
            ("The result: \u201212.5", "-12.5", True),  # figure dash
            ("Answer: \ufe634", "-4", True),  # small hyphen-minus
            ("Answer: \uff0d4", "-4", True),  # full-width hyphen-minus
            ("\\boxed{−\\frac{1}{2}}", "-\\frac{1}{2}", True),
            ("Read pages 3\u20135.", "5", True),  # a range is not a minus sign
            ("Read pages 3\u20135.", "-5", False),
        ]
    )


def test_kind7_the_chosen_letter():
    """The last capital letter of the text was taken, not the chosen one."""
    cases = [
        ("The answer is C. A quick check of the other options confirms it.", "C"),
        ("Answer: (B), because option D is too large.", "B"),
        ("The correct option is D; A and B fail.", "D"),
        ("I choose B. Options A, C and E are ruled out by the sign.", "B"),
        ("答案：C。A 和 B 都不对。", "C"),
        ("\\boxed{(E)} since A is negative.", "E"),
        ("After checking, (A) fits. B is too big, and so is D.", "A"),
        ("A careful look shows that D is right.", "D"),
        ("**B** is the answer; A was tempting.", "B"),
    ]
    for text, want in cases:
        assert extract_choice(text) == want, text
    reward = REGISTRY["choice"]
    texts = [t for t, _ in cases]
    assert reward(texts, choice_answer=[w for _, w in cases]) == [1.0] * len(cases)
    assert normalize_choice("(c)") == "C"
    assert normalize_choice("\\text{(C)}") == "C"


def test_kind8_small_values_are_not_equal():
    """math-verify 0.9 chops differences below 1e-15: 1/2^98 equalled 1/2^99."""
    _check(
        [
            ("\\boxed{\\frac{1}{2^{99}}}", "\\frac{1}{2^{98}}", False),
            ("\\boxed{2 \\cdot 10^{-20}}", "10^{-20}", False),
            ("\\boxed{3 \\times 10^{-30}}", "10^{-30}", False),
            ("\\boxed{\\frac{1}{3^{50}}}", "\\frac{1}{3^{51}}", False),
            ("\\boxed{0.00000002}", "0.00000001", False),
            ("\\boxed{10^{-20}}", "10^{-20}", True),
            ("\\boxed{\\frac{2}{2^{99}}}", "\\frac{1}{2^{98}}", True),
            ("\\boxed{0.333333}", "\\frac{1}{3}", True),  # six decimals still accepted
            ("\\boxed{2\\sqrt{3}}", "\\sqrt{12}", True),
        ]
    )


def test_extracted_answer_and_gold_are_reported():
    verdict = judge("Answer: 35 m/s", "He runs 35 m/s.\n#### 35")
    assert (verdict.answer, verdict.gold) == ("35", "35")
    assert judge("no number here", "4").answer is None
    assert extract_gold("10,\\!080") == "10080"


def _rows(shared_dir, name):
    path = shared_dir / "data" / "benchmarks" / f"{name}.jsonl"
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


@pytest.mark.parametrize("name", ["math500", "gsm8k", "aime24", "amc23", "gaokao2024_mix"])
def test_model_like_answers_to_every_benchmark_gold(shared_dir, name):
    """Each gold, written back as a model would (raw gold boxed, `The answer is`), scores 1."""
    for row in _rows(shared_dir, name):
        raw = str(row["answer"]).rsplit("####", 1)[-1].strip()
        assert judge(f"Thus the answer is $\\boxed{{{raw}}}$.", row["answer"]).correct, raw
        gold = extract_gold(row["answer"])
        assert judge(f"<think>hmm</think>\nThe answer is {gold}", row["answer"]).correct, gold
