"""Monitor and launch actions called as the app wires them (real Store in tmp, no server)."""

import gradio as gr
import pandas as pd
import pytest

from app import queries
from app.main import build_app
from engine.config import StudioConfig
from engine.paths import resolve
from engine.storage import Store


@pytest.fixture
def app(tmp_path):
    root = resolve(data_dir=tmp_path)
    with Store(root.db_url) as store:
        blocks = build_app(store, root)
        fns = {f.name: f.fn for f in blocks.fns.values()}
        yield store, root, fns


def _run(store, name="r"):
    config = {"run": {"seed": 1}, "grpo": {"max_completion_length": 48}, "shaping": {"stride": 4}}
    run_id = store.create_run(config, name=name, algorithm="verl", total_steps=5)
    store.log_step(run_id, {"step": 1, "reward_mean": 0.5})
    return run_id, [queries.run_label(store.get_run(run_id))]


def test_save_duplicate_resume(app):
    store, _, fns = app
    run_id, sel = _run(store)
    fns["save"](sel, " new ", "my notes")
    assert (store.get_run(run_id).name, store.get_run(run_id).notes) == ("new", "my notes")
    new_id, _, _ = fns["duplicate"](sel)
    copy = store.get_run(new_id)
    same = StudioConfig.from_dict(store.get_run(run_id).config).to_dict()
    assert copy.parent_id == run_id and copy.config == same  # checked and written out in full
    assert copy.name == "new (copy)"  # a copy of the copy is "new (copy 2)", not "(copy) (copy)"
    second, _, _ = fns["duplicate"]([queries.run_label(copy)])
    assert store.get_run(second).name == "new (copy 2)"
    with pytest.raises(gr.Error, match="only failed, cancelled"):
        fns["resume"](sel)  # a queued run does not resume
    store.request_cancel(run_id)
    text, _ = fns["resume"](sel)
    assert f"Run #{run_id} is queued again as attempt 2; it resumes from the start" in text


def test_export_and_delete(app):
    store, root, fns = app
    run_id, sel = _run(store)
    frame = pd.read_csv(fns["export_steps"](sel))
    assert frame["step"].tolist() == [1] and frame["reward_mean"].tolist() == [0.5]
    store.claim_run(run_id, "host")
    with pytest.raises(gr.Error, match="cancel it before deleting"):
        fns["ask"](sel)  # the confirmation is refused while the run is running
    store.finish_run(run_id, "failed", error="x")
    fns["ask"](sel)
    fns["really"](run_id)
    assert store.get_run(run_id) is None


def test_delete_names_the_run_and_rechecks_it(app):
    """With two runs selected, the confirmation deleted the first without naming it; now the
    question names the run "Yes" deletes, and a run resumed meanwhile is not deleted."""
    store, _, fns = app
    first, sel_first = _run(store, name="first")
    second, sel_second = _run(store, name="second")
    for run_id in (first, second):
        store.request_cancel(run_id)
    _, question, pending = fns["ask"](sel_second + sel_first)
    assert pending == second
    assert f"Delete run #{second} (second, cancelled)" in question
    assert "not the 1 other selected" in question
    store.requeue_for_resume(second)
    store.claim_run(second, "host")  # a worker took it between the question and the answer
    with pytest.raises(gr.Error, match=f"(?i)run {second} is running: cancel it before deleting"):
        fns["really"](pending)
    assert store.get_run(second) is not None and store.get_run(first) is not None


def test_run_demo_queues_the_recipe(app):
    store, _, fns = app
    run_id = fns["run_demo"]()[0]
    assert store.get_run(run_id).status == "queued"


def test_the_inspector_lists_runs_created_after_the_server_started(app):
    """The picker was filled once at build time: a run queued later never showed."""
    store, _, fns = app
    first, _ = _run(store, name="before")
    later, _ = _run(store, name="after the server started")
    picker = fns["refresh_runs"](f"#{first} before")
    assert picker.constructor_args["choices"][0] == f"#{later} after the server started"
    assert "value" not in picker.constructor_args  # kept as the browser has it (a pick made
    # while the refresh ran stays)
    store.request_cancel(first)
    store.delete_run(first)
    assert fns["refresh_runs"](f"#{first} before").constructor_args["value"] is None


def test_cancel_says_the_state_after_it_and_belongs_to_its_run(app):
    """Cancel said "Cancel requested (status now running)" beside a cancelled status, and
    "Cancel requested" on a completed run; the message stayed when another run was shown."""
    from app.pages.monitor import message_holds, moved_on, status_text

    store, _, fns = app
    queued, sel_queued = _run(store, name="queued")
    done, sel_done = _run(store, name="done")
    store.claim_run(done, "host")
    store.finish_run(done, "completed")
    text, owner = fns["cancel"](sel_done)
    assert text == f"Run #{done} had already finished (completed): nothing was done."
    assert str(store.get_run(done).status) == "completed"
    assert message_holds(store, owner, sel_done)
    assert not message_holds(store, owner, sel_queued)  # another run on screen: cleared
    text, owner = fns["cancel"](sel_queued)
    assert "was still queued: it is cancelled now" in text
    assert owner == [queued, "cancelled"] and message_holds(store, owner, sel_queued)
    running, sel_running = _run(store, name="running")
    store.claim_run(running, "host")
    text, owner = fns["cancel"](sel_running)
    assert "is stopping" in text and "then its status becomes cancelled" in text
    assert "status **running**" in status_text(store, [running])
    assert "**stopping** (cancel requested" in status_text(store, [running])
    store.finish_run(running, "cancelled")  # the status moved on: the message no longer holds
    assert not message_holds(store, owner, sel_running)
    # ... and says the state now while the run is on screen (it went blank), else it is cleared
    text, new_owner = moved_on(store, owner, sel_running)
    assert text.startswith(f"Run #{running} is cancelled now, at step ") and "Resume" in text
    assert new_owner == [running, "cancelled"] and message_holds(store, new_owner, sel_running)
    assert moved_on(store, owner, sel_queued) == ("", None)


def test_the_runs_table_refresh_keeps_a_pick_made_meanwhile(app):
    """The runs table's refresh (after a run is added or moves) re-set the picker to the picks
    it was computed with, undoing a pick the user made meanwhile (the charts stayed blank); it
    now sends new choices only, and rewrites the picks only for a renamed or deleted run."""
    from app.pages.monitor import refreshed_picker

    store, _, _ = app
    kept, sel_kept = _run(store, name="kept")
    gone, sel_gone = _run(store, name="gone")
    update = refreshed_picker(store, sel_kept + sel_gone)
    assert "value" not in update.constructor_args
    assert set(update.constructor_args["choices"]) == {*sel_kept, *sel_gone}
    store.update_run(kept, name="renamed")
    store.delete_run(gone)
    update = refreshed_picker(store, sel_kept + sel_gone)
    assert update.constructor_args["value"] == [f"#{kept} renamed"]


def test_the_charts_of_a_deleted_run_say_it_is_gone(app):
    """After a run on screen was deleted its charts said "Reward: no data yet" (waiting for
    data that never comes); they say the run no longer exists."""
    from app.pages.monitor import redraw
    from engine.runs import service

    store, root, _ = app
    run_id, sel = _run(store)
    store.request_cancel(run_id)  # queued -> cancelled: deletable
    service.delete(store, root, run_id)
    first, *rest = redraw(store, sel, "step", 0.0)[:3]
    text = " ".join(a["text"] for a in first.layout.annotations)
    assert f"Run #{run_id} no longer exists" in text and "no data yet" not in text
