"""The dashboard: `build_app(store, root) -> gr.Blocks` and `verl-studio serve`.

Pages are mounted from `PAGES`, one module per page; each exposes `build(ctx: AppContext)`.
Adding a page is one line there. The public API endpoints are declared here (four, plus the
read-only twins of the monitor's refresh and the inspector, app.read_api); every UI event is
private (`api_visibility="private"`).

`verl-studio serve` (app/cli.py) opens the data root's store, starts an embedded worker
(`start_worker`, unless `--no-worker`) and serves the app (`launch`) on 127.0.0.1 by default
until SIGINT/SIGTERM.
"""

from __future__ import annotations

import importlib
import ipaddress
import logging
import socket
import threading
from typing import Any

import gradio as gr
from sqlalchemy.engine import make_url

from app import queries, read_api, spaces, url_state
from app.auth import WriteGuard
from app.pages.common import READ_ONLY, AppContext, PageId, TokenizerCache, user_error
from app.pages.inspector import CSS as INSPECTOR_CSS
from app.pages.launch import CSS as LAUNCH_CSS
from app.pages.monitor import CSS as MONITOR_CSS
from app.spaces import SpaceAccess, owner_bar
from engine.config import EMBEDDED_MODEL, ConfigError, parse_config_yaml
from engine.paths import DataRoot
from engine.runs import service
from engine.runs.admission import AccessPolicy, review_submission
from engine.storage import Store

log = logging.getLogger(__name__)

TITLE = "VERL Studio"
# (tab id, tab title, module with build(ctx)) — one line per page.
PAGES: tuple[tuple[str, str, str], ...] = (
    (PageId.LAUNCH, "Launch", "app.pages.launch"),
    (PageId.MONITOR, "Runs", "app.pages.monitor"),
    (PageId.INSPECTOR, "Trace inspector", "app.pages.inspector"),
    (PageId.COMPARE, "Compare", "app.pages.compare"),
    ("analysis", "Analysis", "app.pages.analysis"),
    ("evaluate", "Evaluate", "app.pages.evaluate"),
    ("playground", "Playground", "app.pages.playground"),
)
TAB_IDS = tuple(page_id for page_id, _, _ in PAGES)
CSS = INSPECTOR_CSS + MONITOR_CSS + LAUNCH_CSS + " #data-footer{font-size:0.85em;color:#666}"
# The URL keeps the place (app.url_state). Written on user actions only: a new history entry
# when the place moved. Back / forward (popstate) restore through the hidden button's event, a
# link through the load's. `verlPlace.gen` counts those restores; a write carries the count it
# was triggered under and is dropped when a restore came since (it would push a place the user
# has left, or one from before the link was applied). A tab's select event is also dropped
# while a restore is being applied (`busy`): the restore's own tab switch fires it, half-way.
# A user's pick made meanwhile is kept: dropping it left the URL one action behind.
READ_QUERY = "() => [window.location.search]"
STAMP_WRITE = """(...values) => [...values.slice(0, -1), String(window.verlPlace.gen)]"""
STAMP_TAB_WRITE = """(...values) => [
  ...values.slice(0, -1), window.verlPlace.busy ? "-" : String(window.verlPlace.gen)
]"""
SETTLED = "() => { setTimeout(() => { window.verlPlace.busy = false; }, 500); }"
PUSH_QUERY = """(stamped) => {
  const text = stamped || "";
  const cut = text.indexOf(" ");
  if (cut < 0 || text.slice(0, cut) !== String(window.verlPlace.gen)) return;
  const q = text.slice(cut + 1);
  if (q !== window.location.search) {
    window.history.pushState(null, "", q || window.location.pathname);
  }
}"""
CLICK_IF_QUERY = """() => {
  if (!window.location.search) return;
  window.verlPlace.gen += 1;
  window.verlPlace.busy = true;
  document.getElementById("url-load").click();
}"""
HEAD = """<script>
window.verlPlace = {gen: 0, busy: false};
window.addEventListener("popstate", () => {
  window.verlPlace.gen += 1;
  window.verlPlace.busy = true;
  const restore = document.getElementById("url-restore");
  if (restore) restore.click();
});
</script>"""


def data_location(root: DataRoot) -> str:
    url = make_url(root.db_url).render_as_string(hide_password=True)
    return f"Data: `{root.root}` · database: `{url}`"


