"""The answer audit: which recorded responses did the verifier most likely misjudge?

Each recorded response keeps the answer the verifier read (`answer_read`; "" when it found none,
None when the run predates the audit: "not recorded") and the normalised gold it compared with
(`gold_read`). Two kinds of suspects, both cheap string checks on what was recorded:

- `MISSED`: scored 0 although the gold appears in the response's final answer text (the text
  after the last `</think>`, normalised like the answers: thousands separators, minus signs).
  A number counts only as a whole number (gold 5 is not in 15, -5 or 5.5).
- `LENIENT`: scored 1 although the answer read is not literally the gold (a match only
  math-verify's equivalence or the normalisation made: worth a look, often right).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from engine.data.answers import (
    NONE_FOUND,
    final_answer_text,
    gold_items,
    normalize_number,
    normalize_text,
)

MISSED = "scored 0, gold in the final answer"
LENIENT = "scored 1, answer read is not the gold"
NOT_RECORDED = "not recorded"
_THOUSANDS_COMMA = re.compile(r"(?<=\d),(?=\d{3}(?!\d))")


@dataclass(frozen=True)
class Suspect:
    """One response the verifier likely misjudged, with what it read and the gold."""

    step: int
    group_idx: int
    sample_idx: int
    reason: str  # MISSED or LENIENT
    answer: str  # the answer read, or NONE_FOUND
    gold: str
    reward: float | None


@dataclass
class AuditResult:
    """Counts over the audited responses and the suspects, in (step, group, sample) order."""

    responses: int = 0  # responses in the range
    not_recorded: int = 0  # from a run that predates the audit
    counts: dict[str, int] = field(default_factory=lambda: {MISSED: 0, LENIENT: 0})
    suspects: list[Suspect] = field(default_factory=list)


def answer_label(answer: str | None) -> str:
    """How the app shows a recorded answer: the text, "none found" or "not recorded".

    >>> answer_label("35"), answer_label(""), answer_label(None)
    ('35', 'none found', 'not recorded')
    """
    if answer is None:
        return NOT_RECORDED
    return answer if answer else NONE_FOUND


def gold_in_text(gold: str, text: str) -> bool:
    """Does every item of `gold` appear in `text` (numbers as whole numbers)?

    >>> gold_in_text("5", "so 3 + 2 = 5 apples"), gold_in_text("5", "15 or -5 or 5.5")
    (True, False)
    >>> gold_in_text("8000", "$8{,}000"), gold_in_text("3, 5, 7", "3, 5 and 7")
    (True, True)
    """
    text = _THOUSANDS_COMMA.sub("", normalize_text(text))
    squashed = re.sub(r"\s+", "", text)
    for item in gold_items(gold):
        number = normalize_number(item)
        if number is not None:
            spelled = _number_spellings(number)
            pattern = rf"(?<![\d.,\-])(?:{spelled})(?![\d]|[.,]\d)"
            if not re.search(pattern, text):
                return False
        elif re.sub(r"\s+", "", item) not in squashed:
            return False
    return bool(gold.strip())


def _number_spellings(number: str) -> str:
    """Regex of the ways a canonical number is written: 5, 5.0, 5.00 (and -5 for -5)."""
    whole, _, frac = number.partition(".")
    body = re.escape(whole) + (rf"\.{re.escape(frac)}0*" if frac else r"(?:\.0+)?")
    return body


def audit(rows: Iterable[Mapping[str, Any]]) -> AuditResult:
    """Suspects among recorded responses (dicts with step, group_idx, sample_idx, prompt,
    completion, correct, reward, answer_read, gold_read), in the order given."""
    result = AuditResult()
    for row in rows:
        result.responses += 1
        answer, gold = row.get("answer_read"), row.get("gold_read")
        if answer is None or gold is None:
            result.not_recorded += 1
            continue
        reason = _reason(row, answer, gold)
        if reason is None:
            continue
        result.counts[reason] += 1
        result.suspects.append(
            Suspect(
                step=int(row["step"]),
                group_idx=int(row.get("group_idx") or 0),
                sample_idx=int(row.get("sample_idx") or 0),
                reason=reason,
                answer=answer_label(answer),
                gold=gold,
                reward=row.get("reward"),
            )
        )
    return result


def _reason(row: Mapping[str, Any], answer: str, gold: str) -> str | None:
    if not gold:
        return None
    if row.get("correct"):
        return LENIENT if answer.strip() != gold.strip() else None
    final = final_answer_text(row.get("completion") or "", row.get("prompt"))
    return MISSED if final is not None and gold_in_text(gold, final) else None
