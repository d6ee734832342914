"""How many token positions a model has, read from its config.json alone (no torch, no weights).

    model_positions("embedded")            # (256, "<assets>/demo-model/config.json")
    model_positions("/models/qwen")        # (4096, "/models/qwen/config.json")
    model_positions("Qwen/Qwen2.5-0.5B")   # from the local hub cache only; (None, "") when absent

What a submitted run is checked against: a prompt plus `max_completion_length` new tokens must
fit in the model's positions, or generation runs past them (garbage or an index error deep in
the first step). A PEFT adapter folder is read through its `base_model_name_or_path`.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

# config.json keys that hold the context length, in the order transformers' models use them
POSITION_KEYS = ("max_position_embeddings", "n_positions", "max_seq_len", "seq_length", "n_ctx")
ADAPTER_CONFIG = "adapter_config.json"


def _positions_in(config: dict[str, Any]) -> tuple[int, str] | None:
    """(positions, key) from a config dict, looking into a nested text_config too."""
    for where in (config, config.get("text_config") or {}):
        for key in POSITION_KEYS:
            value = where.get(key) if isinstance(where, dict) else None
            if isinstance(value, int) and not isinstance(value, bool) and value > 0:
                return value, key
    return None


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        log.debug("cannot read %s: %s", path, exc)
        return None
    return data if isinstance(data, dict) else None


def _config_file(name_or_path: str, depth: int = 0) -> Path | None:
    """The config.json of a model given as in ModelConfig.name_or_path, when it is on disk."""
    from engine.config import EMBEDDED_MODEL

    name = name_or_path.strip()
    if name == EMBEDDED_MODEL:
        from engine.resources import asset_dir

        return asset_dir("demo-model") / "config.json"
    folder = Path(name).expanduser()
    if folder.is_dir():
        if (folder / "config.json").is_file():
            return folder / "config.json"
        adapter = _read_json(folder / ADAPTER_CONFIG) or {}
        base = adapter.get("base_model_name_or_path")
        if isinstance(base, str) and base and depth < 2:
            return _config_file(base, depth + 1)
        return None
    if folder.exists():
        return None
    return _hub_cached_config(name)


def _hub_cached_config(repo_id: str) -> Path | None:
    """config.json of a hub model from the local cache only (a submit never downloads)."""
    try:
        from huggingface_hub import try_to_load_from_cache

        found = try_to_load_from_cache(repo_id, "config.json")
    except Exception as exc:  # not a valid repo id: the model loader names it at submit
        log.debug("no cached config for %r: %s", repo_id, exc)
        return None
    return Path(found) if isinstance(found, str) else None


def model_positions(name_or_path: str) -> tuple[int | None, str]:
    """(positions, "<config.json path> (<key>)"), or (None, "") when the config is not on disk
    or names no context length."""
    path = _config_file(name_or_path)
    config = _read_json(path) if path is not None else None
    found = _positions_in(config) if config else None
    if found is None:
        return None, ""
    positions, key = found
    return positions, f"{key} in {path}"
