"""Verifiable rewards with TRL's signature `fn(completions, **kwargs) -> list[float]`.

TRL passes every dataset column as a keyword (`answer`, `choice_answer`, ...); `completions[i]`
is a string for plain-text prompts and `[{"role": "assistant", "content": ...}]` for chat prompts.

Answer extraction (`extract_answer`) tries, in order: the last `\\boxed{...}` (nested braces),
`#### ...`, `Answer: ...`, then the last number. Numbers are normalised: thousands separators
and a trailing `.0` are dropped, full-width digits are folded to ASCII. Gold answers go through
`extract_gold`, the same extractor except that a gold with no marker is taken whole (a MATH-500
gold `\\frac{14}{3}` is an answer, not "the last number 3"). Two answers match when they are
equal numbers, equal strings after normalisation, or (for LaTeX) equal under `math-verify`.

`REGISTRY` maps a name to a reward; `get_reward("name")` or `get_reward("pkg.module:function")`
(an installed module) returns one. Strings are never evaluated.
"""

from __future__ import annotations

import importlib
import re
import threading
import unicodedata
from collections.abc import Callable, Sequence
from typing import Any

RewardFn = Callable[..., list[float]]

MAX_ANSWER_CHARS = 500  # longer "answers" are compared as strings, never parsed by math-verify
MATH_VERIFY_TIMEOUT_S = 2
BOXED = ("\\boxed", "\\fbox")
_BOXED_OPEN = re.compile(r"\\(?:boxed|fbox)\s*\{")
_LEADING_NUMBER = re.compile(r"^(-?[0-9][0-9,]*(?:\.[0-9]+)?)\s+[^0-9\\=+*/^]*$")

_NUMBER = re.compile(r"-?(?:[0-9]{1,3}(?:,[0-9]{3})+|[0-9]+)(?:\.[0-9]+)?")
_PLAIN_NUMBER = re.compile(r"^[+-]?(?:[0-9]{1,3}(?:,[0-9]{3})+|[0-9]+)(?:\.[0-9]*)?$")
_HASHES = re.compile(r"####[ \t]*([^\n]*)")
_ANSWER = re.compile(r"answer\s*(?:is|:)[ \t]*([^\n]*)", re.IGNORECASE)
_CHOICE = re.compile(r"(?<![A-Za-z])([A-E])(?![A-Za-z])")
_FORMAT = re.compile(r"Answer:[ \t]*-?[0-9][0-9,]*(?:\.[0-9]+)?\s*$")
_WRAPPERS = ("$", "**", "\\(", "\\)", "\\[", "\\]")


def completion_text(completion: Any) -> str:
    """The text of a TRL completion: a string, or the last message of a conversation.

    >>> completion_text([{"role": "assistant", "content": "Answer: 3"}])
    'Answer: 3'
    """
    if isinstance(completion, str):
        return completion
    if isinstance(completion, Sequence) and completion:
        last = completion[-1]
        return str(last.get("content", "")) if isinstance(last, dict) else str(last)
    if isinstance(completion, dict):
        return str(completion.get("content", ""))
    return "" if completion is None else str(completion)


def last_boxed(text: str) -> str | None:
    """Contents of the last balanced `\\boxed{...}` (nested braces allowed), else None.

    One pass matches every brace from the first `\\boxed` on, so 100 kB of unbalanced braces
    stays linear.

    >>> last_boxed(r"so \\boxed{\\frac{1}{2}} and \\boxed{3}")
    '3'
    >>> last_boxed(r"\\boxed{\\frac{1}{2}}"), last_boxed(r"\\boxed{1") is None
    ('\\\\frac{1}{2}', True)
    """
    starts = [m.end() for m in _BOXED_OPEN.finditer(text)]
    if not starts:
        return None
    close = _matching_braces(text, starts[0] - 1)
    for open_at in reversed(starts):
        end = close.get(open_at - 1)
        if end is not None:
            return text[open_at:end].strip()
    return None


def _matching_braces(text: str, begin: int) -> dict[int, int]:
    """{index of "{": index of its "}"} for the balanced pairs in text[begin:]."""
    stack, pairs = [], {}
    for i in range(begin, len(text)):
        c = text[i]
        if c == "{":
            stack.append(i)
        elif c == "}" and stack:
            pairs[stack.pop()] = i
    return pairs


