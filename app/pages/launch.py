"""Launch page: a form built from the run config's fields, a recipe picker, duplicate-from-run.

Launch runs the event's `validator=` first: the form's values become a `StudioConfig`, and every
(field, message) of the `ConfigError` is shown next to its field with `gr.validate`; the launch
handler (which queues the run) only runs when nothing is wrong. It then opens the monitor.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import gradio as gr
import yaml

from app import queries, spaces
from app.pages.common import PRIVATE, READ_ONLY, AppContext, PageId, elem_id, user_error
from engine.config import ConfigError, StudioConfig, field_specs
from engine.resources import recipe_names, recipe_path
from engine.runs.admission import check_submission

log = logging.getLogger(__name__)

DEMO_RECIPE = "demo-cpu"
OPEN_SECTIONS = ("run", "shaping")
FIELDS_PER_ROW = 3
SECTION_TITLES = {
    "run": "Run: algorithm, steps, seed, evaluation, checkpoints",
    "shaping": "VERL shaping (ignored when algorithm = grpo)",
    "grpo": "GRPO settings (TRL)",
    "data": "Task / dataset and reward",
    "model": "Model",
    "health": "GRPO health flags: thresholds, and which flag stops the run",
}


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
    if kind == "int":
        return gr.Number(value=default, precision=0, **common)
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
        if spec["type"] == "int" and isinstance(value, float) and value.is_integer():
            value = int(value)
        data.setdefault(section, {})[name] = value
    return data, errors


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


def _layout_form(specs: list[dict], initial: list[Any]) -> list[gr.components.Component]:
    values = {spec["path"]: v for spec, v in zip(specs, initial, strict=True)}
    sections = dict.fromkeys(s["path"].split(".", 1)[0] for s in specs)
    order = [s for s in OPEN_SECTIONS if s in sections] + [
        s for s in sections if s not in OPEN_SECTIONS
    ]
    by_path = {}
    for section in order:
        section_specs = [s for s in specs if s["path"].startswith(section + ".")]
        with gr.Accordion(SECTION_TITLES.get(section, section), open=section in OPEN_SECTIONS):
            for i in range(0, len(section_specs), FIELDS_PER_ROW):
                with gr.Row():
                    for spec in section_specs[i : i + FIELDS_PER_ROW]:
                        by_path[spec["path"]] = _component(spec, values[spec["path"]])
    return [by_path[spec["path"]] for spec in specs]


@dataclass
class LaunchForm:
    """The launch page's components, made by `build` and wired by `_wire_*`."""

    specs: list[dict]  # engine.config.field_specs(), one per field
    fields: list[gr.components.Component]  # one per spec, in the same order
    parent: gr.State  # the run whose config was loaded (the new run's parent), or None
    status: gr.Markdown
    demo: gr.Button
    recipe: gr.Dropdown
    load_recipe: gr.Button
    source_run: gr.Dropdown
    load_run: gr.Button
    launch: gr.Button


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
    fields = _layout_form(specs, config_to_values(specs, initial_config()))
    launch_btn = gr.Button("Launch", variant="primary", elem_id="launch-btn")
    form = LaunchForm(
        specs=specs,
        fields=fields,
        parent=parent,
        status=gr.Markdown("", elem_id="launch-status"),
        demo=demo_btn,
        recipe=recipe,
        load_recipe=load_recipe_btn,
        source_run=source_run,
        load_run=load_run_btn,
        launch=launch_btn,
    )
    _wire_launch(ctx, form)
    _wire_loaders(ctx, form)


# ----------------------------------------------------------------------------- wiring


def _wire_launch(ctx: AppContext, form: LaunchForm) -> None:
    """Launch (validated field by field first) and Run the demo; both open the monitor."""
    store, specs, status = ctx.store, form.specs, form.status

    def validator(*values):
        cfg, errors = check_form(specs, list(values[:-1]))
        if cfg is not None:  # the form parses: what this server admits, field by field
            try:
                check_submission(cfg, ctx.policy)
            except ConfigError as exc:
                errors = _by_field(exc.errors)
        general = errors.pop("", None)
        out = [gr.validate(s["path"] not in errors, errors.get(s["path"], "")) for s in specs]
        if general:
            out[0] = gr.validate(False, general)
        return [*out, gr.validate(True, "")]

    def launch(request: gr.Request, *values):  # Gradio passes a Request only before *args
        ctx.guard.require(request)
        cfg, errors = check_form(specs, list(values[:-1]))
        if cfg is None:  # the validator stops this first; an API caller may not
            raise user_error(ConfigError(list(errors.items())))
        parent_id = values[-1] if store.get_run(values[-1] or -1) else None
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

    launched = form.launch.click(
        launch,
        inputs=[*form.fields, form.parent],
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
    ctx.monitor_openers += [launched, demo]


def _wire_loaders(ctx: AppContext, form: LaunchForm) -> None:
    """Fill the form from a recipe or from an earlier run's config."""
    store, specs = ctx.store, form.specs
    filled = [*form.fields, form.parent, form.status]

    def load_recipe(name):
        if name not in recipe_names():  # a shipped recipe by name, never a server path
            raise gr.Error("Pick a recipe first.")
        cfg = StudioConfig.load(recipe_path(name)).to_dict()
        return [*config_to_values(specs, cfg), None, f"Loaded recipe `{name}`."]

    form.load_recipe.click(load_recipe, inputs=[form.recipe], outputs=filled, **PRIVATE)

    def load_run(choice):
        run = store.get_run(queries.choice_id(choice) or -1)
        if run is None:
            raise gr.Error("Pick a run first.")
        return [
            *config_to_values(specs, run.config),
            run.id,
            f"Loaded the config of run #{run.id}.",
        ]

    form.load_run.click(load_run, inputs=[form.source_run], outputs=filled, **PRIVATE)

    def refresh_runs():
        return gr.Dropdown(choices=queries.run_choices(store, kind=None))

    form.source_run.focus(refresh_runs, outputs=[form.source_run], **READ_ONLY)
    ctx.tabs.select(refresh_runs, outputs=[form.source_run], **READ_ONLY)
