"""Compare: overlay one metric for several runs, with each run's final and best value.

Typical use: a `grpo` and a `verl` run of the same recipe side by side.
"""

from __future__ import annotations

from collections.abc import Sequence

import gradio as gr

from app.analysis_plots import compare_display, compare_figure, compare_table, empty_figure
from app.pages.common import PRIVATE, AppContext, PageId, UrlPart, on_show
from app.plots import metric_choices
from app.queries import choice_id, missing_reasons, run_choices, run_label
from app.url_state import UrlState
from engine.storage import Store
from engine.storage.schema import STEP_METRICS

DEFAULT_METRIC = "heldout_accuracy"
METRICS = tuple(m for m in STEP_METRICS if m != "wall_time")


def compare_series(
    store: Store, run_values: Sequence[str], metric: str
) -> dict[str, tuple[list, list]]:
    """Run label -> (steps, values) of `metric`, for each picked run that exists."""
    series = {}
    for value in run_values or []:
        run_id = choice_id(value)
        run = None if run_id is None else store.get_run(run_id)
        if run is None:
            continue
        rows = [r for r in store.steps(run_id, columns=[metric]) if r[metric] is not None]
        series[run_label(run)] = ([r["step"] for r in rows], [float(r[metric]) for r in rows])
    return series


def missing_values(store, run_values: Sequence[str], metric: str) -> dict[str, str]:
    """Run label -> why that run will never have `metric` (see `missing_reasons`)."""
    out = {}
    for value in run_values or []:
        run_id = choice_id(value)
        run = None if run_id is None else store.get_run(run_id)
        reasons = missing_reasons(run)
        why = reasons.get(metric) or reasons.get("*")
        if why:
            out[run_label(run)] = why
    return out


def build(ctx: AppContext) -> None:
    store = ctx.store
    gr.Markdown(
        "Overlay a metric for several runs: the chart and the table redraw on each pick. "
        "The table compares each run to the first one picked.",
        elem_id="compare-intro",
    )
    with gr.Row():
        runs = gr.Dropdown(
            label="runs", multiselect=True, choices=[], elem_id="compare-runs", scale=3
        )
        metric = gr.Dropdown(
            label="metric",
            choices=metric_choices(METRICS),
            value=DEFAULT_METRIC,
            elem_id="compare-metric",
            scale=2,
        )
    plot = gr.Plot(empty_figure("pick runs above to compare them"), elem_id="compare-plot")
    table = gr.Dataframe(elem_id="compare-table", interactive=False, wrap=True)
    notes = gr.Markdown(elem_id="compare-notes")

    def draw(run_values, metric_name):
        series = compare_series(store, run_values, metric_name)
        missing = missing_values(store, run_values, metric_name)
        shown, text = compare_display(
            compare_table(series, metric_name, missing), next(iter(series), None)
        )
        return compare_figure(series, metric_name, missing), shown, text

    def choices():  # the picked value stays: a tab opened mid-pick must not clear it
        return gr.update(choices=run_choices(store, "train"))

    gr.on(
        [metric.change, runs.change],
        draw,
        [runs, metric],
        [plot, table, notes],
        trigger_mode="always_last",  # a pick made while a draw runs is drawn after it
        **PRIVATE,
    )
    on_show(choices, None, runs)
    ctx.url_parts.append(
        UrlPart(
            inputs=[runs, metric],
            read=read_place,
            outputs=[runs, metric],
            restore=lambda state, reset: place(store, state, reset),
        )
    )
    ctx.url_events += [(runs.input, PageId.COMPARE), (metric.input, PageId.COMPARE)]


def read_place(run_values: Sequence[str] | None, metric_name: str | None) -> dict:
    """The URL's Compare fields: the picked runs, and the metric unless it is the default."""
    ids = tuple(i for i in (choice_id(v) for v in run_values or []) if i is not None)
    return {"compare": ids, "metric": None if metric_name == DEFAULT_METRIC else metric_name}


def place(store: Store, state: UrlState, reset: bool) -> list:
    """(runs picker, metric) showing a link's comparison: its training runs that exist, in its
    order, and its metric when that is one of `METRICS`. What the link does not name is left
    as it is unless `reset` (then: no runs, the default metric)."""
    runs = [r for r in (store.get_run(i) for i in state.compare) if r and r.kind == "train"]
    picker = gr.Dropdown(
        choices=run_choices(store, "train"), value=[run_label(r) for r in runs], multiselect=True
    )
    metric = state.metric if state.metric in METRICS else (DEFAULT_METRIC if reset else None)
    return [
        picker if state.compare or reset else gr.skip(),
        metric if metric is not None else gr.skip(),
    ]
