"""Trace inspector: run -> step -> prompt group -> response.

Shows the prompt and the response with each response token shaded by the ΔER of the stride
segment containing it (token boundaries from the stored token ids, decoded one id at a time),
the ER curves of every response of the group overlaid (stride points as markers, the selected
response drawn thick), the response's ERV / ERA / reward / correctness / advantage before and
after shaping / bonus, and its token entropy and log-prob. Model text is always escaped.

Pickers use `.input` (user edits only), and each handler fills everything downstream of it, so
programmatic updates never cascade into repeated renders.
"""

from __future__ import annotations

import html
import logging
from typing import Any

import gradio as gr

from app import plots, queries
from app.pages import answer_audit
from app.pages.common import READ_ONLY, AppContext, PageId, UrlPart, on_show
from app.url_state import UrlState
from engine.data.audit import answer_label
from engine.storage import Store

log = logging.getLogger(__name__)

EMPTY = "No responses recorded yet: pick a run that has trained at least one step."
CSS = ".tok{border-radius:2px}"


def build(ctx: AppContext) -> None:
    gr.Markdown(
        "### Trace inspector\nTokens are shaded by the change of ER over their stride segment "
        "(blue: ER rose, the response opened new directions; orange: it fell)."
    )
    with gr.Row():
        run = gr.Dropdown(
            choices=queries.run_choices(ctx.store, kind="train"),
            value=None,
            label="Run",
            elem_id="insp-run",
            scale=3,
        )
        step = gr.Dropdown(choices=[], label="Step", elem_id="insp-step", scale=1)
        group = gr.Dropdown(choices=[], label="Prompt group", elem_id="insp-group", scale=1)
        response = gr.Dropdown(choices=[], label="Response", elem_id="insp-response", scale=2)
    stats = gr.Markdown(EMPTY, elem_id="insp-stats")
    text = gr.HTML("", elem_id="insp-text")
    with gr.Row():
        curve = gr.Plot(value=plots.empty_figure(EMPTY), show_label=False, elem_id="insp-curve")
        tokens = gr.Plot(value=plots.empty_figure(""), show_label=False, elem_id="insp-tokens")
    table = gr.Dataframe(
        label="All responses of the group",
        interactive=False,
        wrap=True,  # headers and cells wrap: "answer read" was cut to "answer re…"
        elem_id="insp-group-table",
    )
    pickers = [run, step, group, response]
    shown = [stats, text, curve, tokens, table]
    _wire(ctx, pickers, shown)
    answer_audit.build(
        ctx, run, [step, group, response, *shown], lambda *ids: open_response(ctx, *ids)
    )


# ----------------------------------------------------------------------------- handlers (plain)


def _choices_response(responses: list[queries.Response]) -> list[tuple[str, int]]:
    out = []
    for r in responses:
        mark = {True: "✓", False: "✗"}.get(r.stats.get("correct"), "?")
        reward = r.stats.get("reward")
        out.append(
            (f"#{r.sample_idx} {mark} reward {reward if reward is not None else '-'}", r.sample_idx)
        )
    return out


def _fmt(v: Any) -> str:
    if v is None:
        return "–"
    if isinstance(v, bool):  # as the group table below writes it
        return str(v).lower()
    return f"{v:.4g}" if isinstance(v, float) else html.escape(str(v))


def stats_markdown(r: queries.Response) -> str:
    """The summary above a response: its scalars, the answer read beside the gold (and, for a
    response cut at grpo.max_completion_length, that the answer came from an unfinished one)."""
    s = r.stats
    keys = ("reward", "correct", "advantage", "advantage_shaped", "bonus", "er", "erv", "era")
    head = " · ".join(f"**{k}** {_fmt(s.get(k))}" for k in keys)
    more = " · ".join(
        f"{k} {_fmt(s.get(k))}" for k in ("entropy", "mean_logprob", "length", "curve_stride")
    )
    rewards = ", ".join(f"{html.escape(str(k))}={_fmt(v)}" for k, v in s["rewards"].items())
    read = (
        f"**answer read** {_shown(answer_label(s.get('answer_read')))} · "
        f"**gold** {_shown(answer_label(s.get('gold_read')))} · **reward** {_fmt(s.get('reward'))}"
    )
    return f"{head}\n\n{read}{_truncation_note(s)}\n\n{more}" + (
        f"\n\nrewards: {rewards}" if rewards else ""
    )


