"""Runs and live monitor: the runs table, live charts of the selected runs, run actions.

GRPO health: the first selected run's flags (engine/health.py, read from its run events) sit at
the top of its monitor; picking one lists the responses behind it (step, group, reward, length,
the flag's reason). The runs table has a health column with each run's active flags.

Refresh (cheap poll, render on change): a `gr.Timer` reads each selected run's (status, latest
step) into `chart_sig` and the runs' (id, status, step, name) into `table_sig`; both are
`gr.State`s, whose `.change` fires only when the value moved, and only then are the figures or
the table rebuilt. Every figure carries `layout.uirevision`, so zoom and hidden traces survive.
"""

from __future__ import annotations

import logging
from typing import Any

import gradio as gr

from app import plots, queries
from app.pages.common import (
    PRIVATE,
    READ_ONLY,
    TICK_S,
    AppContext,
    PageId,
    UrlPart,
    as_text,
    on_show,
    row_response,
    user_error,
)
from app.url_state import UrlState
from engine.config import ConfigError
from engine.runs import service
from engine.storage import Store

log = logging.getLogger(__name__)

NO_RUN = "Select a run in the table (or the picker) to see its status and charts."
EMPTY = (
    "**No runs yet.** Open **Launch** and press **Run the demo** (or launch your own config); "
    "the run appears here and its charts update live."
)
LOG_LOCKED = "(the log is shown to the operator: enter the token at the top of the page)"
X_CHOICES = [(label, key) for key, label in plots.X_AXES.items()]
# an exported file's whole name, wrapped if need be (Gradio cuts it to "r… .csv" by default)
CSS = "#export-file .filename .stem{white-space:normal;overflow:visible;word-break:break-all}"


def build(ctx: AppContext) -> None:
    store = ctx.store
    empty = gr.Markdown(empty_note(store), elem_id="monitor-empty")
    table = gr.Dataframe(
        value=queries.runs_table(store),
        label="Runs (click a row to monitor it)",
        interactive=False,
        elem_id="runs-table",
        max_height=300,
        wrap=True,  # the health cell wraps ("⚠ truncation, tied grou" was cut)
    )
    jobs_note = gr.Markdown(queries.other_jobs_note(store), elem_id="runs-note")
    # read again when the page loads or the tab opens: the values above, fixed when the app was
    # built, said "No runs yet." beside a queued run until the first tick
    on_show(
        lambda: (empty_note(store), queries.runs_table(store), queries.other_jobs_note(store)),
        None,
        [empty, table, jobs_note],
    )
    with gr.Row():
        selected = gr.Dropdown(
            choices=queries.run_choices(ctx.store),
            value=[],
            multiselect=True,
            label="Runs on the charts",
            elem_id="monitor-runs",
            scale=3,
        )
        x_axis = gr.Radio(X_CHOICES, value="step", label="x axis", elem_id="monitor-x", scale=2)
        smoothing = gr.Slider(0.0, 0.99, value=0.0, step=0.01, label="Smoothing", scale=2)
    status = gr.Markdown(NO_RUN, elem_id="run-status")
    with gr.Accordion("Full error log", open=False, elem_id="run-error"):
        error_log = gr.Code(label="Error (as stored)", interactive=False, elem_id="run-error-log")
    health = _layout_health()
    actions = _layout_actions()
    figures = _layout_plots()
    with gr.Accordion("Log, config and environment", open=False):
        log_tail = gr.Textbox(label="Log tail", lines=12, max_lines=30, elem_id="log-tail")
        with gr.Row():
            config = gr.Code(label="Config", language="yaml", elem_id="run-config")
            env = gr.Code(label="Environment", language="yaml", elem_id="run-env")
    view = dict(
        empty=empty,
        table=table,
        jobs_note=jobs_note,
        selected=selected,
        x_axis=x_axis,
        smoothing=smoothing,
        status=status,
        error_log=error_log,
        figures=figures,
        log_tail=log_tail,
        config=config,
        env=env,
        chart_sig=gr.State(()),
        table_sig=gr.State(()),
        **health,
        **actions,
    )
    _wire_refresh(ctx, view)
    _wire_selection(ctx, view)
    _wire_health(ctx, view)
    _wire_actions(ctx, view)


