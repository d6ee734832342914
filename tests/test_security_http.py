"""Every function the app registers, called over raw HTTP (Gradio's queue protocol) on a server
started in the mode a non-loopback bind uses (`--require-token`, bound to 127.0.0.1).

Regression: `/cancel_run` cancelled anyone's run and a raw queue call of the private delete
confirmation handler deleted a running run. Hiding a button protects nothing; the check is in
each handler. The test cannot pass by accident:

1. a control pass calls every function WITH the token, each against its own fresh runs (one
   queued, one cancelled), and records which functions changed the store or the data files;
   the known write actions must be among them (so the inputs really reach the handlers);
2. the attack pass calls every function WITHOUT the token against two shared runs: every
   function the control pass saw writing is refused with the one-line token message, and the
   store and the data files are exactly as before.
"""

from __future__ import annotations

import json
import sqlite3
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
import yaml

from app.auth import REFUSED
from tests.fixtures.server import run_server

TOKEN = "s3cret-operator-token-for-tests"
PAIRS = 100  # fresh (queued, cancelled) run pairs for the control pass: one per function
CALL_TIMEOUT_S = 120
# what the issue names as write actions (function names as the app registers them)
KNOWN_WRITES = {
    "launch",
    "run_demo",
    "cancel",
    "resume",
    "duplicate",
    "save",
    "really",
    "evaluate",
    "export_steps",
    "export_samples",
    "submit_run",
    "cancel_run",
}


def _demo_config() -> dict:
    from engine.config import StudioConfig
    from engine.resources import recipe_path

    return StudioConfig.load(recipe_path("demo-cpu"), ["run.max_steps=3"]).to_dict()


DEMO = _demo_config()  # the demo recipe, 3 steps: what the embedded model's 256 positions fit
DEMO_YAML = yaml.safe_dump(DEMO)


def _seed(data_dir: Path) -> dict[str, list[str]]:
    """Runs that exist before the server builds its pickers: labels of queued and cancelled."""
    from app.queries import run_label
    from engine.paths import resolve
    from engine.storage import Store

    root = resolve(data_dir)
    labels: dict[str, list[str]] = {"queued": [], "cancelled": []}
    with Store(root.db_url) as store:
        for i in range(PAIRS + 1):
            for state in ("queued", "cancelled"):
                config = {**DEMO, "run": {**DEMO["run"], "seed": i}}  # a config the model fits
                run_id = store.create_run(
                    config, name=f"{state}-{i}", algorithm="grpo", total_steps=5
                )
                store.log_step(run_id, {"step": 1, "reward_mean": 0.5})
                if state == "cancelled":
                    store.request_cancel(run_id)
                    ckpt = root.run_checkpoints(run_id) / "checkpoint-1"
                    ckpt.mkdir(parents=True)
                    (ckpt / "trainer_state.json").write_text("{}")
                labels[state].append(run_label(store.get_run(run_id)))
    return labels


def snapshot(data_dir: Path) -> tuple:
    """Everything a write could change: runs, their events and checkpoints, the data files."""
    db = sqlite3.connect(data_dir / "studio.db")
    try:
        runs = db.execute(
            "SELECT id, name, notes, status, cancel_requested, attempt, total_steps, parent_id "
            "FROM runs ORDER BY id"
        ).fetchall()
        events = db.execute("SELECT run_id, count(*) FROM events GROUP BY run_id").fetchall()
        steps = db.execute("SELECT run_id, count(*) FROM steps GROUP BY run_id").fetchall()
    finally:
        db.close()
    files = sorted(
        str(p.relative_to(data_dir))
        for p in data_dir.rglob("*")
        if not p.name.startswith("studio.db") and "logs" not in p.parts
    )
    return runs, events, steps, files


PROBE_TEXT = {"run-name", "run-notes", "operator-token"}  # text inputs a write would store


