"""The Launch form in a real headless Chromium (issue 15, items 1, 2 and 7).

One served app without a worker (what is queued stays queued) on a fresh data root. Each test
failed before its fix; waits are Playwright's, bounded.
"""

from __future__ import annotations

import pytest

from engine.storage import Store
from tests.fixtures.browser import in_url

pytestmark = [pytest.mark.browser, pytest.mark.timeout(600)]
WAIT_MS = 60_000
# (field's DOM id, bad value, its message, a good value): an open and a collapsed section
BAD_FIELDS = (
    ("cfg-shaping-kappa", "0", "must be >= 1", "2"),
    ("cfg-shaping-stride", "0", "must be >= 1", "4"),
    ("cfg-grpo-learning-rate", "-0.001", "must be in (0, 1]", "1e-6"),
)


def runs_in(db_url: str) -> list:
    with Store(db_url) as store:
        return store.list_runs()


def type_into(page, elem_id: str, value: str) -> None:
    box = page.locator(f"#{elem_id} input, #{elem_id} textarea").first
    box.fill(value)
    box.press("Tab")


def launch_bad_fields(page) -> None:
    """Type every bad value (opening the collapsed sections to do so), fold them all, Launch."""
    from playwright.sync_api import expect

    for elem_id, value, _, _ in BAD_FIELDS:
        field = page.locator(f"#{elem_id}")
        if not field.is_visible():
            page.get_by_text("GRPO settings (TRL)").click()
        type_into(page, elem_id, value)
    for title in ("VERL shaping", "GRPO settings (TRL)"):  # fold: the errors are out of sight
        page.get_by_text(title).first.click()
    for elem_id, *_ in BAD_FIELDS:
        expect(page.locator(f"#{elem_id}")).to_be_hidden(timeout=WAIT_MS)
    page.locator("#launch-btn").click()


def expect_problems_shown(page) -> None:
    """Every bad field: its message inline, visible (its section opened), and one summary line."""
    from playwright.sync_api import expect

    summary = page.locator("#launch-problems")
    for elem_id, _, text, _ in BAD_FIELDS:
        field = page.locator(f"#{elem_id}")
        expect(field).to_contain_text(text, timeout=WAIT_MS)
        expect(field).to_be_visible(timeout=WAIT_MS)
        path = elem_id.removeprefix("cfg-").replace("-", "_").replace("_", ".", 1)
        expect(summary).to_contain_text(path, timeout=WAIT_MS)
    expect(page.locator("#launch-status")).not_to_contain_text("Queued")
    let_polls_pass(page)  # they stay: before the fix they were gone at the Runs timer's tick
    for elem_id, _, text, _ in BAD_FIELDS:
        assert text in page.locator(f"#{elem_id}").text_content(), f"{elem_id}: message gone"


def let_polls_pass(page, polls: int = 3) -> None:
    """Return once the page sent `polls` more event requests (the Runs page's 2 s timer)."""
    for _ in range(polls):
        page.wait_for_event("request", lambda r: "/queue/join" in r.url, timeout=WAIT_MS)


def test_field_messages_on_every_launch(page, studio_server_no_worker, artifacts_dir):
    """Items 1 and 2: after a successful Launch, later invalid launches still show each field's
    message (they showed nothing, only a 422 in the console); a field folded away is named in
    the summary beside Launch and its section is opened."""
    from playwright.sync_api import expect

    server = studio_server_no_worker
    page.goto(server.url)
    expect(page.locator("#launch-btn")).to_be_visible(timeout=WAIT_MS)
    for round_ in range(2):
        page.locator("#cfg-run-max-steps input").fill("3")
        page.locator("#launch-btn").click()  # the demo recipe, as the form opens: valid
        expect(page.locator("#launch-status")).to_contain_text(
            f"Queued run #{round_ + 1}.", timeout=WAIT_MS
        )
        expect(page.locator("#run-status")).to_contain_text("status queued", timeout=WAIT_MS)
        in_url(page, tab="monitor", runs=round_ + 1)  # it stayed tab=launch
        page.get_by_role("tab", name="Launch", exact=True).click()
        in_url(page, tab="launch")
        launch_bad_fields(page)
        expect_problems_shown(page)
        assert len(runs_in(server.db_url)) == round_ + 1, "an invalid config was queued"
        for elem_id, _, _, good in BAD_FIELDS:  # fixed again for the next round
            type_into(page, elem_id, good)
    page.screenshot(path=artifacts_dir / "launch-problems.png", full_page=True)


