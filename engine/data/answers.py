"""Answer checking: read the answer a response gives, normalise it and the gold, compare them.

`judge(completion, gold, prompt)` returns a `Verdict` (correct?, the answer read, the normalised
gold); the rewards in `engine.data.rewards` and the answer audit both use it.

Reading the answer, in order (the project's own conventions, which math-verify does not know):
1. Think blocks: when the response (or its prompt) opens a `<think>` block, only the text after
   the last `</think>` is graded; a block never closed has no final answer (as TRL's reasoning
   reward). A response without think tags is graded whole.
2. The last non-empty `\\boxed{...}` (an empty `\\boxed{}` is no answer), then `#### ...`, then
   `Answer: ...` / `the answer is ...`, then the last number of the text (exponents such as the
   2 of `m^2` are not numbers of the text).
3. When the gold is a list (`3, 5, 7`: commas outside brackets, not a thousands separator) the
   answer is every box of the final text (or the marked line) split at its commas and compared
   as a set; otherwise the last box is the answer, so a response that revises itself keeps its
   last word.

Normalisation both sides get (what math-verify misses): LaTeX and typographic thousands
separators (`8{,}000`, `10,\\!080`, `10\\,080`, narrow spaces), Unicode minus signs and dashes
before a number (U+2212, U+2012-U+2015, ...), superscripts (`m²` is `m^2`, never `m2`), full-width
and non-ASCII digits, wrappers (`$`, `**`, `\\(`), units after a number (`35 m/s`, `35 cm^2`,
`35\\text{ cm}^2`, `45^\\circ`, `35%`, `\\$35`) and a leading `x =`.

Comparing: plain numbers are decided by a fast path (canonical decimal strings, no parser);
anything else goes to math-verify (`parse` with its LaTeX and expression extraction, `verify`),
with parsed golds cached. Known limits of math-verify 0.9 and what is done about them:
- very small values compare equal (`\\frac{1}{2^{98}}` = `\\frac{1}{2^{99}}`, `10^{-20}` =
  `2\\cdot10^{-20}`: its numeric check chops differences below 10^-15 to zero, and rounds floats to
  6 decimals). Fixed here: a match math-verify accepts between two numbers must also agree
  relatively (1e-20 for exact values, 1e-5 when a float is involved, i.e. a float answer still
  has to carry about 6 significant digits of the gold).
- `parse("3, 5, 7")` without `$` returns 7: lists are split here, never handed to it whole.
"""

from __future__ import annotations

import re
import threading
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

MAX_ANSWER_CHARS = 500  # longer "answers" are compared as strings, never parsed by math-verify
MATH_VERIFY_TIMEOUT_S = 5  # a cold first parse (lazy sympy imports) takes ~1 s, more under load
EXACT_REL_TOL = 1e-20  # two exact numbers (fractions, powers) must agree to this
FLOAT_REL_TOL = 1e-5  # a decimal answer must agree with the gold to about 6 significant digits
NONE_FOUND = "none found"
CHOICE_WINDOW = 200  # characters after an answer marker searched for the chosen letter

BOXED = ("\\boxed", "\\fbox")
_BOXED_OPEN = re.compile(r"\\(?:boxed|fbox)\s*\{")
_THINK_OPEN, _THINK_CLOSE = "<think>", "</think>"

# -- normalisation tables ---------------------------------------------------------------------
_SEP = r"(?:\{,\}|,\\!\s*|\\[,;: !]|~|[\u2009\u202f\u00a0\u2007\u205f])"
_THOUSANDS = re.compile(rf"(?<=\d){_SEP}(?=\d{{3}}(?!\d))")
_SUPERSCRIPTS = "⁰¹²³⁴⁵⁶⁷⁸⁹⁺⁻"
_SUPER_RUN = re.compile(f"[{_SUPERSCRIPTS}]+")
_SUPER_ASCII = str.maketrans(_SUPERSCRIPTS, "0123456789+-")
_MINUS_SIGNS = str.maketrans(dict.fromkeys("\u2212\u2796\ufe63\uff0d\u02d7\ufe58", "-"))
_DASH_BEFORE_NUMBER = re.compile(r"(?<![0-9A-Za-z])[\u2010-\u2015](?=[0-9])")  # `–3`, not `3–5`