def build_app(
    store: Store,
    root: DataRoot,
    *,
    policy: AccessPolicy | None = None,
    guard: WriteGuard | None = None,
    space: SpaceAccess | None = None,
) -> gr.Blocks:
    """The whole dashboard over one store; nothing outlives the returned Blocks but the store.

    `policy` is what configs from the page and the API may name (default: the network policy
    over `root` with default limits); `guard` who may change runs (default: anyone, as on a
    loopback-only server); `space` a Hugging Face Space's owner rules (app.spaces), which add
    the about header, the login button and the owner's try-it switch."""
    ctx = AppContext(
        store=store,
        root=root,
        tokenizers=TokenizerCache(),
        policy=policy or AccessPolicy.network(root),
        guard=guard or WriteGuard(),
        space=space,
    )
    # the inspector's first open would otherwise wait seconds for transformers + the tokenizer
    threading.Thread(
        target=ctx.tokenizers.get, args=(EMBEDDED_MODEL,), name="tokenizer-warmup", daemon=True
    ).start()
    with gr.Blocks(title=TITLE) as app:
        gr.Markdown(f"## {TITLE} · velocity-exploiting rank learning")
        if space is not None:
            owner_bar(ctx)
        if ctx.guard.token is not None:
            _token_box(ctx)
        ctx.focus_run = gr.State(None)
        ctx.inspect_run = gr.State(None)
        tab_selects = []
        with gr.Tabs() as tabs:
            ctx.tabs = tabs
            for page_id, title, module in PAGES:
                with gr.Tab(title, id=page_id, elem_id=f"tab-{page_id}") as tab:
                    importlib.import_module(module).build(ctx)
                tab_selects.append((tab.select, page_id))
        gr.Markdown(data_location(root), elem_id="data-footer")
        _wire_url(ctx, app, tab_selects)
        _api(ctx)
    return app


def _wire_url(ctx: AppContext, app: gr.Blocks, tab_selects: list) -> None:
    """Page state <-> URL query (app.url_state): each page's `UrlPart` reads and restores its
    piece; the place is written after each user event in `ctx.url_events` and each tab's
    select event (`tab_selects`, (event, tab id) pairs), and restored on page load and on
    back / forward."""
    query = gr.Textbox(visible="hidden", elem_id="url-state")
    restore_btn = gr.Button(visible="hidden", elem_id="url-restore")
    parts = ctx.url_parts
    inputs = [c for part in parts for c in part.inputs]
    # the tab last: its switch fires the tab's select event, best after the rest is in place
    outputs = [*(c for part in parts for c in part.outputs), ctx.tabs]

    def write(tab: str):
        def place(*values) -> str:
            """The place after a user event as "<gen> <query>" (gen: see STAMP_WRITE)."""
            *values, gen = values
            fields, at = {"tab": tab}, 0
            for part in parts:
                fields.update(part.read(*values[at : at + len(part.inputs)]))
                at += len(part.inputs)
            stamp = gen if isinstance(gen, str) and gen.isascii() and gen.isdigit() else "-"
            return f"{stamp} {url_state.to_query(url_state.UrlState(**fields))}"

        return place

    def restore(text: str, reset: bool) -> list:
        state = url_state.parse(text, TAB_IDS)
        tab = state.tab or (TAB_IDS[0] if reset else None)
        return [
            *(value for part in parts for value in part.restore(state, reset)),
            gr.Tabs(selected=tab) if tab else gr.skip(),
        ]

    stamped = [(event, tab, STAMP_WRITE) for event, tab in ctx.url_events]
    for trigger, tab, stamp in [*stamped, *((e, t, STAMP_TAB_WRITE) for e, t in tab_selects)]:
        trigger(write(tab), [*inputs, query], [query], js=stamp, **READ_ONLY).success(
            None, [query], None, js=PUSH_QUERY, **READ_ONLY
        )
    # A load with a query restores it, keeping what the query does not name (a click made while
    # the page loads); a bare URL's load sends nothing. Back / forward go to exactly the place
    # the URL names; the latest of several quick ones wins.
    load_btn = gr.Button(visible="hidden", elem_id="url-load")
    load_btn.click(
        lambda text: restore(text, False), [query], outputs, js=READ_QUERY, **READ_ONLY
    ).then(None, js=SETTLED, **READ_ONLY)
    app.load(None, js=CLICK_IF_QUERY)
    restore_btn.click(
        lambda text: restore(text, True),
        [query],
        outputs,
        js=READ_QUERY,
        trigger_mode="always_last",
        **READ_ONLY,
    ).then(None, js=SETTLED, **READ_ONLY)


def _token_box(ctx: AppContext) -> None:
    """The operator token, typed once per browser session (see app.auth)."""
    with gr.Row(elem_id="token-row"):
        token = gr.Textbox(
            label="Operator token (needed to launch, cancel, delete or edit runs)",
            type="password",
            elem_id="operator-token",
            scale=4,
        )
        unlock_btn = gr.Button("Unlock", elem_id="unlock-btn", scale=1)
    state = gr.Markdown("Locked: read-only until the token is entered.", elem_id="token-state")

    def unlock(given: str, request: gr.Request = None):
        if not ctx.guard.unlock(given or "", request):
            raise user_error("Wrong token.")
        return "", "Unlocked for this browser session."

    unlock_btn.click(unlock, [token], [token, state], api_visibility="private")
    token.submit(unlock, [token], [token, state], api_visibility="private")


