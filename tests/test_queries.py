"""app/queries.py against a real Store (SQLite in tmp) filled with synthetic rows; no server."""

from __future__ import annotations

import numpy as np
import pytest

from app import plots, queries
from engine.config import StudioConfig
from engine.storage import Store


def step_row(step: int) -> dict:
    row = {c: float(step) / 10 for c in plots.panel_columns()}
    row.update(step=step, wall_time=1.7e9 + 3 * step, tokens=100 * step)
    row["heldout_accuracy"] = 0.1 * step if step % 2 == 0 else None
    return row


def sample_row(group: int, idx: int, n_tokens: int = 12) -> dict:
    return {
        "group_idx": group,
        "sample_idx": idx,
        "prompt": "What is <b>1+2</b>?",
        "completion": "<script>x</script> 3",
        "token_ids": np.arange(n_tokens, dtype=np.int32),
        "token_entropy": np.linspace(0, 1, n_tokens),
        "token_logprob": -np.linspace(0, 1, n_tokens),
        "reward": float(idx % 2),
        "rewards": {"accuracy": float(idx % 2)},
        "correct": idx % 2 == 1,
        "advantage": 0.5,
        "advantage_shaped": 0.6,
        "bonus": 0.1,
        "er": 3.0,
        "erv": 0.2,
        "era": 0.1,
        "entropy": 0.4,
        "mean_logprob": -0.5,
        "length": n_tokens,
        "curve": np.array([2.0, 2.5, 3.5]),
        "curve_stride": 3,
        "curve_positions": np.array([3, 6, 9]),
        "curve_offset": 0,
    }


@pytest.fixture
def store(data_root):
    with Store(data_root.db_url) as s:
        yield s


def new_run(store: Store, name: str = "r", steps: int = 0, groups: int = 2, per: int = 3) -> int:
    cfg = StudioConfig().to_dict()
    run_id = store.create_run(cfg, name=name, algorithm="verl", total_steps=10)
    for k in range(1, steps + 1):
        samples = [sample_row(g, i) for g in range(groups) for i in range(per)]
        store.log_step(run_id, step_row(k), samples if k % 2 else [])
    return run_id


def test_empty_store_gives_empty_results(store):
    assert queries.runs_table(store).empty
    assert list(queries.runs_table(store).columns) == list(queries.RUNS_TABLE_COLUMNS)
    assert queries.run_choices(store) == []
    assert queries.monitor_signature(store, [1, 2]) == ()
    assert queries.steps_frames(store, [7]) == {}
    assert queries.run_status(store, 3)["status"] == "missing"


def test_runs_table_newest_first_with_progress_and_best_heldout(store):
    a = new_run(store, "first", steps=4)
    b = new_run(store, "second")
    table = queries.runs_table(store)
    assert table["id"].tolist() == [b, a]
    first = table[table["id"] == a].iloc[0]
    assert first["step / total"] == "4 / 10"
    assert first["best held-out acc"] == "0.400"
    assert first["status"] == "queued"
    assert queries.run_choices(store) == [f"#{b} second", f"#{a} first"]
    assert queries.choice_id(f"#{a} first") == a
    assert queries.choice_id(None) is None


def test_runs_table_shortens_a_long_name_that_the_status_line_says_whole(store):
    """A 49-character run name pushed the "started" column off-screen."""
    from app.pages.monitor import status_text

    long = "verl-qwen2.5-0.5b-instruct-gsm8k-kappa2-seed0-lr1"
    a, b = new_run(store, long), new_run(store, long.replace("seed0", "seed1"))
    names = queries.runs_table(store).set_index("id")["name"]
    assert all(len(names[i]) <= queries.NAME_CELL_CHARS for i in (a, b))
    assert names[a] != names[b] and names[a].endswith("seed0-lr1")  # the end tells them apart
    assert "…" in names[a] and names[a].startswith("verl-qwen2.5")
    assert long in status_text(store, [a]).replace("\\", "")  # markdown-escaped
    short = new_run(store, "x" * queries.NAME_CELL_CHARS)
    assert queries.runs_table(store).set_index("id")["name"][short] == "x" * 32


