"""Hub ids, offline but real: a Hugging Face cache laid out as huggingface_hub writes it, a model and
a dataset loaded from it by id with HF_HUB_OFFLINE=1 through the loaders users call.

Before: any hub id with HF_HUB_OFFLINE=1 was refused, so a model downloaded once could never be
used on a machine without a network, and the hub paths had never run."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest
import torch

from engine.config import StudioConfig
from tests.conftest import require
from tests.fixtures.training import embedded_model_ready

REVISION = "0123456789abcdef0123456789abcdef01234567"


def write_hub_cache(cache: Path, repo_id: str, files: dict[str, bytes], repo_type: str = "model"):
    """One repository in huggingface_hub's cache layout (huggingface_hub file_download.py):
    <type>s--org--name/blobs/<hash>, snapshots/<commit>/<file> -> ../../blobs/<hash> (relative
    symlinks), refs/main = <commit>."""
    repo = cache / f"{repo_type}s--{repo_id.replace('/', '--')}"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(REVISION)
    for name, data in files.items():
        blob = repo / "blobs" / hashlib.sha256(data).hexdigest()
        blob.parent.mkdir(parents=True, exist_ok=True)
        blob.write_bytes(data)
        link = repo / "snapshots" / REVISION / name
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(os.path.relpath(blob, link.parent))
    return repo


@pytest.fixture
def offline_cache(tmp_path, monkeypatch):
    """An empty hub cache that huggingface_hub reads, the hub off, and a working directory with
    no folder named like the ids."""
    import datasets
    from huggingface_hub import constants

    cache = tmp_path / "hf" / "hub"
    cache.mkdir(parents=True)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "hf" / "datasets")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.chdir(tmp_path)
    return cache


def test_model_loads_by_hub_id_from_the_local_cache(offline_cache):
    require(embedded_model_ready(), "the embedded demo model (assets/demo-model)")
    from safetensors.torch import load_file

    from engine.models.loading import embedded_model_dir, load_policy_from_config

    src = embedded_model_dir()
    files = {p.name: p.read_bytes() for p in src.iterdir() if p.is_file()}
    write_hub_cache(offline_cache, "someorg/somemodel", files)
    cfg = StudioConfig.from_dict({"model": {"name_or_path": "someorg/somemodel"}})
    model, tok = load_policy_from_config(cfg.model)
    expected = load_file(str(src / "model.safetensors"))
    got = model.state_dict()
    assert expected and all(torch.equal(got[k], v) for k, v in expected.items() if k in got)
    assert tok.decode(tok("12 + 3")["input_ids"], skip_special_tokens=True).replace(" ", "") == (
        "12+3"
    )
    assert Path(model.name_or_path).is_relative_to(offline_cache)  # read from the snapshot


def test_a_model_id_not_in_the_cache_is_one_clear_error(offline_cache):
    from engine.models.loading import ModelLoadError, load_policy

    with pytest.raises(ModelLoadError) as err:
        load_policy("someorg/absent")
    msg = str(err.value)
    assert "'someorg/absent'" in msg and "not in the local Hugging Face cache" in msg
    assert str(offline_cache) in msg and "HF_HUB_OFFLINE" in msg


def test_dataset_loads_by_hub_id_from_the_local_cache(offline_cache):
    from engine.data.tasks import load_dataset_for

    rows = {
        "train": [{"question": f"{i} + 1", "answer": str(i + 1)} for i in range(5)],
        "test": [{"question": "2 + 2", "answer": "4"}],
    }
    files = {
        f"data/{split}.jsonl": "".join(json.dumps(r) + "\n" for r in rs).encode()
        for split, rs in rows.items()
    }
    write_hub_cache(offline_cache, "someorg/somedata", files, repo_type="dataset")
    cfg = StudioConfig.from_dict({"data": {"task": "someorg/somedata"}}).data
    train = load_dataset_for(cfg, "train").to_list()
    held = load_dataset_for(cfg, "eval").to_list()
    assert [r["prompt"] for r in train] == [r["question"] for r in rows["train"]]
    assert [r["answer"] for r in train] == [r["answer"] for r in rows["train"]]
    assert [r["answer"] for r in held] == ["4"]


def test_a_dataset_id_not_in_any_cache_is_one_clear_error(offline_cache):
    from engine.data.tasks import DatasetLoadError, load_dataset_for

    cfg = StudioConfig.from_dict({"data": {"task": "someorg/absent"}}).data
    with pytest.raises(DatasetLoadError) as err:
        load_dataset_for(cfg, "train")
    msg = str(err.value)
    assert "'someorg/absent'" in msg and "not in the local Hugging Face cache" in msg
    assert "\n" not in msg
