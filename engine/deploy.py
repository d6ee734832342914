"""`verl-studio deploy --space USER/NAME`: this checkout as a Hugging Face Docker Space.

Through huggingface_hub, with the token of `hf auth login` (or HF_TOKEN) used only for these
calls and never copied into the Space:
1. with `--bucket`, create the bucket (private) that will hold database snapshots;
2. create the Space (Docker SDK, cpu-basic; an existing one is reused);
3. set its secret VERL_STUDIO_ADMIN_TOKEN (a fresh random token unless one is given; printed
   once, so the owner can act without a Hugging Face login), and with a bucket its variable
   VERL_STUDIO_SNAPSHOTS and the bucket mounted at /data;
4. upload README.md (the Space's front matter), Dockerfile, the package (engine, app, recipes,
   the embedded model and the seed runs) and the install scripts; the Space builds itself;
5. wait until its runtime stage is RUNNING (or a failure stage, or `--timeout`).

Any refusal from the Hub is one line: HTTP 402 (creating a Docker Space needs a paid plan since
mid-2026), 401/403 (the token cannot write there), anything else with the Hub's own message.
"""

from __future__ import annotations

import logging
import re
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parent.parent
ADMIN_SECRET = "VERL_STUDIO_ADMIN_TOKEN"
SNAPSHOT_VARIABLE = "VERL_STUDIO_SNAPSHOTS"
BUCKET_MOUNT = "/data"
SNAPSHOT_DIR = f"{BUCKET_MOUNT}/verl-studio-snapshots"
UPLOAD_PATTERNS = [
    "README.md",
    "Dockerfile",
    ".dockerignore",
    "pyproject.toml",
    "constraints.txt",
    "scripts/space/*",
    "engine/**",
    "app/**",
    "recipes/**",
    "assets/**",
]
IGNORE_PATTERNS = ["**/__pycache__/**", "**/*.pyc"]
FAILED_STAGES = ("BUILD_ERROR", "RUNTIME_ERROR", "CONFIG_ERROR", "NO_APP_FILE", "DELETING")
REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]{0,95}/[A-Za-z0-9][\w.-]{0,95}$")


class DeployError(RuntimeError):
    """A deployment that could not go on; the message is one line for the user."""


@dataclass(frozen=True)
class Deployment:
    space_id: str
    url: str
    stage: str
    admin_token: str  # the secret set in the Space ("" when the caller supplied their own)


def hub_error(exc: Exception, what: str) -> DeployError:
    """One line for a Hub refusal (huggingface_hub's HfHubHTTPError) while doing `what`."""
    response = getattr(exc, "response", None)
    status = getattr(response, "status_code", None)
    if status == 402:
        return DeployError(
            f"the Hub refused to {what} (HTTP 402 Payment Required): new Docker Spaces need a "
            "paid plan (PRO for a user, Team or Enterprise for an org) since mid-2026; the CPU "
            "Basic hardware itself is free"
        )
    if status in (401, 403):
        return DeployError(
            f"the Hub refused to {what} (HTTP {status}): the token cannot write there; log in "
            "with a write token for that user or org (`hf auth login`)"
        )
    detail = str(getattr(exc, "server_message", "") or exc).strip().splitlines()
    line = detail[0] if detail else type(exc).__name__
    return DeployError(f"the Hub could not {what} (HTTP {status or '?'}): {line[:300]}")


def check_ids(space_id: str, bucket: str | None) -> None:
    for label, value in (("--space", space_id), ("--bucket", bucket)):
        if value is not None and not REPO_ID.match(value):
            raise DeployError(f"{label} must look like USER/NAME, not {value[:100]!r}")
    if not (REPO / "Dockerfile").is_file():
        raise DeployError(f"deploy needs a source checkout with its Dockerfile; none in {REPO}")


def _call(what: str, fn: Any, *args: Any, **kw: Any) -> Any:
    from huggingface_hub.errors import HfHubHTTPError

    try:
        return fn(*args, **kw)
    except HfHubHTTPError as exc:
        log.debug("Hub call failed: %s", what, exc_info=True)
        raise hub_error(exc, what) from None


def configure_space(api: Any, space_id: str, admin_token: str, bucket: str | None) -> None:
    """The Space's secret, and with a bucket its snapshot variable and mount."""
    from huggingface_hub import Volume

    _call("set the admin secret", api.add_space_secret, space_id, ADMIN_SECRET, admin_token)
    if bucket:
        _call("create the bucket", api.create_bucket, bucket, private=True, exist_ok=True)
        _call(
            "set the snapshot variable",
            api.add_space_variable,
            space_id,
            SNAPSHOT_VARIABLE,
            SNAPSHOT_DIR,
        )
        volume = Volume(type="bucket", source=bucket, mount_path=BUCKET_MOUNT)
        _call("mount the bucket", api.set_space_volumes, space_id, [volume])


def wait_running(api: Any, space_id: str, timeout_s: float, poll_s: float) -> str:
    """Poll the Space's runtime stage until RUNNING; DeployError on a failure stage or timeout."""
    deadline = time.monotonic() + timeout_s
    while True:
        stage = str(_call("read the Space's state", api.get_space_runtime, space_id).stage)
        stage = stage.removeprefix("SpaceStage.")
        if stage == "RUNNING":
            return stage
        if stage in FAILED_STAGES:
            raise DeployError(
                f"the Space {space_id} stopped at {stage}: see its build and container logs "
                f"on https://huggingface.co/spaces/{space_id}"
            )
        if time.monotonic() > deadline:
            raise DeployError(f"the Space {space_id} is still {stage} after {timeout_s:.0f} s")
        time.sleep(poll_s)


def deploy_space(
    api: Any,
    space_id: str,
    *,
    private: bool = False,
    bucket: str | None = None,
    admin_token: str | None = None,
    wait: bool = True,
    timeout_s: float = 1800.0,
    poll_s: float = 10.0,
) -> Deployment:
    """Create or update the Space `space_id` from this checkout (module docstring); `api` is a
    `huggingface_hub.HfApi`. Raises DeployError with one line."""
    check_ids(space_id, bucket)
    token = admin_token or secrets.token_urlsafe(32)
    url = _call(
        "create the Space",
        api.create_repo,
        space_id,
        repo_type="space",
        space_sdk="docker",
        space_hardware="cpu-basic",
        private=private,
        exist_ok=True,
    )
    configure_space(api, space_id, token, bucket)
    _call(
        "upload the app",
        api.upload_folder,
        repo_id=space_id,
        repo_type="space",
        folder_path=REPO,
        allow_patterns=UPLOAD_PATTERNS,
        ignore_patterns=IGNORE_PATTERNS,
        commit_message="Deploy VERL Studio",
    )
    stage = wait_running(api, space_id, timeout_s, poll_s) if wait else "BUILDING"
    return Deployment(space_id, str(url), stage, "" if admin_token else token)