def _api(ctx: AppContext) -> None:
    """The public endpoints: /submit_run, /run_status, /cancel_run, /list_runs.

    The two that write check the operator token (app.auth) inside the handler; a refusal or a
    bad config is one line."""
    store = ctx.store

    def submit_run(config_yaml: str, request: gr.Request = None) -> int:
        """Queue a run from a YAML config (the same shape as a recipe); returns its id."""
        ctx.guard.require(request)
        try:  # every problem in one answer: the config's and this server's (as the form)
            data = parse_config_yaml(str(config_yaml or ""), "the config")
            cfg, errors = review_submission(data, ctx.policy)
            if cfg is None:
                raise ConfigError(errors)
            return spaces.submit(ctx, request, cfg, origin="the API")
        except ConfigError as exc:
            raise user_error(exc) from None

    def run_status(run_id: int) -> dict:
        """Status, progress and error (one line) of one run."""
        return queries.run_status(store, api_int(run_id, "run_id", low=1))

    def cancel_run(run_id: int, request: gr.Request = None) -> str:
        """Request cancellation; returns the run's status afterwards."""
        ctx.guard.require(request)
        run_id = api_int(run_id, "run_id", low=1)
        try:
            return str(service.cancel(store, run_id))
        except service.RunError as exc:
            raise user_error(exc) from None

    def list_runs() -> list[dict]:
        """Every run: id, name, algorithm, status, step, total_steps."""
        return [
            {
                "id": r.id,
                "name": r.name,
                "kind": r.kind,
                "algorithm": r.algorithm,
                "status": str(r.status),
                "step": r.step,
                "total_steps": r.total_steps,
            }
            for r in store.list_runs()
        ]

    gr.api(submit_run, api_name="submit_run")
    gr.api(run_status, api_name="run_status", concurrency_limit=None)
    gr.api(cancel_run, api_name="cancel_run")
    gr.api(list_runs, api_name="list_runs", concurrency_limit=None)
    _read_api(ctx)


def _read_api(ctx: AppContext) -> None:
    """The read-only twins of the monitor's refresh and the inspector (app.read_api)."""

    def monitor_refresh(run_id: int) -> dict:
        """What the monitor draws for one run: status line, health flags, points per chart."""
        return read_api.monitor_refresh(ctx, api_int(run_id, "run_id", low=1))

    def inspector_data(run_id: int, step: int | None = None, group: int | None = None) -> dict:
        """One prompt group of a run as the inspector shows it (default: latest step)."""
        step, group = (None if v is None else api_int(v, name) for v, name in ((step, "step"), (group, "group")))  # fmt: skip
        return read_api.inspector_data(ctx, api_int(run_id, "run_id", low=1), step, group)

    gr.api(monitor_refresh, api_name="monitor_refresh", concurrency_limit=None)
    gr.api(inspector_data, api_name="inspector_data", concurrency_limit=None)


def api_int(value: Any, what: str, low: int = 0) -> int:
    """A run id, step or group from an API caller: a whole number in [low, 2**31 - 1] (the
    store's 32-bit ids), else one line naming `what` (no OverflowError from the database).

    >>> api_int("7", "run_id", low=1), api_int(3.0, "step")
    (7, 3)
    """
    try:
        number = int(value.strip() if isinstance(value, str) else value)
        whole = not isinstance(value, bool) and (not isinstance(value, float) or value == number)
    except (TypeError, ValueError, OverflowError):
        whole = False
    if not whole or not low <= number <= url_state.MAX_INT:
        raise user_error(f"{what} must be a whole number from {low} to {url_state.MAX_INT}")
    return number


# ----------------------------------------------------------------------------- serve


def free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def start_worker(root: DataRoot, stop: threading.Event) -> threading.Thread:
    """An embedded `engine.runs.worker.Worker` on its own store, in a daemon thread, until `stop`;
    then it stops its runs cleanly (each checkpoints and is marked interrupted, resumable)."""
    from engine.runs.worker import Worker, WorkerSettings

    worker = Worker(Store.open(root), root, WorkerSettings(stop_runs_on_exit=True), stop=stop)
    thread = threading.Thread(target=worker.run, name="verl-studio-worker", daemon=True)
    thread.start()
    return thread


def is_loopback(host: str) -> bool:
    """Whether binding `host` keeps the server on this machine.

    >>> is_loopback("127.0.0.1"), is_loopback("localhost"), is_loopback("0.0.0.0")
    (True, True, False)
    """
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def launch(
    store: Store,
    root: DataRoot,
    *,
    host: str,
    port: int,
    policy: AccessPolicy | None = None,
    guard: WriteGuard | None = None,
    space: SpaceAccess | None = None,
) -> tuple[gr.Blocks, str]:
    """Build the dashboard and serve it on host:port (0 = a free one) without blocking;
    returns (the app, its URL). `app.close()` stops it. `policy` and `guard` as in build_app;
    uploads through Gradio are capped at the policy's max_upload_mb."""
    port = port or free_port(host)
    policy = policy or AccessPolicy.network(root)
    app = build_app(store, root, policy=policy, guard=guard, space=space)
    app.queue(default_concurrency_limit=4)
    _, url, _ = app.launch(
        server_name=host,
        server_port=port,
        prevent_thread_lock=True,
        quiet=True,
        css=CSS,
        head=HEAD,
        footer_links=["api"],
        max_file_size=int(policy.limits.max_upload_mb * (1 << 20)),
        show_error=True,
        ssr_mode=False,  # SSR needs Node in the image; a Docker Space serves the client bundle
    )
    return app, url
