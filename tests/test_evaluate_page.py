"""The Evaluate page's checkpoints picker (app.pages.evaluate): its hint and choices, no server."""

from __future__ import annotations

from app.pages.evaluate import checkpoint_hint, checkpoint_picker
from app.queries import run_label
from engine.config import StudioConfig
from engine.storage import Store


def test_the_checkpoints_picker_says_what_to_do_before_a_run_is_picked(data_root):
    """ "checkpoints (none = all)" showed as a bare label with no control until a run was
    picked: the picker now says to pick a run first, then lists the run's checkpoints."""
    assert "pick a run first" in checkpoint_hint(None, []).lower()
    with Store(data_root.db_url) as store:
        cfg = StudioConfig().to_dict()
        run_id = store.create_run(cfg, name="src", algorithm="verl", total_steps=4)
        bare = store.create_run(cfg, name="bare", algorithm="verl", total_steps=4)
        for step in (2, 4):
            store.add_checkpoint(run_id, step, f"/ckpt/{step}")
        picked = checkpoint_picker(store, run_label(store.get_run(run_id)))
        assert picked["choices"] == [2, 4] and picked["value"] == []
        assert "none ticked evaluates all 2" in picked["info"]
        empty = checkpoint_picker(store, run_label(store.get_run(bare)))
        assert empty["choices"] == [] and "no checkpoint" in empty["info"]
        assert "pick a run first" in checkpoint_picker(store, None)["info"].lower()
