"""Evaluate: pass@k of a run's checkpoints as an `eval` job through the worker, drawn as curves.

Launch queues an eval run (`engine.runs.service.submit_eval`); the worker executes it with
`verl-studio evaluate`. Several eval runs (checkpoints, runs) share one chart; a timer redraws it
only when a picked eval run's status or number of results changed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import gradio as gr
import pandas as pd

from app.analysis_plots import empty_figure, pass_at_k_figure
from app.pages.common import PRIVATE, READ_ONLY, TICK_S, AppContext, as_text, on_show
from app.queries import choice_id, run_choices, run_label
from engine.config import ConfigError
from engine.evaluation.jobs import EvalConfig
from engine.runs import service
from engine.storage import RunKind, Store

NO_PICK = "pick eval runs above ('eval runs on the chart') to draw their pass@k curves"
STATUS_COLUMNS = ("id", "name", "status", "models done", "pass@1 (last)", "error")


def eval_ids(values: Sequence[str] | None) -> list[int]:
    return [i for i in (choice_id(v) for v in values or []) if i is not None]


def eval_curves(store: Store, ids: Sequence[int]) -> list[tuple[str, list[int], list[float]]]:
    """(legend, ks, pass@k) for every stored result of the picked eval runs."""
    curves = []
    for run_id in ids:
        run = store.get_run(run_id)
        if run is None:
            continue
        src = store.get_run(run.parent_id) if run.parent_id is not None else None
        who = run_label(src) if src is not None else run_label(run)
        for row in store.evals(run_id):
            name = f"{who} @ step {row['step']} ({row['dataset']}, n={row['n']})"
            curves.append((name, list(row["ks"]), list(row["pass_at_k"])))
    return curves


def status_frame(store: Store, ids: Sequence[int]) -> pd.DataFrame:
    rows = []
    for run_id in ids:
        run = store.get_run(run_id)
        if run is None:
            continue
        evals = store.evals(run_id)
        last = evals[-1]["pass_at_k"][0] if evals else None
        rows.append(
            (
                run.id,
                run.name,
                run.status.value,
                f"{len(evals)} / {run.total_steps}",
                "" if last is None else f"{last:.3f}",
                last_line(run.error),
            )
        )
    return pd.DataFrame(rows, columns=list(STATUS_COLUMNS))


def last_line(text: str | None) -> str:
    lines = (text or "").strip().splitlines()
    return lines[-1] if lines else ""


def signature(store: Store, ids: Sequence[int]) -> tuple:
    out = []
    for run_id in ids:
        run = store.get_run(run_id)
        if run is not None:
            out.append((run_id, run.status.value, len(store.evals(run_id))))
    return tuple(out)


def checkpoint_steps(store: Store, run_value) -> list[int]:
    run_id = choice_id(run_value)
    return [] if run_id is None else [int(c["step"]) for c in store.checkpoints(run_id)]


def checkpoint_hint(run_value, steps: list[int]) -> str:
    """The line under the checkpoints picker: what to do before it lists anything (its label
    alone, with no boxes, looked like a broken control), or that none ticked means all."""
    if choice_id(run_value) is None:
        return "Pick a run first: its checkpoints are listed here."
    if not steps:
        return "This run has no checkpoint yet."
    return f"Tick the ones to evaluate; none ticked evaluates all {len(steps)}."


def checkpoint_picker(store: Store, run_value) -> dict:
    """The checkpoints picker for a picked run: its steps, none ticked, and its hint."""
    steps = checkpoint_steps(store, run_value)
    return gr.update(choices=steps, value=[], info=checkpoint_hint(run_value, steps))


def launch(
    store: Store,
    policy,
    source,
    steps,
    include_base,
    dataset,
    num_problems,
    n,
    k_max,
    temperature,
    max_new,
):
    """Queue an eval run under `policy`; returns (message, the eval-runs picker update)."""
    run_id = choice_id(source)
    try:
        cfg = EvalConfig.from_dict(
            {
                "source_run_id": run_id,
                "checkpoint_steps": [int(s) for s in steps or []],
                "include_base": bool(include_base),
                "dataset": (dataset or "").strip(),
                "num_problems": int(num_problems or 0),
                "n": int(n or 0),
                "k_max": int(k_max or 0),
                "temperature": float(temperature or 0),
                "max_new_tokens": int(max_new or 0),
            }
        )
        if run_id is None:
            raise ConfigError([("eval.source_run_id", "pick the run to evaluate")])
        new_id = service.submit_eval(store, cfg, policy=policy)
    except (ConfigError, ValueError, TypeError) as exc:
        errors = exc.errors if isinstance(exc, ConfigError) else [("eval", str(exc))]
        lines = (f"- {as_text(p)}: {as_text(m)}" for p, m in errors)
        return "**Not queued:**\n" + "\n".join(lines), gr.skip()
    new = run_label(store.get_run(new_id))
    return f"Queued eval run **{as_text(new)}**.", gr.update(
        choices=run_choices(store, RunKind.EVAL), value=[new]
    )


INTRO = (
    "### Evaluate\npass@k of a training run's checkpoints (and, if ticked, the model it started "
    "from) on held-out problems: n samples per problem, the unbiased estimator for k = 1 … K. "
    "Evaluate queues an eval job for the worker; its curves appear below as results arrive."
)


def evaluable_runs(store) -> list[str]:
    """Picker labels of the training runs that have at least one checkpoint, newest first."""
    return [
        run_label(r)
        for r in sorted(store.list_runs(kind=RunKind.TRAIN), key=lambda r: -r.id)
        if store.checkpoints(r.id)
    ]


def build(ctx: AppContext) -> None:
    store = ctx.store
    defaults = EvalConfig()
    gr.Markdown(INTRO, elem_id="eval-intro")
    with gr.Row():
        source = gr.Dropdown(
            label="run",
            choices=run_choices(store, RunKind.TRAIN),
            elem_id="eval-source",
            scale=2,
        )
        steps = gr.CheckboxGroup(
            label="checkpoints (none = all)",
            info=checkpoint_hint(None, []),
            choices=[],
            elem_id="eval-steps",
        )
        include_base = gr.Checkbox(label="also the starting model (step 0)", elem_id="eval-base")
    with gr.Row():
        dataset = gr.Textbox(
            label="dataset",
            placeholder="empty = the run's held-out split; or 'arithmetic', a file, a hub id",
            elem_id="eval-dataset",
        )
        num_problems = gr.Number(defaults.num_problems, label="problems", precision=0, elem_id="eval-problems")  # fmt: skip
        n = gr.Number(defaults.n, label="n (samples per problem)", precision=0, elem_id="eval-n")
        k_max = gr.Number(defaults.k_max, label="K", precision=0, elem_id="eval-k")
        temperature = gr.Number(defaults.temperature, label="temperature", elem_id="eval-temp")
        max_new = gr.Number(0, label="max new tokens (0 = run's)", precision=0, elem_id="eval-max-new")  # fmt: skip
    go_btn = gr.Button("Evaluate", variant="primary", elem_id="eval-launch")
    message = gr.Markdown(elem_id="eval-message")
    runs = gr.Dropdown(label="eval runs on the chart", multiselect=True, choices=[], elem_id="eval-runs")  # fmt: skip
    status = gr.Dataframe(
        pd.DataFrame(columns=list(STATUS_COLUMNS)), elem_id="eval-status", interactive=False
    )
    plot = gr.Plot(empty_figure(NO_PICK), elem_id="eval-plot")
    view = dict(
        source=source, steps=steps, include_base=include_base, dataset=dataset,
        num_problems=num_problems, n=n, k_max=k_max, temperature=temperature, max_new=max_new,
        go_btn=go_btn, message=message, runs=runs, status=status, plot=plot,
    )  # fmt: skip
    _wire(ctx, view)


def _wire(ctx: AppContext, v: dict[str, Any]) -> None:
    """Queue an eval job; redraw its status and pass@k chart when the picked runs change."""
    store, source, runs = ctx.store, v["source"], v["runs"]
    seen = gr.State(())
    timer = gr.Timer(TICK_S)

    def choices():
        return (
            gr.update(choices=evaluable_runs(store)),
            gr.update(choices=run_choices(store, RunKind.EVAL)),
        )

    def redraw(picked, last):
        ids = eval_ids(picked)
        sig = signature(store, ids)
        if sig == last:
            return gr.skip(), gr.skip(), last
        figure = pass_at_k_figure(eval_curves(store, ids)) if ids else empty_figure(NO_PICK)
        return status_frame(store, ids), figure, sig

    on_show(choices, None, [source, runs])
    source.change(
        lambda value: checkpoint_picker(store, value),
        source,
        v["steps"],
        **READ_ONLY,
    )

    def evaluate(request: gr.Request, *values):  # Gradio passes a Request only before *args
        ctx.guard.require(request)
        return launch(store, ctx.policy, *values)

    form = ["source", "steps", "include_base", "dataset", "num_problems", "n", "k_max"]
    v["go_btn"].click(
        evaluate,
        [v[k] for k in [*form, "temperature", "max_new"]],
        [v["message"], runs],
        **PRIVATE,
    )
    gr.on(
        [runs.change, timer.tick],
        redraw,
        [runs, seen],
        [v["status"], v["plot"], seen],
        trigger_mode="always_last",
        **READ_ONLY,
    )
