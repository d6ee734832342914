"""The dashboard's second part in a real browser: compare, analysis, evaluate, playground.

One served app (with its worker) over a copy of the suite's trained `verl` run, plus a `grpo`
run of the same recipe that the worker trains meanwhile. Numbers on the pages are checked
against numpy on the store's own rows; screenshots go to the artifacts folder.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

pytestmark = pytest.mark.browser
WAIT_MS = 120_000


def plot_data(page, elem_id: str):
    """The traces of the Plotly chart inside `#elem_id` (None before it is drawn)."""
    return page.evaluate(
        """id => { const d = document.querySelector('#' + id + ' .js-plotly-plot');
                   return d && d.data ? d.data.map(t => ({name: t.name || null,
                     x: Array.from(t.x || []), y: Array.from(t.y || [])})) : null; }""",
        elem_id,
    )


def wait_traces(page, elem_id: str, n: int) -> list[dict]:
    """Wait (up to WAIT_MS) until the chart in `#elem_id` holds `n` traces; returns them."""
    page.wait_for_function(
        """([id, n]) => { const d = document.querySelector('#' + id + ' .js-plotly-plot');
                         return !!(d && d.data && d.data.length === n); }""",
        arg=[elem_id, n],
        timeout=WAIT_MS,
    )
    return plot_data(page, elem_id)


def pick(page, elem_id: str, label: str) -> None:
    """Choose `label` in the Gradio dropdown `#elem_id`."""
    box = page.locator(f"#{elem_id} input")
    box.click()
    box.fill(label)
    page.get_by_role("option", name=label, exact=True).first.click()


def open_tab(page, title: str) -> None:
    page.get_by_role("tab", name=title, exact=True).click()


def shot(page, artifacts_dir, name: str) -> None:
    page.screenshot(path=str(artifacts_dir / f"part2-{name}.png"), full_page=True)


@pytest.fixture
def two_runs(finished_run_copy):
    """The trained `verl` run and a `grpo` run of the same recipe, trained here for real."""
    from engine.runs.admission import AccessPolicy
    from engine.runs.service import submit
    from engine.storage import Store
    from engine.training.train import main
    from tests.fixtures.training import tiny_config

    cfg = tiny_config("run.algorithm=grpo", "run.checkpoint_every=3")
    root = finished_run_copy.root
    with Store(root.db_url) as store:
        grpo_id = submit(store, cfg, policy=AccessPolicy.command_line())
    assert main(cfg, root=root, run_id=grpo_id, progress=False) == 0
    return finished_run_copy, grpo_id


@pytest.fixture
def served(two_runs):
    from tests.fixtures.server import run_server

    trained, grpo_id = two_runs
    with run_server(trained.root.root, worker=True) as server:
        yield server, trained, grpo_id


def test_compare_analysis_evaluate_playground(page, served, artifacts_dir):
    from engine.storage import Store

    server, trained, grpo_id = served
    page.goto(server.url)
    drive(page, Store(server.db_url), trained.run_id, grpo_id, artifacts_dir, server.url)


def drive(page, store, verl_id: int, grpo_id: int, artifacts_dir, url: str) -> None:
    """Every page of part 2, in the order a user would visit them."""
    from playwright.sync_api import expect

    from app.queries import run_label

    verl, grpo = store.get_run(verl_id), store.get_run(grpo_id)
    verl_label, grpo_label = run_label(verl), run_label(grpo)

    # ---- compare: both runs' held-out accuracy on one chart, with the table
    open_tab(page, "Compare")
    pick(page, "compare-runs", verl_label)
    pick(page, "compare-runs", grpo_label)  # each pick redraws: there is no button
    expect(page.locator("#compare-table")).to_contain_text(grpo_label, timeout=WAIT_MS)
    traces = wait_traces(page, "compare-plot", 2)
    assert sorted(t["name"] for t in traces) == sorted([verl_label, grpo_label])
    for t, run_id in zip(traces, (verl.id, grpo.id), strict=True):
        steps = [
            r["step"]
            for r in store.steps(run_id, ["heldout_accuracy"])
            if r["heldout_accuracy"] is not None
        ]
        assert t["x"] == steps and steps
    shot(page, artifacts_dir, "compare")

    # ---- analysis: r read from the page equals numpy's r on the stored responses
    rows = [r for s in store.sample_steps(verl.id) for r in store.samples(verl.id, s)]
    r_np = np.corrcoef([r["er"] for r in rows], [r["erv"] for r in rows])[0, 1]
    r_ent = np.corrcoef([r["entropy"] for r in rows], [r["mean_logprob"] for r in rows])[0, 1]
    open_tab(page, "Analysis")
    pick(page, "analysis-run", verl_label)
    summary = page.locator("#analysis-summary")
    expect(summary).to_contain_text("r(ER, ERV) =", timeout=WAIT_MS)
    text = summary.inner_text()
    r_page = float(re.search(r"r\(ER, ERV\) = ([+-][0-9.]+)", text).group(1))
    r_ent_page = float(re.search(r"mean log-prob\) = ([+-][0-9.]+)", text).group(1))
    assert r_page == pytest.approx(r_np, abs=1e-3) and r_ent_page == pytest.approx(r_ent, abs=1e-3)
    assert f"{len(rows):,} responses" in text
    scatter = wait_traces(page, "analysis-er-erv", 1)
    assert len(scatter[0]["x"]) == min(len(rows), 5000)
    shot(page, artifacts_dir, "analysis")

    # ---- evaluate: a small eval job through the worker, to completion, then its curves
    open_tab(page, "Evaluate")
    pick(page, "eval-source", verl_label)
    for elem, value in (
        ("eval-problems", "4"),
        ("eval-n", "4"),
        ("eval-k", "4"),
        ("eval-max-new", "48"),
    ):
        page.locator(f"#{elem} input").fill(value)
    page.locator("#eval-base input").check()
    page.locator("#eval-launch").click()
    expect(page.locator("#eval-message")).to_contain_text("Queued eval run", timeout=WAIT_MS)
    expect(page.locator("#eval-status")).to_contain_text("completed", timeout=WAIT_MS)
    eval_run = store.list_runs(kind="eval")[0]
    evals = store.evals(eval_run.id)
    curves = wait_traces(page, "eval-plot", len(evals))
    for curve, row in zip(curves, evals, strict=True):
        assert curve["y"] == pytest.approx(row["pass_at_k"])
    assert all(c["x"] == [1, 2, 3, 4] for c in curves)
    assert [e["step"] for e in evals][0] == 0 and len(evals) >= 2
    shot(page, artifacts_dir, "evaluate")

    # ---- playground: stream an answer; the curve grows while tokens arrive
    open_tab(page, "Playground")
    page.evaluate(
        """() => { window.__sizes = []; setInterval(() => {
             const d = document.querySelector('#pg-curve .js-plotly-plot');
             const n = d && d.data && d.data[0] ? d.data[0].x.length : 0;
             if (window.__sizes[window.__sizes.length - 1] !== n) window.__sizes.push(n);
           }, 5); }"""
    )
    page.locator("#pg-max-new input").fill("64")
    page.locator("#pg-generate").click()
    expect(page.locator("#pg-stats")).to_contain_text("ERV", timeout=WAIT_MS)
    final = plot_data(page, "pg-curve")[0]
    assert len(final["x"]) >= 2
    page.wait_for_function(
        "n => window.__sizes[window.__sizes.length - 1] === n", arg=len(final["x"])
    )
    sizes = page.evaluate("() => window.__sizes")
    assert len([s for s in sizes if 0 < s < sizes[-1]]) >= 1, f"the curve never grew: {sizes}"
    assert sizes == sorted(sizes)
    assert page.locator("#pg-response textarea").input_value().strip()
    shot(page, artifacts_dir, "playground")

    # ---- a greedy answer pasted into "Analyse a trace": the same numbers, teacher-forced
    # (a fresh page, so the stats box starts empty and its first ERV is this answer's)
    errors = []
    page = page.context.new_page()
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(url)
    open_tab(page, "Playground")
    page.locator("#pg-greedy input").check()
    page.locator("#pg-generate").click()
    expect(page.locator("#pg-stats")).to_contain_text("ERV", timeout=WAIT_MS)
    streamed = page.locator("#pg-stats").inner_text()
    answer = page.locator("#pg-response textarea").input_value()
    prompt = page.locator("#pg-prompt textarea").input_value()
    page.get_by_role("tab", name="Analyse a trace").click()
    page.locator("#pg-a-prompt textarea").fill(prompt)
    page.locator("#pg-a-response textarea").fill(answer)
    page.locator("#pg-analyse").click()
    expect(page.locator("#pg-a-stats")).to_contain_text("ERV", timeout=WAIT_MS)
    assert page.locator("#pg-a-stats").inner_text() == streamed
    shot(page, artifacts_dir, "playground-trace")
    assert not errors, f"page errors: {errors}"
