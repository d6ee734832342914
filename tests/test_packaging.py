"""The installed package holds every Python package of the source tree.

pyproject.toml lists its packages by hand (assets/ and recipes/ ship under engine.*), so a new
sub-package left off the list installs fine in editable mode and vanishes from a real install
(the Space image: `verl-studio` then fails with ModuleNotFoundError: engine.cli)."""

from __future__ import annotations

import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_every_source_package_is_listed_in_pyproject():
    listed = set(
        tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    )
    found = {
        ".".join(p.parent.relative_to(REPO).parts)
        for top in ("engine", "app")
        for p in (REPO / top).rglob("__init__.py")
    }
    assert found - listed == set(), f"add to [tool.setuptools] packages: {sorted(found - listed)}"
