"""Analysis: the paper's decoupling figure for one run, with the length confound in plain view.

Per-response scatters of ER vs ERV and token entropy vs mean log-prob over a step range, with
Pearson r and R² on all points (the charts draw at most 5,000 sampled points), r per step for
both pairs, each metric's r with response length, and the partial r given length.
"""

from __future__ import annotations

import gradio as gr
import pandas as pd

from app.analysis_plots import (
    empty_figure,
    length_table,
    scatter_figure,
    stats_table,
    step_r_figure,
)
from app.pages.common import READ_ONLY, AppContext, on_show, step_bound
from app.queries import choice_id, run_choices
from engine.analysis import Decoupling, decoupling, load_points, subsample
from engine.storage import Store

CONFOUND_R = 0.5  # |r(metric, length)| above which the page warns about the confound


def summary_markdown(d: Decoupling, n_points: int, n_drawn: int) -> str:
    """The numbers a reader needs first, and a warning when length drives both rank metrics."""
    if n_points == 0:
        return "No recorded responses for this run and step range."
    er_erv, ent_lp = d.pairs
    lines = [
        f"**{n_points:,} responses.** r and R² use all of them; each chart draws "
        + (
            f"{n_drawn:,} of them, sampled at random (its limit)."
            if n_drawn < n_points
            else "every point."
        ),
        "",
        f"- r(ER, ERV) = {er_erv.r:+.3f} (R² = {er_erv.r2:.3f}); "
        f"partial r given length = {er_erv.partial_r_length:+.3f}",
        f"- r(token entropy, mean log-prob) = {ent_lp.r:+.3f} "
        f"(R² = {ent_lp.r2:.3f}); partial r given length = {ent_lp.partial_r_length:+.3f}",
        "- The paper (7B model, long responses): r(ER, ERV) ≈ −0.06, r(entropy, log-prob) ≈ −0.61.",
    ]
    r_er, r_erv = d.length_r.get("er", 0.0), d.length_r.get("erv", 0.0)
    if abs(r_er) > CONFOUND_R and abs(r_erv) > CONFOUND_R:
        lines += [
            "",
            f"⚠️ **Length confound:** ER and ERV both track response length here "
            f"(r = {r_er:+.2f} and {r_erv:+.2f}), so part of r(ER, ERV) = {er_erv.r:+.3f} is "
            f"length. Controlling for length, the partial r is {er_erv.partial_r_length:+.3f}.",
        ]
    return "\n".join(lines)


INTRO = (
    "### Analysis\nDoes ER measure something other than response length, and does ERV carry "
    "information ER does not? Pick a run (and optionally a step range): each recorded response "
    "is one point; r and R² are over all of them, with the partial r once length is held fixed."
)
PAIR_COLUMNS = ("pair", "n", "r", "R²", "r(x, length)", "r(y, length)", "partial r given length")
LENGTH_COLUMNS = ("metric", "r with response length")


def empty_tables() -> tuple[pd.DataFrame, pd.DataFrame]:
    """The two tables before anything is analysed: their real headers, no rows."""
    return pd.DataFrame(columns=list(PAIR_COLUMNS)), pd.DataFrame(columns=list(LENGTH_COLUMNS))


EMPTY_CHARTS = "pick a run above to draw this chart"


def cleared(why: str, chart_note: str) -> tuple:
    """Every output of `analyse` with nothing of a previous range left: `why` as the summary,
    each chart saying `chart_note`, the tables with headers only."""
    empty = empty_figure(chart_note)
    return (why, empty, empty, empty, *empty_tables())


def analyse(store: Store, run_value, step_lo, step_hi):
    """(summary markdown, ER-ERV scatter, entropy-logprob scatter, r per step, pairs table,
    length table) of a run's responses in the step range. A bad or reversed bound clears
    every output (none may pass for the new range) and says which field to fix."""
    run_id = choice_id(run_value)
    if run_id is None:
        return cleared("Pick a run.", EMPTY_CHARTS)
    try:
        lo, hi = step_bound(step_lo, "from step"), step_bound(step_hi, "to step")
    except ValueError as exc:
        return cleared(f"⚠️ {exc}", "fix the step range above")
    if lo is not None and hi is not None and lo > hi:
        why = f"The step range is reversed: from step {lo} is after to step {hi}. Swap them."
        return cleared(why, "reversed step range")
    points = load_points(store, run_id, lo, hi)
    d = decoupling(points)
    drawn = subsample(len(points))
    figs = [
        scatter_figure(
            points.values[p.x],
            points.values[p.y],
            points.step,
            drawn,
            x_metric=p.x,
            y_metric=p.y,
            r=p.r,
            r2=p.r2,
        )  # fmt: skip
        for p in d.pairs
    ]
    return (
        summary_markdown(d, len(points), len(drawn)),
        *figs,
        step_r_figure(d.steps, d.step_r),
        stats_table(d.pairs, d.length_r),
        length_table(d.length_r),
    )


def build(ctx: AppContext) -> None:
    store = ctx.store
    gr.Markdown(INTRO, elem_id="analysis-intro")
    with gr.Row():
        run = gr.Dropdown(label="run", choices=[], elem_id="analysis-run", scale=3)
        step_lo = gr.Textbox(label="from step", placeholder="first", elem_id="analysis-from")
        step_hi = gr.Textbox(label="to step", placeholder="last", elem_id="analysis-to")
        go_btn = gr.Button("Analyse", variant="primary", elem_id="analysis-go")
    summary = gr.Markdown(elem_id="analysis-summary")
    with gr.Row():
        er_erv = gr.Plot(empty_figure(EMPTY_CHARTS), elem_id="analysis-er-erv")
        ent_lp = gr.Plot(empty_figure(EMPTY_CHARTS), elem_id="analysis-ent-lp")
    step_r = gr.Plot(empty_figure(EMPTY_CHARTS), elem_id="analysis-step-r")
    # full width, one under the other: side by side, the pairs table's columns were cut off
    no_pairs, no_lengths = empty_tables()
    table = gr.Dataframe(
        no_pairs, elem_id="analysis-table", interactive=False, label="pairs", wrap=True
    )
    lengths = gr.Dataframe(no_lengths, elem_id="analysis-length", interactive=False, label="length")

    def choices():
        return gr.update(choices=run_choices(store, "train"))

    on_show(choices, None, run)
    gr.on(
        [go_btn.click, run.change],
        lambda r, lo, hi: analyse(store, r, lo, hi),
        [run, step_lo, step_hi],
        [summary, er_erv, ent_lp, step_r, table, lengths],
        trigger_mode="always_last",
        **READ_ONLY,
    )
