"""The shared deterministic acceptance cases (../shared/data/rank_cases) through rank_dynamics.

Each case's hidden states come from the case generator (checked against its fingerprint) and the
result must pass the generator's own `compare()` against the independent float64 values in
expected.json. More cases of the same kinds, checked against tests/rank_oracle.py, cover the
generator's other kinds (decay, ar1, constant, tiny, duplicate rows) and larger shapes.
"""

from __future__ import annotations

import importlib.util
import json

import pytest
import torch

from engine.rank import scheduling as S
from tests.rank_oracle import response_slow

PATHS = ["pool-2", "pool-1", "batched"]


@pytest.fixture(scope="module")
def cases(shared_dir):
    folder = shared_dir / "data" / "rank_cases"
    spec = importlib.util.spec_from_file_location("rank_cases", folder / "cases.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.EXPECTED = json.loads((folder / "expected.json").read_text())
    return module


def measure(H, stride, max_len, path) -> dict:
    """One response (T, D) through an engine path -> the dict compare() wants."""
    hidden = torch.from_numpy(H)[None]  # (1, T, D)
    mask = torch.ones(hidden.shape[:2], dtype=torch.bool)
    if path == "batched":  # the CUDA path's code, run on the CPU
        rd = S.assemble(mask, stride, max_len, S.batched_values(hidden, mask, stride, max_len))
    else:
        rd = S.rank_dynamics(hidden, mask, stride, max_len, workers=int(path[-1]))
    return {
        "er": rd.er[0].item(),
        "erv": rd.erv[0].item(),
        "era": rd.era[0].item(),
        "curve": rd.curves[0].tolist(),
        "positions": rd.positions[0].tolist(),
    }


@pytest.mark.parametrize("path", PATHS)
def test_shared_cases_pass_compare(cases, path):
    failures = {}
    assert len(cases.EXPECTED["cases"]) >= 12
    for case in cases.EXPECTED["cases"]:
        H = cases.make_hidden(case)
        assert cases.fingerprint(H) == case["fingerprint"], case["name"]
        msgs = cases.compare(measure(H, case["stride"], case["max_seq_len"], path), case)
        if msgs:
            failures[case["name"]] = msgs
    assert not failures


def test_shared_cases_match_at_tighter_tolerance(cases):
    """The exact engine has headroom: 1e-9 where the cases ask 1e-5."""
    for case in cases.EXPECTED["cases"]:
        H = cases.make_hidden(case)
        got = measure(H, case["stride"], case["max_seq_len"], "pool-2")
        assert cases.compare(got, case, rtol=1e-9, atol_scaled=1e-9) == [], case["name"]


MORE = [
    dict(name="decay", kind="decay", T=400, D=128, stride=20, max_seq_len=300, seed=37),
    dict(name="ar1", kind="ar1", T=500, D=96, stride=25, max_seq_len=512, seed=38),
    dict(name="constant", kind="constant", T=100, D=32, stride=10, max_seq_len=512, seed=35),
    dict(name="tiny", kind="tiny", T=120, D=24, stride=10, max_seq_len=512, seed=36),
    dict(name="dup5", kind="duprows", T=600, D=256, stride=50, max_seq_len=None, seed=31,
         distinct=5),
    dict(name="dup40", kind="duprows", T=300, D=64, stride=15, max_seq_len=None, seed=32,
         distinct=40),
    dict(name="lowrank3", kind="lowrank", T=700, D=300, stride=50, max_seq_len=None, seed=33,
         rank=3),
    dict(name="offset_long", kind="offset", T=700, D=160, stride=40, max_seq_len=None, seed=39),
    dict(name="bf16_trunc", kind="bf16", T=400, D=48, stride=16, max_seq_len=200, seed=40),
]  # fmt: skip


@pytest.mark.parametrize("case", MORE, ids=[c["name"] for c in MORE])
def test_more_cases_of_the_same_kinds(cases, case):
    H = cases.make_hidden(case)
    expected = response_slow(H, case["stride"], case["max_seq_len"])
    got = measure(H, case["stride"], case["max_seq_len"], "pool-2")
    assert got["positions"] == expected["positions"]
    assert cases.compare(got, expected, rtol=1e-6, atol_scaled=1e-6) == []
