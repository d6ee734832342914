"""Playground: pick a model, stream an answer and watch its rank curve grow; or paste a prompt and
a response (a trace from any model) for its teacher-forced curve, ER/ERV/ERA and token proxies.

One model is kept loaded per app (`engine.studio.playground.Playground`, built in `build`, not at module
level); generation runs with `concurrency_limit=1` and 1 torch thread.
"""

from __future__ import annotations

import logging
from typing import Any

import gradio as gr

from app.analysis_plots import rank_curve_figure, token_proxy_figure
from app.pages.common import READ_ONLY, AppContext, as_text, on_show
from app.queries import run_label
from engine.config import EMBEDDED_MODEL, ConfigError
from engine.data.tasks import PROMPT_FORMAT, heldout_problems
from engine.runs.admission import check_model, one_line
from engine.storage import RunKind, Store
from engine.studio.playground import (
    Analysis,
    Playground,
    RankSettings,
    check_inputs,
    checked_settings,
    input_help,
)

log = logging.getLogger(__name__)

# generate and analyse share one queue of one: a single kept-loaded model serves both
GENERATE: dict = {
    "api_visibility": "private",
    "concurrency_limit": 1,
    "concurrency_id": "playground",
}


def model_choices(store: Store) -> dict[str, str]:
    """Picker label -> what `load_policy` takes: the embedded model and every run checkpoint."""
    out = {EMBEDDED_MODEL: EMBEDDED_MODEL}
    for run in store.list_runs(kind=RunKind.TRAIN):
        for ckpt in store.checkpoints(run.id):
            out[f"{run_label(run)} · step {ckpt['step']}"] = str(ckpt["path"])
    return out


def resolve_model(store: Store, value: str | None) -> str:
    """A picker value to a model: a known label, else a local path or hub id as typed."""
    value = (value or EMBEDDED_MODEL).strip()
    return model_choices(store).get(value, value)


def prompt_format(store, value: str | None) -> str | None:
    """The plain-prompt format a picked model was trained on, or None when unknown (a hub or
    local model: a chat model then wants its chat template, a base model plain text)."""
    value = (value or EMBEDDED_MODEL).strip()
    if value == EMBEDDED_MODEL:
        return PROMPT_FORMAT
    for run in store.list_runs(kind=RunKind.TRAIN):
        if value.startswith(run_label(run) + " · step "):
            data, model = run.config.get("data") or {}, run.config.get("model") or {}
            if data.get("task") == "arithmetic" and model.get("name_or_path") == EMBEDDED_MODEL:
                return PROMPT_FORMAT
    return None


def format_hint(store, value: str | None, prompt: str, chat: bool) -> str:
    """One line under the prompt: the format the model expects, and a warning when the prompt
    is not in it (the embedded model answers "Q: …=?" without the "A:" line with dots)."""
    fmt = prompt_format(store, value)
    if fmt is None:
        return (
            "Prompt format: a chat model wants **chat template** ticked and the question as the "
            "message; a base model continues the text as typed."
        )
    shown = fmt.replace("{question}", "<problem>").replace("\n", " ⏎ ")
    hint = f"Prompt format for this model: `{shown}` (the answer follows the last `A:`)."
    if not chat and prompt.strip() and not prompt.rstrip().endswith("A:"):
        hint += " ⚠️ This prompt does not end with the `A:` line: the model has nothing to answer."
    return hint


def analysis_markdown(a: Analysis) -> str:
    return (
        f"**ER** {a.er:.4f} · **ERV** {a.erv:.4f} · **ERA** {a.era:.4f} · "
        f"**token entropy** {a.entropy:.4f} · **mean log-prob** {a.mean_logprob:.4f} · "
        f"**tokens** {a.length} · **curve points** {len(a.curve)}"
    )


