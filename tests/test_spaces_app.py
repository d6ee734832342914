"""The app as a Hugging Face Space, served for real in Spaces mode, on loopback.

The server starts with the variables the Spaces runtime sets (SPACE_ID, SPACE_AUTHOR_NAME,
SPACE_HOST and the OAuth app's OAUTH_*), SYSTEM unset (Docker Spaces do not set it: the app
must), and a bucket folder for snapshots. The Hugging Face login is faked only at Gradio's own
seam: the signed session cookie in which Gradio's OAuth callback stores the profile (Starlette's
SessionMiddleware keyed, as gradio/oauth.py does, by the OAuth client secret).

Proved: the app set SYSTEM=spaces (Gradio's real OAuth, not its mock login); anyone browses the
seeded runs; anonymous launch / cancel / delete / ... are refused through the page, gradio_client
and raw queue calls, with nothing changed; the owner's are accepted; "try it" runs are capped and
one at a time; a restart on a wiped disk restores the runs from the bucket snapshot.
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
import uuid
from pathlib import Path

import httpx
import pytest
from gradio_client import Client

from engine.storage import Store
from engine.storage.snapshots import _usable
from tests.fixtures.server import run_server

OWNER = "alice"
CLIENT_SECRET = "test-oauth-client-secret"
WAIT_S = 120
SMALL = "grpo:\n  max_completion_length: 48\nshaping:\n  stride: 4\nrun:\n"  # + run fields; fits the embedded model
WRITE_HANDLERS = ("launch", "run_demo", "cancel", "resume", "duplicate", "save", "ask", "really", "evaluate", "set_try_it")  # fmt: skip


def space_env(bucket: Path) -> dict[str, str | None]:
    return {
        "SPACE_ID": f"{OWNER}/verl-studio",
        "SPACE_AUTHOR_NAME": OWNER,
        "SPACE_HOST": "127.0.0.1",
        "OAUTH_CLIENT_ID": "test-client",
        "OAUTH_CLIENT_SECRET": CLIENT_SECRET,
        "OAUTH_SCOPES": "openid profile read-memberships",
        "OPENID_PROVIDER_URL": "http://127.0.0.1:9",  # never reached: logins are faked below
        "SYSTEM": None,
        "HF_TOKEN": None,
        "VERL_STUDIO_ADMIN_TOKEN": None,
        "VERL_STUDIO_SNAPSHOTS": str(bucket),
        "VERL_STUDIO_SNAPSHOT_POLL_S": "0.3",
        "VERL_STUDIO_TRY_IT_MAX_STEPS": "5",
    }


def login_cookie(username: str) -> str:
    """Gradio's session cookie after a Hugging Face login of `username` (gradio/oauth.py keeps
    `oauth_info` in Starlette's signed session, keyed by sha256(OAUTH_CLIENT_SECRET + "-v4"))."""
    from itsdangerous import TimestampSigner

    info = {
        "access_token": f"hf_oauth_{username}",
        "token_type": "bearer",
        "scope": "openid profile",
        "expires_at": int(time.time()) + 3600,
        "userinfo": {
            "sub": "1",
            "name": username.title(),
            "preferred_username": username,
            "profile": f"https://huggingface.co/{username}",
            "picture": "",
        },
    }
    key = hashlib.sha256((CLIENT_SECRET + "-v4").encode()).hexdigest()
    data = base64.b64encode(json.dumps({"oauth_info": info}).encode())
    return "session=" + TimestampSigner(key).sign(data).decode()


