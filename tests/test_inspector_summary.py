"""The inspector's summary of one response (app.pages.inspector.stats_markdown): pure, no server."""

from __future__ import annotations

import numpy as np

from app.pages.inspector import stats_markdown
from app.queries import Response


def response(**stats) -> Response:
    return Response(
        group_idx=0,
        sample_idx=0,
        prompt="Q: 74+63-23=?\nA:",
        completion="Step 1: 74+63=137.",
        token_ids=np.arange(16),
        token_entropy=None,
        token_logprob=None,
        curve=np.array([]),
        positions=np.array([], dtype=np.int64),
        stats={"answer_read": "137", "gold_read": "114", "length": 16, "rewards": {}} | stats,
    )


def test_a_truncated_response_says_its_answer_is_from_an_unfinished_response():
    """A response cut at max_completion_length showed "answer read 137 · gold 114" with nothing
    saying that it was cut: the answer read looked like the model's final answer."""
    text = stats_markdown(response(truncated=True))
    assert "truncated at 16 tokens" in text
    assert "unfinished response" in text
    answer_line = next(line for line in text.split("\n\n") if "answer read" in line)
    assert "truncated" in answer_line  # beside the answer it qualifies


def test_a_finished_or_unrecorded_response_says_nothing_of_truncation():
    assert "truncated" not in stats_markdown(response(truncated=False))
    assert "truncated" not in stats_markdown(response(truncated=None))  # recorded before v4
