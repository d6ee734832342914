"""The shipped tiny reasoner, the one policy loader (local / embedded / hub / LoRA), the build."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from engine.cli import main as cli_main
from engine.config import ModelConfig
from engine.data.tasks import heldout_problems, make_problems
from engine.models.demo import (
    CHATML_TEMPLATE,
    DEMO_TEMPERATURE,
    EOS_TOKEN,
    PAD_TOKEN,
    PASS_BAND,
    heldout_pass_at_1,
)
from engine.models.loading import (
    MANIFEST,
    LoraSpec,
    ModelLoadError,
    embedded_model_dir,
    load_policy,
    load_policy_from_config,
    verify_manifest,
)

TASK_TEXT = "Q: 23+48-17=?\nA:\nStep 1: 23+48=71.\nStep 2: 71-17=54.\nAnswer: 54  \n\n  x"


@pytest.fixture(scope="module")
def offline():
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HF_HUB_OFFLINE", "1")
        mp.setenv("HF_DATASETS_OFFLINE", "1")
        yield


@pytest.fixture(scope="module")
def embedded(offline):
    torch.set_num_threads(1)
    return load_policy("embedded")


@pytest.fixture
def plain_copy(tmp_path):
    """The shipped folder without its manifest (free to edit)."""
    target = tmp_path / "copy"
    shutil.copytree(embedded_model_dir(), target)
    (target / MANIFEST).unlink()
    return target


def test_manifest_covers_every_shipped_file():
    folder = embedded_model_dir()
    manifest = verify_manifest(folder)
    on_disk = {p.name for p in folder.iterdir() if p.is_file() and p.name != MANIFEST}
    assert set(manifest["files"]) == on_disk
    assert {"model.safetensors", "tokenizer.json", "config.json"} <= on_disk
    assert 2_000_000 < (folder / "model.safetensors").stat().st_size < 3_500_000
    lo, hi = PASS_BAND
    assert lo <= manifest["heldout_pass_at_1"] <= hi


def test_shipped_model_architecture(embedded):
    model, tok = embedded
    cfg = model.config
    assert cfg.model_type == "qwen2"
    assert (cfg.hidden_size, cfg.intermediate_size, cfg.num_hidden_layers) == (128, 256, 4)
    assert (cfg.num_attention_heads, cfg.num_key_value_heads) == (4, 2)
    assert cfg.tie_word_embeddings
    assert 0.5e6 < sum(p.numel() for p in model.parameters()) < 0.8e6
    assert model.dtype == torch.float32 and model.device.type == "cpu"


def test_shipped_pass_at_1_in_band_offline(embedded):
    """200 held-out problems x 4 samples at the demo temperature, one batched generate."""
    model, tok = embedded
    pass1 = heldout_pass_at_1(model, tok, temperature=DEMO_TEMPERATURE)
    lo, hi = PASS_BAND
    assert lo <= pass1 <= hi, pass1


def test_tokenizer_is_byte_level_and_survives_autotokenizer(embedded):
    """The trap: for qwen2 transformers rebuilds the tokenizer; ids and text must survive."""
    from transformers import PreTrainedTokenizerFast

    _, tok = embedded
    raw = PreTrainedTokenizerFast(tokenizer_file=str(embedded_model_dir() / "tokenizer.json"))
    ids = tok(TASK_TEXT, add_special_tokens=False)["input_ids"]
    assert ids == raw(TASK_TEXT, add_special_tokens=False)["input_ids"]
    assert tok.decode(ids) == TASK_TEXT
    for digit in "0123456789":
        assert len(tok(digit, add_special_tokens=False)["input_ids"]) == 1
    assert len(tok("9876543210", add_special_tokens=False)["input_ids"]) == 10
    assert (tok.eos_token, tok.pad_token, tok.padding_side) == (EOS_TOKEN, PAD_TOKEN, "left")
    chat = tok.apply_chat_template(
        [{"role": "user", "content": "hi"}], tokenize=False, add_generation_prompt=True
    )
    assert chat == "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"


def test_completion_lengths_fit_the_demo_recipe(embedded):
    _, tok = embedded
    lengths = [
        len(tok(p.solution, add_special_tokens=False)["input_ids"]) + 1
        for p in make_problems(0, 300)
    ]
    assert min(lengths) >= 30 and max(lengths) <= 48


def test_tampered_or_missing_file_fails_the_manifest(tmp_path, offline):
    folder = tmp_path / "m"
    shutil.copytree(embedded_model_dir(), folder)
    weights = folder / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(ModelLoadError, match=r"model.safetensors \(sha256 differs\)"):
        load_policy(str(folder))
    (folder / "tokenizer.json").unlink()
    with pytest.raises(ModelLoadError, match=r"tokenizer.json \(missing\)"):
        load_policy(str(folder))


def test_missing_path_and_folder_without_weights(tmp_path, plain_copy, offline):
    with pytest.raises(ModelLoadError, match="not found"):
        load_policy(str(tmp_path / "nowhere"))
    (plain_copy / "model.safetensors").unlink()
    with pytest.raises(ModelLoadError, match="no model weights"):
        load_policy(str(plain_copy))
    with pytest.raises(ModelLoadError, match="not a model folder"):
        load_policy(str(tmp_path))


def tiny_llama(folder, *, pad: bool, chat: bool):
    """A non-qwen2 model folder, so the tokenizer is taken as saved (qwen2 adds a pad)."""
    from tokenizers import Tokenizer
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    backend = Tokenizer.from_file(str(embedded_model_dir() / "tokenizer.json"))
    backend.no_padding()
    kw = {"pad_token": PAD_TOKEN} if pad else {}
    tok = PreTrainedTokenizerFast(tokenizer_object=backend, eos_token=EOS_TOKEN, **kw)
    assert (tok.pad_token is not None) == pad
    if chat:
        tok.chat_template = CHATML_TEMPLATE
    cfg = LlamaConfig(
        vocab_size=len(tok),
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
    )
    LlamaForCausalLM(cfg).save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


def test_tokenizer_without_pad_or_chat_template_is_refused(tmp_path, offline):
    with pytest.raises(ModelLoadError, match="no pad token"):
        load_policy(str(tiny_llama(tmp_path / "a", pad=False, chat=True)))
    with pytest.raises(ModelLoadError, match="no chat template"):
        load_policy(str(tiny_llama(tmp_path / "b", pad=True, chat=False)))
    model, tok = load_policy(str(tiny_llama(tmp_path / "c", pad=True, chat=True)))
    assert model.config.model_type == "llama" and tok.pad_token == PAD_TOKEN


def test_hub_id_offline_names_the_id_and_the_setting(offline):
    with pytest.raises(ModelLoadError, match=r"'Qwen/Qwen2.5-0.5B'.*HF_HUB_OFFLINE=1"):
        load_policy("Qwen/Qwen2.5-0.5B")


def test_bfloat16_load(offline):
    model, _ = load_policy("embedded", dtype="bfloat16")
    assert model.dtype == torch.bfloat16


def logits(model, tok, text="Q: 12+34+56=?\nA:"):
    with torch.no_grad():
        return model(**tok(text, return_tensors="pt")).logits


def test_lora_wraps_and_starts_at_the_base_model(embedded, offline):
    base, tok = embedded
    model, _ = load_policy("embedded", lora=LoraSpec(r=4, target_modules=("q_proj", "v_proj")))
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in n for n in trainable)
    assert torch.allclose(logits(model, tok), logits(base, tok), atol=1e-6)
    from_cfg, _ = load_policy_from_config(ModelConfig(lora=True, lora_r=2))
    assert from_cfg.peft_config["default"].r == 2


def test_saved_lora_adapter_folder_loads(tmp_path, embedded, offline):
    _, tok = embedded
    model, _ = load_policy("embedded", lora=LoraSpec(r=4))
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.05)
    model.save_pretrained(tmp_path / "adapter")
    tok.save_pretrained(tmp_path / "adapter")
    loaded, loaded_tok = load_policy(str(tmp_path / "adapter"))
    assert type(loaded).__name__.startswith("Peft")
    assert torch.allclose(logits(loaded, loaded_tok), logits(model, tok), atol=1e-5)


def test_build_command_with_tiny_max_steps_loads(tmp_path, offline):
    out = tmp_path / "built"
    assert cli_main(["build-demo-model", "--out", str(out), "--max-steps", "3"]) == 0
    manifest = json.loads((out / MANIFEST).read_text())
    assert manifest["recipe"]["sft_steps"] == 3
    model, tok = load_policy(str(out))
    assert model.config.hidden_size == 128
    problem = heldout_problems(1)[0]
    ids = tok(problem.prompt, return_tensors="pt")
    out_ids = model.generate(
        **ids, max_new_tokens=5, do_sample=False, pad_token_id=tok.pad_token_id
    )
    assert out_ids.shape[1] > ids["input_ids"].shape[1]
