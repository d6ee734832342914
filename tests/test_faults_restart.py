"""The app process killed (kill -9 of `serve`'s whole process group, as a crash or an OOM kill
of the server does) while its worker trains a run, then `serve` started again on the same data
root. The training process runs in its own session, so it survives the crash: the restarted
worker adopts it (same pid, same attempt), the run keeps recording contiguous steps and obeys a
cancel from the new server, and a real browser loading the restarted app sees the run running at
its current step in the Runs table and the monitor, which keeps moving and survives a reload.
"""

from __future__ import annotations

import os
import re
import signal

import pytest

from engine.runs.admission import AccessPolicy
from engine.storage import RunStatus, Store
from tests.test_worker import integrity, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.browser, pytest.mark.timeout(900)]
WAIT_MS = 120_000
NAME = "survivor"
STEPS = 5000  # never reached: the test cancels it (200 were, on a quiet machine)
STATUS_RE = re.compile(rf"status running · step (\d+) / {STEPS}")


def _shown_step(page) -> int:
    """The step the monitor's status line shows for the selected running run."""
    from playwright.sync_api import expect

    status = page.locator("#run-status")
    expect(status).to_contain_text(STATUS_RE, timeout=WAIT_MS)
    return int(STATUS_RE.search(status.inner_text()).group(1))


def _crash(proc) -> None:
    """kill -9 of the server's process group (it leads one: run_server starts a new session)."""
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)


def test_app_killed_mid_run_restarts_and_the_run_keeps_going(tmp_path, page):
    from playwright.sync_api import expect

    from engine.runs import service
    from engine.runs.worker import pid_alive
    from tests.fixtures.server import run_server
    from tests.fixtures.training import data_root_at, tiny_config
    from tests.test_browser_ux import show_run

    data_dir = tmp_path / "home"
    cfg = tiny_config(f"run.max_steps={STEPS}", "run.eval_every=0", "run.checkpoint_every=50")
    with run_server(data_dir, worker=True) as first, Store(first.db_url) as store:
        run_id = service.submit(store, cfg, policy=AccessPolicy.command_line(), name=NAME)
        wait_until(lambda: store.latest_step(run_id) >= 1, 300, "the first step under serve")
        trainer = store.get_run(run_id).pid
        _crash(first.proc)
        assert pid_alive(trainer), "the crash took the training process with it"
        crashed_at = store.latest_step(run_id)

        with run_server(data_dir, worker=True) as second:
            wait_until(
                lambda: any("adopted by a worker" in e["message"] for e in store.events(run_id)),
                60,
                "the restarted worker to adopt the run",
            )
            wait_until(lambda: store.latest_step(run_id) >= crashed_at + 2, 300, "two more steps")
            run = store.get_run(run_id)
            assert run.status is RunStatus.RUNNING and run.pid == trainer and run.attempt == 1
            steps = [s["step"] for s in store.steps(run_id)]
            assert steps == list(range(1, len(steps) + 1)), steps

            page.goto(second.url)
            show_run(page, NAME)
            row = page.locator("#runs-table").get_by_role("row").filter(has_text=NAME)
            expect(row).to_contain_text("running", timeout=WAIT_MS)
            shown = _shown_step(page)
            assert crashed_at + 2 <= shown <= store.latest_step(run_id)
            expect(page.locator("#run-status")).not_to_contain_text(
                f"step {shown} / ", timeout=WAIT_MS
            )  # the monitor follows the adopted run live
            page.reload()
            show_run(page, NAME)
            assert _shown_step(page) > shown

            service.cancel(store, run_id)
            wait_until(lambda: store.get_run(run_id).status.finished, 300, "the cancel")
            run = store.get_run(run_id)
            assert run.status is RunStatus.CANCELLED, run.error
            wait_until(lambda: not pid_alive(trainer), 120, "the training process to exit")
            steps = [s["step"] for s in store.steps(run_id)]
            assert steps == list(range(1, run.step + 1)), steps
            assert integrity(data_root_at(data_dir)) == "ok"
