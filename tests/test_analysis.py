"""Decoupling statistics against numpy and against the residual definition of partial r."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.analysis import METRICS, Points, decoupling, partial_r, pearson, subsample


def residual_partial_r(x, y, z) -> float:
    """Slow, obvious partial r: Pearson r of the residuals of x and y regressed on [1, z]."""
    Z = np.column_stack([np.ones_like(z), z])
    rx = x - Z @ np.linalg.lstsq(Z, x, rcond=None)[0]
    ry = y - Z @ np.linalg.lstsq(Z, y, rcond=None)[0]
    return float(np.corrcoef(rx, ry)[0, 1])


@settings(max_examples=60, deadline=None, derandomize=True)
@given(st.integers(3, 400), st.integers(0, 2**31 - 1), st.floats(-3, 3), st.floats(1e-3, 1e4))
def test_pearson_matches_numpy(n, seed, slope, scale):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n) * scale + 1e3
    y = slope * x + rng.normal(size=n) * scale
    assert pearson(x, y) == pytest.approx(np.corrcoef(x, y)[0, 1], abs=1e-9)


def test_pearson_ignores_nan_pairs_and_flags_constants():
    x = np.array([1.0, 2.0, np.nan, 4.0, 5.0])
    y = np.array([2.0, 1.0, 7.0, np.nan, 3.0])
    keep = [0, 1, 4]
    assert pearson(x, y) == pytest.approx(np.corrcoef(x[keep], y[keep])[0, 1])
    assert np.isnan(pearson([1, 1, 1], [1, 2, 3]))
    assert np.isnan(pearson([1.0], [2.0]))


@settings(max_examples=60, deadline=None, derandomize=True)
@given(st.integers(5, 300), st.integers(0, 2**31 - 1), st.floats(-2, 2), st.floats(-2, 2))
def test_partial_r_matches_residual_regression(n, seed, a, b):
    rng = np.random.default_rng(seed)
    z = rng.normal(size=n) * 10 + 40
    x = a * z + rng.normal(size=n)
    y = b * z + 0.5 * x + rng.normal(size=n)
    assert partial_r(x, y, z) == pytest.approx(residual_partial_r(x, y, z), abs=1e-9)


def test_length_confound_is_exposed():
    """ER and ERV both driven by length: r is large, the partial r given length is near 0."""
    rng = np.random.default_rng(0)
    n = 3000
    length = rng.integers(30, 60, size=n).astype(float)
    values = {
        "er": 0.5 * length + rng.normal(size=n),
        "erv": 0.2 * length + rng.normal(size=n),
        "era": rng.normal(size=n),
        "entropy": rng.normal(size=n),
        "mean_logprob": rng.normal(size=n),
        "length": length,
    }
    values["mean_logprob"] = -0.6 * values["entropy"] + rng.normal(size=n) * 0.5
    points = Points(np.repeat(np.arange(30), 100), values)
    d = decoupling(points)
    er_erv, ent_lp = d.pairs
    assert er_erv.r > 0.8 and abs(er_erv.partial_r_length) < 0.1
    assert er_erv.r2 == pytest.approx(er_erv.r**2) and er_erv.n == n
    assert d.length_r["er"] > 0.9 and abs(d.length_r["era"]) < 0.1
    assert ent_lp.r == pytest.approx(np.corrcoef(values["entropy"], values["mean_logprob"])[0, 1])
    assert d.steps == list(range(30))
    first = points.step == 0
    assert d.step_r[("er", "erv")][0] == pytest.approx(
        np.corrcoef(values["er"][first], values["erv"][first])[0, 1]
    )
    assert set(d.length_r) == set(METRICS) - {"length"}


def test_subsample_is_bounded_unique_and_deterministic():
    idx = subsample(12_345)
    assert len(idx) == 5000 and len(np.unique(idx)) == 5000 and idx.max() < 12_345
    assert np.array_equal(idx, subsample(12_345))
    assert np.array_equal(subsample(17), np.arange(17))


def chart_text(fig) -> str:
    """A chart's title and its notes (annotations), as one string."""
    return " ".join([fig.layout.title.text or "", *(a.text for a in fig.layout.annotations)])


