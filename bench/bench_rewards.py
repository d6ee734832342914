"""Reward scoring speed: completions scored per second on real golds with model-like answers.

Sets (golds from the shared benchmark files, `../shared/data/benchmarks` or $VERL_STUDIO_SHARED):

    gsm8k     1,319 golds x 8 answers written as models write them (`Answer: N`, `\\boxed{N}`,
              `#### N`, think blocks, units, thousands separators, a wrong number)
    math500   500 LaTeX golds x 8 answers (the gold boxed as written, `The answer is $...$`,
              think blocks, a wrong gold of another problem)
    demo      the demo's own format (`Step 1: ...\\nAnswer: N`, right or wrong), 64 per step

Each set is scored by the registered `accuracy` reward in groups of 8 per gold (as GRPO calls
it), caches cleared before every timed pass; the best of `--repeats` passes is reported.
The demo row also gives the scoring time of one demo step (64 completions) and its share of
a demo step's time (`--step-seconds`, default the README's fastest 1.1 s/step): target <= 2%.

    python bench/bench_rewards.py
    python bench/bench_rewards.py --quick        # 200 golds per set, 1 pass

"Before" figures: the same script with PYTHONPATH pointing at an older tree's `engine/` (e.g.
`git archive ae122c7 engine | tar -x -C /tmp/before`); `misjudged` counts answers scored
against their intended label.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import time
from pathlib import Path

GROUP = 8
# which of the 8 model-like answers per gold are right, in the order the builders write them
GSM8K_RIGHT = [True] * 6 + [False] * 2
MATH500_RIGHT = [True] * 5 + [False] * 3
DEMO_BATCH = 64  # the demo recipe's per_device_train_batch_size
DEMO_STEP_SECONDS = 1.1  # README: demo-cpu, fastest s/step on a busy 2-core machine
TARGET_SHARE = 0.02


def shared_dir() -> Path:
    env = os.environ.get("VERL_STUDIO_SHARED")
    return Path(env) if env else Path(__file__).resolve().parents[1].parent / "shared"


def extract_gold(gold: str) -> str:
    """The gold as the current answer checker normalises it (to spot equal golds)."""
    from engine.data.rewards import extract_gold as extract

    return str(extract(gold))


def golds(name: str, limit: int | None) -> list[str]:
    path = shared_dir() / "data" / "benchmarks" / f"{name}.jsonl"
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]
    return [str(r["answer"]) for r in rows[:limit]]


def gsm8k_answers(gold_text: str, rng: random.Random) -> list[str]:
    n = int(gold_text.rsplit("####", 1)[1].strip().replace(",", ""))
    wrong = n + rng.choice([-10, -1, 1, 2, 7])
    return [
        f"Step 1: compute.\nStep 2: so it is {n}.\nAnswer: {n}",
        f"Let me work it out. The total is {n} dollars.\n\\boxed{{{n}}}",
        f"She ends with {n:,} in all.\n#### {n:,}",
        f"<think>Maybe {wrong}? Recount: {n}.</think>\nThe final answer is {n}.",
        f"The answer is {n} apples.",
        f"So the total is ${n:,}$.".replace(",", "{,}"),
        f"Answer: {wrong}",
        f"I think it is {wrong}, final: \\boxed{{{wrong}}}",
    ]


def math500_answers(gold: str, other: str, rng: random.Random) -> list[str]:
    return [
        f"Combining the cases, the answer is $\\boxed{{{gold}}}$.",
        f"Therefore the answer is ${gold}$.",
        f"<think>Try {other} first... no.</think>\nThe final answer is $\\boxed{{{gold}}}$.",
        f"We get \\[\\boxed{{{gold}}}\\]",
        f"Answer: {gold}",
        f"So \\boxed{{{other}}}.",
        f"The answer is $\\boxed{{{other}}}$.",
        "I could not finish this one.",
    ]


def demo_answers(rng: random.Random) -> tuple[list[str], list[str], list[bool]]:
    from engine.data.tasks import ArithmeticTask

    task, completions, answers, right = ArithmeticTask(3, 2), [], [], []
    for _ in range(DEMO_BATCH // GROUP):
        p = task.sample(rng)
        for _ in range(GROUP):
            wrong = str(int(p.answer) + rng.randint(1, 99))
            ok = rng.random() < 0.5
            completions.append(p.solution if ok else p.solution.rsplit(" ", 1)[0] + f" {wrong}")
            answers.append(p.answer)
            right.append(ok)
    return completions, answers, right


Set = tuple[list[str], list[str], list[bool]]  # completions, golds, whether each is right


def build_sets(limit: int | None, seed: int = 0) -> dict[str, Set]:
    rng = random.Random(seed)
    g = golds("gsm8k", limit)
    m = golds("math500", limit)
    others = m[1:] + m[:1]
    math_answers, math_right = [], []
    for gold, other in zip(m, others, strict=True):
        math_answers += math500_answers(gold, other, rng)
        # a wrong answer that quotes another problem's equal gold is right after all
        math_right += [
            r or (i < 7 and extract_gold(other) == extract_gold(gold))
            for i, r in enumerate(MATH500_RIGHT)
        ]
    demo, demo_golds, demo_right = demo_answers(rng)
    return {
        "gsm8k": (
            [a for gold in g for a in gsm8k_answers(gold, rng)],
            [gold for gold in g for _ in range(GROUP)],
            GSM8K_RIGHT * len(g),
        ),
        "math500": (math_answers, [gold for gold in m for _ in range(GROUP)], math_right),
        "demo": (demo, demo_golds, demo_right),
    }


def clear_caches() -> None:
    """Every cache the answer checker keeps, so that no pass reuses an earlier one's work."""
    import importlib

    for name in ("engine.data.rewards", "engine.data.answers"):
        try:
            module = importlib.import_module(name)
        except ImportError:  # the code before engine/data/answers.py existed
            continue
        for value in list(vars(module).values()):
            if hasattr(value, "cache_clear"):
                value.cache_clear()