def stream_outputs(pg: Playground, text: str, chat: bool, gen, rank):
    """(response, stats, curve figure, proxies figure) per streamed token; a figure is sent only
    when it changed (`gr.skip()` otherwise), the last update carries the full analysis."""
    shown = -1
    for up in pg.stream(text, chat=chat, gen=gen, rank=rank):
        grew, shown = len(up.curve) != shown, len(up.curve)
        if up.done:
            a = up.analysis
            yield (
                up.text,
                analysis_markdown(a),
                rank_curve_figure(a.positions, a.curve, "ER of each prefix"),
                token_proxy_figure(a.token_entropy, a.token_logprob),
            )
        else:
            stats = f"generating… tokens {len(up.token_ids)} · curve points {len(up.curve)}"
            fig = rank_curve_figure(up.positions, up.curve, "ER of each prefix (streaming)")
            yield up.text, stats, fig if grew else gr.skip(), gr.skip()


def problem_text(action: str, problem: Exception | str) -> str:
    """The one line shown in place of a result ("**Cannot analyse:** the prompt is empty")."""
    text = " ".join(str(problem).split()) or "the request was refused"
    return f"**Cannot {action}:** {as_text(text[:1000])}"


INTRO = (
    "### Playground\nGenerate with a model (the embedded one or any run's checkpoint) and watch "
    "its rank curve grow token by token, or paste a prompt and a response to analyse its "
    "teacher-forced curve, ER / ERV / ERA and token proxies."
)


def generation_inputs(ctx: AppContext, n_new, temp, top_p, seed, stride, greedy):
    """(GenerationSettings, RankSettings) of the Generate inputs as the page sent them, each
    checked by its run-config field's rule (`checked_settings`) and max new tokens by this
    server's ceiling; ValueError of one line naming each bad input and its fix."""
    try:
        given = dict(max_new_tokens=n_new, temperature=temp, top_p=top_p, seed=seed)
        gen, rank = checked_settings(**given, stride=stride, greedy=bool(greedy))
    except ConfigError as exc:
        raise ValueError(one_line(exc)) from None
    ceiling = ctx.policy.limits.max_completion_length
    if not ctx.policy.trusted and gen.max_new_tokens > ceiling:
        raise ValueError(
            f"max new tokens: {gen.max_new_tokens} is over this server's limit; "
            f"use at most {ceiling}"
        )
    return gen, rank


def stride_input(stride) -> int:
    """The stride of Analyse, checked as Generate's (shaping.stride's rule); ValueError else."""
    try:
        check_inputs({"stride s": stride})
    except ConfigError as exc:
        raise ValueError(one_line(exc)) from None
    return int(stride)


def build(ctx: AppContext) -> None:
    pg = Playground()  # this app's one kept-loaded model
    gr.Markdown(INTRO, elem_id="pg-intro")
    with gr.Row():
        model = gr.Dropdown(
            label="model (or type a local path / hub id)",
            choices=[EMBEDDED_MODEL],
            value=EMBEDDED_MODEL,
            allow_custom_value=True,
            elem_id="pg-model",
            scale=3,
        )
        chat = gr.Checkbox(label="chat template", value=False, elem_id="pg-chat")
        stride = gr.Number(4, label="stride s", info=input_help("stride s"), precision=0, elem_id="pg-stride")  # fmt: skip
    example = heldout_problems(1)[0].prompt  # already in the embedded model's format
    hint = gr.Markdown(format_hint(ctx.store, EMBEDDED_MODEL, example, False), elem_id="pg-format")
    with gr.Tab("Generate"):
        prompt = gr.Textbox(label="prompt", value=example, lines=3, elem_id="pg-prompt")
        with gr.Row():
            # no `minimum=`: Gradio's own refusal names no field; `checked_settings` does
            max_new = gr.Number(64, label="max new tokens", info=input_help("max new tokens"), precision=0, elem_id="pg-max-new")  # fmt: skip
            temperature = gr.Number(1.0, label="temperature", info=input_help("temperature"), elem_id="pg-temp")  # fmt: skip
            top_p = gr.Number(1.0, label="top p", info=input_help("top p"), elem_id="pg-top-p")
            seed = gr.Number(0, label="seed", info=input_help("seed"), precision=0, elem_id="pg-seed")  # fmt: skip
            greedy = gr.Checkbox(label="greedy", value=False, elem_id="pg-greedy")
        gen_btn = gr.Button("Generate", variant="primary", elem_id="pg-generate")
        response = gr.Textbox(label="response", lines=6, interactive=False, elem_id="pg-response")
        gen_stats = gr.Markdown(elem_id="pg-stats")
        gen_curve = gr.Plot(elem_id="pg-curve")
        gen_proxies = gr.Plot(elem_id="pg-proxies")
    with gr.Tab("Analyse a trace"):
        a_prompt = gr.Textbox(label="prompt", value=example, lines=3, elem_id="pg-a-prompt")
        a_response = gr.Textbox(label="response", lines=6, elem_id="pg-a-response")
        a_btn = gr.Button("Analyse", variant="primary", elem_id="pg-analyse")
        a_stats = gr.Markdown(elem_id="pg-a-stats")
        a_curve = gr.Plot(elem_id="pg-a-curve")
        a_proxies = gr.Plot(elem_id="pg-a-proxies")

    view = dict(
        model=model, chat=chat, stride=stride, hint=hint, prompt=prompt, max_new=max_new,
        temperature=temperature, top_p=top_p, seed=seed, greedy=greedy, gen_btn=gen_btn, response=response,
        gen_stats=gen_stats, gen_curve=gen_curve, gen_proxies=gen_proxies, a_prompt=a_prompt,
        a_response=a_response, a_btn=a_btn, a_stats=a_stats, a_curve=a_curve,
        a_proxies=a_proxies,
    )  # fmt: skip
    _wire(ctx, pg, view)


