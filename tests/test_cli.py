"""The command line as a user runs it: quick commands stay quick."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from engine.storage import Store
from tests.conftest import REPO
from tests.test_storage import new_run, sample_dict, step_dict

HEAVY = ("trl", "gradio", "transformers", "torch")

# runs the console script's own entry point, then reports what it imported
PROBE = """
import json, sys
from app.cli import main
code = main(sys.argv[1:])
print(json.dumps({"code": code, "modules": sorted(sys.modules)}))
"""


@pytest.mark.parametrize(
    "command",
    [["runs"], ["export", "{run}", "--what", "samples", "--format", "jsonl"]],
    ids=["runs", "export"],
)
def test_quick_commands_import_neither_trl_nor_gradio(data_root, command):
    """`verl-studio runs` and `export` answer without importing TRL, Gradio or torch (the
    handlers once lived in modules that pulled them in)."""
    rng = np.random.default_rng(0)
    with Store.open(data_root) as store:
        run_id = new_run(store)
        store.log_step(run_id, step_dict(1), [sample_dict(rng, 0, i) for i in range(2)])
    args = [c.format(run=run_id) for c in command] + ["--data-dir", str(data_root.root)]
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads(proc.stdout.splitlines()[-1])
    assert report["code"] == 0
    heavy = sorted(m for m in report["modules"] if m.split(".")[0] in HEAVY)
    assert heavy == [], f"`verl-studio {command[0]}` imported {heavy[:5]}"
