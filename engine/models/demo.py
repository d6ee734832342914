"""The embedded tiny reasoner and how it is built.

The embedded model ships under assets/demo-model/ with a manifest of every file's sha256, which
`load_policy("embedded")` (loading.py) checks. It is built by `verl-studio build-demo-model` from a fixed
seed (`DemoRecipe`), single-threaded:

* tokenizer: byte-level BPE trained with `tokenizers` on task text, with Qwen2's pre-tokenizer
  split regex (every digit is its own token), ChatML chat template, eos `<|im_end|>`, pad
  `<|endoftext|>`. A character-level tokenizer would load silently broken: for model_type qwen2,
  transformers 5 rebuilds every tokenizer as a byte-level Qwen2 tokenizer.
* model: Qwen2, hidden 128, intermediate 256, 4 layers, 4 heads / 2 KV heads, tied embeddings.
* warm start: supervised next-token loss on completion tokens of the arithmetic task (3 operands,
  2 digits), AdamW lr 1e-3 with 100 warm-up steps then constant, batch 32, fresh problems each
  step, 1000 steps (about 3 minutes on one idle core, 0.16-0.2 s a step). The step count is the
  difficulty knob: the shipped checkpoint's held-out pass@1 (200 problems, 4 samples each at
  T=1.0) lies in `PASS_BAND`, so GRPO has room and signal to learn. Measured on the 2-core box
  (init seed 1): pass@1 3% at step 700, 16% at 800, 23.5% at 900, 25% at 1000. The loss sits on a
  plateau near 0.19 (the model copies and formats but cannot add yet) until the carry is learnt;
  when that happens depends on the init seed (seed 0 was still on the plateau at step 1300), so
  a rebuild on another CPU may land elsewhere: CI loads the shipped checkpoint, never rebuilds it.

The demo recipe (recipes/demo-cpu.yaml) this checkpoint is made for: plain-text prompts, reward
`accuracy`, GRPO group size 8 x 8 prompts (per-device batch 64), max completion length 48
(completions are 33-39 tokens with eos), lr 3e-5 constant, beta 0, temperature 1.0, 150 steps,
rank-curve stride 4 (8-9 curve points per response).

Prompts are tokenised apart from completions (ids = prompt ids + completion ids + eos), exactly
as TRL does when it generates, so no BPE merge straddles the prompt/completion boundary.
"""

from __future__ import annotations

import json
import logging
import random
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from engine.data.rewards import is_correct
from engine.data.tasks import (
    TRAIN,
    ArithmeticTask,
    Problem,
    heldout_problems,
    split_of,
)
from engine.evaluation.passk import sample_completions
from engine.models.loading import MANIFEST, sha256_file
from engine.threads import single_threaded

log = logging.getLogger(__name__)