def _layout_health() -> dict[str, Any]:
    """The selected run's health flags (top of the monitor) and the responses behind one."""
    flags = gr.Markdown("", elem_id="health-flags")
    with gr.Row():
        links = gr.Radio(
            choices=[],
            value=None,
            label="Show the responses behind a flag",
            elem_id="health-flag-links",
            visible=False,
            scale=1,
        )
    responses = gr.Dataframe(
        label="Responses behind the flag (the last step it held; click one to inspect it)",
        interactive=False,
        visible=False,
        elem_id="flag-responses",
        max_height=320,
    )
    return dict(health_flags=flags, flag_links=links, flag_responses=responses)


def _layout_actions() -> dict[str, Any]:
    with gr.Row():
        cancel = gr.Button("Cancel", elem_id="cancel-btn", size="sm")
        resume = gr.Button("Resume", elem_id="resume-btn", size="sm")
        duplicate = gr.Button("Duplicate", elem_id="duplicate-btn", size="sm")
        inspect = gr.Button("Inspect traces", elem_id="inspect-btn", size="sm")
        delete = gr.Button("Delete…", elem_id="delete-btn", size="sm", variant="stop")
    with gr.Row(visible=False) as confirm_row:
        confirm_text = gr.Markdown("", elem_id="delete-question")
        pending_delete = gr.State(None)  # the id the question names: what "Yes" deletes
        confirm = gr.Button("Yes, delete", variant="stop", elem_id="delete-confirm", size="sm")
        keep = gr.Button("Keep it", size="sm")
    with gr.Accordion("Name, notes and export", open=False, elem_id="run-more"):
        with gr.Row():
            name = gr.Textbox(label="Name", elem_id="run-name", scale=2)
            notes = gr.Textbox(label="Notes", lines=2, elem_id="run-notes", scale=3)
            with gr.Column(scale=1):
                save = gr.Button("Save name and notes", size="sm")
                export_steps = gr.Button("Export steps (CSV)", size="sm", elem_id="export-steps")
                export_samples = gr.Button("Export samples (JSONL)", size="sm")
        export_file = gr.File(label="Export", interactive=False, elem_id="export-file")
    message = gr.Markdown("", elem_id="monitor-message")
    return dict(
        cancel=cancel,
        resume=resume,
        duplicate=duplicate,
        inspect=inspect,
        delete=delete,
        confirm_row=confirm_row,
        confirm_text=confirm_text,
        pending_delete=pending_delete,
        confirm=confirm,
        keep=keep,
        name=name,
        notes=notes,
        save=save,
        export_steps=export_steps,
        export_samples=export_samples,
        export_file=export_file,
        message=message,
        msg_owner=gr.State(None),  # [run id, status] the message is about: see message_holds
    )


def _layout_plots() -> list[gr.Plot]:
    figures = []
    panels = list(plots.PANELS)
    for i in range(0, len(panels), 2):
        with gr.Row():
            for panel in panels[i : i + 2]:
                figures.append(
                    gr.Plot(
                        value=plots.empty_figure(NO_RUN if i == 0 else ""),
                        label=panel.title,
                        show_label=False,
                        elem_id=f"plot-{panel.key}",
                    )
                )
    return figures


# ----------------------------------------------------------------------------- handlers (plain)


def selected_ids(values: list[str] | None) -> list[int]:
    return [i for i in (queries.choice_id(v) for v in values or []) if i is not None]


def empty_note(store: Store) -> str:
    """The "No runs yet" help while the store holds no training run, else nothing."""
    return "" if store.list_runs(kind="train") else EMPTY