# -- answer markers ---------------------------------------------------------------------------
_NUM = r"(?:[0-9]{1,3}(?:,[0-9]{3})+|[0-9]+)(?:\.[0-9]+)?|\.[0-9]+"
_NUMBER = re.compile(rf"(?:(?<![\w)\]}}.])-)?(?<![\^_A-Za-z.])(?<!\^\{{)(?<!_\{{)(?:{_NUM})")
_PLAIN_NUMBER = re.compile(r"^[+-]?(?:[0-9]{1,3}(?:,[0-9]{3})+|[0-9]+)(?:\.[0-9]*)?$|^[+-]?\.\d+$")
_HASHES = re.compile(r"####[ \t]*([^\n]*)")
_ANSWER = re.compile(
    r"answer\s*(?:is|:|=)[:：]?[ \t]*([^\n]*)|答案\s*[是为:：]?\s*([^\n]*)", re.IGNORECASE
)
_WRAPPERS = ("$", "**", "\\(", "\\)", "\\[", "\\]")
_ASSIGNMENT = re.compile(r"^[A-Za-z](?:_\{?\w+\}?)?\s*=\s*(.+)$")
_UNIT_WORD = r"[A-Za-z]+\.?"
_UNIT_PIECE = (
    r"\\(?:text|mathrm|mbox|textrm|operatorname)\s*\{[^{}]*\}|\\%|%|\\circ|°|\\\$|\$|\\[,;: !]|~"
    r"|\^\s*\{?\s*\\circ\s*\}?|\^\s*\{\s*-?\d+\s*\}|\^\s*-?\d+|/|\*|\s+|" + _UNIT_WORD
)
_UNIT_TAIL = re.compile(rf"^(?P<num>[+-]?(?:{_NUM}))(?P<unit>(?:{_UNIT_PIECE})*)$")
_ATTACHED_UNITS = frozenset(  # units a number may touch (`12kg`); `2x` is algebra
    "m cm mm km nm um g kg mg lb lbs oz s ms h hr hrs min mins l ml L mL ft in mi yd mph kph "  # noqa: SIM905
    "kmh km/h m/s cm^2 m^2 km^2 cm^3 m^3 W kW V A J kJ N Pa K C F Hz kHz MHz GHz KB MB GB".split()
)
_TEXT_UNIT = re.compile(
    r"\s*\\(?:text|mathrm|mbox|textrm)\s*\{\s*[A-Za-z][A-Za-z .]*\}(\^\S+)?\s*$"
)
_LIST_JOINER = re.compile(r"^\s*(?:and|or)\s+|\s+(?:and|or)\s+")
_CHOICE_MARKER = re.compile(
    r"(?:answer|correct (?:option|choice))\s*(?:is|:|would be)|答案\s*[是为:：]?|选项?\s*[是为:：]?",
    re.IGNORECASE,
)
_OPTION_MARKER = re.compile(r"\b(?:option|choice|choose|pick|select)\b", re.IGNORECASE)
_LETTER = re.compile(r"(?<![A-Za-z])([A-E])(?![A-Za-z])")
_LETTER_STRONG = re.compile(
    r"\(([A-E])\)|\*\*\(?([A-E])\)?\*\*|\\boxed\{\s*\(?([A-E])\)?\s*\}|(?<![A-Za-z(])([A-E])\)"
)


@dataclass(frozen=True)
class Verdict:
    """One response judged: `correct`, the `answer` read (None: none found), the `gold` compared."""

    correct: bool
    answer: str | None
    gold: str | None


