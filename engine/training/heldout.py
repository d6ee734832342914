"""Held-out accuracy during training: sampled at the training temperature, fixed seed per call.

Sampling runs inside `torch.random.fork_rng`, so an evaluation never shifts the training RNG (a
run with evaluations draws the same rollouts as one without). Every process samples its strided
share of the problems; the per-problem correct counts are gathered in problem order.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from accelerate.utils import gather_object

from engine.evaluation.passk import render_prompt, sample_completions, score


@dataclass
class HeldOut:
    """Problems (dataset rows with `prompt` and gold columns) and how to sample them."""

    rows: list[dict[str, Any]]
    reward_fn: Callable
    n_samples: int = 1
    temperature: float = 1.0
    top_p: float = 1.0
    max_new_tokens: int = 64
    seed: int = 0
    batch_problems: int = 50

    def counts(self, trainer) -> list[int]:
        """Correct samples per problem (0..n_samples), every problem, on every process."""
        acc = trainer.accelerator
        model = acc.unwrap_model(trainer.model)
        tok = trainer.processing_class
        mine = list(range(acc.process_index, len(self.rows), acc.num_processes))
        was_training = model.training
        model.eval()
        try:
            with torch.random.fork_rng(devices=[]):
                local = self._count(model, tok, [self.rows[i] for i in mine])
        finally:
            model.train(was_training)
        pairs = gather_object(list(zip(mine, local, strict=True)))
        return [c for _, c in sorted(pairs)]

    def _count(self, model, tok, rows: list[dict[str, Any]]) -> list[int]:
        return correct_counts(
            model,
            tok,
            rows,
            self.reward_fn,
            n=self.n_samples,
            temperature=self.temperature,
            top_p=self.top_p,
            max_new_tokens=self.max_new_tokens,
            seed=self.seed,
            batch_problems=self.batch_problems,
        )


def correct_counts(
    model, tok, rows: list[dict[str, Any]], reward_fn: Callable, *, n: int, temperature: float,
    top_p: float, max_new_tokens: int, seed: int, batch_problems: int = 50,
) -> list[int]:  # fmt: skip
    """Correct samples out of n for each problem (sampled; seeds fixed per batch)."""
    counts = []
    for start in range(0, len(rows), batch_problems):
        batch = rows[start : start + batch_problems]
        samples = sample_completions(
            model,
            tok,
            [render_prompt(r["prompt"], tok) for r in batch],
            n=n,
            max_new_tokens=max_new_tokens,
            temperature=temperature,
            top_p=top_p,
            generator_seed=seed * 1_000_003 + start,
        )
        counts += [sum(score(reward_fn, r, s)) for r, s in zip(batch, samples, strict=True)]
    return counts
