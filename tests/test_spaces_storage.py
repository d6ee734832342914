"""Storage of a Space: runs bundles (the seeded demo runs), bucket snapshots, and the run rules.

A Space's local disk is wiped at restart and a bucket mount has no file locking, so the live
SQLite stays local; these tests prove the pieces that carry runs across a restart.
"""

from __future__ import annotations

import gzip
import json
import sqlite3

import numpy as np
import pytest

from engine.config import ConfigError, SpacesSettings, StudioConfig
from engine.paths import resolve
from engine.runs import service
from engine.runs.admission import AccessPolicy
from engine.storage import RunStatus, Store
from engine.storage.snapshots import SnapshotKeeper, restore_latest, snapshots, take_snapshot

SEED_LIMIT_BYTES = 5 * 1024 * 1024
CLI = AccessPolicy.command_line()


def demo() -> StudioConfig:
    """The demo recipe: a config the embedded model fits (the defaults are for real models)."""
    from engine.resources import recipe_path

    return StudioConfig.load(recipe_path("demo-cpu"))


def finished_run(store: Store, name: str, steps: int = 6, algorithm: str = "verl", **kw) -> int:
    """A completed run with steps, responses at every step, an eval and events."""
    rng = np.random.default_rng(len(name))
    cfg = demo().with_overrides([f"run.algorithm={algorithm}", f"run.max_steps={steps}"])
    run_id = service.submit(store, cfg, name=name, policy=CLI, **kw)
    store.mark_running(run_id, host="h", pid=1, environment={"torch": "x"})
    for step in range(1, steps + 1):
        samples = [
            {
                "group_idx": g,
                "sample_idx": i,
                "prompt": f"p{step}",
                "completion": f"c{step}-{g}-{i}",
                "token_ids": rng.integers(0, 100, 9),
                "token_entropy": rng.random(9),
                "token_logprob": -rng.random(9),
                "curve": rng.random(3),
                "curve_positions": np.array([3, 6, 9]),
                "reward": float(i % 2),
                "correct": bool(i % 2),
            }
            for g in range(2)
            for i in range(2)
        ]
        store.log_step(
            run_id, {"step": step, "reward_mean": step / 10, "er_mean": 20 + step}, samples
        )
    store.add_eval(
        run_id,
        step=steps,
        dataset="arith",
        n=4,
        ks=[1, 4],
        pass_at_k=[0.5, 0.9],
        per_problem=[2, 3],
    )
    store.finish_run(run_id, RunStatus.COMPLETED)
    return run_id


@pytest.fixture
def store(tmp_path):
    with Store(f"sqlite:///{tmp_path / 'a.db'}") as s:
        yield s


def test_bundle_round_trip_keeps_runs_and_thins_responses(store, tmp_path):
    a = finished_run(store, "a", steps=6)
    b = finished_run(store, "b (copy)", steps=6, algorithm="grpo", parent_id=a)
    path = service.export_runs(store, [a, b], tmp_path / "runs.jsonl.gz", sample_steps=3)
    with Store(f"sqlite:///{tmp_path / 'b.db'}") as other:
        service.submit(other, demo(), name="already here", policy=CLI)  # ids must not collide
        new = service.import_runs(other, path)
        assert len(new) == 2 and 1 not in new
        na, nb = (other.get_run(i) for i in new)
        assert (na.name, na.status, na.algorithm, na.step) == ("a", RunStatus.COMPLETED, "verl", 6)
        assert nb.parent_id == na.id and nb.algorithm == "grpo"
        assert na.host is None and na.pid is None
        assert other.steps(na.id, ["reward_mean"]) == store.steps(a, ["reward_mean"])
        assert other.sample_steps(na.id) == [1, 3, 6]  # 3 evenly spaced steps, first and last
        got, want = other.samples(na.id, 3), store.samples(a, 3)
        assert [s["completion"] for s in got] == [s["completion"] for s in want]
        np.testing.assert_array_equal(got[0]["token_ids"], want[0]["token_ids"])
        np.testing.assert_allclose(got[0]["curve"], want[0]["curve"])
        assert other.evals(na.id)[0]["pass_at_k"] == [0.5, 0.9]
        assert other.checkpoints(na.id) == []
        assert any("imported from runs.jsonl.gz" in e["message"] for e in other.events(na.id))


def test_bundle_from_another_schema_drops_unknown_columns(store, tmp_path):
    a = finished_run(store, "a", steps=2)
    path = service.export_runs(store, [a], tmp_path / "r.jsonl.gz")
    lines = gzip.decompress(path.read_bytes()).decode().splitlines()
    record = json.loads(lines[1])
    record["run"]["column_of_a_future_schema"] = 1
    for row in record["steps"]:
        row["another_future_column"] = "x"
        del row["er_mean"]  # a column an older schema did not have
    path.write_bytes(gzip.compress((lines[0] + "\n" + json.dumps(record) + "\n").encode()))
    (new,) = service.import_runs(store, path)
    rows = store.steps(new, ["reward_mean", "er_mean"])
    assert [r["reward_mean"] for r in rows] == [0.1, 0.2] and rows[0]["er_mean"] is None


def test_bundle_refuses_active_runs_and_non_bundles(store, tmp_path):
    queued = service.submit(store, demo(), name="q", policy=CLI)
    with pytest.raises(service.RunError, match=f"run {queued} is queued"):
        service.export_runs(store, [queued], tmp_path / "x.jsonl.gz")
    for content in (b"not gzip", gzip.compress(b'{"format": "other"}\n')):
        bad = tmp_path / "bad.jsonl.gz"
        bad.write_bytes(content)
        with pytest.raises(service.RunError, match="bad.jsonl.gz is not a runs bundle") as err:
            service.import_runs(store, bad)
        assert "\n" not in str(err.value)
    assert [r.id for r in store.list_runs()] == [queued]  # nothing half-imported