# -- text --------------------------------------------------------------------------------------
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


def prompt_text(prompt: Any) -> str:
    """All the text of a TRL prompt (a string or a list of messages)."""
    if prompt is None:
        return ""
    if isinstance(prompt, str):
        return prompt
    if isinstance(prompt, Sequence):
        return "\n".join(
            str(m.get("content", "")) if isinstance(m, dict) else str(m) for m in prompt
        )
    return str(prompt)


def _opens_think(text: str) -> bool:
    """Does `text` leave a `<think>` block open at its end?"""
    return text.rfind(_THINK_OPEN) > text.rfind(_THINK_CLOSE)


def final_answer_text(completion: Any, prompt: Any = None) -> str | None:
    """The part of a response that is graded: after the last `</think>`; None if a block is open.

    >>> final_answer_text("<think>maybe 3</think> It is 4.")
    ' It is 4.'
    >>> final_answer_text("<think>still thinking 3"), final_answer_text("4 </think> 5", "<think>")
    (None, ' 5')
    """
    text = completion_text(completion)
    if _THINK_OPEN not in text and _THINK_CLOSE not in text:
        return None if _opens_think(prompt_text(prompt)) else text
    if _opens_think(text):
        return None
    return text.rsplit(_THINK_CLOSE, 1)[1]


def normalize_text(text: str) -> str:
    """Fold what models and benchmark files write differently into one spelling.

    Thousands separators (`8{,}000`, `10,\\!080`, `10\\,080`) go, Unicode minus signs and dashes
    before a number become `-`, superscripts become `^n`, NFKC, non-ASCII digits become ASCII.

    >>> normalize_text("$8{,}000 and \\u22123 and 25 m\\u00b2 and 10,\\\\!080")
    '$8000 and -3 and 25 m^2 and 10080'
    """
    text = _THOUSANDS.sub("", text)
    if text.isascii():
        return text
    text = _SUPER_RUN.sub(lambda m: "^" + m.group(0).translate(_SUPER_ASCII), text)
    text = _DASH_BEFORE_NUMBER.sub("-", text.translate(_MINUS_SIGNS))
    text = unicodedata.normalize("NFKC", text)
    digits = {
        ord(c): str(unicodedata.decimal(c))
        for c in set(text)
        if not c.isascii() and unicodedata.decimal(c, None) is not None
    }
    return text.translate(digits) if digits else text


# -- boxes -------------------------------------------------------------------------------------
def boxed_contents(text: str) -> list[str]:
    """Contents of every balanced `\\boxed{...}` / `\\fbox{...}`, in order (nested braces kept).

    One pass matches every brace from the first box on, so 100 kB of unbalanced braces stays
    linear; a box inside a box is not listed twice.

    >>> boxed_contents(r"\\boxed{3}, \\boxed{\\frac{1}{2}} and \\boxed{}")
    ['3', '\\\\frac{1}{2}', '']
    """
    starts = [m.end() for m in _BOXED_OPEN.finditer(text)]
    if not starts:
        return []
    close = _matching_braces(text, starts[0] - 1)
    out, covered_to = [], -1
    for open_at in starts:
        end = close.get(open_at - 1)
        if end is None or open_at <= covered_to:
            continue
        out.append(text[open_at:end].strip())
        covered_to = end
    return out


def last_boxed(text: str) -> str | None:
    """Contents of the last balanced, non-empty `\\boxed{...}`, else None.

    >>> last_boxed(r"so \\boxed{\\frac{1}{2}} and \\boxed{3}"), last_boxed(r"\\boxed{}") is None
    ('3', True)
    """
    boxes = [b for b in boxed_contents(text) if b]
    return boxes[-1] if boxes else None


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


