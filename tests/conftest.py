"""Shared test set-up. Expensive fixtures live in tests/fixtures/ and are loaded as plugins.

`require(ok, what)`: a test whose real component is missing skips on a developer's machine and
fails under CI=true, so CI never passes by skipping.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

pytest_plugins = [
    "tests.fixtures.common",
    "tests.fixtures.pg",
    "tests.fixtures.server",
    "tests.fixtures.training",
    "tests.fixtures.browser",
]

REPO = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("VERL_STUDIO_SHARED") or REPO.parent / "shared")  # worktrees: set it
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def require(ok: bool, what: str) -> None:
    if ok:
        return
    if IN_CI:
        pytest.fail(f"missing under CI: {what}")
    pytest.skip(f"missing: {what}")


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    require(SHARED.is_dir(), f"the shared data folder {SHARED}")
    return SHARED


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    path = Path(os.environ.get("VERL_STUDIO_ARTIFACTS", REPO / "test-artifacts"))
    path.mkdir(parents=True, exist_ok=True)
    return path