def test_signature_moves_only_with_a_new_step(store):
    run_id = new_run(store, steps=2)
    sig = queries.monitor_signature(store, [run_id])
    assert sig == ((run_id, "queued", 2),)
    assert queries.monitor_signature(store, [run_id]) == sig
    store.log_step(run_id, step_row(3))
    assert queries.monitor_signature(store, [run_id]) != sig


def test_steps_frame_is_numeric_in_step_order_with_panel_columns(store):
    run_id = new_run(store, "x", steps=5)
    frames = queries.steps_frames(store, [run_id])
    (label,) = frames
    frame = frames[label]
    assert label == f"#{run_id} x"
    assert frame["step"].tolist() == [1, 2, 3, 4, 5]
    assert np.allclose(frame["er_mean"], [0.1, 0.2, 0.3, 0.4, 0.5])
    assert frame["heldout_accuracy"].isna().tolist() == [True, False, True, False, True]
    for col in plots.panel_columns():
        assert col in frame.columns
    figs = plots.monitor_figures(frames)
    (reward,) = [f for f, p in zip(figs, plots.PANELS, strict=True) if p.key == "reward"]
    assert list(reward.data[0].y) == pytest.approx([0.1, 0.2, 0.3, 0.4, 0.5])


def test_inspector_reads_groups_responses_and_shades_by_segment(store):
    run_id = new_run(store, steps=3, groups=2, per=3)
    assert queries.inspector_steps(store, run_id) == [1, 3]
    assert queries.step_groups(store, run_id, 3) == [0, 1]
    responses = queries.group_responses(store, run_id, 3, 1)
    assert [r.sample_idx for r in responses] == [0, 1, 2]
    r = responses[1]
    assert r.stats["correct"] is True and r.stats["advantage_shaped"] == pytest.approx(0.6)
    assert r.positions.tolist() == [3, 6, 9]
    deltas = queries.response_deltas(r, len(r.token_ids))
    assert deltas[4:7] == [pytest.approx(0.5)] * 3
    assert deltas[7:10] == [pytest.approx(1.0)] * 3
    assert deltas[:4] == [None] * 4 and deltas[10:] == [None] * 2
    assert queries.response_deltas(r, 1) == [None]
    traces = queries.curve_traces(responses, selected=2)
    assert [t.selected for t in traces] == [False, False, True]
    assert queries.stats_table(responses)["correct"].tolist() == [False, True, False]


def test_log_tail_config_and_status(store):
    run_id = new_run(store, "logged", steps=1)
    store.add_event(run_id, "hello <world>")
    tail = queries.log_tail(store, run_id)
    assert "hello <world>" in tail
    cfg, env = queries.run_details(store, run_id)
    assert "shaping:" in cfg and "kappa: 2.0" in cfg
    assert "attempt: 1" in env
    status = queries.run_status(store, run_id)
    assert status["status"] == "queued" and status["step"] == 1 and status["total_steps"] == 10


# ----------------------------------------------------------------------------- page handlers


def test_monitor_tick_is_stable_until_a_step_lands_then_redraw_shows_it(store):
    from app.pages import monitor

    run_id = new_run(store, "live", steps=3)
    label = f"#{run_id} live"
    first = monitor.tick(store, [label])
    assert monitor.tick(store, [label]) == first
    store.log_step(run_id, step_row(4))
    assert monitor.tick(store, [label]) != first
    out = monitor.redraw(store, [label], "step", 0.0)
    figs, status = out[: len(plots.PANELS)], out[len(plots.PANELS)]
    (reward,) = [f for f, p in zip(figs, plots.PANELS, strict=True) if p.key == "reward"]
    assert list(reward.data[0].x) == [1, 2, 3, 4]
    assert "step 4 / 10" in status and "queued" in status
    assert all(f.layout.uirevision.startswith(f"{run_id}:step") for f in figs if f.data)
    empty = monitor.redraw(store, [], "step", 0.0)
    assert "Select a run" in empty[len(plots.PANELS)]