def _truncation_note(stats: dict[str, Any]) -> str:
    """Said beside the answer read when the response hit max_completion_length without an end
    of sequence (`samples.truncated`): its answer is read from an unfinished response."""
    if not stats.get("truncated"):
        return ""
    n = stats.get("length")
    at = f" at {int(n)} tokens" if isinstance(n, int | float) else ""
    return (
        f" · ✂️ **truncated{at}**: the answer read is from an unfinished response "
        "(it hit grpo.max_completion_length)"
    )


def _shown(text: str, limit: int = 120) -> str:
    """Model text on one markdown line: escaped, cut at `limit` characters."""
    short = text if len(text) <= limit else text[: limit - 1] + "…"
    return html.escape(short.replace("\n", " "))


def render(
    ctx: AppContext, run_id: int | None, step: int | None, group: int | None, sample: int | None
) -> list:
    """(stats, token HTML, curve figure, token figure, group table) of one response."""
    run = ctx.store.get_run(run_id) if run_id is not None else None
    if run is None or step is None or group is None:
        return [EMPTY, "", plots.empty_figure(EMPTY), plots.empty_figure(""), None]
    responses = queries.group_responses(ctx.store, run.id, step, group)
    if not responses:
        return [EMPTY, "", plots.empty_figure(EMPTY), plots.empty_figure(""), None]
    chosen = next((r for r in responses if r.sample_idx == sample), responses[0])
    tokenizer = ctx.tokenizers.get((run.config.get("model") or {}).get("name_or_path", "embedded"))
    pieces = queries.token_pieces(tokenizer, chosen.token_ids, chosen.completion)
    deltas = queries.response_deltas(chosen, len(pieces))
    uirev = f"{run.id}:{step}:{group}"
    return [
        stats_markdown(chosen),
        plots.token_html(chosen.prompt, pieces, deltas),
        plots.rank_curves_figure(queries.curve_traces(responses, chosen.sample_idx), uirev),
        plots.token_series_figure(chosen.token_entropy, chosen.token_logprob, uirev + ":tok"),
        queries.stats_table(responses),
    ]


def pick(
    ctx: AppContext, run_id: int | None, step: int | None = None, group: int | None = None
) -> list:
    """Fill the pickers below whichever one changed (latest step, first group, first response)."""
    store = ctx.store
    steps = queries.inspector_steps(store, run_id) if run_id is not None else []
    if step not in steps:
        step = steps[-1] if steps else None
    groups = queries.step_groups(store, run_id, step) if step is not None else []
    if group not in groups:
        group = groups[0] if groups else None
    responses = queries.group_responses(store, run_id, step, group) if group is not None else []
    sample = responses[0].sample_idx if responses else None
    return [
        gr.Dropdown(choices=steps, value=step),
        gr.Dropdown(choices=[(f"group {g}", g) for g in groups], value=group),
        gr.Dropdown(choices=_choices_response(responses), value=sample),
        *render(ctx, run_id, step, group, sample),
    ]


def place(ctx: AppContext, state: UrlState, reset: bool = True) -> list:
    """(run picker, step, group, response, *views) showing a link's response. What the link
    names but the store lacks falls back as a pick would (latest step, first group, first
    response); a run that does not exist is named in the stats line. A link naming no run
    only refreshes the run picker's choices unless `reset`."""
    store = ctx.store
    if state.run is None and not reset:
        return [gr.Dropdown(choices=queries.run_choices(store, kind="train"))] + [gr.skip()] * 8
    run = store.get_run(state.run) if state.run is not None else None
    picker = gr.Dropdown(**run_picker(store, queries.run_label(run) if run else None))
    if run is None or run.kind != "train":
        filled = pick(ctx, None)
        if state.run is not None:
            filled[3] = f"The link names run #{state.run}, which has no recorded responses. {EMPTY}"
        return [picker, *filled]
    if state.step is None or state.group is None or state.response is None:
        return [picker, *pick(ctx, run.id, state.step, state.group)]
    return [picker, *open_response(ctx, run.id, state.step, state.group, state.response)]