def test_chart_titles_are_one_line_with_notes_in_their_own_room():
    """Plotly anchors a multi-line title by its first line, so a second line (the scatter's r
    and R², the compare chart's missing runs) sat on the points and the top y tick: each
    title is one line, and what follows it is a note the title is lifted above."""
    from app import analysis_plots as ap
    from app.plots import NOTE_LINE_PX

    rng = np.random.default_rng(0)
    x, y = rng.normal(size=9_600), rng.normal(size=9_600)
    step = np.repeat(np.arange(8), 1_200)
    figs = {
        "scatter": ap.scatter_figure(
            x, y, step, subsample(9_600), x_metric="entropy", y_metric="mean_logprob",
            r=-0.398, r2=0.159,
        ),
        "compare": ap.compare_figure(
            {"#1 a": ([1, 2], [0.1, 0.2]), "#2 b": ([], [])}, "heldout_accuracy",
            {"#2 b": "held-out accuracy is not evaluated: eval_every = 0"},
        ),
        "step_r": ap.step_r_figure([1, 2], {("er", "erv"): [0.1, 0.2]}),
        "pass_at_k": ap.pass_at_k_figure([("run", [1, 2, 4], [0.1, 0.2, 0.3])]),
    }  # fmt: skip
    for name, fig in figs.items():
        assert "<br>" not in (fig.layout.title.text or ""), name
        notes = [a for a in fig.layout.annotations if a.text]
        if notes:
            lines = sum(a.text.count("<br>") + 1 for a in notes)
            assert fig.layout.title.yanchor == "bottom", name  # lifted above the notes
            assert fig.layout.title.pad.b >= NOTE_LINE_PX * lines, name
    assert "r = -0.398, R² = 0.159 (5,000 of 9,600 drawn)" in chart_text(figs["scatter"])
    assert "eval_every = 0" in chart_text(figs["compare"])
    tied = ap.compare_figure({"#1 a": ([1], [0.5])}, "frac_zero_std")
    assert tied.layout.title.text == "GRPO health: groups tied (no gradient)"


def test_scatter_draws_at_most_5000_and_says_so():
    from app.analysis_plots import scatter_figure

    rng = np.random.default_rng(1)
    x, y = rng.normal(size=12_000), rng.normal(size=12_000)
    step = np.repeat(np.arange(12), 1000)
    r = pearson(x, y)
    fig = scatter_figure(
        x, y, step, subsample(12_000), x_metric="er", y_metric="erv", r=r, r2=r * r
    )
    assert len(fig.data[0].x) == 5000
    assert "5,000 of 12,000 drawn" in chart_text(fig)
    assert f"r = {r:+.3f}" in chart_text(fig)
    assert fig.data[0].type == "scatter"  # SVG, never WebGL


def test_compare_table_final_best_and_difference():
    from app.analysis_plots import compare_table

    series = {"#1 grpo": ([1, 2, 3], [0.2, 0.5, 0.4]), "#2 verl": ([1, 2, 3], [0.3, 0.6, 0.7])}
    t = compare_table(series, "heldout_accuracy").set_index("run")
    assert t.loc["#2 verl", "final"] == 0.7 and t.loc["#1 grpo", "best"] == 0.5
    assert t.loc["#1 grpo", "best step"] == 2
    assert t.loc["#2 verl", "Δ final"] == pytest.approx(0.3)
    missing = {"#3 short": "held-out accuracy is not evaluated: eval_every = 0"}
    t = compare_table({**series, "#3 short": ([], [])}, "heldout_accuracy", missing)
    assert t.set_index("run").loc["#3 short", "note"] == missing["#3 short"]
    loss = compare_table({"a": ([1, 2], [3.0, 1.0])}, "loss")
    assert loss["best"].iloc[0] == 1.0  # lower is better for the loss


def test_compare_display_rounds_to_the_metric_and_keeps_the_table_narrow():
    """The page shows a few significant digits (the exact values stay in `compare_table`),
    short headers, and the notes and what Δ means under the table, not as wide columns."""
    from app.analysis_plots import compare_display, compare_table

    series = {
        "#1 grpo-long-name": ([1, 2, 3], [21.99976714257606, 20.5, 19.123456]),
        "#2 verl": ([1, 2, 3], [22.25, 18.0, 21.987654321]),
        "#3 short": ([], []),
    }
    missing = {"#3 short": "held-out accuracy is not evaluated: eval_every = 0"}
    exact = compare_table(series, "loss", missing)
    assert exact.loc[0, "final"] == 19.123456  # exact where a value is exported
    shown, notes = compare_display(exact, "#1 grpo-long-name")
    assert "note" not in shown.columns
    assert max(len(str(c)) for c in shown.columns) <= len("best step")
    row = shown.set_index("run").loc["#2 verl"]
    assert row["final"] == 21.99 and row["best"] == 18.0 and row["Δ final"] == 2.86
    assert row["Δ best"] == pytest.approx(-1.12) and row["best step"] == 2
    assert "#1 grpo-long-name" in notes and "eval_every = 0" in notes
    acc = compare_table({"a": ([1, 2], [0.4, 0.7]), "b": ([1, 2], [0.5, 0.1234567])}, "accuracy")
    shown, _ = compare_display(acc, "a")
    assert shown.set_index("run").loc["b", "final"] == 0.1235
    assert shown.set_index("run").loc["b", "Δ final"] == -0.5765  # not -0.5765433000000001


def test_metric_choices_show_the_monitor_titles_and_keep_the_column_as_value():
    from app.pages.compare import METRICS
    from app.plots import PANELS, metric_choices

    choices = dict((value, title) for title, value in metric_choices(METRICS))
    assert list(choices) == list(METRICS)  # the value (and the URL's metric=) is the column
    assert "groups tied (no gradient)" in choices["frac_zero_std"]
    assert "baseline m_ER" in choices["m_er"]
    for panel in PANELS:  # one source: each panel line's own label
        for line in panel.lines:
            if line.column in choices:
                assert line.label in choices[line.column], line


