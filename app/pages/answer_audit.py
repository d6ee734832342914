"""Answer audit, a section of the trace inspector: the responses the verifier likely misjudged.

For the inspector's run and a step range it lists the responses scored 0 although the gold
appears in their final answer text, and those scored 1 although the answer read is not
literally the gold (engine.data.audit), with counts; a click on a row opens that response in
the inspector above. Responses of runs that predate the audit count as "not recorded".
"""

from __future__ import annotations

import html
from collections.abc import Callable
from typing import Any

import gradio as gr
import pandas as pd

from app import queries
from app.pages.common import READ_ONLY, AppContext, row_response, step_bound
from engine.data.audit import LENIENT, MISSED, AuditResult

MAX_ROWS = 500  # rows shown; the counts cover the whole range
COLUMNS = ["step", "group", "response", "why", "answer read", "gold", "reward"]
HELP = (
    "#### Answer audit\nResponses the verifier most likely misjudged: **scored 0 although the "
    "gold appears in the final answer text**, and **scored 1 although the answer read is not "
    "literally the gold**. Click a row to open the response above."
)


def build(ctx: AppContext, run: gr.Dropdown, open_outputs: list, open_fn: Callable) -> None:
    """The audit section; `open_fn(run_id, step, group, sample)` fills `open_outputs`."""
    with gr.Accordion("Answer audit", open=True, elem_id="audit"):
        gr.Markdown(HELP)
        with gr.Row():
            lo = gr.Number(label="From step", value=None, precision=0, elem_id="audit-from")
            hi = gr.Number(label="To step", value=None, precision=0, elem_id="audit-to")
            go = gr.Button("Audit answers", variant="secondary", elem_id="audit-run")
        counts = gr.Markdown("", elem_id="audit-counts")
        table = gr.Dataframe(
            value=pd.DataFrame(columns=COLUMNS),
            interactive=False,
            label="Likely misjudged responses",
            elem_id="audit-table",
        )

    def on_audit(choice, step_min, step_max):
        return audit_view(ctx, queries.choice_id(choice), step_min, step_max)

    def on_select(choice, evt: gr.SelectData):
        ids = row_response(evt.row_value)
        if ids is None:
            return [gr.skip()] * len(open_outputs)
        return open_fn(queries.choice_id(choice), *ids)

    go.click(on_audit, inputs=[run, lo, hi], outputs=[counts, table], **READ_ONLY)
    table.select(on_select, inputs=[run], outputs=open_outputs, **READ_ONLY)


def audit_view(
    ctx: AppContext, run_id: int | None, step_min: Any, step_max: Any
) -> tuple[str, pd.DataFrame]:
    """(counts markdown, table of suspects) of a run's responses in the step range."""
    empty = pd.DataFrame(columns=COLUMNS)
    if run_id is None or ctx.store.get_run(run_id) is None:
        return "Pick a run above first.", empty
    try:
        lo, hi = step_bound(step_min, "From step"), step_bound(step_max, "To step")
    except ValueError as exc:
        return f"⚠️ {html.escape(str(exc))}", empty
    if lo is not None and hi is not None and lo > hi:
        return "⚠️ From step is after To step: swap them.", empty
    result = queries.answer_audit(ctx.store, run_id, lo, hi)
    return counts_markdown(result), suspects_frame(result)


def counts_markdown(result: AuditResult) -> str:
    """The audit's counts as one markdown line."""
    if result.responses == 0:
        return "No recorded responses in this step range."
    audited = result.responses - result.not_recorded
    parts = [
        f"**{result.counts[MISSED]}** {MISSED}",
        f"**{result.counts[LENIENT]}** {LENIENT}",
        f"of {audited} audited responses",
    ]
    if result.not_recorded:
        parts.append(f"{result.not_recorded} not recorded (a run from before the answer audit)")
    shown = len(result.suspects)
    more = f" (first {MAX_ROWS} of {shown} shown)" if shown > MAX_ROWS else ""
    return " · ".join(parts) + more


def suspects_frame(result: AuditResult) -> pd.DataFrame:
    """One row per suspect (at most MAX_ROWS), columns COLUMNS."""
    rows = [
        [s.step, s.group_idx, s.sample_idx, s.reason, s.answer, s.gold, s.reward]
        for s in result.suspects[:MAX_ROWS]
    ]
    return pd.DataFrame(rows, columns=COLUMNS)
