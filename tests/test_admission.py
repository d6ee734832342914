"""The submit-time check (engine.runs.admission) on its own and through the form's handler.

Regressions: an anonymous `/submit_run` made the worker import and call `os:system` and
`dill:dump_session`; a run's `data.task` read a credentials CSV into the trace inspector;
error messages told which server paths exist; `max_steps: 10**12` and 5 MB names were queued.
Each hostile config below must be refused with one line naming the field, queue nothing, and
read the same whether or not the path exists.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import gradio as gr
import pytest

from app.main import build_app
from engine.config import ConfigError, StudioConfig, field_specs
from engine.runs import service
from engine.runs.admission import (
    AccessPolicy,
    Limits,
    check_eval,
    check_model,
    check_submission,
    first_rows,
    one_line,
    review_submission,
)
from engine.storage import Store

HOSTILE_REWARDS = [
    "os:system",
    "subprocess:run",
    "subprocess:check_output",
    "shutil:rmtree",
    "builtins:exec",
    "builtins:eval",
    "pickle:loads",
    "dill:dump_session",
    "importlib:import_module",
    "engine.data.rewards:get_reward",  # an installed module is not an allowed one
]


# the embedded model has 256 positions: the paper's 1,536-token completions do not fit it
FITS_EMBEDDED = {"grpo": {"max_completion_length": 48}, "shaping": {"stride": 4}}


def cfg_with(**sections) -> StudioConfig:
    """A config of `sections` over settings that fit the embedded model."""
    merged = {name: dict(values) for name, values in FITS_EMBEDDED.items()}
    for name, values in sections.items():
        merged.setdefault(name, {}).update(values)
    return StudioConfig.from_dict(merged)


@pytest.fixture
def world(tmp_path, monkeypatch):
    """A data root, an allowed folder, and server files outside both (one existing, one not)."""
    from engine.paths import resolve

    root = resolve(tmp_path / "home")
    allowed = tmp_path / "allowed"
    allowed.mkdir()
    secret = tmp_path / "secret"
    secret.mkdir()
    rows = "".join(json.dumps({"question": f"q{i}", "answer": str(i)}) + "\n" for i in range(9))
    (secret / "creds.jsonl").write_text(rows)
    (secret / "creds.csv").write_text("question,answer\nuser,hunter2\n")
    (allowed / "ok.jsonl").write_text(rows)
    (root.uploads / "mine.jsonl").write_text(rows)
    (root.uploads / "out.jsonl").symlink_to(secret / "creds.jsonl")
    (root.uploads / "outdir").symlink_to(secret)
    (root.uploads / "dangling.jsonl").symlink_to(secret / "nope.jsonl")
    model = secret / "model"
    model.mkdir()
    (model / "config.json").write_text(json.dumps({"model_type": "qwen2"}))
    (model / "tokenizer.json").write_text("{}")
    shadow = tmp_path / "cwd" / "org" / "name"  # `org/name` as a folder in the server's cwd
    shadow.mkdir(parents=True)
    (shadow / "config.json").write_text(json.dumps({"model_type": "qwen2"}))
    (shadow / "tokenizer.json").write_text("{}")
    (shadow / "train.jsonl").write_text(rows)
    monkeypatch.chdir(tmp_path / "cwd")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    policy = AccessPolicy.network(root, allow_paths=(str(allowed),))
    return root, policy, tmp_path, secret


def refusal(cfg: StudioConfig, policy: AccessPolicy) -> list[tuple[str, str]]:
    with pytest.raises(ConfigError) as info:
        check_submission(cfg, policy)
    for _, message in info.value.errors:
        assert "\n" not in message
    return info.value.errors


@pytest.mark.parametrize("reward", HOSTILE_REWARDS)
def test_a_module_function_reward_is_refused_over_the_network(world, reward):
    _, policy, *_ = world
    errors = refusal(cfg_with(data={"reward": reward}), policy)
    assert errors[0][0] == "data.reward" and "--allow-reward-module" in errors[0][1]
    errors = refusal(cfg_with(data={"extra_rewards": ["format", reward]}), policy)
    assert errors[0][0] == "data.extra_rewards[1]"


def test_an_allowed_reward_module_admits_itself_and_its_submodules_only(world):
    root, *_ = world
    policy = AccessPolicy.network(root, allow_reward_modules=("engine.data",))
    check_submission(cfg_with(data={"reward": "engine.data.rewards:make_format_reward"}), policy)
    refusal(cfg_with(data={"reward": "engine.data_x:f"}), policy)
    refusal(cfg_with(data={"reward": "engine:f"}), policy)
    refusal(cfg_with(data={"reward": "os:system"}), policy)


def test_the_command_line_may_name_any_importable_reward_but_not_a_missing_one():
    trusted = AccessPolicy.command_line()
    check_submission(cfg_with(data={"reward": "engine.data.rewards:make_format_reward"}), trusted)
    errors = refusal(cfg_with(data={"reward": "no_such_module_xyz:f"}), trusted)
    assert errors[0][0] == "data.reward" and "cannot import" in errors[0][1]
    assert refusal(cfg_with(data={"reward": "acuracy"}), trusted)[0][0] == "data.reward"


def hostile_paths(tmp_path: Path, secret: Path) -> list[tuple[str, str, str]]:
    """(field, value that exists, a value just like it that does not)."""
    return [
        ("data.task", "/etc/passwd", "/etc/passwd-not-here"),
        ("data.task", str(secret / "creds.csv"), str(secret / "nope.csv")),
        ("data.task", "../../secret/creds.jsonl", "../../secret/nope.jsonl"),
        ("data.task", "../secret/creds.jsonl", "../secret/nope.jsonl"),
        ("data.task", "out.jsonl", "dangling.jsonl"),  # a link out of uploads
        ("data.task", "outdir/creds.jsonl", "outdir/nope.jsonl"),  # through a linked folder
        ("data.task", "~/.bash_history.jsonl", "~/.nothing-here.jsonl"),
        ("data.eval_task", str(secret / "creds.jsonl"), str(secret / "nope.jsonl")),
        ("model.name_or_path", str(secret / "model"), str(secret / "no-model")),
        ("model.name_or_path", "./org/name", "./org/nothing"),
        ("model.name_or_path", "/etc", "/etc-not-here"),
        # a bare name (no path prefix, no suffix) that climbs out of the uploads folder
        ("data.task", "x/../../../secret/model", "x/../../../secret/no-model"),
        ("data.eval_task", "x/../../../secret", "x/../../../no-secret"),
    ]


@pytest.mark.parametrize("case", range(13))
def test_a_server_path_is_refused_with_the_same_line_whether_or_not_it_exists(world, case):
    root, policy, tmp_path, secret = world
    field, present, absent = hostile_paths(tmp_path, secret)[case]
    section, name = field.split(".")
    first = refusal(cfg_with(**{section: {name: present}}), policy)
    second = refusal(cfg_with(**{section: {name: absent}}), policy)
    assert first == second and first[0][0] == field
    assert "--allow-path" in first[0][1] and present not in first[0][1]


@pytest.mark.parametrize("field", ["data.task", "model.name_or_path"])
@pytest.mark.parametrize("name", ["a" * 300, "a" * 300 + ".jsonl", "a\x00b", "./a\x00b.jsonl"])
def test_a_name_no_file_system_takes_is_one_field_error(world, field, name):
    """Too long for a file name, or a NUL byte: one line naming the field, no server path."""
    root, policy, *_ = world
    section, key = field.split(".")
    for checked_by in (policy, AccessPolicy.command_line()):
        (error,) = refusal(cfg_with(**{section: {key: name}}), checked_by)
        assert error[0] == field and str(root.root) not in error[1], error


def test_org_name_is_a_hub_id_never_the_local_folder_of_that_name(world):
    root, policy, *_ = world
    assert Path("org/name/config.json").is_file()  # it is there, in the cwd
    first = refusal(cfg_with(model={"name_or_path": "org/name"}), policy)
    second = refusal(cfg_with(model={"name_or_path": "org/other"}), policy)
    assert first[0][1].replace("org/name", "X") == second[0][1].replace("org/other", "X")
    assert "cannot be reached" in first[0][1]  # asked of the hub (offline here), not the disk
    refusal(cfg_with(data={"task": "org/name"}), policy)
    from engine.data.tasks import _is_local
    from engine.models.loading import locate

    assert locate("org/name") == ("hub", "org/name")  # the worker does not read ./org/name
    assert not _is_local("org/name")
    assert locate("./org/name")[0] == "local"


def test_allowed_places_are_admitted_and_written_as_absolute_paths(world):
    root, policy, tmp_path, _ = world
    cfg = check_submission(cfg_with(data={"task": "mine.jsonl"}), policy)
    assert cfg.data.task == str(root.uploads / "mine.jsonl")
    cfg = check_submission(cfg_with(data={"task": str(tmp_path / "allowed" / "ok.jsonl")}), policy)
    assert Path(cfg.data.task).is_absolute()
    ckpt = root.checkpoints / "1" / "checkpoint-2"
    ckpt.mkdir(parents=True)
    (ckpt / "config.json").write_text(json.dumps({"model_type": "qwen2"}))
    (ckpt / "tokenizer.json").write_text("{}")
    assert check_submission(cfg_with(model={"name_or_path": str(ckpt)}), policy)
    check_submission(cfg_with(), policy)  # the embedded model on the built-in task


def test_an_allowed_dataset_without_its_fields_is_refused(world):
    root, policy, *_ = world
    (root.uploads / "wrong.csv").write_text("prompt,solution\na,1\n")
    errors = refusal(cfg_with(data={"task": "wrong.csv"}), policy)
    assert errors[0][0] == "data.question_field" and "prompt, solution" in errors[0][1]
    (root.uploads / "broken.jsonl").write_text("{not json\n")
    assert refusal(cfg_with(data={"task": "broken.jsonl"}), policy)[0][0] == "data.task"


def test_a_dataset_whose_every_answer_is_empty_is_refused_but_one_answer_admits_it(world):
    """A file of blank golds trained on zero reward without a word (issue 14)."""
    root, policy, *_ = world
    blank = ["", "  ", None]
    rows = [{"question": f"{i}+1", "answer": blank[i % 3]} for i in range(40)]
    (root.uploads / "blank.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (root.uploads / "blank.csv").write_text("question,answer\n1+1,\n2+2, \n")
    for name in ("blank.jsonl", "blank.csv"):
        errors = refusal(cfg_with(data={"task": name}), policy)
        assert errors[0][0] == "data.task" and "every answer in the file is empty" in errors[0][1]
    rows[-1]["answer"] = "41"  # one gold answer far past the peeked rows is enough
    (root.uploads / "late.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    check_submission(cfg_with(data={"task": "late.jsonl"}), policy)


def test_the_command_line_resolves_relative_paths_where_it_runs(world):
    trusted = AccessPolicy.command_line()
    cfg = check_submission(
        cfg_with(model={"name_or_path": "org/name"}, data={"task": "org/name/train.jsonl"}),
        trusted,
    )
    assert cfg.model.name_or_path == str(Path("org/name").resolve())
    assert cfg.data.task == str(Path("org/name/train.jsonl").resolve())
    errors = refusal(cfg_with(data={"task": "missing.jsonl"}), trusted)
    assert errors[0][0] == "data.task"


LIMITED = [
    ("run.max_steps", {"run": {"max_steps": 10**9}}),
    ("data.train_size", {"data": {"train_size": 2_000_000}}),
    ("run.name (characters)", {"run": {"name": "x" * 5_000_000}}),
    ("run.eval_size", {"run": {"eval_size": 10**9}}),
    ("grpo.max_completion_length", {"grpo": {"max_completion_length": 10**7}}),
    ("data.prompt_template (characters)", {"data": {"prompt_template": "{question}" * 10**5}}),
]


@pytest.mark.parametrize("field,sections", LIMITED, ids=[f for f, _ in LIMITED])
def test_over_a_limit_is_refused_naming_the_flag(world, field, sections):
    _, policy, *_ = world
    errors = refusal(cfg_with(**sections), policy)
    assert errors[0][0] == field and "serve --" in errors[0][1], errors
    try:  # the CLI has no limits (a completion longer than the model is refused for all)
        check_submission(cfg_with(**sections), AccessPolicy.command_line())
    except ConfigError as exc:
        assert [p for p, _ in exc.errors] == ["grpo.max_completion_length"], exc.errors
        assert "serve --" not in str(exc)


def test_a_dataset_over_the_size_limit_is_refused(world):
    root, _, *_ = world
    policy = AccessPolicy.network(root, limits=Limits(max_dataset_mb=0.0001))
    errors = refusal(cfg_with(data={"task": "mine.jsonl"}), policy)
    assert "--max-dataset-mb" in errors[0][1]


def test_names_and_notes_are_limited_through_the_service(world):
    root, policy, *_ = world
    with Store(root.db_url) as store:
        with pytest.raises(ConfigError, match="run.name"):
            service.submit(store, cfg_with(), policy=policy, name="n" * 1000)
        run_id = service.submit(store, cfg_with(), policy=policy)
        with pytest.raises(ConfigError, match="notes"):
            service.rename(store, run_id, name="a", notes="z" * 10**6, policy=policy)
        assert [r.id for r in store.list_runs()] == [run_id]
        assert store.get_run(run_id).notes == ""


def test_an_eval_job_names_models_and_datasets_under_the_same_rules(world):
    from engine.evaluation.jobs import EvalConfig

    root, policy, tmp_path, secret = world
    with pytest.raises(ConfigError) as info:
        check_eval(EvalConfig(model=str(secret / "model"), dataset="/etc/passwd"), policy)
    assert [p for p, _ in info.value.errors] == ["eval.model", "eval.dataset"]
    with pytest.raises(ConfigError, match="eval.n"):
        check_eval(EvalConfig(n=10**6, k_max=1), policy)
    with pytest.raises(ConfigError, match="model"):
        check_model("/etc", policy)


def test_first_rows_reads_only_the_head(tmp_path):
    path = tmp_path / "big.jsonl"
    with path.open("w") as f:
        f.write('{"question": "a", "answer": "1"}\n' * 3)
        f.write("this line is never read\n")
    assert len(first_rows(path, 3)) == 3
    with pytest.raises(ValueError):
        first_rows(path, 4)


def test_one_line_joins_every_error():
    exc = ConfigError([("a.b", "first\nsecond"), ("c", "third")])
    assert one_line(exc) == "a.b: first second; c: third"


# ----------------------------------------------------------------------------- the form


@pytest.fixture
def form(world):
    root, policy, tmp_path, secret = world
    with Store(root.db_url) as store:
        blocks = build_app(store, root, policy=policy)
        fns = {f.name: f.fn for f in blocks.fns.values()}
        fns["validator"] = next(f.validator for f in blocks.fns.values() if f.name == "launch")
        yield store, fns, tmp_path, secret


def form_values(**changes) -> list:
    """The launch form's values for the defaults with `changes` ({"data.task": ...})."""
    cfg = cfg_with().to_dict()
    out = []
    for spec in field_specs():
        section, name = spec["path"].split(".")
        value = changes.get(spec["path"], cfg[section][name])
        out.append(str(value) if isinstance(value, list) else value)
    return [*out, None]  # the hidden parent-run state