def table_signature(store: Store) -> tuple:
    """(id, status, step, name) of every run: training runs fill the table, eval jobs its note."""
    return tuple((r.id, str(r.status), r.step, r.name) for r in store.list_runs(kind=None))


def tick(store: Store, values: list[str] | None) -> tuple[tuple, tuple]:
    """The timer's whole work: two small reads."""
    return queries.monitor_signature(store, selected_ids(values)), table_signature(store)


def status_text(store: Store, run_ids: list[int]) -> str:
    if not run_ids:
        return NO_RUN
    st = queries.run_status(store, run_ids[0])
    if st["status"] == "missing":
        return f"Run #{run_ids[0]} no longer exists."
    text = (
        f"**#{st['id']} {as_text(st['name'])}** · {as_text(st['algorithm'])} · "
        f"status **{st['status']}** · step {st['step']} / {st['total_steps']} · "
        f"attempt {st['attempt']}"
    )
    if st["status"] == "running" and st["cancel_requested"]:
        text += " · **stopping** (cancel requested: it stops at the end of its current step)"
    if st["error"] and st["status"] == "cancelled":
        text += f"\n\n**Stopped:** {as_text(st['error'])}"
    elif st["explanation"]:
        why = "Why it failed" if st["status"] == "failed" else "Why it stopped"
        text += (
            f"\n\n**{why}:** {as_text(st['explanation'])} The whole error is under "
            "**Full error log** below."
        )
    elif st["error"]:
        text += f"\n\n{as_text(st['error'])}"
    return text


def redraw(store: Store, values: list[str] | None, x_axis: str, smoothing: float) -> list:
    """Figures, status and log tail of the selected runs (what moves while a run trains)."""
    ids = selected_ids(values)
    frames = queries.steps_frames(store, ids)
    uirev = ",".join(map(str, ids)) + f":{x_axis}"
    reasons = queries.monitor_reasons(store, ids)
    figs = plots.monitor_figures(
        frames, x_axis=x_axis, smoothing=smoothing, uirevision=uirev, reasons=reasons
    )
    if not frames:  # none picked, or the picked runs were deleted: "no data yet" would wait
        gone = f"Run #{ids[0]} no longer exists. {NO_RUN}" if ids else NO_RUN
        figs = [plots.empty_figure(gone if i == 0 else "") for i in range(len(figs))]
    tail = queries.log_tail(store, ids[0]) if ids else ""
    return [*figs, status_text(store, ids), tail, *health_view(store, ids)]


def error_text(store: Store, run_ids: list[int]) -> str:
    """The first selected run's whole stored error (the "Full error log" box)."""
    run = store.get_run(run_ids[0]) if run_ids else None
    if run is None:
        return ""
    return run.error or "(no error recorded for this run)"


def runs_picker(store: Store, labels: list[str]) -> gr.Dropdown:
    """An update of the runs picker (multiselect): every training run, `labels` picked."""
    return gr.Dropdown(choices=queries.run_choices(store), value=labels, multiselect=True)


def refreshed_picker(store: Store, values: list[str]) -> gr.Dropdown:
    """The runs picker after the runs changed: new choices only, so a pick the user makes
    while this is computed stays (setting the value it was computed with undid such a pick);
    the picks are rewritten only when a picked run was renamed or deleted."""
    runs = (store.get_run(i) for i in selected_ids(values))
    labels = [queries.run_label(r) for r in runs if r is not None and r.kind == "train"]
    if labels == list(values):
        return gr.Dropdown(choices=queries.run_choices(store))
    return runs_picker(store, labels)


