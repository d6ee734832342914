"""`run.report_to`: TRL's own trackers alongside the Studio's store."""

from __future__ import annotations

import pytest

from engine.config import ConfigError, StudioConfig, report_targets
from tests.conftest import require
from tests.fixtures.training import data_root_at, embedded_model_ready, tiny_config


def test_report_to_is_validated_and_passed_as_a_list():
    assert report_targets("none") == [] and StudioConfig().run.report_to == "none"
    assert report_targets("tensorboard, trackio") == ["tensorboard", "trackio"]
    with pytest.raises(ConfigError) as err:
        StudioConfig.from_dict({"run": {"report_to": "tensorbord"}})
    assert [p for p, _ in err.value.errors] == ["run.report_to"]


@pytest.mark.slow
def test_two_steps_write_tensorboard_event_files_beside_the_store(tmp_path):
    """Before `report_to`, TRL's trackers were hard-wired off ("none")."""
    require(embedded_model_ready(), "the embedded demo model (assets/demo-model)")
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from engine.runs.admission import AccessPolicy
    from engine.runs.service import submit
    from engine.storage import Store
    from engine.training.train import train

    cfg = tiny_config(
        "run.report_to=tensorboard", "run.max_steps=2", "run.eval_every=0",
        "run.checkpoint_every=2", "grpo.per_device_train_batch_size=8",
    )  # fmt: skip
    root = data_root_at(tmp_path / "home")
    with Store(root.db_url) as store:
        run_id = submit(store, cfg, policy=AccessPolicy.command_line())
        result = train(cfg, store=store, root=root, run_id=run_id, progress=False)
        assert result.trainer.args.report_to == ["tensorboard"]
        assert len(store.steps(run_id)) == 2  # the store still records every step
    events = list(root.run_checkpoints(run_id).glob("runs/**/events.out.tfevents.*"))
    assert events, "no TensorBoard event file under the run's checkpoint folder"
    acc = EventAccumulator(str(events[0].parent))
    acc.Reload()
    tags = acc.Tags()["scalars"]
    assert "train/loss" in tags and any(t.startswith("train/verl/") for t in tags)
    assert [e.step for e in acc.Scalars("train/loss")] == [1, 2]
