"""Hugging Face hub ids resolved from the local hub cache, so that they load without a network.

`huggingface_hub` keeps every download in one cache (`$HF_HUB_CACHE`, by default
`$HF_HOME/hub`, by default `~/.cache/huggingface/hub`) laid out as

    models--org--name/refs/main                  the commit the "main" ref points at
    models--org--name/snapshots/<commit>/...     the repository's files (links into blobs/)
    datasets--org--name/...                      the same for a dataset

`cached_snapshot` asks huggingface_hub itself (`snapshot_download(local_files_only=True)`) for
the snapshot folder of an id, so a model or dataset downloaded once (on this machine, or copied
here from one with a network) loads by its id with HF_HUB_OFFLINE=1.
"""

from __future__ import annotations

from pathlib import Path


class NotCached(LookupError):
    """The id is not in the local hub cache; the message says where it looked and the fix."""


def hub_cache_dir() -> Path:
    """The cache huggingface_hub reads now ($HF_HUB_CACHE / $HF_HOME/hub / ~/.cache/...)."""
    from huggingface_hub import constants

    return Path(constants.HF_HUB_CACHE).expanduser()


def cached_snapshot(repo_id: str, repo_type: str = "model", revision: str | None = None) -> Path:
    """The local snapshot folder of hub repository `repo_id` ("org/name"), from the cache only.

    repo_type: "model" or "dataset". Never touches the network. Raises NotCached naming the id,
    the cache folder and how to fill it.
    """
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        folder = snapshot_download(
            repo_id, repo_type=repo_type, revision=revision, local_files_only=True
        )
    except (LocalEntryNotFoundError, FileNotFoundError, OSError, ValueError) as exc:
        kind = "dataset" if repo_type == "dataset" else "model"
        flag = " --repo-type dataset" if repo_type == "dataset" else ""
        raise NotCached(
            f"{kind} {repo_id!r} is not in the local Hugging Face cache ({hub_cache_dir()}); "
            f"download it where there is a network (`hf download {repo_id}{flag}`) and copy the "
            "cache here (or set HF_HUB_CACHE), or unset HF_HUB_OFFLINE"
        ) from exc
    return Path(folder)
