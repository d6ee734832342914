"""Reward functions' outputs checked before TRL sees them.

TRL turns `None` into NaN ("not applicable to this row") and feeds everything else to
`torch.tensor`, so a reward that returns NaN is silently read as "not applicable", and one that
returns a string dies deep in torch with "too many dimensions 'str'". `checked_reward(fn)`
wraps a reward function so that each value is a finite real number or None, and the list has
one value per completion; anything else raises `RewardError` naming the function, the value
and the completion's index, which fails the run with that one line.
"""

from __future__ import annotations

import functools
import inspect
import math
from collections.abc import Callable
from numbers import Real
from typing import Any


class RewardError(ValueError):
    """A reward function returned something that is not a reward."""


def reward_name(fn: Callable) -> str:
    module = getattr(fn, "__module__", "") or ""
    name = getattr(fn, "__name__", repr(fn))
    return f"{module}:{name}" if module and not module.startswith("engine.") else name


def check_rewards(name: str, values: Any, n: int) -> list[float | None]:
    """`values` as a list of n finite floats or None; RewardError otherwise.

    >>> check_rewards("acc", [1, 0.5, None], 3)
    [1.0, 0.5, None]
    >>> check_rewards("acc", [float("nan")], 1)
    Traceback (most recent call last):
    ...
    engine.training.reward_check.RewardError: reward function 'acc' returned nan for completion 0: a reward must be a finite number, or None for "not applicable"
    """
    if isinstance(values, str | bytes) or not hasattr(values, "__len__"):
        raise RewardError(
            f"reward function {name!r} returned {_show(values)}: it must return a list with one "
            f"reward per completion ({n})"
        )
    values = list(values)
    if len(values) != n:
        raise RewardError(
            f"reward function {name!r} returned {len(values)} values for {n} completions"
        )
    out: list[float | None] = []
    for i, value in enumerate(values):
        if value is None:
            out.append(None)
            continue
        if not isinstance(value, Real) or not math.isfinite(float(value)):
            raise RewardError(
                f"reward function {name!r} returned {_show(value)} for completion {i}: a reward "
                'must be a finite number, or None for "not applicable"'
            )
        out.append(float(value))
    return out


def _show(value: Any) -> str:
    text = repr(value)
    text = text if len(text) <= 60 else text[:57] + "..."
    kind = type(value).__name__
    return text if isinstance(value, float) else f"{text} (a {kind})"


def checked_reward(fn: Callable) -> Callable:
    """`fn` with its outputs checked (check_rewards); keeps its __name__ for TRL's logs and its
    async-ness (TRL awaits coroutine reward functions)."""
    name = reward_name(fn)

    def n_of(kwargs: dict[str, Any]) -> int:
        return len(kwargs.get("completions") or kwargs.get("prompts") or [])

    if inspect.iscoroutinefunction(fn):

        @functools.wraps(fn)
        async def checked_async(*args: Any, **kwargs: Any) -> list[float | None]:
            values = await fn(*args, **kwargs)
            return check_rewards(name, values, n_of(kwargs) if not args else len(args[0]))

        return checked_async

    @functools.wraps(fn)
    def checked(*args: Any, **kwargs: Any) -> list[float | None]:
        values = fn(*args, **kwargs)
        return check_rewards(name, values, n_of(kwargs) if not args else len(args[0]))

    return checked