def fn_ids() -> tuple[dict[str, int], dict[str, list], list[str]]:
    """Handler name -> fn_index and default inputs, and the names of the write handlers, from
    the same app built in this process (fn ids follow build order)."""
    import tempfile

    import gradio.oauth

    from app.main import build_app
    from app.spaces import SpaceAccess
    from engine.config import SpacesSettings
    from engine.paths import resolve

    with tempfile.TemporaryDirectory() as tmp, pytest.MonkeyPatch.context() as mp:
        mp.setenv("SYSTEM", "spaces")  # as the served app builds it: Gradio's real OAuth routes
        mp.setenv("SPACE_ID", f"{OWNER}/verl-studio")
        for name in (
            "OAUTH_CLIENT_ID",
            "OAUTH_CLIENT_SECRET",
            "OAUTH_SCOPES",
            "OPENID_PROVIDER_URL",
        ):
            mp.setattr(gradio.oauth, name, "unused")
        root = resolve(tmp)
        with Store(root.db_url) as store:
            settings = SpacesSettings(space_id=f"{OWNER}/verl-studio", owner=OWNER)
            blocks = build_app(store, root, space=SpaceAccess.from_settings(settings))
            ids = {f.name: i for i, f in blocks.fns.items()}
            writers = sorted({f.name for f in blocks.fns.values() if _writes(f.fn)})
            defaults = {f.name: [getattr(c, "value", None) for c in f.inputs] for f in blocks.fns.values()}  # fmt: skip
    return ids, defaults, writers


def _writes(fn) -> bool:
    """Whether a registered handler is a write handler: it asks the write guard (app.auth)."""
    import inspect

    try:
        source = inspect.getsource(fn)
    except (OSError, TypeError):
        return False
    return "guard.require(" in source or "spaces.submit(" in source


def queue_call(
    url: str, fn_index: int, data: list, cookie: str | None = None, session: str | None = None
) -> dict:
    """One raw queue request (what the page sends), bounded; returns process_completed.
    Calls sharing `session` share the page's state (e.g. the run a delete question named)."""
    session = session or uuid.uuid4().hex
    headers = {"Cookie": cookie} if cookie else {}
    with httpx.Client(base_url=url, headers=headers, timeout=WAIT_S) as http:
        joined = http.post(
            "gradio_api/queue/join",
            json={
                "data": data,
                "fn_index": fn_index,
                "session_hash": session,
                "event_data": None,
                "trigger_id": None,
            },  # fmt: skip
        )
        assert joined.status_code == 200, joined.text
        with http.stream("GET", "gradio_api/queue/data", params={"session_hash": session}) as sse:
            for line in sse.iter_lines():
                if not line.startswith("data:"):
                    continue
                msg = json.loads(line[5:])
                if msg.get("msg") == "process_completed":
                    return msg
    raise AssertionError("no process_completed message")


def snapshot_of(db_url: str) -> list[tuple]:
    with Store(db_url) as store:
        return [(r.id, r.name, r.notes, str(r.status)) for r in store.list_runs()]


def label(db_url: str, run_id: int) -> str:
    from app.queries import run_label

    with Store(db_url) as store:
        return run_label(store.get_run(run_id))


@pytest.fixture(scope="module")
def space(tmp_path_factory):
    base = tmp_path_factory.mktemp("space")
    fns, defaults, writers = fn_ids()
    with run_server(base / "disk", worker=False, extra_env=space_env(base / "bucket")) as server:
        server.bucket = base / "bucket"
        server.fns, server.defaults, server.writers = fns, defaults, writers
        yield server


def test_the_app_set_system_spaces_so_gradio_uses_real_oauth(space):
    config = httpx.get(f"{space.url}config", timeout=WAIT_S).json()
    assert config["space_id"] == f"{OWNER}/verl-studio"  # Blocks saw SYSTEM=spaces (get_space)
    # Gradio's mock login would sign anyone in at /login/callback; the real one does not
    r = httpx.get(f"{space.url}login/callback", timeout=WAIT_S, follow_redirects=False)
    cookie = "; ".join(f"{k}={v}" for k, v in r.cookies.items())
    before = snapshot_of(space.db_url)
    msg = queue_call(space.url, space.fns["run_demo"], [], cookie or None)
    assert not msg["success"] and snapshot_of(space.db_url) == before


