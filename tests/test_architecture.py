"""Imports point one way: engine/storage <- engine <- app; pure modules import no heavy stack."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

# module file -> top-level packages it must never import
PURE = {
    "engine/rank/effective_rank.py": {"gradio", "app", "trl", "sqlalchemy", "engine.storage"},
    "engine/rank/scheduling.py": {"gradio", "app", "trl", "sqlalchemy", "engine.storage"},
    "engine/shaping.py": {"gradio", "app", "trl", "sqlalchemy", "engine.storage"},
    "engine/health.py": {"gradio", "app", "trl", "torch", "sqlalchemy", "engine.storage"},
    "engine/data/rewards.py": {"gradio", "app", "trl", "sqlalchemy", "engine.storage"},
    "engine/data/answers.py": {"gradio", "app", "trl", "sqlalchemy", "engine.storage"},
    "engine/analysis.py": {"gradio", "app", "trl"},
    "app/plots.py": {"gradio", "trl", "sqlalchemy", "engine.storage"},
    "app/analysis_plots.py": {"gradio", "trl", "sqlalchemy", "engine.storage"},
}


def imported_names(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def violates(name: str, banned: set[str]) -> bool:
    return any(name == b or name.startswith(b + ".") for b in banned)


@pytest.mark.parametrize("path", sorted((REPO / "engine").rglob("*.py")), ids=str)
def test_engine_never_imports_app_or_gradio(path):
    bad = {n for n in imported_names(path) if violates(n, {"gradio", "app"})}
    assert not bad, f"{path.relative_to(REPO)} imports {bad}"


@pytest.mark.parametrize("path", sorted((REPO / "engine" / "storage").rglob("*.py")), ids=str)
def test_storage_imports_no_training_code(path):
    engine_imports = {n for n in imported_names(path) if n.startswith("engine.")}
    bad = {n for n in engine_imports if not n.startswith(("engine.storage", "engine.paths"))}
    assert not bad, f"{path.relative_to(REPO)} imports {bad}"


@pytest.mark.parametrize("rel", sorted(PURE))
def test_pure_modules_stay_pure(rel):
    path = REPO / rel
    assert path.is_file(), f"{rel} is missing"
    bad = {n for n in imported_names(path) if violates(n, PURE[rel])}
    assert not bad, f"{rel} imports {bad}"