PAD_TOKEN, BOS_CHAT, EOS_TOKEN = "<|endoftext|>", "<|im_start|>", "<|im_end|>"
SPECIAL_TOKENS = (PAD_TOKEN, BOS_CHAT, EOS_TOKEN)
QWEN2_SPLIT_REGEX = (
    r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|"""
    r"""\s*[\r\n]+|\s+(?!\S)|\s+"""
)
CHATML_TEMPLATE = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' + "
    "message['content'] + '<|im_end|>' + '\n' }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

# The demo recipe's sampling settings; the pass@1 band is quoted at these.
DEMO_TEMPERATURE = 1.0
DEMO_MAX_NEW_TOKENS = 48
PASS_BAND = (0.10, 0.60)
PASS_PROBLEMS, PASS_SAMPLES, PASS_SEED = 200, 4, 0


@dataclass(frozen=True)
class DemoRecipe:
    """Everything `build-demo-model` does, from its fixed seeds."""

    n_ops: int = 3
    digits: int = 2
    hidden_size: int = 128
    intermediate_size: int = 256
    num_hidden_layers: int = 4
    num_attention_heads: int = 4
    num_key_value_heads: int = 2
    max_position_embeddings: int = 256
    tokenizer_vocab: int = 320
    tokenizer_problems: int = 2500
    sft_steps: int = 1000
    batch_size: int = 32
    lr: float = 1e-3
    warmup_steps: int = 100
    betas: tuple[float, float] = (0.9, 0.98)
    weight_decay: float = 0.01
    grad_clip: float = 1.0
    init_seed: int = 1
    data_seed: int = 1


# ---------------------------------------------------------------- manifest


def write_manifest(folder: Path, info: dict[str, Any]) -> Path:
    """manifest.json: the sha256 of every other file in `folder`, plus `info`."""
    files = {
        p.name: sha256_file(p)
        for p in sorted(folder.iterdir())
        if p.is_file() and p.name != MANIFEST
    }
    path = folder / MANIFEST
    path.write_text(json.dumps({"files": files, **info}, indent=2, sort_keys=True) + "\n")
    return path


# ---------------------------------------------------------------- building


def train_stream(seed: int, n_ops: int, digits: int) -> Iterator[Problem]:
    """Endless train-split problems from `seed` (held-out questions are skipped)."""
    task, rng = ArithmeticTask(n_ops, digits), random.Random(seed)
    while True:
        problem = task.sample(rng)
        if split_of(problem.question) == TRAIN:
            yield problem


def train_tokenizer(texts: list[str], vocab_size: int):
    """Byte-level BPE with Qwen2's split regex, wrapped with ChatML, eos and pad."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(QWEN2_SPLIT_REGEX), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    bpe.train_from_iterator(texts, trainer=trainer)
    tok = PreTrainedTokenizerFast(
        tokenizer_object=bpe, eos_token=EOS_TOKEN, pad_token=PAD_TOKEN, padding_side="left"
    )
    tok.chat_template = CHATML_TEMPLATE
    return tok


def demo_model_config(tok, recipe: DemoRecipe):
    from transformers import Qwen2Config

    return Qwen2Config(
        vocab_size=len(tok),
        hidden_size=recipe.hidden_size,
        intermediate_size=recipe.intermediate_size,
        num_hidden_layers=recipe.num_hidden_layers,
        num_attention_heads=recipe.num_attention_heads,
        num_key_value_heads=recipe.num_key_value_heads,
        max_position_embeddings=recipe.max_position_embeddings,
        tie_word_embeddings=True,
        bos_token_id=None,
        eos_token_id=tok.convert_tokens_to_ids(EOS_TOKEN),
        pad_token_id=tok.convert_tokens_to_ids(PAD_TOKEN),
    )


def sft_batch(tok, problems: list[Problem]) -> dict[str, torch.Tensor]:
    """Right-padded prompt + completion + eos; labels only on completion tokens.

    Returns input_ids, attention_mask, labels, each (B, T).
    """
    prompts = tok([p.prompt for p in problems], add_special_tokens=False)["input_ids"]
    answers = tok([p.solution for p in problems], add_special_tokens=False)["input_ids"]
    seqs = [p + a + [tok.eos_token_id] for p, a in zip(prompts, answers, strict=True)]
    T = max(map(len, seqs))
    ids = torch.full((len(seqs), T), tok.pad_token_id)
    labels = torch.full((len(seqs), T), -100)
    mask = torch.zeros((len(seqs), T), dtype=torch.long)
    for i, (p, s) in enumerate(zip(prompts, seqs, strict=True)):
        ids[i, : len(s)] = torch.tensor(s)
        labels[i, len(p) : len(s)] = torch.tensor(s[len(p) :])
        mask[i, : len(s)] = 1
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}


