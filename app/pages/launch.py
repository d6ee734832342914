"""Launch page: a form built from the run config's fields, a recipe picker, duplicate-from-run.

Launch first reviews the form (`form_problems`: the config's own checks and the server's
submit-time check together, `engine.runs.admission.review_submission`, so one press names every
problem): every (field, message) is written into its field (the field's info line, marked
`field-error`), one line per bad field goes to the summary beside the Launch button, and each
section holding a bad field is opened. Every review rewrites every field, so a message never
outlives its cause; loading a recipe or a run keeps only the messages still true. Only then
does the launch event run; its `validator=` refuses it (an HTTP 422, nothing queued) while the
review found anything wrong, and its submit checks again. A clean review holds the button until
the launch has answered (a press in between queued a second run); reviews are limited to
`REVIEWS_AT_ONCE` across visitors. The messages are ordinary component updates
returned by the review, not Gradio's validation status: that status is kept per component in
the browser, and once a launch had switched to the monitor, the Runs page's timer rewrote it
and the messages of later invalid launches vanished.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import gradio as gr
import yaml

from app import queries, spaces
from app.pages.common import (
    PRIVATE,
    READ_ONLY,
    AppContext,
    PageId,
    as_text,
    elem_id,
    user_error,
)
from engine.config import EMBEDDED_MODEL, ConfigError, DataConfig, StudioConfig, field_specs
from engine.data.files import DatasetLoadError
from engine.data.tasks import PROMPT_FORMAT
from engine.data.uploads import (
    UploadError,
    gold_checks,
    guess_fields,
    preview,
    safe_name,
    store_upload,
)
from engine.resources import recipe_names, recipe_path
from engine.runs.admission import AccessPolicy, review_submission

log = logging.getLogger(__name__)

DEMO_RECIPE = "demo-cpu"
OPEN_SECTIONS = ("run", "shaping")
FIELDS_PER_ROW = 3
SECTION_TITLES = {
    "run": "Run: algorithm, steps, seed, evaluation, checkpoints",
    "shaping": "VERL shaping (grpo runs only record ER/ERV/ERA at this stride)",
    "grpo": "GRPO settings (TRL)",
    "data": "Task / dataset and reward",
    "model": "Model",
    "health": "GRPO health flags: thresholds, and which flag stops the run",
}
# The review reads up to 3 dataset files' heads (task, eval task, and a whole file when every
# peeked answer is empty): at most REVIEWS_AT_ONCE run at once across all visitors (the rest
# wait in Gradio's queue), and a click while this tab's review is pending is dropped
# ("once"; "always_last" would run it afterwards and, through `.then`, launch a second run).
REVIEWS_AT_ONCE = 2
REVIEW_EVENT: dict[str, Any] = {
    **READ_ONLY,
    "concurrency_limit": REVIEWS_AT_ONCE,
    "concurrency_id": "launch-review",
    "trigger_mode": "once",
}
# A bad field's mark, the same on every kind of field (number, text, dropdown, checkbox): a
# red frame drawn inside the field's block (an outline was drawn outside it, where the row's
# overflow clipped it to a thin bar, or to nothing for the first field of a row) and its
# message in red in place of the grey help text.
ERROR_RED = "#b00020"
CSS = (
    f" .field-error{{box-shadow:inset 0 0 0 2px {ERROR_RED} !important;border-radius:6px}}"
    f" .field-error .info-text{{color:{ERROR_RED} !important;font-weight:600}}"
    f" #launch-problems{{color:{ERROR_RED}}}"
)


# ----------------------------------------------------------------------------- form <-> config


def _component(spec: dict, default: Any) -> gr.components.Component:
    common = dict(
        label=spec["path"].split(".", 1)[1], info=spec["help"], elem_id=elem_id(spec["path"])
    )
    kind = spec["type"]
    if spec["choices"]:
        return gr.Dropdown(choices=list(spec["choices"]), value=default, **common)
    if kind == "bool":
        return gr.Checkbox(value=default, **common)
    if kind == "int":  # no rounding: 2.5 steps is refused by name, never silently made 2
        return gr.Number(value=default, **common)
    if kind == "float":
        return gr.Number(value=default, **common)
    if kind.startswith("list"):
        return gr.Textbox(value=default, **common)
    return gr.Textbox(value=default, **common)


def _list_text(value: list) -> str:
    return yaml.safe_dump(list(value), default_flow_style=True).strip()


def form_to_dict(specs: list[dict], values: list[Any]) -> tuple[dict, list[tuple[str, str]]]:
    """Form values -> a nested config dict, plus the fields whose text did not parse."""
    data: dict[str, dict] = {}
    errors = []
    for spec, value in zip(specs, values, strict=True):
        section, name = spec["path"].split(".", 1)
        if spec["type"].startswith("list"):
            try:
                value = yaml.safe_load(value or "[]")
            except yaml.YAMLError:
                errors.append((spec["path"], "must be a list like [a, b]"))
                continue
        if value is None and spec["type"] in ("int", "float") and not spec["optional"]:
            errors.append((spec["path"], empty_number(spec)))
            continue
        if spec["type"] == "int" and isinstance(value, float) and value.is_integer():
            value = int(value)
        data.setdefault(section, {})[name] = value
    return data, errors


def empty_number(spec: dict) -> str:
    """The message of a number box that sent nothing: it was emptied, or it held a number the
    browser cannot send (past ±1.8e308, such as 1e400: JSON has no infinity, so it arrives
    empty and the box is cleared), which "must not be empty" would hide."""
    kind = "a whole number" if spec["type"] == "int" else "a number"
    return f"is empty: type {kind} (one past ±1.8e308, such as 1e400, arrives empty)"


def check_form(specs: list[dict], values: list[Any]) -> tuple[StudioConfig | None, dict[str, str]]:
    """The config, or every problem as {field path: message} (paths outside the form -> '')."""
    data, parse_errors = form_to_dict(specs, values)
    errors = list(parse_errors)
    cfg = None
    try:
        cfg = StudioConfig.from_dict(data)
    except ConfigError as exc:
        errors += exc.errors
    by_field = _by_field(errors)
    return (cfg if not by_field else None), by_field


def _by_field(errors: list[tuple[str, str]]) -> dict[str, str]:
    """(field path, message) pairs -> {field path: messages joined}; a path that extends a
    form field (`data.extra_rewards[0]`, `run.name (characters)`) goes to that field, any other
    to ''."""
    paths = {s["path"] for s in field_specs()}
    by_field: dict[str, str] = {}
    for path, msg in errors:
        key = next((p for p in paths if path == p or path.startswith((p + "[", p + " "))), "")
        by_field[key] = f"{by_field[key]}; {msg}" if key in by_field else msg
    return by_field


def form_problems(
    specs: list[dict], values: list[Any], policy: AccessPolicy
) -> tuple[StudioConfig | None, dict[str, str]]:
    """What Launch would refuse, all of it at once: the config's own checks and what this
    server admits (`review_submission`: the submit-time check the launch handler, the API and
    the CLI run, here on every field whose value is well-formed even while others are not).

    Returns (the config, {}) or (None, {field path: message}); '' holds problems that belong
    to no form field."""
    data, parse_errors = form_to_dict(specs, values)
    cfg, errors = review_submission(data, policy)
    problems = _by_field(parse_errors + errors)
    return (cfg if not problems else None), problems


def problem_summary(problems: dict[str, str]) -> str:
    """Markdown for the summary beside Launch: one line per bad field (the field and its fix).

    >>> print(problem_summary({"shaping.kappa": "must be at least 1", "": "no GPU"}))
    **Not launched.** Fix:
    - no GPU
    - `shaping.kappa`: must be at least 1
    """
    if not problems:
        return ""
    lines = [f"- `{path}`: {as_text(msg)}" if path else f"- {as_text(msg)}" for path, msg in
             sorted(problems.items())]  # fmt: skip
    return "\n".join(["**Not launched.** Fix:", *lines])


def field_paths(specs: list[dict]) -> list[str]:
    return [s["path"] for s in specs]


def field_updates(specs: list[dict], problems: dict[str, str]) -> list[dict]:
    """One update per field: its message and the error mark, or its help text back."""
    return [
        gr.update(info=f"⚠ {problems[s['path']]}", elem_classes=["field-error"])
        if s["path"] in problems
        else gr.update(info=s["help"], elem_classes=[])
        for s in specs
    ]


def config_to_values(specs: list[dict], config: dict) -> list[Any]:
    """A config dict (a recipe, a run's config) -> one value per form field (defaults fill gaps)."""
    out = []
    for spec in specs:
        section, name = spec["path"].split(".", 1)
        value = (config.get(section) or {}).get(name, spec["default"])
        out.append(_list_text(value) if spec["type"].startswith("list") else value)
    return out


def initial_config() -> dict:
    """The demo recipe when it ships, else the defaults: what the form shows on first open."""
    try:
        return StudioConfig.load(recipe_path(DEMO_RECIPE)).to_dict()
    except ConfigError:
        return StudioConfig().to_dict()


# ----------------------------------------------------------------------------- layout


def _layout_form(
    specs: list[dict], initial: list[Any]
) -> tuple[list[gr.components.Component], dict[str, gr.Accordion]]:
    values = {spec["path"]: v for spec, v in zip(specs, initial, strict=True)}
    sections = dict.fromkeys(s["path"].split(".", 1)[0] for s in specs)
    order = [s for s in OPEN_SECTIONS if s in sections] + [
        s for s in sections if s not in OPEN_SECTIONS
    ]
    by_path, accordions = {}, {}
    for section in order:
        section_specs = [s for s in specs if s["path"].startswith(section + ".")]
        title = SECTION_TITLES.get(section, section)
        with gr.Accordion(title, open=section in OPEN_SECTIONS) as accordions[section]:
            for i in range(0, len(section_specs), FIELDS_PER_ROW):
                with gr.Row():
                    for spec in section_specs[i : i + FIELDS_PER_ROW]:
                        by_path[spec["path"]] = _component(spec, values[spec["path"]])
    return [by_path[spec["path"]] for spec in specs], accordions


@dataclass
class LaunchForm:
    """The launch page's components, made by `build` and wired by `_wire_*`."""

    specs: list[dict]  # engine.config.field_specs(), one per field
    fields: list[gr.components.Component]  # one per spec, in the same order
    sections: dict[str, gr.Accordion]  # config section -> the accordion holding its fields
    parent: gr.State  # the run whose config was loaded (the new run's parent), or None
    status: gr.Markdown
    demo: gr.Button
    recipe: gr.Dropdown
    load_recipe: gr.Button
    source_run: gr.Dropdown
    load_run: gr.Button
    launch: gr.Button
    problems: gr.Markdown  # the summary beside Launch: one line per bad field
    reviewed: gr.State  # {field path: (its message, its value when reviewed)} of the last review
    upload: Upload  # the dataset upload above the form


@dataclass
class Upload:
    """The dataset upload: the file, its columns as field choices, a preview, the verdict."""

    file: gr.File
    stored: gr.State  # the stored file's name in the uploads folder, or None
    question: gr.Dropdown
    answer: gr.Dropdown
    rows: gr.Dataframe
    verdict: gr.Markdown


def _layout_upload() -> Upload:
    title = "Upload a dataset file (JSONL / CSV / Parquet)"
    with gr.Accordion(title, open=False, elem_id="upload-section"):
        with gr.Row():
            file = gr.File(
                label="Dataset file",
                file_types=[".jsonl", ".json", ".csv", ".parquet"],
                type="filepath",
                elem_id="upload-file",
                scale=2,
            )
            with gr.Column(scale=1):
                question = gr.Dropdown(
                    choices=[], label="question field", elem_id="upload-question"
                )
                answer = gr.Dropdown(choices=[], label="answer field", elem_id="upload-answer")
        rows = gr.Dataframe(  # hidden until a file is previewed: never placeholder headers
            label="First rows", interactive=False, visible=False, elem_id="upload-rows"
        )
        verdict = gr.Markdown("", elem_id="upload-verdict")
    return Upload(file, gr.State(None), question, answer, rows, verdict)


def build(ctx: AppContext) -> None:
    specs = field_specs()
    gr.Markdown(
        "### Launch a run\nStart from a recipe or an earlier run, adjust any field, then launch. "
        "New here? **Run the demo** trains the shipped tiny model on arithmetic (CPU, minutes)."
    )
    with gr.Row():
        demo_btn = gr.Button("Run the demo", variant="primary", elem_id="run-demo", scale=1)
        recipe = gr.Dropdown(
            choices=recipe_names(),
            value=DEMO_RECIPE if DEMO_RECIPE in recipe_names() else None,
            label="Recipe",
            elem_id="recipe-picker",
            scale=2,
        )
        load_recipe_btn = gr.Button("Load recipe", scale=1)
        source_run = gr.Dropdown(
            choices=queries.run_choices(ctx.store, kind=None),
            label="Duplicate from run",
            elem_id="duplicate-from",
            scale=2,
        )
        load_run_btn = gr.Button("Load run's config", scale=1)
    parent = gr.State(None)
    upload = _layout_upload()
    fields, sections = _layout_form(specs, config_to_values(specs, initial_config()))
    with gr.Row(equal_height=False):  # the summary grows downwards, the button keeps its size
        launch_btn = gr.Button("Launch", variant="primary", elem_id="launch-btn", scale=1)
        problems = gr.Markdown("", elem_id="launch-problems")
    form = LaunchForm(
        specs=specs,
        fields=fields,
        sections=sections,
        parent=parent,
        status=gr.Markdown("", elem_id="launch-status"),
        demo=demo_btn,
        recipe=recipe,
        load_recipe=load_recipe_btn,
        source_run=source_run,
        load_run=load_run_btn,
        launch=launch_btn,
        problems=problems,
        reviewed=gr.State({}),
        upload=upload,
    )
    _wire_upload(ctx, form)
    _wire_launch(ctx, form)
    _wire_recheck(form)
    _wire_loaders(ctx, form)


# ----------------------------------------------------------------------------- wiring


def _wire_review(ctx: AppContext, form: LaunchForm) -> Any:
    """Launch's first step: every field's message, the summary, the bad fields' sections open."""
    specs, sections = form.specs, list(form.sections)

    def review(*values):
        _, problems = form_problems(specs, list(values), ctx.policy)
        bad = {path.split(".", 1)[0] for path in problems if path}
        opened = [gr.Accordion(open=True) if s in bad else gr.skip() for s in sections]
        status = "" if problems else gr.skip()
        value_of = dict(zip(field_paths(specs), values, strict=True))
        reviewed = {path: (msg, value_of.get(path)) for path, msg in problems.items()}
        summary = problem_summary(problems)
        held = gr.Button(interactive=bool(problems))  # held until the launch has answered
        return [*field_updates(specs, problems), *opened, summary, status, reviewed, held]

    return form.launch.click(
        review,
        inputs=form.fields,
        outputs=[
            *form.fields,
            *form.sections.values(),
            form.problems,
            form.status,
            form.reviewed,
            form.launch,
        ],
        **REVIEW_EVENT,
    )


def still_wrong(
    specs: list[dict], values: list[Any], reviewed: dict[str, tuple[str, Any]]
) -> dict[str, tuple[str, Any]]:
    """The last review's problems that still hold: a field whose value changed since is checked
    again by the config's own checks (cheap, no files read); an unchanged one keeps its message.

    >>> from engine.config import field_specs
    >>> specs = field_specs()
    >>> values = config_to_values(specs, StudioConfig().to_dict())
    >>> kappa, task = (field_paths(specs).index(p) for p in ("shaping.kappa", "data.task"))
    >>> old = {"shaping.kappa": ("must be >= 1", 0), "data.task": ("not found", values[task])}
    >>> values[kappa] = 2
    >>> sorted(still_wrong(specs, values, old))
    ['data.task']
    >>> values[kappa] = 0.5
    >>> still_wrong(specs, values, old)["shaping.kappa"][1]
    0.5
    """
    value_of = dict(zip(field_paths(specs), values, strict=True))
    changed = {p for p, (_, then) in reviewed.items() if p and value_of.get(p) != then}
    if not changed:
        return reviewed
    _, now = check_form(specs, values)
    kept = {p: problem for p, problem in reviewed.items() if p not in changed}
    kept.update({p: (now[p], value_of[p]) for p in changed if p in now})
    return kept


def _wire_recheck(form: LaunchForm) -> None:
    """A field's message goes when the user fixes its value, and its line leaves the summary;
    fields still wrong keep theirs. New problems wait for Launch. On user edits, and once an
    upload has filled the dataset fields; not on every programmatic fill (the upload's pickers
    raced a hand edit made meanwhile; a recipe or a run re-checks in its loader)."""
    specs = form.specs

    def recheck(*values):
        reviewed = values[-1] or {}
        kept = still_wrong(specs, list(values[:-1]), reviewed)
        if kept == reviewed:
            return [gr.skip() for _ in specs] + [gr.skip(), gr.skip()]
        problems = {p: msg for p, (msg, _) in kept.items()}
        touched = set(reviewed) | set(kept)
        updates = field_updates(specs, problems)
        fields = [
            u if s["path"] in touched else gr.skip() for s, u in zip(specs, updates, strict=True)
        ]
        return [*fields, problem_summary(problems), kept]

    gr.on(  # an upload fills data.task / question / answer: its stored name changes after
        [f.input for f in form.fields] + [form.upload.stored.change],
        recheck,
        inputs=[*form.fields, form.reviewed],
        outputs=[*form.fields, form.problems, form.reviewed],
        trigger_mode="always_last",
        **READ_ONLY,
    )


def _wire_launch(ctx: AppContext, form: LaunchForm) -> None:
    """Launch (reviewed field by field first) and Run the demo; both open the monitor."""
    store, specs, status = ctx.store, form.specs, form.status

    n = len(specs)

    def validator(*values):
        """Keeps the run from queueing while the review (run just before, on these values)
        found a problem; the review showed why. Its verdict is the session's `reviewed` state,
        so a press reads the dataset files once here, not twice; called without it, the
        validator reviews the values itself. The launch's submit checks again either way."""
        reviewed = values[n + 1] if len(values) > n + 1 else None
        if reviewed is None:
            _, reviewed = form_problems(specs, list(values[:n]), ctx.policy)
        return [*(gr.validate(True, "") for _ in values[:-1]), gr.validate(not reviewed, "")]

    def launch(request: gr.Request, *values):  # Gradio passes a Request only before *args
        ctx.guard.require(request)
        cfg, errors = check_form(specs, list(values[:n]))
        if cfg is None:  # the validator stops this first; an API caller may not
            raise user_error(ConfigError(list(errors.items())))
        parent = values[n] if len(values) > n else None
        parent_id = parent if store.get_run(parent or -1) else None
        run_id = _submit(cfg, parent_id, request)
        return run_id, gr.Tabs(selected=PageId.MONITOR), f"Queued run #{run_id}.", None

    def _submit(
        cfg: StudioConfig, parent_id: int | None = None, request=None, demo: bool = False
    ) -> int:
        try:
            return spaces.submit(
                ctx, request, cfg, demo=demo, parent_id=parent_id, origin="the dashboard"
            )
        except ConfigError as exc:
            raise user_error(exc) from None

    launched = _wire_review(ctx, form).then(
        launch,
        inputs=[*form.fields, form.parent, form.reviewed],
        outputs=[ctx.focus_run, ctx.tabs, status, form.parent],
        validator=validator,
        **PRIVATE,
    )

    def run_demo(request: gr.Request = None):
        if not spaces.try_it_open(ctx):  # a Space's visitors may run the capped demo
            ctx.guard.require(request)
        try:
            cfg = StudioConfig.load(recipe_path(DEMO_RECIPE))
        except ConfigError as exc:
            raise user_error(exc) from None
        run_id = _submit(cfg, request=request, demo=True)
        return run_id, gr.Tabs(selected=PageId.MONITOR), f"Queued the demo as run #{run_id}."

    demo = form.demo.click(run_demo, outputs=[ctx.focus_run, ctx.tabs, status], **PRIVATE)
    # the review holds the button while the launch it starts runs: a press made in between
    # queued a second run (5 quick presses queued 2); released however the launch ends
    launched.then(lambda: gr.Button(interactive=True), outputs=[form.launch], **READ_ONLY)
    ctx.monitor_openers += [launched, demo]


def loaded_updates(
    specs: list[dict], values: list[Any], reviewed: dict[str, tuple[str, Any]]
) -> list:
    """A loader's outputs for the fields, the summary and `reviewed`: each field gets its
    loaded value, and only the last review's messages still true for these values stay
    (`still_wrong`: a changed field is checked again, an unchanged one keeps its message);
    the summary follows. A program filling the form fires no input event, so the re-check
    made on user edits (`_wire_recheck`) never sees a load."""
    kept = still_wrong(specs, values, reviewed or {})
    problems = {p: msg for p, (msg, _) in kept.items()}
    marks = field_updates(specs, problems)
    fields = [{**mark, "value": v} for mark, v in zip(marks, values, strict=True)]
    return [*fields, problem_summary(problems), kept]


def _wire_loaders(ctx: AppContext, form: LaunchForm) -> None:
    """Fill the form from a recipe or from an earlier run's config."""
    store, specs = ctx.store, form.specs
    filled = [*form.fields, form.problems, form.reviewed, form.parent, form.status]

    def load_recipe(name, reviewed):
        if name not in recipe_names():  # a shipped recipe by name, never a server path
            raise user_error("Pick a recipe first.")
        cfg = StudioConfig.load(recipe_path(name)).to_dict()
        values = config_to_values(specs, cfg)
        return [*loaded_updates(specs, values, reviewed), None, f"Loaded recipe `{name}`."]

    form.load_recipe.click(
        load_recipe, inputs=[form.recipe, form.reviewed], outputs=filled, **PRIVATE
    )

    def load_run(choice, reviewed):
        run = store.get_run(queries.choice_id(choice) or -1)
        if run is None:
            raise user_error("Pick a run first.")
        values = config_to_values(specs, run.config)
        return [
            *loaded_updates(specs, values, reviewed),
            run.id,
            f"Loaded the config of run #{run.id}.",
        ]

    form.load_run.click(
        load_run, inputs=[form.source_run, form.reviewed], outputs=filled, **PRIVATE
    )

    def refresh_runs():
        return gr.Dropdown(choices=queries.run_choices(store, kind=None))

    form.source_run.focus(refresh_runs, outputs=[form.source_run], **READ_ONLY)
    ctx.tabs.select(refresh_runs, outputs=[form.source_run], **READ_ONLY)


# ----------------------------------------------------------------------------- upload


def verdict_text(reward: str, checks: list) -> str:
    """Markdown: how many preview golds the reward accepts, then one line per row."""
    good = sum(c.ok for c in checks)
    head = f"**Gold answers of the first {len(checks)} rows, by the `{as_text(reward)}` reward:"
    lines = [f"{head} {good} of {len(checks)} verify.**"]
    for c in checks:
        gold = f"gold `{as_text(c.read)}`" if c.read else f"gold {as_text(repr(c.gold[:80]))}"
        lines.append(f"- row {c.row + 1}: {gold} " + ("✓" if c.ok else f"✗ {as_text(c.note)}"))
    return "\n".join(lines)


def _upload_view(
    root_uploads: Path, name: str, data: DataConfig, policy: AccessPolicy
) -> tuple[list, list, str]:
    """(columns, preview rows as lists, verdict markdown) of a stored upload; a reward the
    policy refuses is never imported: the verdict is then the one line saying why."""
    columns, rows = preview(root_uploads / safe_name(name))
    table = [[_cell(r.get(c))[:200] for c in columns] for r in rows]
    try:
        verdict = verdict_text(data.reward, gold_checks(rows, data, policy))
    except UploadError as exc:
        verdict = as_text(str(exc))
    return columns, table, verdict


def _cell(value: Any) -> str:
    """A preview cell: nested Parquet / JSON values as JSON (not Python's repr), null as ""."""
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, default=str)
    return "" if value is None else str(value)