def place(store: Store, state: UrlState, reset: bool = True) -> list:
    """(picker, status) showing a link's runs: those that exist are picked (which redraws);
    when none does, the status names the missing ones (nothing redraws over it). A link naming
    no runs leaves the picks as they are unless `reset`."""
    if not state.runs and not reset:
        return [gr.skip(), gr.skip()]
    found = [r for r in (store.get_run(i) for i in state.runs) if r is not None]
    runs = [r for r in found if r.kind == "train"]  # the picker's choices
    picker = runs_picker(store, [queries.run_label(r) for r in runs])
    if runs or not state.runs:
        return [picker, gr.skip()]
    if found:
        jobs = ", ".join(f"#{r.id}" for r in found)
        return [picker, f"The link names {jobs}, an evaluation job, not a training run. {NO_RUN}"]
    missing = ", ".join(f"#{i}" for i in state.runs)
    return [picker, f"The link names run {missing}, which does not exist. {NO_RUN}"]


def health_view(store: Store, run_ids: list[int]) -> list:
    """(flag banner, flag links) of the first selected run."""
    flags = queries.health_flags(store, run_ids[:1]).get(run_ids[0], []) if run_ids else []
    links = queries.flag_links(flags)
    return [
        queries.flags_markdown(flags),
        gr.Radio(choices=links, visible=bool(links)),
    ]


# ----------------------------------------------------------------------------- wiring


def _wire_refresh(ctx: AppContext, v: dict[str, Any]) -> None:
    """Poll cheaply (a signature per tick); redraw the charts and the table when it moves."""
    store = ctx.store
    timer = gr.Timer(TICK_S)
    timer.tick(
        lambda values: tick(store, values),
        inputs=[v["selected"]],
        outputs=[v["chart_sig"], v["table_sig"]],
        **READ_ONLY,
    )
    drawn = [
        *v["figures"], v["status"], v["log_tail"], v["health_flags"], v["flag_links"],
        v["error_log"],
    ]  # fmt: skip
    draw_inputs = [v["selected"], v["x_axis"], v["smoothing"]]

    def draw(values, x_axis, smoothing, request: gr.Request = None):
        out = [*redraw(store, values, x_axis, smoothing), error_text(store, selected_ids(values))]
        if not ctx.guard.allows(request):  # events and errors name server paths: operator only
            out[drawn.index(v["log_tail"])] = LOG_LOCKED
            out[drawn.index(v["error_log"])] = LOG_LOCKED
        return out

    v["chart_sig"].change(draw, inputs=draw_inputs, outputs=drawn, **READ_ONLY)
    v["x_axis"].change(draw, inputs=draw_inputs, outputs=drawn, **READ_ONLY)
    v["smoothing"].release(draw, inputs=draw_inputs, outputs=drawn, **READ_ONLY)

    def refresh_table(values):
        return (
            queries.runs_table(store),
            refreshed_picker(store, values or []),
            empty_note(store),
            queries.other_jobs_note(store),
        )

    v["table_sig"].change(
        refresh_table,
        inputs=[v["selected"]],
        outputs=[v["table"], v["selected"], v["empty"], v["jobs_note"]],
        **READ_ONLY,
    )