def open_response(ctx: AppContext, run_id: int | None, step: int, group: int, sample: int) -> list:
    """Fill the pickers below the run and the views for one response (the audit's click)."""
    filled = pick(ctx, run_id, step, group)
    responses = queries.group_responses(ctx.store, run_id, step, group) if run_id else []
    if not any(r.sample_idx == sample for r in responses):
        return filled
    return [
        *filled[:2],
        gr.Dropdown(choices=_choices_response(responses), value=sample),
        *render(ctx, run_id, step, group, sample),
    ]


# ----------------------------------------------------------------------------- wiring


def _wire(ctx: AppContext, pickers: list, shown: list) -> None:
    run, step, group, response = pickers
    store = ctx.store

    def on_run(choice):
        return pick(ctx, queries.choice_id(choice))

    def on_step(choice, s):
        return pick(ctx, queries.choice_id(choice), s)

    def on_group(choice, s, g):
        return pick(ctx, queries.choice_id(choice), s, g)

    def on_response(choice, s, g, r):
        return render(ctx, queries.choice_id(choice), s, g, r)

    below = [step, group, response, *shown]
    picks = [
        run.input(on_run, inputs=[run], outputs=below, **READ_ONLY),
        step.input(on_step, inputs=[run, step], outputs=below, **READ_ONLY),
        group.input(on_group, inputs=[run, step, group], outputs=below, **READ_ONLY),
        response.input(on_response, inputs=pickers, outputs=shown, **READ_ONLY),
    ]

    def open_run(target):  # a run, or one of its responses (step, group, response)
        run_id, step, group, sample = target or (None, None, None, None)
        return place(ctx, UrlState(run=run_id, step=step, group=group, response=sample))

    for opener in ctx.inspector_openers:
        picks.append(
            opener.success(open_run, inputs=[ctx.inspect_run], outputs=[run, *below], **READ_ONLY)
        )
    _wire_url(ctx, pickers, shown, picks)

    def refresh_runs(current):
        """The picker's runs as the store has them now (runs created after the server
        started too), the current pick kept while its run exists."""
        picker = run_picker(store, current)
        if picker["value"] == current:  # only the choices: a pick made meanwhile stays
            return gr.Dropdown(choices=picker["choices"])
        return gr.Dropdown(**picker)  # its run was renamed or deleted

    on_show(refresh_runs, [run], [run], on_load=False)  # opening the tab (the URL: page load)
    run.focus(refresh_runs, inputs=[run], outputs=[run], **READ_ONLY)  # opening the list


def _wire_url(ctx: AppContext, pickers: list, shown: list, picks: list) -> None:
    """The URL keeps the response on screen (app.url_state); each pick writes it."""

    def read(run_value, step, group, sample) -> dict:
        return {"run": queries.choice_id(run_value), "step": step, "group": group, "response": sample}  # fmt: skip

    ctx.url_parts.append(
        UrlPart(
            inputs=pickers,
            read=read,
            outputs=[*pickers, *shown],
            restore=lambda state, reset: place(ctx, state, reset),
        )
    )
    ctx.url_events += [(done.success, PageId.INSPECTOR) for done in picks]


def run_picker(store: Store, current: str | None) -> dict:
    """{choices, value} of the run picker: every training run, newest first, with `current`
    kept (by run id, so a renamed run stays picked) or None when it is gone."""
    choices = queries.run_choices(store, kind="train")
    wanted = queries.choice_id(current)
    value = next((c for c in choices if queries.choice_id(c) == wanted), None)
    return {"choices": choices, "value": value}