def normalize_number(text: str) -> str | None:
    """Canonical decimal string of a plain number, else None (pure string work, any size).

    >>> normalize_number("1,234.0"), normalize_number("025"), normalize_number("-3.50")
    ('1234', '25', '-3.5')
    >>> normalize_number("12a") is None, normalize_number("-0.00")
    (True, '0')
    """
    s = text.strip().rstrip(".").strip()
    if not _PLAIN_NUMBER.match(s):
        return None
    s = s.replace(",", "")
    sign = "-" if s.startswith("-") else ""
    whole, _, frac = s.lstrip("+-").partition(".")
    whole, frac = whole.lstrip("0") or "0", frac.rstrip("0")
    body = f"{whole}.{frac}" if frac else whole
    return "0" if body == "0" else sign + body


def _clean(answer: str) -> str:
    s = answer.strip()
    changed = True
    while changed and s:
        changed = False
        for w in _WRAPPERS:
            if s.startswith(w) or s.endswith(w):
                s = s.removeprefix(w).removesuffix(w).strip()
                changed = True
        if s.endswith("."):
            s, changed = s[:-1].strip(), True
    inner = last_boxed(s) if s.startswith(BOXED) else None
    s = inner if inner is not None else s
    number = normalize_number(s)
    if number is None and (lead := _LEADING_NUMBER.match(s)):
        number = normalize_number(lead.group(1))  # "54 apples" -> 54
    return number or s


def _marked(text: str) -> str | None:
    boxed = last_boxed(text)
    if boxed is not None:
        return _clean(boxed)
    for pattern in (_HASHES, _ANSWER):
        found = None
        for found in pattern.finditer(text):  # noqa: B007 - keep the last match
            pass
        if found and found.group(1).strip():
            return _clean(found.group(1))
    return None


def _fold(text: str) -> str:
    """NFKC, then every Unicode decimal digit (Arabic-Indic, Devanagari, ...) to ASCII."""
    if text.isascii():
        return text
    text = unicodedata.normalize("NFKC", text)
    digits = {
        ord(c): str(unicodedata.decimal(c))
        for c in set(text)
        if not c.isascii() and unicodedata.decimal(c, None) is not None
    }
    return text.translate(digits) if digits else text


def extract_answer(text: Any) -> str | None:
    """The answer a completion gives: last \\boxed, then ####, Answer:, then the last number.

    >>> extract_answer("Step 1: 2+3=5.\\nAnswer: 5")
    '5'
    >>> extract_answer("so it is \\\\boxed{\\\\frac{1}{2}}."), extract_answer("#### 1,000")
    ('\\\\frac{1}{2}', '1000')
    >>> extract_answer("I think 12 or maybe 13.0"), extract_answer("no idea") is None
    ('13', True)
    """
    text = _fold(completion_text(text))
    marked = _marked(text)
    if marked is not None:
        return marked
    numbers = _NUMBER.findall(text)
    return normalize_number(numbers[-1]) if numbers else None


def extract_gold(gold: Any) -> str | None:
    """A gold answer in canonical form: markers as in `extract_answer`, else the whole value.

    >>> extract_gold("He pays 2 * 9 = <<2*9=18>>18.\\n#### 18"), extract_gold(27.0)
    ('18', '27')
    >>> extract_gold("\\\\frac{14}{3}"), extract_gold("  ") is None
    ('\\\\frac{14}{3}', True)
    """
    if gold is None or isinstance(gold, bool):
        return None
    if isinstance(gold, int | float):
        return normalize_number(repr(gold)) or str(gold)
    text = _fold(str(gold))
    marked = _marked(text)
    if marked is not None:
        return marked
    cleaned = _clean(text)
    return cleaned or None


def answers_match(pred: str | None, gold: str | None) -> bool:
    """Equal numbers, equal normalised strings, or LaTeX equal under math-verify.

    >>> answers_match("0.5", "\\\\frac{1}{2}"), answers_match("7", "8")
    (True, False)
    """
    if pred is None or gold is None or not pred or not gold:
        return False
    p_num, g_num = normalize_number(pred), normalize_number(gold)
    if p_num is not None and g_num is not None:
        return p_num == g_num
    if _squash(pred) == _squash(gold):
        return True
    if len(pred) > MAX_ANSWER_CHARS or len(gold) > MAX_ANSWER_CHARS:
        return False
    return _math_verify(pred, gold)