def _wire_selection(ctx: AppContext, v: dict[str, Any]) -> None:
    """Which runs are shown: the picker, a table row, or another page opening a run here."""
    store = ctx.store

    def on_select(values):
        """A new selection: its signature (which redraws), name and notes."""
        ids = selected_ids(values)
        run = store.get_run(ids[0]) if ids else None
        sig = queries.monitor_signature(store, ids)
        return (sig, run.name, run.notes) if run else (sig, "", "")

    v["selected"].change(
        on_select,
        inputs=[v["selected"]],
        outputs=[v["chart_sig"], v["name"], v["notes"]],
        **READ_ONLY,
    )

    def details(values):
        ids = selected_ids(values)
        return queries.run_details(store, ids[0]) if ids else ("", "")

    v["chart_sig"].change(
        details, inputs=[v["selected"]], outputs=[v["config"], v["env"]], **READ_ONLY
    )

    def pick_row(evt: gr.SelectData):
        run = store.get_run(int(evt.row_value[0]))
        labels = [queries.run_label(run)] if run else []
        return runs_picker(store, labels)

    picked_row = v["table"].select(pick_row, outputs=[v["selected"]], **READ_ONLY)

    def focus(run_id):
        run = store.get_run(run_id) if run_id else None
        labels = [queries.run_label(run)] if run else []
        return runs_picker(store, labels)

    focused = [
        opener.success(focus, inputs=[ctx.focus_run], outputs=[v["selected"]], **READ_ONLY)
        for opener in ctx.monitor_openers
    ]
    # the URL keeps the runs on the charts (app.url_state)
    ctx.url_parts.append(
        UrlPart(
            inputs=[v["selected"]],
            read=lambda values: {"runs": tuple(selected_ids(values))},
            outputs=[v["selected"], v["status"]],
            restore=lambda state, reset: place(store, state, reset),
        )
    )
    user_picks = [v["selected"].input, picked_row.success, *(f.success for f in focused)]
    ctx.url_events += [(pick, PageId.MONITOR) for pick in user_picks]


def _wire_health(ctx: AppContext, v: dict[str, Any]) -> None:
    store = ctx.store

    shown_for = gr.State(None)  # the run whose flag responses the list shows

    def show(values, kind):
        ids = selected_ids(values)
        if not ids or not kind:
            return gr.Dataframe(visible=False), None
        frame = queries.flag_responses(store, ids[0], kind)
        return gr.Dataframe(value=frame, visible=True), ids[0]

    v["flag_links"].input(
        show,
        inputs=[v["selected"], v["flag_links"]],
        outputs=[v["flag_responses"], shown_for],
        **READ_ONLY,
    )

    def inspect_flagged(values, evt: gr.SelectData):
        """A row of the flag's responses opens that response in the inspector."""
        ids, where = selected_ids(values), row_response(evt.row_value)
        if not ids or where is None:  # an error, not a skip: a skip would still open the tab
            raise user_error("Pick a response of a flag shown for the selected run.")
        return (ids[0], *where), gr.Tabs(selected=PageId.INSPECTOR)

    ctx.inspector_openers.append(
        v["flag_responses"].select(
            inspect_flagged,
            inputs=[v["selected"]],
            outputs=[ctx.inspect_run, ctx.tabs],
            **READ_ONLY,
        )
    )

    def another_run(values, shown):
        """The list closes when another run is on screen, not when the runs table's refresh
        sets the picker to the runs it already holds (a run that trains refreshes it)."""
        if shown is not None and selected_ids(values)[:1] == [shown]:
            return gr.skip(), gr.skip(), gr.skip()
        return gr.Radio(value=None), gr.Dataframe(visible=False), None

    v["selected"].change(
        another_run,
        inputs=[v["selected"], shown_for],
        outputs=[v["flag_links"], v["flag_responses"], shown_for],
        **READ_ONLY,
    )


def _current(store: Store, values: list[str] | None) -> Any:
    ids = selected_ids(values)
    run = store.get_run(ids[0]) if ids else None
    if run is None:
        raise user_error("Select a run first.")
    return run


def _service(operation, *args, **kwargs):
    """Call a run-service operation; a refusal becomes the page's one-line error."""
    try:
        return operation(*args, **kwargs)
    except service.RunError as exc:
        raise user_error(f"{str(exc)[0].upper()}{str(exc)[1:]}.") from None
    except ConfigError as exc:
        raise user_error(exc) from None


FINISHED = ("completed", "failed", "cancelled", "interrupted")


def cancel_message(run_id: int, before: str, after: str) -> str:
    """What a cancel did, said as the state after it: `before`/`after` are the run's status
    before the request and the one `service.cancel` returned."""
    if before in FINISHED:
        return f"Run #{run_id} had already finished ({before}): nothing was done."
    if after == "cancelled":
        return f"Run #{run_id} was still queued: it is cancelled now and will not start."
    if after == "running":
        return (
            f"Run #{run_id} is stopping: it saves a checkpoint at the end of its current step, "
            "then its status becomes cancelled (Resume continues from that checkpoint)."
        )
    return f"Run #{run_id} is {after} now."