def score_rate(completions: list[str], answers: list[str], repeats: int) -> tuple[float, list]:
    """(completions per second, scores) of the accuracy reward, best of `repeats` passes."""
    from engine.data.rewards import get_reward

    reward = get_reward("accuracy")
    best, scores = float("inf"), []
    for _ in range(repeats):
        clear_caches()
        t0 = time.perf_counter()
        scores = []
        for i in range(0, len(completions), DEMO_BATCH):
            scores += reward(completions[i : i + DEMO_BATCH], answer=answers[i : i + DEMO_BATCH])
        best = min(best, time.perf_counter() - t0)
    return len(completions) / best, scores


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="200 golds per set, one pass")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--step-seconds", type=float, default=DEMO_STEP_SECONDS)
    args = parser.parse_args(argv)
    limit, repeats = (200, 1) if args.quick else (None, args.repeats)
    sets = build_sets(limit)
    print(f"{'set':<8} {'completions':>11} {'per s':>9} {'misjudged':>10}")
    for name, (completions, answers, right) in sets.items():
        rate, scores = score_rate(completions, answers, repeats)
        wrong = sum((s >= 1.0) != r for s, r in zip(scores, right, strict=True))
        print(f"{name:<8} {len(completions):>11} {rate:>9.0f} {wrong:>10}")
        if name == "demo":
            per_step = DEMO_BATCH / rate
            share = per_step / args.step_seconds
            verdict = "ok" if share <= TARGET_SHARE else "OVER TARGET"
            print(
                f"demo step: {per_step * 1000:.2f} ms to score {DEMO_BATCH} completions = "
                f"{share:.2%} of a {args.step_seconds} s step (target <= {TARGET_SHARE:.0%}: "
                f"{verdict})"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