def test_a_fixed_field_loses_its_message(page, studio_server_no_worker):
    """Item 4: a field's message goes when its value is fixed (it stayed until the next Launch),
    its line leaves the summary, and the fields still wrong keep theirs."""
    from playwright.sync_api import expect

    page.goto(studio_server_no_worker.url)
    expect(page.locator("#launch-btn")).to_be_visible(timeout=WAIT_MS)
    launch_bad_fields(page)
    for elem_id, _, text, _ in BAD_FIELDS:
        expect(page.locator(f"#{elem_id}")).to_contain_text(text, timeout=WAIT_MS)
    (fixed, _, text, good), *still_wrong = BAD_FIELDS
    type_into(page, fixed, good)
    expect(page.locator(f"#{fixed}")).not_to_contain_text(text, timeout=WAIT_MS)
    summary = page.locator("#launch-problems")
    expect(summary).not_to_contain_text("shaping.kappa", timeout=WAIT_MS)
    for elem_id, _, other_text, _ in still_wrong:
        expect(page.locator(f"#{elem_id}")).to_contain_text(other_text)
    expect(summary).to_contain_text("shaping.stride")
    for elem_id, _, _, good_value in still_wrong:
        type_into(page, elem_id, good_value)
    expect(summary).to_be_empty(timeout=WAIT_MS)


def test_one_press_names_every_problem_and_a_load_keeps_only_true_ones(
    page, studio_server_no_worker
):
    """One Launch press names a config error and a server limit together (the limit waited
    for the config to be fixed and a second press), by the field's real rule (10**11 steps
    said "integer between -2147483648 and 2147483647"; 2.5 was silently rounded to 2); and
    loading a recipe leaves no message the loaded values contradict (they stayed, with the
    summary, until the next press)."""
    import re

    from playwright.sync_api import expect

    page.goto(studio_server_no_worker.url)
    expect(page.locator("#launch-btn")).to_be_visible(timeout=WAIT_MS)
    typed = (
        ("cfg-shaping-kappa", "0", "must be >= 1"),
        ("cfg-run-max-steps", "99999999999", "serve --max-steps"),
        ("cfg-run-seed", "2.5", "whole number, not 2.5"),
        ("cfg-shaping-alpha", "1e400", "such as 1e400"),  # said "must not be empty"
    )
    for elem_id, value, _ in typed:
        type_into(page, elem_id, value)
    page.locator("#launch-btn").click()
    summary = page.locator("#launch-problems")
    for elem_id, _, text in typed:
        expect(page.locator(f"#{elem_id}")).to_contain_text(text, timeout=WAIT_MS)
        expect(page.locator(f"#{elem_id}")).to_have_class(re.compile("field-error"))
        expect(summary).to_contain_text(text)
    assert "2147483647" not in (summary.text_content() or "").replace(",", "")
    page.get_by_role("button", name="Load recipe").click()
    expect(page.locator("#launch-status")).to_contain_text("Loaded recipe", timeout=WAIT_MS)
    expect(summary).to_be_empty(timeout=WAIT_MS)
    for elem_id, _, text in typed:
        field = page.locator(f"#{elem_id}")
        expect(field).not_to_contain_text(text)
        expect(field).not_to_have_class(re.compile("field-error"))


def framed_in_red(png: bytes) -> dict[str, float]:
    """The share of red pixels in the outer 3 px of each edge of a field's screenshot (its
    error frame: 2 px inside a 1 px border)."""
    import io

    from PIL import Image

    image = Image.open(io.BytesIO(png)).convert("RGB")
    w, h = image.size
    edges = {
        "left": [(x, y) for x in range(3) for y in range(h)],
        "right": [(w - 1 - x, y) for x in range(3) for y in range(h)],
        "top": [(x, y) for y in range(3) for x in range(w)],
    }

    def red(xy) -> bool:
        r, g, b = image.getpixel(xy)
        return r > 150 and g < 90 and b < 90

    return {edge: sum(map(red, xys)) / len(xys) for edge, xys in edges.items()}


