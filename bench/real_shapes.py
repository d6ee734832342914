"""Randomly initialised models with real models' shapes, and a byte-level tokenizer that covers
their whole vocabulary; shared by bench_real_width.py, bench_long_responses.py and
scripts/gpu_check.sh. No download: everything is built here from a seed.

Shapes are the published config.json values of the Qwen2.5 models (hidden size, MLP size, heads,
key-value heads, vocabulary, RoPE theta, tied embeddings); `layers` overrides the depth.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

QWEN25_05B = {  # Qwen/Qwen2.5-0.5B config.json
    "hidden_size": 896,
    "intermediate_size": 4864,
    "num_attention_heads": 14,
    "num_key_value_heads": 2,
    "num_hidden_layers": 24,
    "vocab_size": 151936,
    "max_position_embeddings": 32768,
    "rope_theta": 1000000.0,
    "rms_norm_eps": 1e-6,
    "tie_word_embeddings": True,
}
QWEN25_15B = {  # Qwen/Qwen2.5-1.5B config.json
    **QWEN25_05B,
    "hidden_size": 1536,
    "intermediate_size": 8960,
    "num_attention_heads": 12,
    "num_key_value_heads": 2,
    "num_hidden_layers": 28,
}
PAD, BOS, EOS = "<|endoftext|>", "<|im_start|>", "<|im_end|>"
CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def byte_level_tokenizer(vocab_size: int):
    """A byte-level BPE tokenizer (`tokenizers`) with exactly `vocab_size` ids, every one a real
    token that decodes: the 256 byte symbols, then merges of every byte pair, then of byte pairs
    with a byte, in a fixed order, then 3 special tokens (pad, bos, eos) at the top ids."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    chars = sorted(pre_tokenizers.ByteLevel.alphabet())  # 256 symbols
    target = vocab_size - 3
    if target < len(chars):
        raise ValueError(f"vocab_size must be >= {len(chars) + 3}")
    vocab = {c: i for i, c in enumerate(chars)}
    merges: list[tuple[str, str]] = []
    for left in (chars, [a + b for a in chars for b in chars]):
        for a in left:
            for b in chars:
                if len(vocab) == target:
                    break
                vocab[a + b] = len(vocab)
                merges.append((a, b))
    if len(vocab) < target:
        raise ValueError(f"vocab_size {vocab_size} is beyond this construction's {len(vocab) + 3}")
    tok = Tokenizer(models.BPE(vocab=vocab, merges=merges))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens([PAD, BOS, EOS])
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token=PAD, bos_token=BOS, eos_token=EOS
    )
    fast.chat_template = CHAT_TEMPLATE
    return fast


def write_model(
    folder: Path,
    shape: dict,
    *,
    layers: int | None = None,
    vocab_size: int | None = None,
    dtype: torch.dtype = torch.float32,
    device: str = "cpu",
    seed: int = 0,
) -> Path:
    """A random-weight Qwen2 causal LM of `shape` (depth `layers`) and its full-vocabulary
    tokenizer, saved as a model folder that `engine.models.loading.load_policy` reads."""
    from transformers import Qwen2Config, Qwen2ForCausalLM

    cfg = dict(shape)
    if layers is not None:
        cfg["num_hidden_layers"] = layers
    if vocab_size is not None:
        cfg["vocab_size"] = vocab_size
    tok = byte_level_tokenizer(cfg["vocab_size"])
    config = Qwen2Config(
        **cfg,
        pad_token_id=tok.pad_token_id,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
    )
    torch.manual_seed(seed)
    with torch.device(device):
        model = Qwen2ForCausalLM(config).to(dtype)
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    (folder / "shape.json").write_text(json.dumps({"shape": cfg, "seed": seed}, indent=1))
    return folder


def decodes_every_id(tok, vocab_size: int) -> bool:
    """True when the tokenizer has `vocab_size` ids and each one decodes to a non-empty string."""
    if len(tok) != vocab_size:
        return False
    texts = tok.batch_decode([[i] for i in range(vocab_size)])
    return all(texts)


def digit_share(completions, **_kwargs) -> list[float]:
    """A reward with spread for random-weight models: the share of ASCII digits in the text, so
    the groups' rewards differ and the shaping acts (the accuracy reward is 0 for them)."""
    out = []
    for c in completions:
        text = c if isinstance(c, str) else str(c)
        out.append(sum(ch.isdigit() for ch in text) / max(1, len(text)))
    return out