def _inputs(config: dict, dep: dict, target: str) -> list:
    """A value per input: the target run in every picker that lists it and in the API's run id,
    new text in the name and notes boxes, the page's own values elsewhere."""
    components = {c["id"]: c for c in config["components"]}
    data = []
    for cid in dep["inputs"]:
        comp = components[cid]
        props = comp.get("props", {})
        value = props.get("value")
        choices = [c[1] if isinstance(c, list) else c for c in props.get("choices") or []]
        if comp["type"] == "dropdown" and target in choices:
            value = [target] if props.get("multiselect") else target
        elif props.get("elem_id") in PROBE_TEXT:
            value = "probe"
        elif comp["type"] == "api" and props.get("_api_info", {}).get("type") == "integer":
            value = int(target.split()[0].lstrip("#"))  # the API's run_id
        elif comp["type"] == "state":
            value = None
        data.append(value)
    if dep["api_name"] == "submit_run":  # an empty config is refused for what it is
        data = [DEMO_YAML]
    return data


def call(
    base: str, dep: dict, data: list, headers: dict | None = None, session: str | None = None
) -> dict:
    """One raw queue call (POST queue/join, then read queue/data): the completion message.
    Calls sharing `session` share the page's state (the run a delete question named)."""
    session = session or uuid.uuid4().hex[:11]
    body = {
        "data": data,
        "fn_index": dep["id"],
        "session_hash": session,
        "event_data": None,
        "trigger_id": (dep.get("targets") or [[None]])[0][0],
    }
    deadline = time.monotonic() + CALL_TIMEOUT_S
    with httpx.Client(base_url=base, headers=headers or {}, timeout=CALL_TIMEOUT_S) as http:
        joined = http.post("/gradio_api/queue/join", json=body)
        if joined.status_code != 200:
            return {"success": False, "output": {"error": f"HTTP {joined.status_code}"}}
        event_id = joined.json()["event_id"]
        with http.stream("GET", "/gradio_api/queue/data", params={"session_hash": session}) as s:
            for line in s.iter_lines():
                if time.monotonic() > deadline:
                    break
                if not line.startswith("data:"):
                    continue
                msg = json.loads(line[5:])
                if msg.get("event_id") == event_id and msg.get("msg") == "process_completed":
                    return msg
    raise AssertionError(f"no completion for {dep['api_name']} within {CALL_TIMEOUT_S} s")