# -- cleaning one answer -----------------------------------------------------------------------
def normalize_number(text: str) -> str | None:
    """Canonical decimal string of a plain number, else None (pure string work, any size).

    >>> normalize_number("1,234.0"), normalize_number("025"), normalize_number("-3.50")
    ('1234', '25', '-3.5')
    >>> normalize_number("12a") is None, normalize_number("-0.00"), normalize_number(".5")
    (True, '0', '0.5')
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


def _strip_wrappers(answer: str) -> str:
    s, changed = answer.strip(), True
    while changed and s:
        changed = False
        for w in _WRAPPERS:
            if s.startswith(w) or s.endswith(w):
                s = s.removeprefix(w).removesuffix(w).strip()
                changed = True
        if s.endswith((".", "。")):
            s, changed = s[:-1].strip(), True
    return s


def _number_with_unit(s: str) -> str | None:
    """`35 m/s`, `35\\text{ cm}^2`, `45^\\circ`, `35%`, `\\$35` -> the number; `2x` stays None."""
    s = s.removeprefix("\\$").removeprefix("$").strip()
    match = _UNIT_TAIL.match(s)
    if not match:
        return None
    unit = match.group("unit")
    if unit and unit[0].isalpha() and unit.split()[0].rstrip(".") not in _ATTACHED_UNITS:
        return None  # `2x`, `3n`: algebra, not a unit (a unit after a space is fine)
    return normalize_number(match.group("num"))


def clean_answer(answer: str) -> str:
    """One answer in canonical form: a plain number when it is one (units dropped), else LaTeX.

    >>> clean_answer("**$35$ m/s**."), clean_answer("x = 1,000"), clean_answer(r"\\frac{1}{2}")
    ('35', '1000', '\\\\frac{1}{2}')
    >>> clean_answer(r"35\\text{ cm}^2"), clean_answer("2x"), clean_answer(r"\\boxed{7}")
    ('35', '2x', '7')
    """
    s = _strip_wrappers(answer)
    if s.startswith(BOXED) and (inner := last_boxed(s)) is not None:
        s = _strip_wrappers(inner)
    if (number := normalize_number(s)) is not None:
        return number
    if (assigned := _ASSIGNMENT.match(s)) and not assigned.group(1).lstrip().startswith("="):
        rest = clean_answer(assigned.group(1))
        if normalize_number(rest) is not None:
            return rest
    if (number := _number_with_unit(s)) is not None:
        return number
    if len(s) <= MAX_ANSWER_CHARS and (unitless := _TEXT_UNIT.sub("", s)) and unitless != s:
        return unitless.strip()
    return s


# -- reading the answer ------------------------------------------------------------------------
def _last_group(pattern: re.Pattern[str], text: str) -> str | None:
    found = None
    for found in pattern.finditer(text):  # noqa: B007 - keep the last match
        pass
    if found is None:
        return None
    value = next((g for g in found.groups() if g is not None), "")
    return value if value.strip() else None


def _marked_text(text: str) -> str | None:
    """The raw answer text after the last `####`, else after the last `Answer:` marker."""
    for pattern in (_HASHES, _ANSWER):
        value = _last_group(pattern, text)
        if value is not None:
            return value
    return None


def _read_single(text: str) -> str | None:
    boxed = last_boxed(text)
    if boxed is not None:
        return clean_answer(boxed)
    marked = _marked_text(text)
    if marked is not None:
        cleaned = clean_answer(marked)
        if cleaned:
            return cleaned
    numbers = _NUMBER.findall(text)
    return normalize_number(numbers[-1]) if numbers else None


def split_list(answer: str) -> list[str]:
    """The items of a list answer (`3, 5, and 7`): split at commas outside brackets and at
    `and`/`or`. One item when there is no such comma or the commas are thousands separators.

    >>> split_list("3, 5, and 7"), split_list("(1, 2)"), split_list("58,500")
    (['3', '5', '7'], ['(1, 2)'], ['58,500'])
    """
    s = answer.strip()
    if _PLAIN_NUMBER.match(s) or "," not in s:
        return [s]
    items, depth, start = [], 0, 0
    for i, c in enumerate(s):
        if c in "([{":
            depth += 1
        elif c in ")]}":
            depth = max(0, depth - 1)
        elif c == "," and depth == 0:
            items.append(s[start:i])
            start = i + 1
    items.append(s[start:])
    parts = [p for item in items for p in _LIST_JOINER.split(item)]
    return [p.strip() for p in parts if p and p.strip()] or [s]


def _read_list(text: str) -> list[str] | None:
    boxes = [b for b in boxed_contents(text) if b]
    raw = [p for b in boxes for p in split_list(b)] if boxes else None
    if raw is None and (marked := _marked_text(text)) is not None:
        raw = split_list(_strip_wrappers(marked))
    if raw is None:
        single = _read_single(text)
        return None if single is None else [single]
    items = [clean_answer(p) for p in raw]
    return [i for i in items if i] or None


def extract_answer(completion: Any, prompt: Any = None) -> str | None:
    """The answer a response gives (see the module docstring for the order), else None.

    >>> extract_answer("Step 1: 2+3=5.\\nAnswer: 5 m/s"), extract_answer("#### 1,000")
    ('5', '1000')
    >>> extract_answer("<think>\\\\boxed{3}</think> The final answer is 4."), extract_answer("no")
    ('4', None)
    """
    region = final_answer_text(completion, prompt)
    return None if region is None else _read_single(normalize_text(region))


def extract_gold(gold: Any) -> str | None:
    """A gold answer in canonical form: markers as in `extract_answer`, else the whole value.

    >>> extract_gold("He pays 2 * 9 = <<2*9=18>>18.\\n#### 18"), extract_gold(27.0)
    ('18', '27')
    >>> extract_gold("\\\\frac{14}{3}"), extract_gold("10,\\\\!080"), extract_gold("  ") is None
    ('\\\\frac{14}{3}', '10080', True)
    """
    if gold is None or isinstance(gold, bool):
        return None
    if isinstance(gold, int | float):
        return normalize_number(repr(gold)) or str(gold)
    return _gold_text(str(gold))


@lru_cache(maxsize=4096)
def _gold_text(gold: str) -> str | None:
    """extract_gold of a string (cached: GRPO scores a group of responses per gold)."""
    text = normalize_text(gold)
    boxed = last_boxed(text)
    if boxed is not None:
        return clean_answer(boxed)
    marked = _marked_text(text)
    cleaned = clean_answer(marked if marked is not None else text)
    return cleaned or None


# -- comparing ---------------------------------------------------------------------------------
def answers_match(pred: str | None, gold: str | None) -> bool:
    """Equal numbers (fast path), equal normalised strings, or equal under math-verify.

    >>> answers_match("0.5", "\\\\frac{1}{2}"), answers_match("7", "8")
    (True, False)
    >>> answers_match("\\\\frac{1}{2^{98}}", "\\\\frac{1}{2^{99}}")
    False
    """
    if not pred or not gold:
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
    for old, new in (("\\left", ""), ("\\right", ""), ("\\!", ""), ("dfrac", "frac")):
        s = s.replace(old, new)
    return re.sub(r"\s+", "", s).lower()


def _timeout() -> int | None:
    """math-verify's signal timeout only works in the main thread."""
    main = threading.current_thread() is threading.main_thread()
    return MATH_VERIFY_TIMEOUT_S if main else None


