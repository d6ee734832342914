"""The Playground's inputs are checked where they enter by the run config's rules for the same
quantities (engine.studio.playground.INPUT_FIELDS): pure, no model, no server."""

from __future__ import annotations

import math

import pytest

from app.pages.playground import generation_inputs, stride_input
from engine.config import ConfigError, StudioConfig, field_problems
from engine.runs.admission import AccessPolicy
from engine.studio.playground import INPUT_FIELDS, check_inputs, checked_settings, input_help

GOOD = dict(max_new_tokens=64, temperature=1.0, top_p=1.0, seed=0, stride=4, greedy=False)
# input -> values of every kind the page can send: typos of size, sign, zero, NaN, infinity,
# the empty box (None), a fraction where a count is wanted, past the store's 32-bit integers
TRIED = {
    "max_new_tokens": [64, 1, 0, -5, None, 2**40, 2.5],
    "temperature": [1.0, 0.01, 10.0, 1e12, 0.0, -1.0, math.nan, math.inf, None],
    "top_p": [1.0, 0.5, 0.0, 1.5, -0.1, math.nan, None],
    "seed": [0, 7, -1, 2**40, None, 1.5],
    "stride": [4, 1, 0, -3, None, 0.5],
}
LABEL = dict(zip(GOOD, INPUT_FIELDS, strict=False))  # keyword -> the label the page shows


def config_refuses(path: str, value) -> bool:
    section, _, name = path.partition(".")
    data = {section: {name: value}}
    if path == "shaping.stride":  # the curve-window rule across sections is not the Playground's
        data["grpo"] = {"max_completion_length": 10**6}
        data["shaping"]["max_len"] = None
    _, errors = StudioConfig.parse(data)
    return any(p == path for p, _ in errors)


@pytest.mark.parametrize("key", list(TRIED))
def test_each_input_is_refused_exactly_when_the_run_config_refuses_its_field(key):
    """Temperature 1e12 was accepted silently (garbage with U+FFFD characters); the Playground
    had its own bounds (minimum 0.01) where the training config has (0, 10]."""
    for value in TRIED[key]:
        path = INPUT_FIELDS[LABEL[key]]
        refused = True
        try:
            checked_settings(**(GOOD | {key: value}))
            refused = False
        except ConfigError as exc:
            assert [label for label, _ in exc.errors] == [LABEL[key]], (key, value, exc.errors)
        assert refused == config_refuses(path, value), (key, value)


def test_the_page_says_one_line_naming_the_input_and_the_fix():
    """Max new tokens -5 gave Gradio's "Value -5 is less than minimum value 1." naming no field;
    temperature 1e12 was generated with."""
    ctx = type("Ctx", (), {"policy": AccessPolicy.command_line()})()
    with pytest.raises(ValueError) as bad:
        generation_inputs(ctx, -5, 1e12, 1.0, 0, 4, False)
    line = str(bad.value)
    assert "\n" not in line
    assert "max new tokens: must be >= 1" in line
    assert "temperature: must be in (0, 10]" in line
    gen, rank = generation_inputs(ctx, 32, 0.7, 0.9, 3, 2, True)
    assert (gen.max_new_tokens, gen.temperature, gen.top_p, gen.seed, gen.greedy) == (
        32,
        0.7,
        0.9,
        3,
        True,
    )
    assert rank.stride == 2
    with pytest.raises(ValueError, match=r"^stride s: must be >= 1$"):
        stride_input(0)
    assert stride_input(5) == 5


def test_inputs_show_the_run_config_help_of_their_field():
    for label, path in INPUT_FIELDS.items():
        assert path in input_help(label)
    assert "Sampling temperature" in input_help("temperature")
    assert field_problems({"grpo.temperature": 1e12}) == [
        ("grpo.temperature", "must be in (0, 10]")
    ]
    with pytest.raises(ConfigError):
        check_inputs({"temperature": None})