def test_anyone_browses_the_seeded_runs(space):
    client = Client(space.url, verbose=False)
    runs = client.predict(api_name="/list_runs")
    seeded = {r["algorithm"]: r for r in runs if r["status"] == "completed"}
    assert set(seeded) == {"verl", "grpo"}
    status = client.predict(seeded["verl"]["id"], api_name="/run_status")
    assert status["step"] == status["total_steps"] > 0
    # the pages' own read handlers answer anonymous callers too (the inspector's run list)
    page = httpx.get(space.url, timeout=WAIT_S)
    assert page.status_code == 200


def test_anonymous_writes_are_refused_everywhere(space):
    seeded = [r for r in snapshot_of(space.db_url) if r[3] == "completed"]
    target = label(space.db_url, seeded[0][0])  # a run the page's pickers list
    before = snapshot_of(space.db_url)
    client = Client(space.url, verbose=False)
    for api, args in (
        ("/submit_run", (SMALL + "  max_steps: 3\n",)),
        ("/cancel_run", (seeded[0][0],)),
    ):
        with pytest.raises(Exception, match="owner"):
            client.predict(*args, api_name=api)
    data = {
        "launch": space.defaults["launch"],
        "run_demo": [],
        "cancel": [[target]],
        "resume": [[target]],
        "duplicate": [[target]],
        "save": [[target], "pwned", "pwned"],
        "ask": [[target]],
        "really": [[target]],
        "evaluate": [None, *space.defaults["evaluate"][1:]],
        "set_try_it": [True],
    }
    assert set(data) == set(WRITE_HANDLERS) <= set(space.writers)
    # every write handler the app registers (the walk), with the page's own default inputs,
    # then the listed ones aimed at a seeded run
    calls = [(n, space.defaults[n]) for n in space.writers] + list(data.items())
    for name, args in calls:
        msg = queue_call(space.url, space.fns[name], args)
        assert not msg["success"], name
        assert "only the owner of this space" in json.dumps(msg.get("output", {})).lower(), (
            name,
            msg,
        )
    # a stranger's own Hugging Face login is not the owner's
    msg = queue_call(space.url, space.fns["really"], [[target]], login_cookie("mallory"))
    assert not msg["success"]
    assert snapshot_of(space.db_url) == before


@pytest.mark.browser
def test_the_page_refuses_a_visitor_and_lets_the_owner_launch(space, page, artifacts_dir):
    """In Chromium: the about header and login button, the seeded runs in the Runs table; a
    visitor's Run the demo is refused with one line; the owner's (signed in) is queued."""
    from playwright.sync_api import expect

    before = snapshot_of(space.db_url)
    page.goto(space.url)
    expect(page.locator("#space-about")).to_contain_text("arXiv:2509.23808", timeout=WAIT_S * 1000)
    expect(page.locator("#space-login")).to_be_visible()
    page.get_by_role("tab", name="Runs").click(timeout=WAIT_S * 1000)
    expect(page.locator("#runs-table")).to_contain_text("demo-verl", timeout=WAIT_S * 1000)
    page.get_by_role("tab", name="Launch").click(timeout=WAIT_S * 1000)
    page.locator("#run-demo").click(timeout=WAIT_S * 1000)
    expect(page.get_by_text("Only the owner of this Space").first).to_be_visible(timeout=WAIT_S * 1000)  # fmt: skip
    page.screenshot(path=artifacts_dir / "space-visitor-refused.png", full_page=True)
    assert snapshot_of(space.db_url) == before

    name, value = login_cookie(OWNER).split("=", 1)
    page.context.add_cookies([{"name": name, "value": value, "url": space.url}])
    page.reload()
    expect(page.locator("#space-login")).to_contain_text(OWNER, timeout=WAIT_S * 1000)
    page.locator("#run-demo").click(timeout=WAIT_S * 1000)
    expect(page.locator("#run-status")).to_contain_text("queued", timeout=WAIT_S * 1000)
    with Store(space.db_url) as store:
        (run,) = store.list_runs(status="queued")
    owner = Client(space.url, verbose=False, headers={"Cookie": login_cookie(OWNER)})
    assert owner.predict(run.id, api_name="/cancel_run") == "cancelled"


