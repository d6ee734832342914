"""pass@k of a run's checkpoints: sample n ≥ K responses per problem, count the correct ones.

The unbiased estimator (Chen et al. 2021, "Evaluating Large Language Models Trained on Code"):
for a problem with n samples of which c are correct,

    pass@k = 1 − C(n − c, k) / C(n, k)

the probability that at least one of k samples drawn without replacement from the n is correct.
The binomial ratio is computed as the product  Π_{i = n−c+1}^{n} (1 − k / i),  which never forms
a large binomial (C(200, 100) overflows float64's exact integers long before it overflows), and
is exactly 1 when n − c < k. The curve over k = 1 … K is the mean over problems.

Sampling and scoring helpers shared by eval jobs (jobs.py) and held-out evaluation during
training (engine/training/heldout.py).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

# ---------------------------------------------------------------- the estimator


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k of one problem: 1 − C(n−c, k) / C(n, k), as a stable product.

    >>> pass_at_k(10, 0, 3), pass_at_k(10, 10, 1), pass_at_k(4, 2, 3)
    (0.0, 1.0, 1.0)
    >>> round(pass_at_k(5, 2, 2), 6)   # 1 - C(3,2)/C(5,2) = 1 - 3/10
    0.7
    """
    if not 0 <= c <= n or not 1 <= k <= n:
        raise ValueError(f"need 0 <= c <= n and 1 <= k <= n, got n={n} c={c} k={k}")
    if n - c < k:
        return 1.0
    i = np.arange(n - c + 1, n + 1, dtype=np.float64)  # (c,)
    return float(1.0 - np.prod(1.0 - k / i))


def pass_at_k_curve(correct_counts: Sequence[int], n: int, ks: Sequence[int]) -> list[float]:
    """Mean pass@k over problems for each k; `correct_counts[p]` = c of problem p.

    >>> pass_at_k_curve([0, 4], 4, [1, 2])
    [0.5, 0.5]
    """
    if not len(correct_counts):
        return [float("nan")] * len(ks)
    return [float(np.mean([pass_at_k(n, int(c), k) for c in correct_counts])) for k in ks]


# ---------------------------------------------------------------- sampling and scoring


def render_prompt(prompt: Any, tokenizer) -> str:
    """The text the model reads: a plain-text prompt as is; chat messages through the
    tokenizer's chat template (with the generation prompt)."""
    if isinstance(prompt, str):
        return prompt
    return tokenizer.apply_chat_template(prompt, tokenize=False, add_generation_prompt=True)


def sample_completions(
    model, tokenizer, prompts: list[str], *, n: int, max_new_tokens: int, temperature: float,
    top_p: float, generator_seed: int,
) -> list[list[str]]:  # fmt: skip
    """n sampled completions (special tokens removed) for each prompt, from one generate call."""
    import torch

    torch.manual_seed(generator_seed)
    side, tokenizer.padding_side = tokenizer.padding_side, "left"  # all prompts end at P
    try:
        enc = tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False)
    finally:
        tokenizer.padding_side = side
    enc = {k: v.to(model.device) for k, v in enc.items()}
    P = enc["input_ids"].shape[1]
    with torch.no_grad():
        out = model.generate(
            **enc,
            do_sample=True,
            temperature=temperature,
            top_p=top_p,
            top_k=0,
            num_return_sequences=n,
            max_new_tokens=max_new_tokens,
            pad_token_id=tokenizer.pad_token_id,
            eos_token_id=tokenizer.eos_token_id,
        )  # (len(prompts) * n, P + C), rows grouped by prompt
    texts = tokenizer.batch_decode(out[:, P:], skip_special_tokens=True)
    return [texts[i * n : (i + 1) * n] for i in range(len(prompts))]


def score(reward_fn: Callable, row: dict[str, Any], completions: list[str]) -> list[bool]:
    """Correct = the accuracy reward returned 1.0; the dataset's columns go in as TRL passes them."""
    n = len(completions)
    chat = not isinstance(row["prompt"], str)
    comps = [[{"role": "assistant", "content": c}] for c in completions] if chat else completions
    columns = {k: [v] * n for k, v in row.items() if k != "prompt"}
    rewards = reward_fn(completions=comps, prompts=[row["prompt"]] * n, **columns)
    return [r is not None and float(r) >= 1.0 - 1e-9 for r in rewards]
