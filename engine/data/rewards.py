"""Verifiable rewards with TRL's signature `fn(completions, **kwargs) -> list[float]`.

TRL passes every dataset column as a keyword (`answer`, `choice_answer`, ...) and the prompts as
`prompts`; `completions[i]` is a string for plain-text prompts and
`[{"role": "assistant", "content": ...}]` for chat prompts.

Answer checking (reading the answer, normalising both sides, the fast path for plain numbers and
math-verify for the rest, think blocks, lists of answers, the chosen letter) lives in
`engine.data.answers`; its docstring lists the conventions and math-verify's known limits.

`REGISTRY` maps a name to a reward; `get_reward("name")` or `get_reward("pkg.module:function")`
(an installed module) returns one. Strings are never evaluated.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import Any

from engine.data.answers import (
    BOXED,
    MAX_ANSWER_CHARS,
    Verdict,
    answers_match,
    completion_text,
    extract_answer,
    extract_choice,
    extract_gold,
    final_answer_text,
    is_correct,
    judge,
    last_boxed,
    normalize_choice,
    normalize_number,
    prompt_text,
)

__all__ = [
    "BOXED",
    "MAX_ANSWER_CHARS",
    "REGISTRY",
    "answer_audit",
    "RewardFn",
    "Verdict",
    "answers_match",
    "completion_text",
    "extract_answer",
    "extract_choice",
    "extract_gold",
    "final_answer_text",
    "get_reward",
    "is_correct",
    "judge",
    "last_boxed",
    "make_accuracy_reward",
    "make_choice_reward",
    "make_format_reward",
    "normalize_number",
]

RewardFn = Callable[..., list[float]]

_FORMAT = re.compile(r"Answer:[ \t]*-?[0-9][0-9,]*(?:\.[0-9]+)?\s*$")
_BOXED_FORMAT = r"\\(?:boxed|fbox)\s*\{\s*[^\s}]"  # a box with something in it


@lru_cache(maxsize=4096)
def _judge_text(completion: str, gold: str | int | float | None, prompt: str) -> Verdict:
    """`judge` on plain values, cached: the audit re-reads what the reward just judged."""
    return judge(completion, gold, prompt or None)


def judged(completion: Any, gold: Any, prompt: Any = None) -> Verdict:
    """`judge`, through a small cache when the values are plain (they are, from TRL)."""
    if gold is None or isinstance(gold, str | int | float):
        return _judge_text(completion_text(completion), gold, prompt_text(prompt))
    return judge(completion, gold, prompt)


def answer_audit(
    reward_name: str, completion: Any, row: Mapping[str, Any], prompt: Any = None
) -> tuple[str, str]:
    """(answer read, normalised gold) that reward `reward_name` compared, for the answer audit;
    "" for an answer not found or a gold the row lacks. `choice` reads the letter and the row's
    `choice_answer`; every other reward is audited as `accuracy` on the row's `answer`.

    >>> answer_audit("accuracy", "Answer: 35 m/s", {"answer": "#### 35"})
    ('35', '35')
    >>> answer_audit("choice", "The answer is C. A is wrong.", {"choice_answer": "c"})
    ('C', 'C')
    >>> answer_audit("accuracy", "no idea", {"answer": "4"})
    ('', '4')
    """
    if reward_name == "choice":
        letter = extract_choice(completion, prompt)
        return letter or "", normalize_choice(row.get("choice_answer")) or ""
    verdict = judged(completion, row.get("answer"), prompt)
    return verdict.answer or "", verdict.gold or ""


def _prompts(kwargs: dict[str, Any], n: int) -> list[Any]:
    prompts = kwargs.get("prompts")
    return list(prompts) if prompts is not None and len(prompts) == n else [None] * n


def _golds(kwargs: dict[str, Any], field: str, n: int) -> list[Any]:
    golds = kwargs.get(field)
    if golds is None:
        raise KeyError(f"reward needs the dataset column {field!r} (got {sorted(kwargs)})")
    if isinstance(golds, str | int | float):
        golds = [golds] * n
    return list(golds)


def make_accuracy_reward(answer_field: str = "answer") -> RewardFn:
    """1.0 when the completion's answer matches the gold in `answer_field`, else 0.0.

    >>> make_accuracy_reward("target")(["Answer: 3", "Answer: 4"], target=["3", "3"])
    [1.0, 0.0]
    >>> make_accuracy_reward()(["4</think> Answer: 3", "Answer: 3"], answer=["3"] * 2,
    ...                        prompts=["<think>", "<think>"])
    [1.0, 0.0]
    """

    def accuracy(completions: list[Any], **kwargs: Any) -> list[float]:
        golds = _golds(kwargs, answer_field, len(completions))
        prompts = _prompts(kwargs, len(completions))
        return [
            float(judged(c, g, p).correct)
            for c, g, p in zip(completions, golds, prompts, strict=True)
        ]

    accuracy.__name__ = "accuracy" if answer_field == "answer" else f"accuracy_{answer_field}"
    return accuracy


def make_format_reward(pattern: str = _FORMAT.pattern, name: str = "format") -> RewardFn:
    """1.0 when the completion matches `pattern` (default: ends with `Answer: <number>`).

    >>> make_format_reward()(["Step 1: 1+1=2.\\nAnswer: 2", "2"])
    [1.0, 0.0]
    >>> make_format_reward(_BOXED_FORMAT)([r"so \\boxed{2}", r"\\boxed{ }"])
    [1.0, 0.0]
    """
    compiled = re.compile(pattern)

    def format_reward(completions: list[Any], **kwargs: Any) -> list[float]:
        return [float(compiled.search(completion_text(c)) is not None) for c in completions]

    format_reward.__name__ = name  # TRL logs rewards/<__name__>/mean
    return format_reward


def make_choice_reward(choice_field: str = "choice_answer") -> RewardFn:
    """1.0 when the picked letter equals `choice_field` (Gaokao's `choice_answer`), else 0.0.

    >>> make_choice_reward()(["I pick (B)", "Answer: A", "Answer: B"], choice_answer=["B", "B", ""])
    [1.0, 0.0, 0.0]
    """

    def choice(completions: list[Any], **kwargs: Any) -> list[float]:
        golds = _golds(kwargs, choice_field, len(completions))
        prompts, out = _prompts(kwargs, len(completions)), []
        for c, g, p in zip(completions, golds, prompts, strict=True):
            gold = normalize_choice(g)
            out.append(float(gold is not None and extract_choice(c, p) == gold))
        return out

    choice.__name__ = "choice"
    return choice


REGISTRY: dict[str, RewardFn] = {
    "accuracy": make_accuracy_reward(),
    "format": make_format_reward(),
    "boxed_format": make_format_reward(_BOXED_FORMAT, name="boxed_format"),
    "choice": make_choice_reward(),
}


def get_reward(name_or_path: str) -> RewardFn:
    """A registered reward by name, or `package.module:function` from an installed module.

    >>> get_reward("accuracy")(["Answer: 12"], answer=["12"])
    [1.0]
    >>> get_reward("engine.data.rewards:make_format_reward")  # doctest: +ELLIPSIS
    <function make_format_reward at ...>
    """
    name = name_or_path.strip()
    if name in REGISTRY:
        return REGISTRY[name]
    module_name, sep, attr = name.partition(":")
    if not sep or not module_name or not attr.isidentifier():
        raise KeyError(
            f"unknown reward {name!r}: use one of {', '.join(sorted(REGISTRY))} "
            "or 'package.module:function' of an installed module"
        )
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise KeyError(f"reward {name!r}: cannot import module {module_name!r} ({exc})") from exc
    fn = getattr(module, attr, None)
    if not callable(fn):
        raise KeyError(f"reward {name!r}: {module_name} has no function {attr!r}")
    return fn