def _wire(ctx: AppContext, pg: Playground, v: dict[str, Any]) -> None:
    """Generate (streamed), Analyse, and the model list refreshed when the page opens."""
    store = ctx.store

    def load(value):
        """Load the chosen model; ValueError with one line when it cannot be."""
        try:  # a typed name passes the same check as a run's model (no server paths)
            source = check_model(resolve_model(store, value), ctx.policy, "model")
            pg.load(source)
        except ConfigError as exc:
            raise ValueError(one_line(exc)) from None
        except Exception as exc:  # an offline hub id, a broken folder: one line on the page
            log.warning("playground: cannot load %s", value, exc_info=True)
            raise ValueError(f"cannot load the model: {exc}") from None

    def generate(value, text, use_chat, s, n_new, temp, p, sd, use_greedy):
        """Streams (response, stats, curve, proxies); a problem is said in the stats box, which
        the next result replaces (a toast outlived the success that followed it)."""
        try:
            gen, rank = generation_inputs(ctx, n_new, temp, p, sd, s, use_greedy)
            load(value)
            yield from stream_outputs(pg, text, bool(use_chat), gen, rank)
        except ValueError as exc:  # an empty prompt, a tokenizer without chat template
            yield "", problem_text("generate", exc), None, None

    def analyse(value, text, resp, use_chat, s):
        try:
            rank = RankSettings(stride=stride_input(s))
            load(value)
            a = pg.analyze(text, resp, chat=use_chat, rank=rank)
        except ValueError as exc:
            return problem_text("analyse", exc), None, None
        return (
            analysis_markdown(a),
            rank_curve_figure(a.positions, a.curve, "ER of each prefix (teacher-forced)"),
            token_proxy_figure(a.token_entropy, a.token_logprob),
        )

    def choices():
        return gr.update(choices=list(model_choices(store)))

    on_show(choices, None, v["model"])
    gr.on(
        [v["model"].change, v["prompt"].change, v["chat"].change],
        lambda value, text, use_chat: format_hint(store, value, text, bool(use_chat)),
        [v["model"], v["prompt"], v["chat"]],
        v["hint"],
        trigger_mode="always_last",
        **READ_ONLY,
    )
    inputs = [
        v[k] for k in ("model", "prompt", "chat", "stride", "max_new", "temperature", "top_p")
    ]
    v["gen_btn"].click(
        generate,
        [*inputs, v["seed"], v["greedy"]],
        [v["response"], v["gen_stats"], v["gen_curve"], v["gen_proxies"]],
        **GENERATE,
    )
    v["a_btn"].click(
        analyse,
        [v[k] for k in ("model", "a_prompt", "a_response", "chat", "stride")],
        [v["a_stats"], v["a_curve"], v["a_proxies"]],
        **GENERATE,
    )