@pytest.fixture(scope="module")
def token_server(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("secure")
    labels = _seed(data_dir)
    token_file = data_dir.parent / "token"
    token_file.write_text(TOKEN + "\n")
    cwd = _hostile_files(data_dir)
    args = ("--require-token", "--token-file", str(token_file))
    with run_server(data_dir, worker=False, extra_args=args, cwd=cwd) as server:
        config = httpx.get(f"{server.url}config", timeout=60).json()
        yield server, config, labels


def _hostile_files(data_dir: Path) -> Path:
    """Server files a config must not reach, and the server's working directory (returned),
    which holds a model folder named like the hub id `org/name`."""
    secret = data_dir.parent / "secret"
    (secret / "model").mkdir(parents=True)
    (secret / "creds.csv").write_text("question,answer\nroot,hunter2\n")
    (secret / "model" / "config.json").write_text('{"model_type": "qwen2"}')
    (secret / "model" / "tokenizer.json").write_text("{}")
    uploads = data_dir / "uploads"
    uploads.mkdir(exist_ok=True)
    (uploads / "link.csv").symlink_to(secret / "creds.csv")
    (uploads / "dangling.csv").symlink_to(secret / "gone.csv")
    cwd = data_dir.parent / "cwd"
    (cwd / "org" / "name").mkdir(parents=True)
    (cwd / "org" / "name" / "config.json").write_text('{"model_type": "qwen2"}')
    (cwd / "org" / "name" / "tokenizer.json").write_text("{}")
    return cwd


def _backend(config: dict) -> list[dict]:
    return [d for d in config["dependencies"] if d.get("backend_fn")]


def test_every_write_handler_refuses_a_raw_call_without_the_token(token_server):
    server, config, labels = token_server
    base = server.url.rstrip("/")
    data_dir = server.data_dir
    deps = _backend(config)
    assert len(deps) >= 50  # the whole app, private handlers included
    assert len(deps) <= PAIRS

    # 1. control: with the token, which functions change anything?
    auth = {"Authorization": f"Bearer {TOKEN}"}
    writers = set()
    outcomes = {}
    for i, dep in enumerate(deps):
        # one call each: a cancel needs a queued run, everything else acts on a cancelled one
        state = "queued" if dep["api_name"].startswith("cancel") else "cancelled"
        target, session = labels[state][i + 1], uuid.uuid4().hex[:11]
        if dep["api_name"] == "really":  # "Yes" deletes the run the question named, in one page
            ask = next(d for d in deps if d["api_name"] == "ask")
            call(base, ask, _inputs(config, ask, target), auth, session)
        before = snapshot(data_dir)
        outcomes[dep["api_name"]] = call(base, dep, _inputs(config, dep, target), auth, session)
        if snapshot(data_dir) != before:
            writers.add(dep["api_name"])
    missing = KNOWN_WRITES - writers
    detail = {name: outcomes[name].get("output") for name in missing}
    assert not missing, f"the control pass did not reach {missing}: {detail}"

    # 2. the attack: the same calls, no token, against two shared runs
    before = snapshot(data_dir)
    attacks = [(d, t) for d in deps for t in (labels["queued"][0], labels["cancelled"][0])]
    with ThreadPoolExecutor(max_workers=4) as pool:  # the server's default concurrency
        answers = list(pool.map(lambda a: call(base, a[0], _inputs(config, *a)), attacks))
    refused = set()
    for (dep, _), msg in zip(attacks, answers, strict=True):
        error = str((msg.get("output") or {}).get("error") or "")
        if not msg.get("success") and REFUSED.split(":")[0] in error:
            assert "\n" not in error
            refused.add(dep["api_name"])
    assert snapshot(data_dir) == before, "a call without the token changed the store or files"
    assert writers <= refused, f"write handlers not refused: {writers - refused}"
    guarded = sorted(refused)
    print("write handlers found by the walk (all refused without the token):", guarded)


def test_the_api_refuses_without_a_token_and_accepts_the_header(token_server):
    from gradio_client import Client

    server, _, labels = token_server
    anonymous = Client(server.url, verbose=False)
    before = snapshot(server.data_dir)
    with pytest.raises(Exception, match="operator token"):
        anonymous.predict(DEMO_YAML, api_name="/submit_run")
    assert snapshot(server.data_dir) == before
    # reads stay open, errors stay one line
    assert anonymous.predict(10**9, api_name="/run_status")["status"] == "missing"
    operator = Client(server.url, verbose=False, headers={"X-Studio-Token": TOKEN})
    run_id = operator.predict(DEMO_YAML, api_name="/submit_run")
    assert anonymous.predict(run_id, api_name="/run_status")["status"] == "queued"
    assert operator.predict(run_id, api_name="/cancel_run") == "cancelled"


def hostile_configs(secret: Path) -> list[tuple[str, str, str]]:
    """(field, YAML that names something that exists, the same naming something that does not)."""
    rewards = [
        ("data.reward", f"data:\n  reward: '{r}'\n", "data:\n  reward: 'nosuchmod:f'\n")
        for r in ("os:system", "subprocess:run", "shutil:rmtree", "builtins:exec", "pickle:loads")
    ]
    paths = [
        ("data.task", "/etc/passwd", "/etc/no-such-passwd"),
        ("data.task", str(secret / "creds.csv"), str(secret / "gone.csv")),
        ("data.task", "../../secret/creds.csv", "../../secret/gone.csv"),
        ("data.task", "link.csv", "dangling.csv"),
        ("model.name_or_path", str(secret / "model"), str(secret / "no-model")),
        ("model.name_or_path", "org/name", "org/nothing"),
    ]
    out = []
    for field, present, absent in paths:
        section, name = field.split(".")
        out.append(
            (field, f"{section}:\n  {name}: '{present}'\n", f"{section}:\n  {name}: '{absent}'\n")
        )
    return rewards + out


def test_hostile_configs_through_submit_run_are_refused_in_one_line(token_server):
    from gradio_client import Client

    server, _, _ = token_server
    operator = Client(server.url, verbose=False, headers={"X-Studio-Token": TOKEN})
    secret = server.data_dir.parent / "secret"
    before = snapshot(server.data_dir)
    for field, present, absent in hostile_configs(secret):
        messages = []
        for text in (present, absent):
            with pytest.raises(Exception) as info:
                operator.predict(text, api_name="/submit_run")
            messages.append(str(info.value))
        assert field in messages[0] and "\n" not in messages[0].strip(), messages[0]
        if field != "data.reward":  # a path's refusal never tells whether it exists
            same = [m.replace("nothing", "name") for m in messages]
            assert same[0] == same[1], messages
        assert "hunter2" not in messages[0]
    assert snapshot(server.data_dir) == before  # nothing queued