@pytest.mark.parametrize(
    "changes",
    [
        {"data.reward": "os:system"},
        {"data.reward": "subprocess:getoutput"},
        {"data.extra_rewards": "['pickle:loads']"},
        {"data.task": "/etc/passwd"},
        {"data.task": "../../../etc/passwd.csv"},
        {"model.name_or_path": "org/name"},
        {"run.max_steps": 10**12},
    ],
    ids=lambda c: next(iter(c.values())),
)
def test_the_form_refuses_what_the_api_refuses(form, changes):
    store, fns, *_ = form
    with pytest.raises(gr.Error) as info:
        fns["launch"](None, *form_values(**changes))
    assert "\n" not in info.value.message and next(iter(changes)) in info.value.message
    assert store.list_runs() == []
    checks = fns["validator"](*form_values(**changes))
    assert any(c.get("is_valid") is False for c in checks if isinstance(c, dict))


def test_the_form_refuses_the_same_way_whether_a_path_exists(form):
    store, fns, tmp_path, secret = form
    messages = []
    for task in (str(secret / "creds.csv"), str(secret / "nothing.csv")):
        with pytest.raises(gr.Error) as info:
            fns["launch"](None, *form_values(**{"data.task": task}))
        messages.append(info.value.message)
    assert messages[0] == messages[1] and store.list_runs() == []


