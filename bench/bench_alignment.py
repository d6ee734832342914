"""How much ER / ERV / ERA and the VERL bonus move between the two hidden-state alignments.

`shaping.hidden_alignment` picks the state that stands for response token j: "produced" (the
state at prompt_len - 1 + j whose logits sampled token j; the reference's decode-time capture,
hf618/VERL hidden_vllm/worker/model_runner.py L1414-1420, L1480-1501) or "read" (prompt_len + j,
the state that has read token j; what the product measured before). On the demo (the embedded
model, the demo recipe's task, sampling and shaping settings) this samples G generations of
8 prompts x 8 rollouts, runs ONE forward per generation, and measures both alignments on the
same responses; each alignment then drives its own shaping state through the G generations with
the same advantages (group-normalised accuracy, TRL's rule). Printed: per-response relative
change of each indicator, the correlation between the alignments, and the bonus under each.

    python bench/bench_alignment.py            # 12 generations
    python bench/bench_alignment.py --quick    # 3 generations (a smoke run)
"""

from __future__ import annotations

import argparse
import statistics

import torch

ALIGNMENTS = ("produced", "read")


def generation(model, tok, rows, cfg, seed: int):
    """One demo generation: (hidden per alignment (B, C, D), mask (B, C), completions, rows)."""
    G = cfg.grpo.num_generations
    torch.manual_seed(seed)
    tok.padding_side = "left"
    enc = tok([r["prompt"] for r in rows], return_tensors="pt", padding=True)
    P = enc["input_ids"].shape[1]
    with torch.no_grad():
        out = model.generate(
            **enc, do_sample=True, temperature=cfg.grpo.temperature, top_k=0,
            num_return_sequences=G, max_new_tokens=cfg.grpo.max_completion_length,
            pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id,
        )  # fmt: skip
        completion = out[:, P:]  # (B, C)
        is_eos = completion == tok.eos_token_id
        first = torch.where(is_eos.any(1), is_eos.int().argmax(1), completion.size(1))
        mask = torch.arange(completion.size(1))[None] <= first[:, None]  # (B, C), TRL's rule
        attention = torch.cat([enc["attention_mask"].repeat_interleave(G, 0), mask.long()], 1)
        last = model(input_ids=out, attention_mask=attention, output_hidden_states=True)
        last = last.hidden_states[-1]  # (B, P + C, D), post-norm
    hidden = {"produced": last[:, P - 1 : -1], "read": last[:, P:]}
    texts = tok.batch_decode(completion, skip_special_tokens=True)
    return hidden, mask, texts, [r for r in rows for _ in range(G)]


def advantages(rewards: torch.Tensor, G: int) -> tuple[torch.Tensor, torch.Tensor]:
    """TRL's group-scaled advantages (B,) and the tied-group mask (B,)."""
    groups = rewards.view(-1, G)
    std = groups.std(dim=1)
    a = (groups - groups.mean(dim=1, keepdim=True)) / (std[:, None] + 1e-4)
    return a.reshape(-1), (std == 0).repeat_interleave(G)


def rel_change(a: torch.Tensor, b: torch.Tensor) -> float:
    """Median over responses of |a - b| / max(|a|, |b|, 1e-12)."""
    return float(((a - b).abs() / torch.maximum(a.abs(), b.abs()).clamp(min=1e-12)).median())


def corr(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(torch.corrcoef(torch.stack([a, b]))[0, 1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--generations", type=int, default=12)
    p.add_argument("--quick", action="store_true")
    args = p.parse_args()
    torch.set_num_threads(1)
    from engine.config import StudioConfig
    from engine.data.rewards import make_accuracy_reward
    from engine.data.tasks import load_dataset_for
    from engine.models.loading import load_policy_from_config
    from engine.rank.scheduling import rank_dynamics
    from engine.resources import recipe_path
    from engine.shaping import ShapingState, shape_generation

    cfg = StudioConfig.load(recipe_path("demo-cpu"))
    n_gen = 3 if args.quick else args.generations
    model, tok = load_policy_from_config(cfg.model, require_chat_template=False)
    model.eval()
    data = load_dataset_for(cfg.data, "train", limit=8 * n_gen).to_list()
    reward = make_accuracy_reward()
    states = {a: ShapingState() for a in ALIGNMENTS}
    x_all = {a: [] for a in ALIGNMENTS}
    bonus_all = {a: [] for a in ALIGNMENTS}
    abs_a = []
    for g in range(n_gen):
        rows = data[8 * g : 8 * (g + 1)]
        hidden, mask, texts, flat = generation(model, tok, rows, cfg, seed=g)
        r = torch.tensor(
            reward(texts, answer=[x["answer"] for x in flat], prompts=[x["prompt"] for x in flat]),
            dtype=torch.float64,
        )
        a, std_zero = advantages(r, cfg.grpo.num_generations)
        abs_a.append(a.abs())
        for al in ALIGNMENTS:
            rd = rank_dynamics(hidden[al], mask, stride=cfg.shaping.stride, max_len=512)
            x = torch.stack([rd.era, rd.erv, rd.er], 1).double()  # (B, 3)
            sh = shape_generation(states[al], x, a, std_zero, r * 2 - 1, cfg.shaping)
            x_all[al].append(x)
            if g >= cfg.shaping.warmup_steps:
                bonus_all[al].append(sh.bonus)
    report(x_all, bonus_all, torch.cat(abs_a[cfg.shaping.warmup_steps :]), n_gen)


def report(x_all, bonus_all, abs_a, n_gen: int) -> None:
    xp, xr = torch.cat(x_all["produced"]), torch.cat(x_all["read"])
    print(f"demo, {n_gen} generations x {xp.shape[0] // n_gen} responses, same responses")
    print(f"{'':6} {'mean produced':>14} {'mean read':>10} {'median rel':>11} {'r':>6}")
    for k, name in enumerate(("ERA", "ERV", "ER")):
        a, b = xp[:, k], xr[:, k]
        print(
            f"{name:6} {float(a.mean()):14.4f} {float(b.mean()):10.4f} "
            f"{rel_change(a, b):10.1%} {corr(a, b):6.3f}"
        )
    bp, br = torch.cat(bonus_all["produced"]), torch.cat(bonus_all["read"])
    shaped = abs_a > 0
    for name, b in (("produced", bp), ("read", br)):
        share = (b[b > 0] / abs_a[b > 0]).tolist()
        print(
            f"bonus {name:8}: mean {float(b.mean()):.4f}, shaped {float((b > 0).double().mean()):.1%}"
            f", median bonus/|A| {statistics.median(share) if share else 0:.1%}"
        )
    diff = (bp - br).abs()[shaped] / abs_a[shaped]
    flips = float(((bp > 0) != (br > 0)).double().mean())
    print(
        f"bonus produced vs read: median |diff|/|A| {float(diff.median()):.1%}, "
        f"mean {float(diff.mean()):.1%}; shaped in one alignment only: {flips:.1%}; "
        f"r = {corr(bp, br):.3f}"
    )


if __name__ == "__main__":
    main()