class _NotParsed(Exception):
    """Raised inside the cache so that a failed (perhaps timed-out) parse is not remembered."""


@lru_cache(maxsize=4096)
def _parsed_cached(answer: str, timeout: int | None) -> tuple[Any, ...]:
    from math_verify import ExprExtractionConfig, LatexExtractionConfig, parse

    configs = [LatexExtractionConfig(), ExprExtractionConfig()]
    try:
        found = parse(f"${answer}$", extraction_config=configs, parsing_timeout=timeout)
    except Exception as exc:  # noqa: BLE001 - an unparsable answer is simply not an answer
        raise _NotParsed from exc
    if not found:
        raise _NotParsed
    return tuple(found)


def _parsed(answer: str, timeout: int | None) -> tuple[Any, ...]:
    """math-verify's reading of one `$answer$`, () if none (cached: a gold is read once per
    group; failures are not cached, since a cold first parse can hit the timeout)."""
    try:
        return _parsed_cached(answer, timeout)
    except _NotParsed:
        return ()


def _math_verify(pred: str, gold: str) -> bool:
    from math_verify import verify

    timeout = _timeout()
    g, p = _parsed(gold, timeout), _parsed(pred, timeout)
    if not g or not p:
        return False
    if "%" not in pred + gold and _clearly_different(g[0], p[0]):
        return False  # two numbers far apart: skip math-verify's symbolic simplification
    try:
        if not verify(list(g), list(p), timeout_seconds=timeout):
            return False
    except Exception:  # noqa: BLE001 - a comparison that fails is not a match
        return False
    return _close_relatively(g[0], p[0])