def test_quick_presses_queue_one_run(page, studio_server_no_worker):
    """Item 4: presses made while a launch was on its way (its review done, its submit not)
    each started a review and a launch of their own: 5 quick presses queued 2 runs."""
    from playwright.sync_api import expect

    server = studio_server_no_worker
    before = len(runs_in(server.db_url))
    page.goto(server.url)
    expect(page.locator("#launch-btn")).to_be_visible(timeout=WAIT_MS)
    page.locator("#cfg-run-max-steps input").fill("3")
    presses = page.evaluate(
        """() => new Promise(done => {  // press every 20 ms while it can be pressed, for 3 s
            const button = document.querySelector('#launch-btn');
            let pressed = 0;
            const timer = setInterval(() => {
                if (button.offsetParent !== null && !button.disabled) { button.click(); pressed++; }
            }, 20);
            setTimeout(() => { clearInterval(timer); done(pressed); }, 3000);
        })"""
    )
    expect(page.locator("#launch-status")).to_contain_text("Queued", timeout=WAIT_MS)
    let_polls_pass(page)  # a second launch, if any, has landed
    assert presses >= 2 and len(runs_in(server.db_url)) == before + 1, presses


def test_every_kind_of_field_shows_its_error_the_same_way(page, studio_server_no_worker):
    """Item 5: a bad field's mark was an outline drawn outside its block, which the row
    clipped: a thin red bar on the left of some fields, nothing at all on the first field of
    a row, and the message in the grey of the help text. Now every kind (number, text,
    dropdown) gets a whole red frame and its message in red."""
    from playwright.sync_api import expect

    page.goto(studio_server_no_worker.url)
    expect(page.locator("#launch-btn")).to_be_visible(timeout=WAIT_MS)
    type_into(page, "cfg-shaping-kappa", "0")  # a number, last of its row
    type_into(page, "cfg-run-report-to", "nonsense")  # a text box, alone in its row
    page.locator("#cfg-shaping-preset input").click()  # rule fields (dropdowns) must follow
    page.get_by_role("option", name="reference", exact=True).click()
    page.locator("#launch-btn").click()
    bad = ("cfg-shaping-kappa", "cfg-run-report-to", "cfg-shaping-score-rule")  # score_rule:
    for elem_id in bad:  # a dropdown, first of its row
        field = page.locator(f"#{elem_id}")
        expect(field.locator(".info-text")).to_contain_text("⚠", timeout=WAIT_MS)
        field.scroll_into_view_if_needed()
        shares = framed_in_red(field.screenshot())
        assert min(shares.values()) > 0.5, f"{elem_id}: red share of each edge {shares}"
        color = field.locator(".info-text").evaluate("e => getComputedStyle(e).color")
        assert color == "rgb(176, 0, 32)", f"{elem_id}: message in {color}"


UPLOAD_CSV = (
    "problem,source,expected\nWhat is 2+3?,,#### 5\nWhat is 10-4?,,\\boxed{6}\nWhat is 7*2?,,\n"
)


def upload_csv(page, url: str, src):
    """Open the app, upload UPLOAD_CSV as `src`; the verdict once the file is judged (its
    default answer column, 'source', is empty: 0 of 3 verify; 'expected' holds the golds under a
    name the pickers do not guess)."""
    from playwright.sync_api import expect

    src.write_text(UPLOAD_CSV)
    page.goto(url)
    page.get_by_text("Upload a dataset file").click()
    page.locator("#upload-file input[type=file]").set_input_files(str(src))
    verdict = page.locator("#upload-verdict")
    expect(verdict).to_contain_text("0 of 3 verify", timeout=WAIT_MS)
    return verdict


def test_an_upload_clears_the_message_of_the_dataset_it_replaces(
    page, studio_server_no_worker, tmp_path
):
    """A refused data.task's message (and its summary line) stayed after an upload had put
    the uploaded file in that field: the re-check ran on hand edits only."""
    from playwright.sync_api import expect

    page.goto(studio_server_no_worker.url)
    expect(page.locator("#launch-btn")).to_be_visible(timeout=WAIT_MS)
    page.get_by_text("Task / dataset and reward").first.click()
    type_into(page, "cfg-data-task", "/etc/passwd")
    page.locator("#launch-btn").click()
    task, summary = page.locator("#cfg-data-task"), page.locator("#launch-problems")
    expect(task).to_contain_text("not a dataset", timeout=WAIT_MS)
    src = tmp_path / "replacing.csv"
    src.write_text(UPLOAD_CSV)
    page.get_by_text("Upload a dataset file").click()
    page.locator("#upload-file input[type=file]").set_input_files(str(src))
    expect(page.locator("#upload-verdict")).to_contain_text("verify", timeout=WAIT_MS)
    expect(task).not_to_contain_text("not a dataset", timeout=WAIT_MS)
    expect(summary).not_to_contain_text("data.task")