def test_duplicate_over_the_network_rechecks_the_stored_config(form, world):
    root, policy, *_ = world
    store, fns, *_ = form
    trusted = AccessPolicy.command_line()
    cfg = cfg_with(data={"reward": "engine.data.rewards:make_format_reward"})
    run_id = service.submit(store, cfg, policy=trusted)
    from app import queries

    with pytest.raises(gr.Error, match="allow-reward-module"):
        fns["duplicate"]([queries.run_label(store.get_run(run_id))])
    assert [r.id for r in store.list_runs()] == [run_id]


def test_the_demo_recipe_passes_the_network_policy(form):
    store, fns, *_ = form
    run_id = fns["run_demo"]()[0]
    assert store.get_run(run_id).status == "queued"
    assert os.sep not in store.get_run(run_id).config["model"]["name_or_path"]


# ----------------------------------------------------------------------------- one review


def test_one_review_names_every_config_and_server_problem(world):
    """A bad config field hid every server limit and source problem until it was fixed and
    Launch pressed again (two rounds): one review names them all."""
    from app.pages.launch import form_problems

    _, policy, _, secret = world
    changes = {
        "shaping.kappa": 0,  # the config's own rule
        "run.max_steps": 10**9,  # over this server's limit
        "run.name": "x" * 5_000,  # over the name limit
        "data.reward": "os:system",  # a reward the network may not name
        "model.name_or_path": str(secret / "model"),  # a server path
        "run.seed": 99_999_999_999,  # past the store, no server limit
    }
    _, problems = form_problems(field_specs(), form_values(**changes)[:-1], policy)
    assert set(problems) == set(changes), problems
    assert "serve --max-steps" in problems["run.max_steps"]
    assert "--allow-reward-module" in problems["data.reward"]