def test_shipped_seed_is_small_and_holds_a_finished_verl_and_grpo_demo_run(tmp_path):
    from engine.spaces import seed_bundle, seed_if_empty

    path = seed_bundle()
    assert path.stat().st_size < SEED_LIMIT_BYTES
    with Store(f"sqlite:///{tmp_path / 's.db'}") as store:
        ids = seed_if_empty(store)
        runs = [store.get_run(i) for i in ids]
        assert sorted(r.algorithm for r in runs) == ["grpo", "verl"]
        for run in runs:
            assert run.status == RunStatus.COMPLETED and run.step == run.total_steps > 0
            assert run.config["data"]["task"] == "arithmetic"
            assert run.config["model"]["name_or_path"] == "embedded"
            assert len(store.steps(run.id, ["reward_mean"])) == run.step
            assert store.sample_steps(run.id) and store.samples(
                run.id, store.sample_steps(run.id)[-1]
            )
        assert seed_if_empty(store) == []  # a store with runs is never seeded again


def test_snapshot_restore_round_trip_skips_a_broken_newest_and_never_overwrites(store, tmp_path):
    a = finished_run(store, "a", steps=3)
    bucket = tmp_path / "bucket"
    first = take_snapshot(store, bucket, keep=2)
    store.update_run(a, name="renamed")
    second = take_snapshot(store, bucket, keep=2)
    assert snapshots(bucket) == [second, first]
    # a crash while the newest copy was written: it is cut short
    broken = bucket / "studio-99991231T000000000000Z.db"
    broken.write_bytes(second.read_bytes()[:2048])
    live = tmp_path / "wiped-disk" / "studio.db"
    assert restore_latest(bucket, live) == second
    with Store(f"sqlite:///{live}") as restored:
        assert restored.get_run(a).name == "renamed"
        assert restored.steps(a, ["reward_mean"]) == store.steps(a, ["reward_mean"])
    assert restore_latest(bucket, live) is None  # an existing database is never replaced
    take_snapshot(store, bucket, keep=2)
    assert len(snapshots(bucket)) == 2  # pruned to `keep`


def test_snapshot_is_consistent_while_the_store_is_written(store, tmp_path):
    """VACUUM INTO copies a transaction-consistent database, WAL contents included."""
    a = finished_run(store, "a", steps=2)
    snap = take_snapshot(store, tmp_path / "bucket")
    with sqlite3.connect(snap) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert conn.execute("SELECT count(*) FROM steps WHERE run_id = ?", (a,)).fetchone()[0] == 2
    assert not list(snap.parent.glob("*-wal"))


def test_keeper_snapshots_only_when_finished_runs_change(store, tmp_path):
    keeper = SnapshotKeeper(store, tmp_path / "bucket")
    keeper._last = keeper.signature()
    assert keeper.check() is None
    finished_run(store, "a", steps=2)
    assert keeper.check() is not None
    assert keeper.check() is None
    service.submit(store, demo(), name="queued", policy=CLI)  # not finished: nothing to save yet
    assert keeper.check() is None


def test_prepare_storage_restores_into_a_fresh_data_root(store, tmp_path):
    from engine.spaces import prepare_storage

    finished_run(store, "kept", steps=2)
    take_snapshot(store, tmp_path / "bucket")
    root = resolve(tmp_path / "restarted")
    settings = SpacesSettings(space_id="u/s", snapshot_dir=str(tmp_path / "bucket"))
    assert prepare_storage(root, settings) is not None
    with Store.open(root) as restored:
        assert [r.name for r in restored.list_runs()] == ["kept"]


def test_space_rules_one_run_at_a_time_and_capped_try_it(store, tmp_path):
    from engine.spaces import TRY_IT_NAME, SpaceRules

    network = AccessPolicy.network(resolve(tmp_path / "root"))

    rules = SpaceRules.from_settings(SpacesSettings(space_id="u/s", try_it_max_steps=7))
    big = demo().with_overrides(["run.max_steps=100000", "data.task=/etc/passwd"])
    with pytest.raises(service.RunError, match="needs the owner's Hugging Face login"):
        rules.submit(store, big, owner=False, policy=network)
    rules.try_it = True
    run_id = rules.submit(store, big, owner=False, policy=network)  # never the visitor's config
    run = store.get_run(run_id)
    assert (run.name, run.total_steps) == (TRY_IT_NAME, 7)
    assert run.config["data"]["task"] == "arithmetic"
    with pytest.raises(service.RunError, match="one run at a time"):
        rules.submit(store, demo(), owner=True, policy=network)
    assert len(store.list_runs()) == 1


def test_spaces_settings_from_env_name_the_variable():
    s = SpacesSettings.from_env({"SPACE_ID": "u/s", "SPACE_AUTHOR_NAME": "u"})
    assert s.on_spaces and s.owner == "u" and not s.try_it
    assert not SpacesSettings.from_env({}).on_spaces
    with pytest.raises(ConfigError) as err:
        SpacesSettings.from_env({"VERL_STUDIO_TRY_IT": "maybe", "VERL_STUDIO_SNAPSHOT_KEEP": "0"})
    paths = [p for p, _ in err.value.errors]
    assert paths == ["VERL_STUDIO_TRY_IT", "VERL_STUDIO_SNAPSHOT_KEEP"]
    assert "secret-value" not in repr(SpacesSettings(admin_token="secret-value"))