def _squash(s: str) -> str:
    s = s.replace("\\left", "").replace("\\right", "").replace("\\!", "").replace("dfrac", "frac")
    return re.sub(r"\s+", "", s).lower()


def _math_verify(pred: str, gold: str) -> bool:
    """math-verify on `$...$`-wrapped answers; its signal timeout only works in the main thread."""
    try:
        from math_verify import parse, verify
    except ImportError:  # pragma: no cover - a declared dependency
        return False
    timeout = (
        MATH_VERIFY_TIMEOUT_S if threading.current_thread() is threading.main_thread() else None
    )
    try:
        g = parse(f"${gold}$", parsing_timeout=timeout)
        p = parse(f"${pred}$", parsing_timeout=timeout)
        return bool(g and p and verify(g, p, timeout_seconds=timeout))
    except Exception:  # noqa: BLE001 - an unparsable answer is simply not correct
        return False


def is_correct(completion: Any, gold: Any) -> bool:
    """Does the completion's extracted answer match the (extracted) gold?

    >>> is_correct("\\nStep 1: 23+48=71.\\nStep 2: 71-17=54.\\nAnswer: 54", "54")
    True
    >>> is_correct("Answer: 54", "#### 55")
    False
    """
    return answers_match(extract_answer(completion), extract_gold(gold))


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
    """

    def accuracy(completions: list[Any], **kwargs: Any) -> list[float]:
        golds = _golds(kwargs, answer_field, len(completions))
        return [float(is_correct(c, g)) for c, g in zip(completions, golds, strict=True)]

    accuracy.__name__ = "accuracy" if answer_field == "answer" else f"accuracy_{answer_field}"
    return accuracy


def make_format_reward(pattern: str = _FORMAT.pattern, name: str = "format") -> RewardFn:
    """1.0 when the completion matches `pattern` (default: ends with `Answer: <number>`).

    >>> make_format_reward()(["Step 1: 1+1=2.\\nAnswer: 2", "2"])
    [1.0, 0.0]
    >>> make_format_reward(r"\\\\boxed\\{")(["so \\\\boxed{2}"])
    [1.0]
    """
    compiled = re.compile(pattern)

    def format_reward(completions: list[Any], **kwargs: Any) -> list[float]:
        return [float(compiled.search(completion_text(c)) is not None) for c in completions]

    format_reward.__name__ = name  # TRL logs rewards/<__name__>/mean
    return format_reward


def extract_choice(text: Any) -> str | None:
    """The multiple-choice letter (A-E) a completion picks: boxed/marked answer, else the last.

    >>> extract_choice("The answer is (C)."), extract_choice("\\\\boxed{B}")
    ('C', 'B')
    """
    text = _fold(completion_text(text))
    marked = _marked(text)
    for candidate in (marked, text):
        if candidate:
            letters = _CHOICE.findall(candidate)
            if letters:
                return letters[-1]
    return None


def make_choice_reward(choice_field: str = "choice_answer") -> RewardFn:
    """1.0 when the picked letter equals `choice_field` (Gaokao's `choice_answer`), else 0.0.

    >>> make_choice_reward()(["I pick (B)", "Answer: A", "Answer: B"], choice_answer=["B", "B", ""])
    [1.0, 0.0, 0.0]
    """

    def choice(completions: list[Any], **kwargs: Any) -> list[float]:
        golds = _golds(kwargs, choice_field, len(completions))
        out = []
        for c, g in zip(completions, golds, strict=True):
            gold = str(g or "").strip().upper()
            out.append(float(bool(gold) and extract_choice(c) == gold))
        return out

    choice.__name__ = "choice"
    return choice


REGISTRY: dict[str, RewardFn] = {
    "accuracy": make_accuracy_reward(),
    "format": make_format_reward(),
    "boxed_format": make_format_reward(r"\\boxed\{", name="boxed_format"),
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
