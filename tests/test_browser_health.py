"""The GRPO health panel in a real headless Chromium, against two real tiny runs of the demo.

One served app with its worker trains, one after the other:
- `trunc`: the demo with max_completion_length 4, so every response is cut off, and
  health.stop_on = [truncation] after 2 steps: the truncation flag shows on its row and at the top
  of its monitor from step 1, its link lists truncated responses, and the run stops (cancelled,
  with a checkpoint) with the reason on the page;
- `tied`: a data file whose gold answers (30-digit numbers) no response reaches: every group ties,
  and the tied-groups flag shows.
Screenshots of the health panel go to the artifacts folder. Waits are Playwright's, never sleeps.
"""

from __future__ import annotations

import json
import re

import pytest

from engine.storage import Store

pytestmark = pytest.mark.browser

WAIT_MS = 240_000  # two runs start and train one after the other on a busy 2-core machine
HUGE = "987654321098765432109876543210"


@pytest.fixture(scope="module")
def health_runs(studio_server):
    """Both runs queued on the served app's store: {'trunc': id, 'tied': id}."""
    from engine.runs.admission import AccessPolicy
    from engine.runs.service import submit
    from tests.conftest import require
    from tests.fixtures.training import embedded_model_ready, tiny_config

    require(embedded_model_ready(), "the embedded demo model (assets/demo-model)")
    uploads = studio_server.data_dir / "uploads"
    uploads.mkdir(exist_ok=True)
    data = uploads / "unreachable.jsonl"
    rows = [{"question": f"Q: {a}+{a + 7}-{a // 2}=?\nA:", "answer": HUGE} for a in range(10, 42)]
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    quick = ["run.eval_every=0", "run.checkpoint_every=50"]
    trunc = tiny_config(
        *quick,
        "run.max_steps=6",
        "grpo.max_completion_length=4",
        "shaping.stride=1",  # a rank curve needs 3 points inside the 4 tokens
        "health.stop_on=[truncation]",
        "health.stop_after=2",
    )
    tied = tiny_config(*quick, "run.max_steps=2", f"data.task={data}")
    with Store(studio_server.db_url) as store:
        return {
            "trunc": submit(store, trunc, policy=AccessPolicy.command_line(), name="health-trunc"),
            "tied": submit(store, tied, policy=AccessPolicy.command_line(), name="health-tied"),
        }


def open_run(page, name: str) -> None:
    """Wait for the run's row to carry a health flag, then click it (the monitor follows)."""
    from playwright.sync_api import expect

    row = page.locator("#runs-table [role=row]", has_text=name)
    expect(row).to_contain_text("⚠", timeout=WAIT_MS)
    row.locator("[role=gridcell]", has_text=name).first.click()
    expect(page.locator("#run-status")).to_contain_text(name, timeout=WAIT_MS)


def open_flagged_response(page, run_id: int) -> None:
    """Click the first response behind the flag: the inspector shows that very response."""
    from playwright.sync_api import expect

    row = page.locator("#flag-responses [role=row].virtual-row").first
    step, group, sample = (row.locator("[role=gridcell]").nth(i).inner_text() for i in range(3))
    row.locator("[role=gridcell]").nth(6).click()  # the reason
    expect(page.get_by_role("tab", name="Trace inspector", exact=True)).to_have_attribute(
        "aria-selected", "true", timeout=WAIT_MS
    )
    expect(page.locator("#insp-step input")).to_have_value(step.strip(), timeout=WAIT_MS)
    expect(page.locator("#insp-group input")).to_have_value(f"group {group.strip()}")
    expect(page.locator("#insp-response input")).to_have_value(
        re.compile(rf"^#{sample.strip()}\b"), timeout=WAIT_MS
    )
    expect(page).to_have_url(re.compile(rf"run={run_id}&step={step.strip()}&"), timeout=WAIT_MS)


def test_truncation_flag_links_to_truncated_responses_and_stops_the_run(
    page, studio_server, health_runs, artifacts_dir
):
    from playwright.sync_api import expect

    page.goto(studio_server.url)
    page.get_by_role("tab", name="Runs", exact=True).click()
    open_run(page, "health-trunc")
    flags = page.locator("#health-flags")
    expect(flags).to_contain_text("completions truncated", timeout=WAIT_MS)
    expect(page.locator("#runs-table [role=row]", has_text="health-trunc")).to_contain_text(
        "truncation"
    )

    # the flag's link lists the responses behind it: every one truncated, with the reason
    page.locator("#health-flag-links label", has_text="truncation").click()
    table = page.locator("#flag-responses")
    expect(table).to_contain_text("truncated at 4 tokens without end of sequence", timeout=WAIT_MS)
    with Store(studio_server.db_url) as store:
        run_id = health_runs["trunc"]
        (raised,) = [e for e in store.kind_events(["flag:truncation"], [run_id])]
        step = max(store.sample_steps(run_id))
        behind = [s for s in store.samples(run_id, step) if s["truncated"]]
    assert raised["step"] == 1  # within its first steps
    assert len(behind) == 16  # 2 prompts x 8 rollouts, all cut off at 4 tokens
    in_view = table.locator("[role=row].virtual-row")  # the rows the virtual list renders
    expect(in_view.first).to_contain_text("without end of sequence", timeout=WAIT_MS)
    rendered = in_view.all_inner_texts()
    for text in rendered:
        assert "without end of sequence" in text and "true" in text.lower(), text

    # stop_on: cancelled after 2 flagged steps, with a checkpoint and the reason on the page
    status = page.locator("#run-status")
    expect(status).to_contain_text("status cancelled", timeout=WAIT_MS)
    expect(status).to_contain_text("stopped by the health check 'truncation' after 2")
    expect(flags).to_contain_text("stopped the run")
    with Store(studio_server.db_url) as store:
        run = store.get_run(health_runs["trunc"])
        checkpoints = store.checkpoints(run.id)
    assert run.step == 2 and "100% of completions truncated" in run.error
    assert [c["step"] for c in checkpoints] == [2]
    page.screenshot(path=str(artifacts_dir / "health-truncation.png"), full_page=True)


def test_unreachable_answers_show_the_tied_groups_flag(
    page, studio_server, health_runs, artifacts_dir
):
    from playwright.sync_api import expect

    page.goto(studio_server.url)
    page.get_by_role("tab", name="Runs", exact=True).click()
    open_run(page, "health-tied")
    expect(page.locator("#health-flags")).to_contain_text(
        "100% of groups tied: little or no gradient", timeout=WAIT_MS
    )
    expect(page.locator("#runs-table [role=row]", has_text="health-tied")).to_contain_text(
        "tied groups"
    )
    page.locator("#health-flag-links label", has_text="tied_groups").click()
    expect(page.locator("#flag-responses")).to_contain_text("tied: every reward 0")
    # the health panel: tied share at 1 on every step
    page.wait_for_function(
        """() => { const d = document.querySelector('#plot-health .js-plotly-plot');
                   return !!(d && d.data && d.data.length >= 1); }""",
        timeout=WAIT_MS,
    )
    ys = page.evaluate(
        """() => Array.from(document.querySelector('#plot-health .js-plotly-plot').data[0].y)"""
    )
    assert ys and all(y == 1 for y in ys), ys
    page.locator("#plot-health").scroll_into_view_if_needed()
    page.locator("#plot-health").screenshot(path=str(artifacts_dir / "health-panel-tied.png"))
    page.screenshot(path=str(artifacts_dir / "health-tied.png"), full_page=True)
    open_flagged_response(page, health_runs["tied"])  # a response behind the flag
