"""Load a policy: the embedded model, any local folder, or a hub id (+ LoRA via PEFT).

A hub id with the hub off (HF_HUB_OFFLINE=1) loads from its snapshot in the local Hugging Face
cache (`engine.hub.cached_snapshot`), through the same checks as a local folder.

`load_policy("embedded")` checks the shipped model's manifest (the sha256 of every file);
demo.py builds that model.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from engine.config import EMBEDDED_MODEL, ModelConfig
from engine.data.tasks import (
    hub_offline,
)
from engine.hub import NotCached, cached_snapshot

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase


log = logging.getLogger(__name__)
MANIFEST = "manifest.json"
WEIGHT_FILES = (
    "model.safetensors",
    "model.safetensors.index.json",
    "pytorch_model.bin",
    "pytorch_model.bin.index.json",
)
ADAPTER_CONFIG = "adapter_config.json"
HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")


class ModelLoadError(ValueError):
    """A policy that cannot be loaded, with the reason and the fix."""


@dataclass(frozen=True)
class LoraSpec:
    """LoRA adapters (PEFT) wrapped around `target_modules`."""

    r: int = 8
    alpha: int = 16
    dropout: float = 0.0
    target_modules: tuple[str, ...] = ("q_proj", "k_proj", "v_proj", "o_proj")


DEMO_ASSET = "demo-model"


def embedded_model_dir() -> Path:
    """The shipped embedded model's folder (inside the installed package)."""
    from engine.resources import asset_dir

    return asset_dir(DEMO_ASSET)


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def verify_manifest(folder: Path) -> dict[str, Any]:
    """Check every file listed in folder/manifest.json; raise ModelLoadError naming mismatches."""
    path = folder / MANIFEST
    if not path.is_file():
        raise ModelLoadError(
            f"{folder}: no {MANIFEST}; rebuild it with `verl-studio build-demo-model`"
        )
    manifest = json.loads(path.read_text())
    bad = []
    for name, expected in manifest.get("files", {}).items():
        file = folder / name
        if not file.is_file():
            bad.append(f"{name} (missing)")
        elif sha256_file(file) != expected:
            bad.append(f"{name} (sha256 differs)")
    if bad:
        raise ModelLoadError(
            f"{folder}: files do not match {MANIFEST}: {', '.join(bad)}; reinstall the package "
            "or rebuild with `verl-studio build-demo-model`"
        )
    return manifest


# ---------------------------------------------------------------- loading


def resolve_dtype(dtype: str, device: str) -> torch.dtype:
    if dtype == "auto":
        return torch.bfloat16 if device.startswith("cuda") else torch.float32
    try:
        return {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[
            dtype
        ]
    except KeyError:
        raise ModelLoadError(f"unknown dtype {dtype!r}") from None


def resolve_device(device: str) -> str:
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def is_explicit_path(name: str) -> bool:
    """Written as a path (absolute, ./, ../, ~), never taken for a hub id.

    >>> is_explicit_path("/models/x"), is_explicit_path("./org/name"), is_explicit_path("org/name")
    (True, True, False)
    """
    return name.startswith(("/", "./", "../", "~")) or name in (".", "..")


def locate(name_or_path: str) -> tuple[str, str | Path]:
    """("local", folder) or ("hub", id); raises ModelLoadError for a missing local path.

    A name shaped like a hub id (`org/name`, `gpt2`) is a hub id even when a folder of that
    name exists in the working directory: the folder is read only when written as a path
    (`./org/name`, absolute). Submissions store local folders as absolute paths
    (engine.runs.admission), so the worker reads what was checked whatever its cwd.
    """
    name = name_or_path.strip()
    if name == EMBEDDED_MODEL:
        folder = embedded_model_dir()
        verify_manifest(folder)
        return "local", folder
    if HUB_ID.match(name) and not is_explicit_path(name):
        return "hub", name
    path = Path(name).expanduser()
    if path.exists():
        if not path.is_dir():
            raise ModelLoadError(f"{path} is a file; a model is a folder with config and weights")
        if (path / MANIFEST).is_file():
            verify_manifest(path)
        return "local", path
    raise ModelLoadError(f"model folder not found: {path}")


def _check_local(folder: Path) -> None:
    if not (folder / "config.json").is_file() and not (folder / ADAPTER_CONFIG).is_file():
        raise ModelLoadError(f"{folder}: no config.json; not a model folder")
    weights = any((folder / w).is_file() for w in WEIGHT_FILES)
    if not weights and not (folder / ADAPTER_CONFIG).is_file():
        raise ModelLoadError(
            f"{folder}: no model weights (expected one of {', '.join(WEIGHT_FILES)} "
            f"or a PEFT {ADAPTER_CONFIG})"
        )


def hub_source(model_id: str) -> str | Path:
    """Where a hub id loads from: its snapshot folder in the local Hugging Face cache when the hub
    is off (HF_HUB_OFFLINE / TRANSFORMERS_OFFLINE), else the id (transformers downloads and
    caches it; its snapshot folder when a folder of that name is in the cwd). Raises
    ModelLoadError when offline and the id is not cached."""
    offline = hub_offline() or (
        "TRANSFORMERS_OFFLINE" if os.environ.get("TRANSFORMERS_OFFLINE") == "1" else None
    )
    if not offline:
        if not Path(model_id).exists():
            return model_id
        # a local folder of that name would shadow the id (transformers tries the cwd first)
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(model_id))
    try:
        return cached_snapshot(model_id)
    except NotCached as exc:
        raise ModelLoadError(f"{exc} ({offline}=1 is set)") from exc