def _numbers(gold: Any, pred: Any) -> tuple[Any, Any] | None:
    """(gold, pred) as 40-digit sympy numbers when both are plain numbers, else None."""
    import sympy

    if not (isinstance(gold, sympy.Expr) and isinstance(pred, sympy.Expr)):
        return None
    try:
        if not (gold.is_number and pred.is_number):
            return None
        a, b = sympy.N(gold, 40), sympy.N(pred, 40)
    except Exception:  # noqa: BLE001 - sympy could not evaluate: not a plain number
        return None
    return (a, b) if a.is_real and b.is_real else None


def _clearly_different(gold: Any, pred: Any) -> bool:
    """Two real numbers further apart than any rounding math-verify forgives (6 decimals)."""
    values = _numbers(gold, pred)
    if values is None:
        return False
    a, b = values
    return bool(abs(a - b) > 1e-4 * max(abs(a), abs(b)) + 1e-5)


def _close_relatively(gold: Any, pred: Any) -> bool:
    """False when both are numbers that differ relatively (math-verify's small-value blind spot)."""
    import sympy

    if not (isinstance(gold, sympy.Expr) and isinstance(pred, sympy.Expr)):
        return True
    try:
        if not (gold.is_number and pred.is_number):
            return True
        a, b = sympy.N(gold, 40), sympy.N(pred, 40)
        scale = max(abs(a), abs(b))
        if not scale.is_real or scale == 0:
            return True
        floats = gold.has(sympy.Float) or pred.has(sympy.Float)
        tol = FLOAT_REL_TOL if floats else EXACT_REL_TOL
        return bool(abs(sympy.N(gold - pred, 40)) <= tol * scale)
    except Exception:  # noqa: BLE001 - sympy could not evaluate: keep math-verify's verdict
        return True


@lru_cache(maxsize=4096)
def gold_items(gold: str) -> tuple[str, ...]:
    """The gold's items when it is a list (`3, 5, 7`), else (gold,) (cached per gold)."""
    return tuple(clean_answer(i) for i in split_list(gold))


def _sets_match(preds: list[str], golds: tuple[str, ...]) -> bool:
    """Every gold item is matched by an answer item and every answer item matches a gold item."""
    return all(any(answers_match(p, g) for p in preds) for g in golds) and all(
        any(answers_match(p, g) for g in golds) for p in preds
    )


