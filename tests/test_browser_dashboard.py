"""The dashboard in a real headless Chromium against the real served app and a real training run.

One story, in order, on one served app with its embedded worker: an invalid value shows its
inline error and queues nothing; the demo launched from the Launch page (with few steps) opens
the monitor, whose reward chart (read from the Plotly div's data) reaches step >= 3; the trace
inspector draws the rank curves of a recorded group; cancel turns the run `cancelled`.
Screenshots of each page go to the artifacts folder. Waits are Playwright's, never sleeps.
"""

from __future__ import annotations

import re

import pytest

from engine.storage import Store

pytestmark = pytest.mark.browser

WAIT_MS = 120_000
DEMO_STEPS = 400  # long enough to cancel while it runs; the test never waits for it to finish
# Plotly figures travel as typed-array specs ({dtype, bdata}); the div keeps them as sent.
DECODE = """(v) => {
  if (!v) return [];
  if (!v.bdata) return Array.from(v);
  const kinds = {f8: Float64Array, f4: Float32Array, i1: Int8Array, u1: Uint8Array,
                 i2: Int16Array, u2: Uint16Array, i4: Int32Array, u4: Uint32Array};
  const raw = Uint8Array.from(atob(v.bdata), c => c.charCodeAt(0));
  return Array.from(new kinds[v.dtype](raw.buffer));
}"""
PLOT_MAX_X = f"""(sel) => {{
  const decode = {DECODE};
  const gd = document.querySelector(sel + ' .js-plotly-plot');
  if (!gd || !gd.data) return -1;
  let best = -1;
  for (const t of gd.data) for (const v of decode(t.x)) best = Math.max(best, Number(v));
  return best;
}}"""
PLOT_TRACES = f"""(sel) => {{
  const decode = {DECODE};
  const gd = document.querySelector(sel + ' .js-plotly-plot');
  return gd && gd.data ? gd.data.map(t => decode(t.y).length) : [];
}}"""


def runs_in(db_url: str) -> list:
    with Store(db_url) as store:
        return store.list_runs()


def test_launch_monitor_inspect_cancel(page, studio_server, artifacts_dir):
    from playwright.sync_api import expect

    shots = artifacts_dir / "dashboard"
    shots.mkdir(exist_ok=True)
    page.goto(studio_server.url)
    expect(page.locator("#launch-btn")).to_be_visible(timeout=WAIT_MS)
    expect(page.locator("#data-footer")).to_contain_text(str(studio_server.data_dir.name))

    # an invalid value: its error appears next to its field, nothing is queued
    kappa = page.locator("#cfg-shaping-kappa")
    kappa.locator("input").fill("0.5")
    page.locator("#launch-btn").click()
    expect(kappa).to_contain_text("must be >= 1", timeout=WAIT_MS)
    page.screenshot(path=shots / "launch-invalid.png", full_page=True)
    assert runs_in(studio_server.db_url) == []

    # the demo recipe (the form's default) with a short run, launched from the form
    kappa.locator("input").fill("2")
    page.locator("#cfg-run-max-steps input").fill(str(DEMO_STEPS))
    page.locator("#cfg-run-eval-every input").fill("0")
    page.locator("#cfg-run-name textarea").fill("browser-demo")
    page.locator("#launch-btn").click()
    status = page.locator("#run-status")
    expect(status).to_contain_text("browser-demo", timeout=WAIT_MS)
    (run,) = runs_in(studio_server.db_url)
    assert run.config["run"]["max_steps"] == DEMO_STEPS and run.config["shaping"]["kappa"] == 2

    # live chart: the status line and the reward chart reach step >= 3
    expect(status).to_contain_text(re.compile(r"step ([3-9]|\d\d+) /"), timeout=WAIT_MS)
    page.wait_for_function(f"({PLOT_MAX_X})('#plot-reward') >= 3", timeout=WAIT_MS)
    assert page.evaluate(PLOT_MAX_X, "#plot-er") >= 3
    page.screenshot(path=shots / "monitor.png", full_page=True)

    # trace inspector: the group's rank curves are drawn, the tokens are shaded spans
    page.locator("#inspect-btn").click()
    expect(page.locator("#insp-text .tok").first).to_be_attached(timeout=WAIT_MS)
    lengths = page.evaluate(PLOT_TRACES, "#insp-curve")
    assert lengths and max(lengths) >= 2, lengths
    expect(page.locator("#insp-stats")).to_contain_text("advantage_shaped")
    page.screenshot(path=shots / "inspector.png", full_page=True)

    # cancel from the monitor
    page.get_by_role("tab", name="Runs").click()
    page.locator("#cancel-btn").click()
    expect(status).to_contain_text("status cancelled", timeout=WAIT_MS)
    page.screenshot(path=shots / "monitor-cancelled.png", full_page=True)
    (run,) = runs_in(studio_server.db_url)
    assert str(run.status) == "cancelled" and 3 <= run.step < DEMO_STEPS