def test_inspector_pick_fills_latest_step_first_group_and_renders(data_root, store):
    from app.pages import inspector
    from app.pages.common import AppContext, TokenizerCache

    ctx = AppContext(store=store, root=data_root, tokenizers=TokenizerCache())
    run_id = new_run(store, steps=3, groups=2, per=3)
    out = inspector.pick(ctx, run_id)
    step, group, response, stats, text, curve, tokens, table = out
    assert step.value == 3 and group.value == 0 and response.value == 0
    assert "advantage_shaped" in stats
    assert "&lt;b&gt;1+2" in text and "<b>" not in text  # the prompt, escaped
    assert len(curve.data) == 3 and len(table) == 3
    assert inspector.pick(ctx, run_id, 1, 1)[1].value == 1
    nothing = inspector.pick(ctx, new_run(store, "empty"))
    assert nothing[0].value is None and "No responses" in nothing[3]


# ----------------------------------------------------------------------------- GRPO health


def test_steps_frame_has_each_reward_function_and_training_seconds(store):
    run_id = new_run(store)
    for k in (1, 2):
        row = step_row(k) | {"step_seconds": 3.0, "generation_seconds": 2.0, "clipped_ratio": k / 4}
        row["reward_means"] = {"acc": k / 2, "fmt": None if k == 1 else 0.1}
        store.log_step(run_id, row)
    frame = queries.steps_frame(store, run_id)
    assert frame["clipped_ratio"].tolist() == [0.25, 0.5]
    assert frame[plots.REWARD_FUNCTION_PREFIX + "acc"].tolist() == [0.5, 1.0]
    assert frame[plots.REWARD_FUNCTION_PREFIX + "fmt"].tolist()[1] == 0.1
    assert frame["train_seconds"].tolist() == [1.0, 1.0]


def test_steps_frame_of_a_run_recorded_before_v6_reads_trl_series_from_the_payload(store):
    """Before schema v6 TRL's clipped ratio and reward means only sat in the step payload."""
    run_id = new_run(store)
    for k in (1, 2):
        row = {"step": k, "payload": {"completions/clipped_ratio": k / 4, "rewards/acc/mean": k}}
        store.log_step(run_id, row)
    frame = queries.steps_frame(store, run_id)
    assert frame["clipped_ratio"].tolist() == [0.25, 0.5]
    assert frame[plots.REWARD_FUNCTION_PREFIX + "acc"].tolist() == [1.0, 2.0]


def flag(kind, step, message="m"):
    return {"message": message, "kind": f"flag:{kind}", "level": "warning"}


def test_health_flags_follow_raise_and_clear_events_and_show_in_the_runs_table(store):
    healthy, sick = new_run(store, "healthy", steps=2), new_run(store)
    store.log_step(sick, step_row(1), events=[flag("tied_groups", 1, "90% of groups tied")])
    store.log_step(sick, step_row(2), events=[flag("truncation", 2)])
    store.log_step(sick, step_row(3), events=[{"message": "c", "kind": "clear:truncation"}])
    store.log_step(sick, step_row(4))
    (tied, trunc) = queries.health_flags(store, [healthy, sick])[sick]
    assert (tied.kind, tied.since, tied.last, tied.active) == ("tied_groups", 1, 4, True)
    assert (trunc.kind, trunc.since, trunc.last, trunc.active) == ("truncation", 2, 2, False)
    assert "**tied_groups** (active, steps 1-4): 90% of groups tied" in queries.flags_markdown(
        [tied, trunc]
    )
    table = queries.runs_table(store).set_index("id")
    assert table.loc[sick, "health"] == "⚠ tied groups"
    assert table.loc[healthy, "health"] == ""


def test_flag_responses_lists_the_tied_groups_of_the_last_flagged_step(store):
    run_id = new_run(store)
    tied = [sample_row(0, i) | {"reward": 0.0} for i in range(3)]
    mixed = [sample_row(1, i) for i in range(3)]
    store.log_step(run_id, step_row(1), tied + mixed, events=[flag("tied_groups", 1)])
    frame = queries.flag_responses(store, run_id, "tied_groups")
    assert list(frame.columns) == list(queries.FLAG_RESPONSE_COLUMNS)
    assert frame[["step", "group", "sample"]].values.tolist() == [[1, 0, 0], [1, 0, 1], [1, 0, 2]]
    assert set(frame["reason"]) == {"group 0 tied: every reward 0"}
    assert queries.flag_responses(store, run_id, "truncation").empty