def test_upload_a_dataset_and_launch_on_it(page, studio_server_no_worker, tmp_path):
    """Item 7: a CSV uploaded in the form is stored in the uploads folder, previewed, its
    columns offered as the question / answer fields with the reward's verdict on each gold
    (a wrong field is seen at once), and Launch trains on it."""
    from playwright.sync_api import expect

    server = studio_server_no_worker
    verdict = upload_csv(page, server.url, tmp_path / "my set.csv")
    expect(verdict).to_contain_text("no gold answer in field 'source'")
    expect(page.locator("#upload-rows")).to_contain_text("What is 10-4?")

    page.locator("#upload-answer input").click()
    page.get_by_role("option", name="expected", exact=True).click()
    expect(verdict).to_contain_text("2 of 3 verify", timeout=WAIT_MS)
    expect(verdict).to_contain_text("row 3")

    page.locator("#cfg-run-max-steps input").fill("3")
    page.locator("#launch-btn").click()
    expect(page.locator("#launch-status")).to_contain_text("Queued run #", timeout=WAIT_MS)
    run = max(runs_in(server.db_url), key=lambda r: r.id)
    stored = server.data_dir.resolve() / "uploads" / "my_set.csv"
    assert run.config["data"]["task"] == str(stored) and stored.read_text() == UPLOAD_CSV
    assert (run.config["data"]["question_field"], run.config["data"]["answer_field"]) == (
        "problem",
        "expected",
    )


def test_the_reward_field_changes_only_the_verdict(page, studio_server_no_worker, tmp_path):
    """Typing a reward re-judges the upload's golds but keeps the question / answer fields
    edited by hand; a reward the server does not allow is refused in one line, not imported."""
    from playwright.sync_api import expect

    verdict = upload_csv(page, studio_server_no_worker.url, tmp_path / "reward set.csv")
    page.locator("#upload-answer input").click()
    page.get_by_role("option", name="expected", exact=True).click()
    expect(verdict).to_contain_text("2 of 3 verify", timeout=WAIT_MS)

    page.get_by_text("Task / dataset and reward").first.click()  # the folded data section
    question = page.locator("#cfg-data-question-field input, #cfg-data-question-field textarea")
    question.first.fill("my_prompt")  # a hand edit after the upload
    reward = page.locator("#cfg-data-reward input, #cfg-data-reward textarea").first
    reward.fill("")
    reward.press_sequentially("choice")  # typed: each key is an input event
    expect(verdict).to_contain_text("by the choice reward", timeout=WAIT_MS)
    expect(verdict).to_contain_text("0 of 3 verify")
    reward.fill("")
    reward.press_sequentially("colorsys:hsv_to_rgb")
    expect(verdict).to_contain_text(
        "data.reward: reward 'colorsys:hsv_to_rgb' is not allowed", timeout=WAIT_MS
    )
    expect(verdict).to_contain_text("--allow-reward-module")
    expect(question.first).to_have_value("my_prompt")


def test_a_refused_upload_says_why_without_a_table_or_a_server_path(
    page, studio_server_no_worker, tmp_path
):
    """Item 7: a file with no rows showed a preview table headed "1 2 3" (Gradio's empty
    frame), a gzip was called text that is "probably latin-1", and the messages named the
    server's temp or uploads path. Now: no table, one line naming the file as uploaded, the
    problem and the fix; the earlier file's preview goes."""
    import gzip

    from playwright.sync_api import expect

    rows = page.locator("#upload-rows")
    verdict = upload_csv(page, studio_server_no_worker.url, tmp_path / "good.csv")
    expect(rows).to_contain_text("problem", timeout=WAIT_MS)  # the file's own headers
    refused = (
        (
            "head only.csv",
            b"question;answer\r\n",
            "has no rows (only the columns question, answer)",
        ),  # fmt: skip
        (
            "packed.jsonl",
            gzip.compress(b'{"question": "1+1", "answer": "2"}\n'),
            "not a text file: it looks like a .gz file",
        ),  # fmt: skip
    )
    for name, data, words in refused:
        src = tmp_path / "out" / name
        src.parent.mkdir(exist_ok=True)
        src.write_bytes(data)
        page.locator("#upload-file button[aria-label='Clear']").first.click()
        page.locator("#upload-file input[type=file]").set_input_files(str(src))
        expect(verdict).to_contain_text(f"Not stored: {name}", timeout=WAIT_MS)
        expect(verdict).to_contain_text(words)
        expect(rows).to_be_hidden(timeout=WAIT_MS)
        shown = page.locator("#upload-section").inner_text()
        assert str(tmp_path) not in shown and "/tmp/" not in shown and "uploads/" not in shown
