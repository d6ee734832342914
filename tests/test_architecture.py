"""Imports point one way: engine/storage <- engine <- app; pure modules import no heavy stack;
runs are created and deleted by the run service only; only CLI modules print.

Checked by folder, on the source (AST), so a new module in a folder is held to its folder's rule.
An import under `if TYPE_CHECKING:` is an annotation, not an import, and is not counted."""

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


def module_name(path: Path) -> str:
    return ".".join(path.relative_to(REPO).with_suffix("").parts)


def _type_checking_only(tree: ast.AST) -> set[ast.AST]:
    """The nodes inside `if TYPE_CHECKING:` blocks."""
    inside = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.body:
                inside.update(ast.walk(child))
    return inside


def imported_names(path: Path) -> set[str]:
    """Every module `path` imports at run time (relative imports resolved; TYPE_CHECKING-only
    imports left out)."""
    tree = ast.parse(path.read_text())
    skip = _type_checking_only(tree)
    package = module_name(path).split(".")[:-1] if path.is_relative_to(REPO) else []
    names = set()
    for node in ast.walk(tree):
        if node in skip:
            continue
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                module = ".".join([*base, node.module] if node.module else base)
            else:
                module = node.module
            names.add(module)
            names.update(f"{module}.{alias.name}" for alias in node.names)
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


# ---------------------------------------------------------------- by folder

HEAVY_AND_STORAGE = {"gradio", "trl", "sqlalchemy", "engine.storage"}
# the pure parts: folders (every module in them) and single modules
PURE_PARTS = (
    "engine/rank",
    "engine/shaping.py",
    "engine/data/rewards.py",
    "engine/analysis.py",
    "app/plots.py",
    "app/analysis_plots.py",
)
# the command-line modules: the only ones that may print (bench/ scripts print their reports)
CLI_MODULES = ("engine/cli", "app/cli.py")
RUN_SERVICE = "engine/runs/service.py"


def python_files(*parts: str) -> list[Path]:
    """The .py files of each part (a folder: every module below it; a file: itself)."""
    files = []
    for part in parts:
        path = REPO / part
        assert path.exists(), f"{part} is missing"
        files += sorted(path.rglob("*.py")) if path.is_dir() else [path]
    return files


def rel(path: Path) -> str:
    return str(path.relative_to(REPO))


def calls(path: Path) -> list[ast.Call]:
    return [n for n in ast.walk(ast.parse(path.read_text())) if isinstance(n, ast.Call)]


@pytest.mark.parametrize("path", python_files(*PURE_PARTS), ids=rel)
def test_pure_parts_import_no_storage_trl_or_gradio(path):
    bad = {n for n in imported_names(path) if violates(n, HEAVY_AND_STORAGE)}
    assert not bad, f"{rel(path)} imports {bad}"


@pytest.mark.parametrize("path", python_files("engine"), ids=rel)
def test_engine_never_imports_app_or_gradio_at_all(path):
    """Not even for type checking: the engine does not know the app exists."""
    tree = ast.parse(path.read_text())
    names = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    names |= {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    bad = {n for n in names if violates(n, {"gradio", "app"})}
    assert not bad, f"{rel(path)} imports {bad}"


@pytest.mark.parametrize("path", python_files("engine/storage"), ids=rel)
def test_storage_imports_nothing_above_it(path):
    above = {"app", "gradio", "trl", "transformers", "torch", "engine"}
    allowed = ("engine.storage", "engine.paths")
    bad = {n for n in imported_names(path) if violates(n, above) and not n.startswith(allowed)}
    assert not bad, f"{rel(path)} imports {bad}"


@pytest.mark.parametrize("path", python_files("engine", "app", "bench"), ids=rel)
def test_only_the_run_service_creates_or_deletes_runs(path):
    if rel(path) == RUN_SERVICE:
        return
    bad = [
        f"line {c.lineno}: .{c.func.attr}("
        for c in calls(path)
        if isinstance(c.func, ast.Attribute) and c.func.attr in ("create_run", "delete_run")
    ]
    assert not bad, f"{rel(path)} calls {bad}: go through engine.runs.service"


@pytest.mark.parametrize("path", python_files("engine", "app"), ids=rel)
def test_no_library_module_prints(path):
    if any(rel(path) == m or rel(path).startswith(m + "/") for m in CLI_MODULES):
        return
    bad = [c.lineno for c in calls(path) if isinstance(c.func, ast.Name) and c.func.id == "print"]
    assert not bad, f"{rel(path)} prints (lines {bad}): log, or return the value to a CLI module"


@pytest.mark.parametrize("path", python_files("app"), ids=rel)
def test_user_errors_go_through_user_error(path):
    """A refusal shown to the user is `app.pages.common.user_error` (one escaped line, no
    traceback in the log); a bare gr.Error logged the user's mistake with a full traceback."""
    bad = [
        c.lineno
        for c in calls(path)
        if isinstance(c.func, ast.Attribute) and c.func.attr == "Error"
        and ast.unparse(c.func.value) == "gr"
        and not any(k.arg == "print_exception" for k in c.keywords)
    ]  # fmt: skip
    assert not bad, f"{rel(path)} raises gr.Error at lines {bad}: raise user_error(...)"


def test_the_checks_can_fail(tmp_path):
    """The walkers see what they look for (a rule over files they cannot read would pass)."""
    probe = tmp_path / "probe.py"
    probe.write_text(
        "from typing import TYPE_CHECKING\n"
        "import trl\n"
        "if TYPE_CHECKING:\n    from engine.storage import Store\n"
        "store.create_run({})\nprint('x')\n"
    )
    names = imported_names(probe)
    assert "trl" in names and "engine.storage" not in names
    assert [c.func.attr for c in calls(probe) if isinstance(c.func, ast.Attribute)] == [
        "create_run"
    ]
    assert any(isinstance(c.func, ast.Name) and c.func.id == "print" for c in calls(probe))