def refused_upload(reason: str) -> list:
    """on_upload's outputs for a file that was not stored: the earlier file's preview, column
    pickers and verdict are cleared (they would vouch for it), the reason is the verdict; the
    form's dataset fields are left as they were."""
    cleared = [gr.Dropdown(choices=[], value=None) for _ in range(2)]
    hidden = gr.Dataframe(value=None, visible=False)  # an empty table shows headers "1 2 3"
    return [None, *cleared, hidden, f"**Not stored:** {as_text(reason)}", *[gr.skip()] * 5]


PROMPT_NOTE = (
    "The embedded model was trained on prompts written `Q: <question>` then `A:` on the next "
    "line (it answers plain questions with noise): **data.prompt_template** is set to that."
)


def prompt_for_model(model_name: str | None, template: str | None) -> str | None:
    """The prompt template an uploaded dataset needs for `model_name`, when the form's template
    would not do: the embedded model only answers its training format (engine.data.tasks.
    PROMPT_FORMAT); a template the user wrote, or another model, is left alone (None).

    >>> prompt_for_model("embedded", "{question}")
    'Q: {question}\\nA:'
    >>> prompt_for_model("Qwen/Qwen2.5-0.5B", "{question}"), prompt_for_model("embedded", "P: {question}")
    (None, None)
    """
    if model_name == EMBEDDED_MODEL and (template or "").strip() in ("", "{question}"):
        return PROMPT_FORMAT
    return None


