"""Files shipped inside the package (assets/ and recipes/ in the repository)."""

from __future__ import annotations

from importlib.resources import as_file, files
from pathlib import Path

from engine.config import ConfigError


def asset_dir(name: str) -> Path:
    """A folder under assets/ as a real path (the package is installed unzipped)."""
    with as_file(files("engine.assets") / name) as path:
        return Path(path)


def asset_file(name: str) -> Path:
    """A file under assets/ as a real path."""
    with as_file(files("engine.assets") / name) as path:
        return Path(path)


def recipe_names() -> list[str]:
    return sorted(
        p.name.removesuffix(".yaml")
        for p in files("engine.recipes").iterdir()
        if p.name.endswith(".yaml")
    )


def recipe_path(name_or_path: str) -> Path:
    """A recipe by shipped name (`demo-cpu`) or a file path."""
    path = Path(name_or_path)
    if path.is_file():
        return path
    stem = path.name.removesuffix(".yaml")
    if stem in recipe_names():
        with as_file(files("engine.recipes") / f"{stem}.yaml") as found:
            return Path(found)
    raise ConfigError(
        [
            (
                "config",
                f"no such file or recipe: {name_or_path} (recipes: {', '.join(recipe_names())})",
            )
        ]
    )