def resume_message(run_id: int, attempt: int, step: int) -> str:
    start = f"from its step {step} checkpoint" if step else "from the start (no checkpoint)"
    return f"Run #{run_id} is queued again as attempt {attempt}; it resumes {start}."


def owner_of(store: Store, run_id: int | None) -> list:
    """[run id, its status now]: what a monitor message is about. The message is shown while
    that run is the first selected one and its status has not moved (`message_holds`)."""
    run = store.get_run(run_id) if run_id is not None else None
    return [run_id, str(run.status) if run is not None else "missing"]


def message_holds(store: Store, owner: list | None, values: list[str] | None) -> bool:
    """Whether the message owned by `owner` still describes the run on screen."""
    if not owner:
        return False
    ids = selected_ids(values)
    return owner == owner_of(store, ids[0] if ids else None)


def moved_on(store: Store, owner: list | None, values: list[str] | None) -> tuple[str, list | None]:
    """(message, its owner) once a message no longer holds: when its run is still the one on
    screen but its status moved (a cancel took effect, a queued run started), the message says
    the state now; for another run (or none) it is cleared."""
    ids = selected_ids(values)
    run = store.get_run(owner[0]) if owner and ids[:1] == [owner[0]] else None
    if run is None:
        return "", None
    resume = " Resume continues from its last checkpoint." if run.status.finished else ""
    text = f"Run #{run.id} is {run.status} now, at step {run.step} / {run.total_steps}.{resume}"
    return text, owner_of(store, run.id)


def _wire_messages(ctx: AppContext, v: dict[str, Any]) -> None:
    """A message (and the delete question) belongs to the run on screen: replaced by the run's
    new state when its status moves, cleared when another run is selected."""
    store = ctx.store

    def stale(owner, pending, values):
        ids = selected_ids(values)
        keep_msg = message_holds(store, owner, values)
        keep_question = pending is not None and ids[:1] == [int(pending)]
        message, new_owner = (gr.skip(), gr.skip()) if keep_msg else moved_on(store, owner, values)
        return (
            message,
            new_owner,
            gr.skip() if keep_question else gr.Row(visible=False),
            gr.skip() if keep_question else None,
        )

    v["chart_sig"].change(
        stale,
        inputs=[v["msg_owner"], v["pending_delete"], v["selected"]],
        outputs=[v["message"], v["msg_owner"], v["confirm_row"], v["pending_delete"]],
        **READ_ONLY,
    )