def judge(completion: Any, gold: Any, prompt: Any = None) -> Verdict:
    """Read a response's answer and compare it with the gold (see the module docstring).

    >>> judge(r"The roots are \\boxed{3}, \\boxed{5}, and \\boxed{7}.", "3, 5, 7")
    Verdict(correct=True, answer='3, 5, 7', gold='3, 5, 7')
    >>> judge(r"\\boxed{7}", "3, 5, 7").correct, judge("Answer: 35 m/s", "#### 35").correct
    (False, True)
    """
    gold_norm = extract_gold(gold)
    region = final_answer_text(completion, prompt)
    if region is None or not gold_norm:
        answer = None if region is None else extract_answer(region)
        return Verdict(False, answer, gold_norm)
    text = normalize_text(region)
    golds = gold_items(gold_norm)
    if len(golds) > 1:
        preds = _read_list(text)
        answer = None if preds is None else ", ".join(preds)
        return Verdict(bool(preds) and _sets_match(preds, golds), answer, gold_norm)
    answer = _read_single(text)
    return Verdict(answers_match(answer, gold_norm), answer, gold_norm)


def is_correct(completion: Any, gold: Any, prompt: Any = None) -> bool:
    """Does the completion's answer match the gold? (`judge(...).correct`)

    >>> is_correct("\\nStep 1: 23+48=71.\\nStep 2: 71-17=54.\\nAnswer: 54", "54")
    True
    >>> is_correct("Answer: 54", "#### 55")
    False
    """
    return judge(completion, gold, prompt).correct


# -- multiple choice ---------------------------------------------------------------------------
def _first_letter(text: str) -> str | None:
    strong = _LETTER_STRONG.search(text)
    plain = _LETTER.search(text)
    if strong and (not plain or strong.start() <= plain.start()):
        return next(g for g in strong.groups() if g)
    return plain.group(1) if plain else None


def _letter_after(markers: re.Pattern[str], text: str) -> str | None:
    """The first letter after the last marker that is followed by one on its line."""
    for m in reversed(list(markers.finditer(text))):
        line = text[m.end() : m.end() + CHOICE_WINDOW].split("\n", 1)[0]
        letter = _first_letter(re.sub(r"^\s*(?:option|choice)\s+", "", line, flags=re.I))
        if letter:
            return letter
    return None


def extract_choice(completion: Any, prompt: Any = None) -> str | None:
    """The multiple-choice letter (A-E) a response picks, not the last capital of the text.

    Order: the last non-empty box, the letter after the last `answer` marker, after the last
    `option`/`choose` marker, the last letter written as `(B)` / `**B**` / `B)`, then the last
    standalone capital A-E that is not the article `A` before a lowercase word.

    >>> extract_choice("The answer is C. A quick check of the other options confirms it.")
    'C'
    >>> extract_choice("Answer: (B), because option D is too large."), extract_choice(r"\\boxed{B}")
    ('B', 'B')
    """
    region = final_answer_text(completion, prompt)
    if region is None:
        return None
    text = normalize_text(region)
    boxed = last_boxed(text)
    if boxed is not None and (letter := _first_letter(boxed)):
        return letter
    for markers in (_CHOICE_MARKER, _OPTION_MARKER):
        if letter := _letter_after(markers, text):
            return letter
    strong = [next(g for g in m.groups() if g) for m in _LETTER_STRONG.finditer(text)]
    if strong:
        return strong[-1]
    plain = [m for m in _LETTER.finditer(text) if not _is_article(text, m)]
    return plain[-1].group(1) if plain else None


def _is_article(text: str, m: re.Match[str]) -> bool:
    return m.group(1) == "A" and re.match(r"\s+[a-z]", text[m.end() : m.end() + 2]) is not None


def normalize_choice(gold: Any) -> str | None:
    """A gold letter from `C`, `(c)`, `C. 1-i` or `\\text{(C)}`; None when there is none.

    >>> normalize_choice("(c)"), normalize_choice("C. 1-\\\\mathrm{i}"), normalize_choice("")
    ('C', 'C', None)
    """
    s = str(gold or "").strip()
    if len(s) == 1:
        s = s.upper()
    letter = extract_choice(s)
    if letter is None and re.fullmatch(r"\(?[a-e]\)?", s):
        return s.strip("()").upper()
    return letter