def sft(
    model,
    tok,
    recipe: DemoRecipe,
    steps: int,
    on_step: Callable[[int, float], None] | None = None,
) -> list[float]:
    """Supervised warm start: `steps` AdamW steps on fresh train problems; the losses.

    The learning rate is linear warm-up then constant, so the first k steps of a longer build
    equal a build of k steps.
    """
    opt = torch.optim.AdamW(
        model.parameters(), lr=recipe.lr, betas=recipe.betas, weight_decay=recipe.weight_decay
    )
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / max(1, recipe.warmup_steps))
    )
    stream = train_stream(recipe.data_seed, recipe.n_ops, recipe.digits)
    model.train()
    losses = []
    for step in range(1, steps + 1):
        batch = sft_batch(tok, [next(stream) for _ in range(recipe.batch_size)])
        loss = model(**batch).loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), recipe.grad_clip)
        opt.step()
        sched.step()
        losses.append(loss.item())
        if on_step is not None:
            on_step(step, losses[-1])
    model.eval()
    return losses


def heldout_pass_at_1(
    model,
    tok,
    *,
    n: int = PASS_PROBLEMS,
    k: int = PASS_SAMPLES,
    temperature: float = DEMO_TEMPERATURE,
    seed: int = PASS_SEED,
    n_ops: int = 3,
    digits: int = 2,
) -> float:
    """Mean correctness of k samples on each of the first n held-out problems (pass@1)."""
    problems = heldout_problems(n, n_ops, digits)
    with torch.random.fork_rng(devices=[]):  # the caller's random state is left as it was
        samples = sample_completions(
            model, tok, [p.prompt for p in problems], n=k, max_new_tokens=DEMO_MAX_NEW_TOKENS,
            temperature=temperature, top_p=1.0, generator_seed=seed,
        )  # fmt: skip
    hits = [
        is_correct(s, p.answer) for p, group in zip(problems, samples, strict=True) for s in group
    ]
    return sum(hits) / len(hits)


def new_demo_model(recipe: DemoRecipe):
    """(untrained model, trained tokenizer) from the recipe's seeds."""
    from transformers import Qwen2ForCausalLM

    stream = train_stream(recipe.data_seed + 1000, recipe.n_ops, recipe.digits)
    problems = [next(stream) for _ in range(recipe.tokenizer_problems)]
    texts = [p.prompt for p in problems] + [p.solution for p in problems]
    tok = train_tokenizer(texts, recipe.tokenizer_vocab)
    torch.manual_seed(recipe.init_seed)
    model = Qwen2ForCausalLM(demo_model_config(tok, recipe))
    return model, tok


def save_demo_model(model, tok, out: Path, info: dict[str, Any]) -> Path:
    """save_pretrained both, make the files world-readable, write the manifest."""
    out.mkdir(parents=True, exist_ok=True)
    model.generation_config.eos_token_id = tok.eos_token_id
    model.generation_config.pad_token_id = tok.pad_token_id
    model.save_pretrained(out)
    tok.save_pretrained(out)
    for p in out.iterdir():
        if p.is_file():
            p.chmod(0o644)
    return write_manifest(out, info)


def build_demo_model(
    out: Path, *, max_steps: int | None = None, recipe: DemoRecipe = DemoRecipe(), progress=None
) -> dict[str, Any]:
    """Build the embedded model into `out`; returns the manifest info (recipe, loss, pass@1)."""
    steps = recipe.sft_steps if max_steps is None else max_steps
    with single_threaded():
        model, tok = new_demo_model(recipe)
        losses = sft(model, tok, recipe, steps, on_step=progress)
        pass1 = heldout_pass_at_1(model, tok, n_ops=recipe.n_ops, digits=recipe.digits)
    info = {
        "recipe": {**asdict(recipe), "sft_steps": steps},
        "final_loss": round(sum(losses[-20:]) / max(1, len(losses[-20:])), 5) if losses else None,
        "heldout_pass_at_1": pass1,
        "pass_at_1_settings": {
            "problems": PASS_PROBLEMS,
            "samples": PASS_SAMPLES,
            "temperature": DEMO_TEMPERATURE,
            "seed": PASS_SEED,
        },
        "parameters": sum(p.numel() for p in model.parameters()),
    }
    save_demo_model(model, tok, out, info)
    return info