def _wire_actions(ctx: AppContext, v: dict[str, Any]) -> None:
    store, sel, msg, owner = ctx.store, v["selected"], v["message"], v["msg_owner"]
    _wire_messages(ctx, v)

    def cancel(values, request: gr.Request = None):
        ctx.guard.require(request)
        run = _current(store, values)
        after = _service(service.cancel, store, run.id)
        text = cancel_message(run.id, str(run.status), str(after))
        return text, owner_of(store, run.id)

    def resume(values, request: gr.Request = None):
        ctx.guard.require(request)
        run = _current(store, values)
        step = _service(service.resume, store, run.id)
        attempt = store.get_run(run.id).attempt
        return resume_message(run.id, attempt, step), owner_of(store, run.id)

    v["cancel"].click(cancel, inputs=[sel], outputs=[msg, owner], **PRIVATE)
    v["resume"].click(resume, inputs=[sel], outputs=[msg, owner], **PRIVATE)

    def duplicate(values, request: gr.Request = None):
        ctx.guard.require(request)
        run = _current(store, values)
        new_id = _service(service.duplicate, store, run.id, policy=ctx.policy)
        return new_id, f"Queued run #{new_id}, a copy of #{run.id}.", owner_of(store, new_id)

    v["duplicate"].click(
        duplicate, inputs=[sel], outputs=[ctx.focus_run, msg, owner], **PRIVATE
    ).success(
        lambda run_id: runs_picker(store, [queries.run_label(store.get_run(run_id))]),
        inputs=[ctx.focus_run],
        outputs=[sel],
        **READ_ONLY,
    )

    def inspect(values):
        run_id = _current(store, values).id
        return (run_id, None, None, None), gr.Tabs(selected=PageId.INSPECTOR), "", None

    ctx.inspector_openers.append(
        v["inspect"].click(
            inspect, inputs=[sel], outputs=[ctx.inspect_run, ctx.tabs, msg, owner], **PRIVATE
        )
    )

    def save(values, name, notes, request: gr.Request = None):
        ctx.guard.require(request)
        run = _current(store, values)
        _service(service.rename, store, run.id, name=name or "", notes=notes or "", policy=ctx.policy)  # fmt: skip
        return f"Saved name and notes of run #{run.id}.", owner_of(store, run.id)

    v["save"].click(save, inputs=[sel, v["name"], v["notes"]], outputs=[msg, owner], **PRIVATE)
    _wire_delete(ctx, v)
    _wire_export(ctx, v)


def _wire_delete(ctx: AppContext, v: dict[str, Any]) -> None:
    store, sel = ctx.store, v["selected"]

    def ask(values, request: gr.Request = None):
        """The question names the one run that "Yes" deletes (the first selected)."""
        ctx.guard.require(request)
        run = _current(store, values)
        _service(service.check_deletable, run)
        others = len(selected_ids(values)) - 1
        question = (
            f"Delete run #{run.id} ({run.name}, {run.status}), its steps, responses and "
            "checkpoints? This cannot be undone."
            + (
                f" Only run #{run.id} is deleted, not the {others} other selected."
                if others
                else ""
            )
        )
        return gr.Row(visible=True), question, run.id

    def really(run_id, request: gr.Request = None):
        """Delete the run the question named; the service re-checks its state as it deletes."""
        ctx.guard.require(request)
        if run_id is None:
            raise user_error("Nothing to delete: press Delete… again.")
        _service(service.delete, store, ctx.root, int(run_id))
        return gr.Row(visible=False), [], f"Deleted run #{run_id}.", None, owner_of(store, None)

    v["delete"].click(
        ask,
        inputs=[sel],
        outputs=[v["confirm_row"], v["confirm_text"], v["pending_delete"]],
        **PRIVATE,
    )
    v["keep"].click(
        lambda: (gr.Row(visible=False), None),
        outputs=[v["confirm_row"], v["pending_delete"]],
        **PRIVATE,
    )
    v["confirm"].click(
        really,
        inputs=[v["pending_delete"]],
        outputs=[v["confirm_row"], sel, v["message"], v["pending_delete"], v["msg_owner"]],
        **PRIVATE,
    )


def _wire_export(ctx: AppContext, v: dict[str, Any]) -> None:
    store, sel = ctx.store, v["selected"]

    def export_steps(values, request: gr.Request = None):
        ctx.guard.require(request)  # writes a file under the data root
        run = _current(store, values)
        path, _ = _service(service.export, store, ctx.root, run.id, "steps", "csv")
        return str(path)

    def export_samples(values, request: gr.Request = None):
        ctx.guard.require(request)  # writes a file under the data root
        run = _current(store, values)
        path, _ = _service(service.export, store, ctx.root, run.id, "samples", "jsonl")
        return str(path)

    v["export_steps"].click(export_steps, inputs=[sel], outputs=[v["export_file"]], **PRIVATE)
    v["export_samples"].click(export_samples, inputs=[sel], outputs=[v["export_file"]], **PRIVATE)
