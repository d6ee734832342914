"""The read-only API twins of the monitor's refresh and the inspector's view (JSON, no Gradio).

`/monitor_refresh` and `/inspector_data` run the same page handlers a browser's poll runs
(app.pages.monitor.redraw, app.pages.inspector.pick/render), so scripts and load tests exercise
the real read path. They write nothing and return nothing an anonymous page visitor cannot see:
the monitor's log tail (which may name server paths) is left out, as the page hides it from
visitors without the operator token.
"""

from __future__ import annotations

import json
from typing import Any

from app import queries
from app.pages import inspector, monitor
from app.pages.common import AppContext


def _points(figure: Any) -> int:
    return sum(len(trace.x) for trace in figure.data if getattr(trace, "x", None) is not None)


def monitor_refresh(ctx: AppContext, run_id: int) -> dict:
    """What the monitor draws for one run: {"signature", "status" (markdown line), "health"
    (markdown), "points" (data points per chart, in the page's order)}; status "missing" when
    the run does not exist."""
    run = ctx.store.get_run(run_id)
    if run is None:
        return {"id": run_id, "status": "missing"}
    labels = [queries.run_label(run)]
    drawn = monitor.redraw(ctx.store, labels, "step", 0.0)
    figures, (status, _log_tail, health) = drawn[:-4], drawn[-4:-1]
    signature = queries.monitor_signature(ctx.store, [run_id])
    return {
        "id": run_id,
        "signature": json.loads(json.dumps(signature, default=str)),
        "status": status,
        "health": health,
        "points": [_points(f) for f in figures],
    }


def inspector_data(
    ctx: AppContext, run_id: int, step: int | None = None, group: int | None = None
) -> dict:
    """One prompt group as the inspector shows it (latest step and first group by default):
    {"steps", "step", "groups", "group", "stats" (markdown of the first response), "responses"
    (the group table as records)}; empty lists when the run recorded no responses yet."""
    steps = queries.inspector_steps(ctx.store, run_id) if ctx.store.get_run(run_id) else []
    if step not in steps:
        step = steps[-1] if steps else None
    groups = queries.step_groups(ctx.store, run_id, step) if step is not None else []
    if group not in groups:
        group = groups[0] if groups else None
    stats, _html, _curve, _tokens, table = inspector.render(ctx, run_id, step, group, None)
    records = [] if table is None else json.loads(table.to_json(orient="records"))
    return {
        "id": run_id,
        "steps": steps,
        "step": step,
        "groups": groups,
        "group": group,
        "stats": stats,
        "responses": records,
    }
