"""`verl-studio rank --demo` on the real embedded model: what it prints and saves is measured."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from engine.cli.jobs import rank as cli
from engine.studio.rank_demo import DemoSettings, run_demo
from tests.conftest import REPO, require
from tests.rank_oracle import response_slow

STRIDE = 4


def embedded_model_present() -> bool:
    return (REPO / "assets" / "demo-model" / "model.safetensors").is_file()


@pytest.fixture(scope="module")
def demo():
    require(embedded_model_present(), "the embedded model under assets/demo-model")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return run_demo(STRIDE, DemoSettings())
    finally:
        torch.set_num_threads(threads)


def test_demo_rank_dynamics_match_the_oracle(demo):
    assert demo.hidden.shape[0] == DemoSettings().samples
    for i in range(demo.hidden.shape[0]):
        x = demo.hidden[i][demo.mask[i]].numpy()
        o = response_slow(x, STRIDE, DemoSettings().max_len)
        assert demo.rd.er[i].item() == pytest.approx(o["er"], rel=1e-6)
        np.testing.assert_allclose(demo.rd.curves[i].numpy(), o["curve"], rtol=1e-6)
        assert demo.rd.positions[i].tolist() == o["positions"]
        scale = max([1.0] + o["curve"])
        assert demo.rd.erv[i].item() == pytest.approx(o["erv"], abs=1e-6 * scale)
        assert demo.rd.era[i].item() == pytest.approx(o["era"], abs=1e-6 * scale)


def test_demo_captures_the_last_hidden_state_of_each_response_token(demo):
    """Against a plain forward with output_hidden_states (its last, post-norm entry) and the
    model's own logits, one unpadded response at a time."""
    from engine.models.loading import load_policy

    model, _ = load_policy("embedded")
    p = demo.prompt_len
    for i in range(demo.ids.shape[0]):
        n = int(demo.mask[i].sum())
        with torch.no_grad():
            out = model(input_ids=demo.ids[i : i + 1, : p + n], output_hidden_states=True)
        torch.testing.assert_close(
            demo.hidden[i, :n], out.hidden_states[-1][0, p:], atol=1e-5, rtol=1e-4
        )
        logp = torch.log_softmax(out.logits[0, p - 1 : -1].double(), -1)  # (n, V)
        taken = logp.gather(-1, demo.ids[i, p : p + n, None]).mean().item()
        entropy = -(logp.exp() * logp).sum(-1).mean().item()
        assert demo.tp.mean_logprob[i].item() == pytest.approx(taken, rel=1e-4, abs=1e-5)
        assert demo.tp.entropy[i].item() == pytest.approx(entropy, rel=1e-4, abs=1e-5)


def test_demo_token_proxies_are_finite_and_plausible(demo):
    assert torch.isfinite(demo.tp.entropy).all() and torch.isfinite(demo.tp.mean_logprob).all()
    assert (demo.tp.entropy >= 0).all() and (demo.tp.mean_logprob <= 0).all()
    assert (demo.tp.entropy <= np.log(400)).all()


def test_cli_prints_the_numbers_and_saves_the_plot(tmp_path):
    require(embedded_model_present(), "the embedded model under assets/demo-model")
    out = tmp_path / "curves.html"
    env = dict(os.environ, OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1")
    cmd = [sys.executable, "-m", "engine.cli", "rank", "--demo", "--out", str(out)]
    proc = subprocess.run(
        cmd + ["--stride", str(STRIDE)], cwd=REPO, env=env, capture_output=True, text=True,
        timeout=240,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = proc.stdout.splitlines()
    assert "ER" in lines[1] and "ERV" in lines[1] and "ERA" in lines[1]
    rows = [ln.split() for ln in lines[2 : 2 + DemoSettings().samples]]
    for row in rows:
        er, erv, era = (float(v) for v in row[3:6])
        assert 0 <= er <= int(row[2]) and np.isfinite([erv, era]).all()
    html = out.read_text()
    assert "plotly" in html.lower() and "effective rank of the prefix" in html


@pytest.mark.parametrize(
    "demo_flag, out, code", [(False, "x.html", 2), (True, "x.txt", 2)], ids=["no-demo", "bad-out"]
)
def test_cli_rejects_what_it_cannot_do(tmp_path, demo_flag, out, code):
    args = argparse.Namespace(demo=demo_flag, out=str(tmp_path / out), stride=STRIDE)
    assert cli(args) == code