def test_a_value_past_the_store_is_refused_by_the_servers_limit(world):
    """10**12 steps said "integer between -2147483648 and 2147483647" (the store's column)
    where this server's rule is its --max-steps cap; the same for every limited field."""
    _, policy, *_ = world
    capped = {
        "run.max_steps": "--max-steps",
        "run.eval_size": "--max-eval-size",
        "data.train_size": "--max-train-size",
        "grpo.max_completion_length": "--max-completion-length",
        "grpo.num_generations": "--max-samples",
        "grpo.gradient_accumulation_steps": "--max-samples",
        "run.num_processes": "--max-processes",
    }
    for path, flag in capped.items():
        section, name = path.split(".")
        _, errors = review_submission(
            {**FITS_EMBEDDED, section: {**FITS_EMBEDDED.get(section, {}), name: 99_999_999_999}},
            policy,
        )
        said = " ".join(m for p, m in errors if p == path)
        assert flag in said and "2,147,483,647" not in said, (path, errors)


def test_a_server_check_skips_a_field_the_config_refuses(world):
    """The config's message stands alone: no second line judging a default that stood in
    for what was typed, nor a check that reads a refused field."""
    root, policy, *_ = world
    data = {"task": "mine.jsonl", "question_field": "", "answer_field": "gold"}
    _, errors = review_submission({**FITS_EMBEDDED, "data": data}, policy)
    assert errors == [
        ("data.question_field", "must not be empty"),
        ("data.answer_field", "no field 'gold' in the first rows (fields: question, answer)"),
    ], errors
    data = {"task": "/etc/passwd.jsonl", "question_field": "q", "answer_field": "q"}
    _, errors = review_submission({**FITS_EMBEDDED, "data": data}, policy)
    assert [p for p, _ in errors] == ["data.answer_field", "data.task"], errors  # not hidden
    grpo = {**FITS_EMBEDDED["grpo"], "gradient_accumulation_steps": 10**12}
    _, errors = review_submission({**FITS_EMBEDDED, "grpo": grpo}, policy)
    assert [p for p, _ in errors] == ["grpo.gradient_accumulation_steps"], errors