def load_tokenizer(source: str | Path, *, require_chat_template: bool = True):
    """The tokenizer at `source`, checked for a pad token (and a chat template)."""
    from transformers import AutoTokenizer

    try:
        tok = AutoTokenizer.from_pretrained(str(source))
    except Exception as exc:  # noqa: BLE001 - name the source whatever went wrong
        raise ModelLoadError(f"{source}: cannot load the tokenizer ({exc})") from exc
    if tok.pad_token is None:
        raise ModelLoadError(
            f"{source}: the tokenizer has no pad token; set pad_token in tokenizer_config.json"
        )
    if require_chat_template and not tok.chat_template:
        raise ModelLoadError(
            f"{source}: the tokenizer has no chat template; add chat_template to "
            "tokenizer_config.json (or chat_template.jinja)"
        )
    return tok


def load_policy(
    name_or_path: str = EMBEDDED_MODEL,
    *,
    dtype: str = "auto",
    device: str = "cpu",
    lora: LoraSpec | None = None,
    require_chat_template: bool = True,
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """(model, tokenizer) from 'embedded', a local folder (full weights or a PEFT adapter) or a
    hub id; `lora` wraps fresh trainable LoRA adapters around the model."""
    kind, source = locate(name_or_path)
    if kind == "hub":
        source = hub_source(str(source))
    if isinstance(source, Path):
        _check_local(Path(source))
        if (Path(source) / ADAPTER_CONFIG).is_file() and not any(
            (Path(source) / w).is_file() for w in WEIGHT_FILES
        ):
            return _load_adapter(
                Path(source),
                dtype=dtype,
                device=device,
                require_chat_template=require_chat_template,
            )
    device = resolve_device(device)
    tok = load_tokenizer(source, require_chat_template=require_chat_template)
    from transformers import AutoModelForCausalLM

    try:
        model = AutoModelForCausalLM.from_pretrained(
            str(source), dtype=resolve_dtype(dtype, device)
        )
    except Exception as exc:  # noqa: BLE001
        raise ModelLoadError(f"{source}: cannot load the model ({exc})") from exc
    model.to(device)
    if lora is not None:
        model = apply_lora(model, lora)
    return model, tok


def peft_lora_config(spec: LoraSpec):
    """PEFT's LoraConfig for a causal LM from our spec."""
    from peft import LoraConfig

    return LoraConfig(
        r=spec.r,
        lora_alpha=spec.alpha,
        lora_dropout=spec.dropout,
        target_modules=list(spec.target_modules),
        task_type="CAUSAL_LM",
    )


def apply_lora(model, spec: LoraSpec):
    """Wrap `model` in fresh trainable LoRA adapters (PEFT)."""
    from peft import get_peft_model

    return get_peft_model(model, peft_lora_config(spec))


def _load_adapter(folder: Path, *, dtype: str, device: str, require_chat_template: bool):
    """A saved PEFT adapter: its base model (from adapter_config.json) plus the adapter."""
    base_name = json.loads((folder / ADAPTER_CONFIG).read_text()).get("base_model_name_or_path")
    if not base_name:
        raise ModelLoadError(f"{folder}/{ADAPTER_CONFIG} names no base_model_name_or_path")
    base, tok = load_policy(
        base_name, dtype=dtype, device=device, require_chat_template=require_chat_template
    )
    if any((folder / n).is_file() for n in ("tokenizer.json", "tokenizer_config.json")):
        tok = load_tokenizer(folder, require_chat_template=require_chat_template)
    from peft import PeftModel

    return PeftModel.from_pretrained(base, str(folder), is_trainable=True), tok


def lora_spec_from_config(cfg: ModelConfig) -> LoraSpec | None:
    if not cfg.lora:
        return None
    return LoraSpec(
        r=cfg.lora_r,
        alpha=cfg.lora_alpha,
        dropout=cfg.lora_dropout,
        target_modules=tuple(cfg.lora_target_modules),
    )


def load_policy_from_config(cfg: ModelConfig, *, device: str = "cpu", **kwargs: Any):
    """`load_policy` with the model section of a run config."""
    return load_policy(
        cfg.name_or_path,
        dtype=cfg.dtype,
        device=device,
        lora=lora_spec_from_config(cfg),
        **kwargs,
    )