def _seed_store(data_root, n_steps=6, per_step=16, seed=0):
    """A real store holding a run whose responses' ER and ERV both follow length."""
    from engine.storage import Store

    store = Store(data_root.db_url)
    run_id = store.create_run({}, name="seeded", algorithm="verl", total_steps=n_steps)
    rng = np.random.default_rng(seed)
    for step in range(1, n_steps + 1):
        length = rng.integers(30, 60, size=per_step)
        samples = [
            {
                "group_idx": i // 4,
                "sample_idx": i % 4,
                "length": int(length[i]),
                "er": 0.4 * length[i] + rng.normal(),
                "erv": 0.1 * length[i] + rng.normal() * 0.3,
                "era": rng.normal(),
                "entropy": rng.uniform(0.1, 1.0),
                "mean_logprob": -rng.uniform(0.1, 1.0),
            }
            for i in range(per_step)
        ]
        store.log_step(run_id, {"step": step, "heldout_accuracy": 0.1 * step}, samples)
    return store, run_id


def test_points_and_page_numbers_come_from_the_store(data_root):
    """load_points reads every recorded response; the page's r is numpy's r on them."""
    from app.pages.analysis import analyse
    from engine.analysis import load_points

    store, run_id = _seed_store(data_root)
    points = load_points(store, run_id)
    assert len(points) == 6 * 16
    rows = [r for s in store.sample_steps(run_id) for r in store.samples(run_id, s)]
    er = np.array([r["er"] for r in rows])
    erv = np.array([r["erv"] for r in rows])
    r = np.corrcoef(er, erv)[0, 1]
    summary, fig, *_, table, lengths = analyse(store, f"#{run_id} seeded", None, None)
    assert f"r(ER, ERV) = {r:+.3f}" in summary and "Length confound" in summary
    assert table.iloc[0]["r"] == pytest.approx(r, abs=1e-4)
    for lo, hi in ((None, None), (2, 3), (5, None)):  # the columns query = the full decode
        part = load_points(store, run_id, lo, hi)
        want = [r for r in rows if (lo or 1) <= r["step"] <= (hi or 6)]
        assert part.step.tolist() == [r["step"] for r in want]
        for m in METRICS:
            np.testing.assert_array_equal(part.values[m], [float(r[m]) for r in want])
    assert len(load_points(store, run_id, 2, 3)) == 2 * 16
    assert "r = " in chart_text(fig)


@pytest.mark.parametrize("bound", ["-5", "-1", "1e12", "nan", "NaN", "inf", "2.5", "abc", "--3"])
def test_a_bad_step_bound_is_refused_in_one_line_and_clears_the_old_results(data_root, bound):
    """A bad bound names its field and the fix, and nothing of the previous range stays on
    screen (the charts and tables are emptied, not left under the new inputs)."""
    from app.pages.analysis import analyse

    store, run_id = _seed_store(data_root, n_steps=2, per_step=4)
    for lo, hi, field in ((bound, None, "from step"), ("1", bound, "to step")):
        summary, *figs, table, lengths = analyse(store, f"#{run_id} seeded", lo, hi)
        assert "\n" not in summary and field in summary and "leave it empty" in summary
        assert repr(bound.strip()) in summary
        assert all(len(f.data) == 0 for f in figs), bound  # no chart of the previous range
        assert all("step range" in f.layout.annotations[0].text for f in figs)
        assert table.empty and lengths.empty
    summary, *_ = analyse(store, f"#{run_id} seeded", " 0 ", "1.0")  # whole numbers pass
    assert "r(ER, ERV)" in summary


def test_summary_says_the_drawing_limit_once(data_root):
    from app.pages.analysis import summary_markdown
    from engine.analysis import MAX_DRAWN, decoupling, load_points

    store, run_id = _seed_store(data_root, n_steps=2, per_step=4)
    points = load_points(store, run_id)
    d = decoupling(points)
    for n, drawn in ((len(points), len(points)), (9_600, MAX_DRAWN)):
        text = summary_markdown(d, n, drawn).lower()
        assert text.count("draw") == 1 and text.count(f"{MAX_DRAWN:,}") <= 1, text


def test_empty_analysis_and_evaluate_charts_say_why_before_anything_is_picked(data_root):
    """Before a pick, each chart says what to pick (an empty gr.Plot shows only an icon)."""
    import gradio as gr

    from app.pages import analysis, evaluate
    from app.pages.common import AppContext, TokenizerCache

    store = _seed_store(data_root, n_steps=1, per_step=4)[0]
    ctx = AppContext(store=store, root=data_root, tokenizers=TokenizerCache())
    for page, ids in (
        (analysis, ("analysis-er-erv", "analysis-ent-lp", "analysis-step-r")),
        (evaluate, ("eval-plot",)),
    ):
        with gr.Blocks() as demo:
            page.build(ctx)
        plots = {b.elem_id: b for b in demo.blocks.values() if isinstance(b, gr.Plot)}
        for elem in ids:
            value = plots[elem].value
            assert value is not None, elem
            assert "pick" in str(value), elem
