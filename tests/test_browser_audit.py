"""The answer audit in a real browser: counts for a step range, one click opens the response.

A served app (no worker) over a run written straight into its store: four steps of responses
whose answers read / golds are known, so the counts on the page are checked against
engine.data.audit on the same rows. The screenshot goes to the artifacts folder.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

pytestmark = pytest.mark.browser
WAIT_MS = 120_000

# (completion, correct, answer read, gold): one response of each sort, per step
RESPONSES = [
    ("Step 1: 2+3=5.\nAnswer: 5", True, "5", "5"),
    ("The total is 5 apples, so\nAnswer: five", False, "five", "5"),  # missed
    ("\\boxed{5.0}", True, "5.0", "5"),  # lenient: read 5.0, gold 5
    ("Answer: 6", False, "6", "5"),
]


def _samples(step: int) -> list[dict]:
    rng = np.random.default_rng(step)
    rows = []
    for i, (completion, correct, read, gold) in enumerate(RESPONSES):
        rows.append(
            {
                "group_idx": 0,
                "sample_idx": i,
                "prompt": "Q: 2+3=?\nA:",
                "completion": completion,
                "token_ids": rng.integers(10, 60, 8),
                "token_entropy": rng.random(8).astype(np.float32),
                "token_logprob": -rng.random(8).astype(np.float32),
                "reward": float(correct),
                "rewards": {"accuracy": float(correct)},
                "correct": correct,
                "length": 8,
                "curve": np.array([1.0, 1.5], dtype=np.float32),
                "curve_positions": np.array([3, 7], dtype=np.int32),
                "curve_stride": 4,
                "answer_read": read,
                "gold_read": gold,
            }
        )
    return rows


@pytest.fixture(scope="module")
def audited_server(tmp_path_factory):
    from engine.runs.admission import AccessPolicy
    from engine.runs.service import submit
    from engine.storage import Store
    from tests.fixtures.server import run_server
    from tests.fixtures.training import data_root_at, tiny_config

    folder = tmp_path_factory.mktemp("audit")
    root = data_root_at(folder)
    with Store(root.db_url) as store:
        run_id = submit(store, tiny_config("run.name=audited"), policy=AccessPolicy.command_line())
        for step in (1, 2, 3, 4):
            store.log_step(run_id, {"step": step, "reward_mean": 0.5}, _samples(step))
        label = next(r for r in _labels(store) if "audited" in r)
    with run_server(folder, worker=False) as server:
        yield server, run_id, label


def _labels(store):
    from app.queries import run_choices

    return run_choices(store)


def test_audit_view_counts_and_opens_a_response(page, audited_server, artifacts_dir):
    from playwright.sync_api import expect

    server, run_id, label = audited_server
    page.goto(server.url)
    page.get_by_role("tab", name="Trace inspector", exact=True).click()
    box = page.locator("#insp-run input")
    box.click()
    box.fill("audited")
    page.get_by_role("option", name=label, exact=True).first.click()
    expect(page.locator("#insp-stats")).to_contain_text("answer read", timeout=WAIT_MS)

    # steps 2..3: two of each kind
    page.locator("#audit-from input").fill("2")
    page.locator("#audit-to input").fill("3")
    page.locator("#audit-run").click()
    counts = page.locator("#audit-counts")
    expect(counts).to_contain_text("2 scored 0, gold in the final answer", timeout=WAIT_MS)
    expect(counts).to_contain_text("2 scored 1, answer read is not the gold")
    expect(counts).to_contain_text("of 8 audited responses")
    table = page.locator("#audit-table")
    expect(table).to_contain_text("five")
    page.screenshot(path=str(artifacts_dir / "answer-audit.png"), full_page=True)

    # one click on a row (step 3, response 2) opens that response in the inspector
    table.get_by_text("5.0", exact=True).last.click()
    stats = page.locator("#insp-stats")
    expect(stats).to_contain_text(re.compile(r"answer read\s*5\.0\s*·\s*gold\s*5"), timeout=WAIT_MS)
    expect(page.locator("#insp-step input")).to_have_value("3")
    expect(page.locator("#insp-response input")).to_have_value(re.compile(r"^#2 "))

    # a bad range is one line, no table
    page.locator("#audit-from input").fill("5")
    page.locator("#audit-run").click()
    expect(counts).to_contain_text("From step is after To step", timeout=WAIT_MS)