def test_a_launch_press_reads_the_dataset_once_before_its_submit(world, monkeypatch):
    """Every Launch press read the dataset files three times: in the review, again in the
    launch's validator (which Gradio runs outside the queue, so outside any concurrency
    limit) and at submit; and any number of reviews ran at once. Now the validator takes
    the review's verdict, and the review is limited and drops a click made while pending."""
    from app.pages.launch import REVIEWS_AT_ONCE
    from engine.runs import admission

    root, policy, *_ = world
    reads = []
    real = admission.first_rows
    monkeypatch.setattr(
        admission, "first_rows", lambda p, *a, **k: reads.append(p) or real(p, *a, **k)
    )
    with Store(root.db_url) as store:
        blocks = build_app(store, root, policy=policy)
        by_name = {f.name: f for f in blocks.fns.values()}
        review, launch = by_name["review"], by_name["launch"]
        assert (review.concurrency_limit, review.concurrency_id) == (
            REVIEWS_AT_ONCE,
            "launch-review",
        )
        assert review.trigger_mode == "once"  # "always_last" would run a late click, and launch
        values = form_values(**{"data.task": "mine.jsonl"})
        *_, reviewed, _button = review.fn(*values[:-1])
        assert reviewed == {} and len(reads) == 1
        checks = launch.validator(*values, reviewed)
        assert all(c["is_valid"] for c in checks) and len(reads) == 1
        checks = launch.validator(*values, {"run.max_steps": ("over the limit", 10**9)})
        assert checks[-1]["is_valid"] is False and len(reads) == 1
        run_id, *_ = launch.fn(None, *values, reviewed)
        assert [r.id for r in store.list_runs()] == [run_id] and len(reads) == 2  # the submit