def _wire_upload(ctx: AppContext, form: LaunchForm) -> None:
    """Upload -> stored in the uploads folder, previewed, the form's dataset fields filled."""
    up, uploads = form.upload, ctx.root.uploads
    by_path = dict(zip((s["path"] for s in form.specs), form.fields, strict=True))
    task, q_field, a_field = (by_path[f"data.{n}"] for n in ("task", "question_field", "answer_field"))  # fmt: skip
    reward = by_path["data.reward"]
    model, template = by_path["model.name_or_path"], by_path["data.prompt_template"]

    def on_upload(file_path, reward_name, question, answer, model_name, prompt, request: gr.Request):  # fmt: skip
        ctx.guard.require(request)  # a write: the file is kept on the server
        if not file_path:
            return [gr.skip()] * 10
        try:  # Gradio keeps the file as <temp>/<hash>/<the name uploaded>: only that name shows
            stored = store_upload(
                Path(file_path), Path(file_path).name, uploads, ctx.policy.limits.max_upload_mb
            )
            columns, _ = preview(stored)
            DataConfig(reward=reward_name)
        except (UploadError, DatasetLoadError, ConfigError) as exc:
            return refused_upload(str(exc))
        q, a = guess_fields(columns, question, answer)
        data = DataConfig(question_field=q, answer_field=a, reward=reward_name)
        columns, table, verdict = _upload_view(uploads, stored.name, data, ctx.policy)
        frame = gr.Dataframe(value=table, headers=columns, visible=True)
        pick = [gr.Dropdown(choices=columns, value=v) for v in (q, a)]
        fitted = prompt_for_model(model_name, prompt)
        if fitted is not None:
            verdict += f"\n\n{PROMPT_NOTE}"
        filled = [stored.name, q, a, gr.skip(), gr.skip() if fitted is None else fitted]
        return [stored.name, *pick, frame, verdict, *filled]

    up.file.upload(
        on_upload,
        inputs=[up.file, reward, q_field, a_field, model, template],
        outputs=[
            up.stored,
            up.question,
            up.answer,
            up.rows,
            up.verdict,
            task,
            q_field,
            a_field,
            form.status,
            template,
        ],  # fmt: skip
        **PRIVATE,
    )

    def verdict_of(name, question, answer, reward_name) -> str:
        data = replace(DataConfig(), question_field=question, answer_field=answer)
        try:
            data = replace(data, reward=str(reward_name or data.reward))
            return _upload_view(uploads, name, data, ctx.policy)[2]
        except (DatasetLoadError, ConfigError) as exc:  # they name the stored file, not its path
            raise user_error(str(exc)) from None
        except OSError as exc:
            log.warning("reading upload %s failed", name, exc_info=True)
            raise user_error(f"{name}: could not be read ({exc.strerror or 'error'})") from None

    def on_fields(name, question, answer, reward_name):
        """The upload's column pickers: the form's fields follow them, and the verdict."""
        if not name or not question or not answer:
            return [gr.skip()] * 3
        return [verdict_of(name, question, answer, reward_name), question, answer]

    def on_reward(name, question, answer, reward_name):
        """The reward field: only the verdict changes; hand-edited form fields are kept."""
        if not name or not question or not answer:
            return gr.skip()
        return verdict_of(name, question, answer, reward_name)

    inputs = [up.stored, up.question, up.answer, reward]
    gr.on(
        [up.question.input, up.answer.input],
        on_fields,
        inputs=inputs,
        outputs=[up.verdict, q_field, a_field],
        **READ_ONLY,
    )
    reward.input(  # each keystroke: the verdict follows the last text typed
        on_reward, inputs=inputs, outputs=[up.verdict], trigger_mode="always_last", **READ_ONLY
    )