def test_owner_launches_cancels_and_deletes(space):
    owner = login_cookie(OWNER)
    client = Client(space.url, verbose=False, headers={"Cookie": owner})
    run_id = client.predict(SMALL + "  name: owners-run\n  max_steps: 3\n", api_name="/submit_run")
    with pytest.raises(Exception, match="one run at a time"):  # still queued: one at a time
        client.predict(SMALL + "  max_steps: 3\n", api_name="/submit_run")
    assert client.predict(run_id, api_name="/cancel_run") == "cancelled"
    # the page's handlers, as the owner: launch with the form's own values, cancel, delete
    msg = queue_call(space.url, space.fns["launch"], space.defaults["launch"], owner)
    assert msg["success"], msg
    with Store(space.db_url) as store:
        (launched,) = store.list_runs(status="queued")
    assert client.predict(launched.id, api_name="/cancel_run") == "cancelled"
    seeded = {name: run_id for run_id, name, _, _ in snapshot_of(space.db_url)}
    verl, grpo = label(space.db_url, seeded["demo-verl"]), label(space.db_url, seeded["demo-grpo"])
    msg = queue_call(space.url, space.fns["cancel"], [[verl]], owner)
    assert msg["success"] and "had already finished (completed): nothing was done" in json.dumps(
        msg["output"]
    ), msg
    page = uuid.uuid4().hex  # one page: the question names the run, then "Yes" deletes it
    msg = queue_call(space.url, space.fns["ask"], [[grpo]], owner, session=page)
    assert msg["success"], msg
    msg = queue_call(space.url, space.fns["really"], [None], owner, session=page)
    assert msg["success"], msg
    assert seeded["demo-grpo"] not in [r[0] for r in snapshot_of(space.db_url)]


def test_try_it_runs_are_capped_and_one_at_a_time(space):
    owner = login_cookie(OWNER)
    assert queue_call(space.url, space.fns["set_try_it"], [True], owner)["success"]
    try:
        msg = queue_call(space.url, space.fns["run_demo"], [])
        assert msg["success"], msg
        with Store(space.db_url) as store:
            (run,) = store.list_runs(status="queued")
        assert run.name == "try it: demo" and run.total_steps == 5
        assert not queue_call(space.url, space.fns["run_demo"], [])["success"]
        assert not queue_call(space.url, space.fns["launch"], space.defaults["launch"])["success"]
        client = Client(space.url, verbose=False, headers={"Cookie": owner})
        assert client.predict(run.id, api_name="/cancel_run") == "cancelled"
    finally:
        queue_call(space.url, space.fns["set_try_it"], [False], owner)


def test_restart_on_a_wiped_disk_restores_runs_from_the_bucket(space, tmp_path):
    """After the owner's runs above ended, a snapshot is in the bucket; a new server on an empty
    local disk (a Space restart) restores it rather than seeding again."""
    want = snapshot_of(space.db_url)
    assert "owners-run" in [name for _, name, _, _ in want] and "demo-grpo" not in str(want)
    deadline = time.monotonic() + WAIT_S
    while True:  # the keeper polls every 0.3 s; a snapshot follows the last finished run
        snaps = sorted(space.bucket.glob("studio-*.db"))
        if snaps and _usable(snaps[-1]):  # the newest may still be being copied
            with Store(f"sqlite:///{snaps[-1]}") as snap:
                if [(r.id, r.name, r.notes, str(r.status)) for r in snap.list_runs()] == want:
                    break
        assert time.monotonic() < deadline, "no snapshot of the finished runs in the bucket"
        time.sleep(0.3)
    env = space_env(space.bucket)
    with run_server(tmp_path / "wiped", worker=False, extra_env=env) as restarted:
        assert snapshot_of(restarted.db_url) == want
        client = Client(restarted.url, verbose=False)
        assert {r["id"] for r in client.predict(api_name="/list_runs")} == {r[0] for r in want}
