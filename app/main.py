"""The dashboard: `build_app(store, root) -> gr.Blocks` and `verl-studio serve`.

Pages are mounted from `PAGES`, one module per page; each exposes `build(ctx: AppContext)`.
Adding a page is one line there. The four public API endpoints are declared here; every UI event
is private (`api_visibility="private"`).

`verl-studio serve` (app/cli.py) opens the data root's store, starts an embedded worker
(`start_worker`, unless `--no-worker`) and serves the app (`launch`) on 127.0.0.1 by default
until SIGINT/SIGTERM.
"""

from __future__ import annotations

import importlib
import logging
import socket
import threading

import gradio as gr
from sqlalchemy.engine import make_url

from app import queries
from app.pages.common import AppContext, PageId, TokenizerCache
from app.pages.inspector import CSS as INSPECTOR_CSS
from engine.config import EMBEDDED_MODEL, ConfigError, StudioConfig
from engine.paths import DataRoot
from engine.runs import service
from engine.storage import Store

log = logging.getLogger(__name__)

TITLE = "VERL Studio"
# (tab id, tab title, module with build(ctx)) — one line per page.
PAGES: tuple[tuple[str, str, str], ...] = (
    (PageId.LAUNCH, "Launch", "app.pages.launch"),
    (PageId.MONITOR, "Runs", "app.pages.monitor"),
    (PageId.INSPECTOR, "Trace inspector", "app.pages.inspector"),
    ("compare", "Compare", "app.pages.compare"),
    ("analysis", "Analysis", "app.pages.analysis"),
    ("evaluate", "Evaluate", "app.pages.evaluate"),
    ("playground", "Playground", "app.pages.playground"),
)
CSS = INSPECTOR_CSS + " #data-footer{font-size:0.85em;color:#666}"


def data_location(root: DataRoot) -> str:
    url = make_url(root.db_url).render_as_string(hide_password=True)
    return f"Data: `{root.root}` · database: `{url}`"


def build_app(store: Store, root: DataRoot) -> gr.Blocks:
    """The whole dashboard over one store; nothing outlives the returned Blocks but the store."""
    ctx = AppContext(store=store, root=root, tokenizers=TokenizerCache())
    # the inspector's first open would otherwise wait seconds for transformers + the tokenizer
    threading.Thread(
        target=ctx.tokenizers.get, args=(EMBEDDED_MODEL,), name="tokenizer-warmup", daemon=True
    ).start()
    with gr.Blocks(title=TITLE) as app:
        gr.Markdown(f"## {TITLE} · velocity-exploiting rank learning")
        ctx.focus_run = gr.State(None)
        ctx.inspect_run = gr.State(None)
        with gr.Tabs() as tabs:
            ctx.tabs = tabs
            for page_id, title, module in PAGES:
                with gr.Tab(title, id=page_id, elem_id=f"tab-{page_id}"):
                    importlib.import_module(module).build(ctx)
        gr.Markdown(data_location(root), elem_id="data-footer")
        _api(ctx)
    return app


def _api(ctx: AppContext) -> None:
    """The public endpoints: /submit_run, /run_status, /cancel_run, /list_runs."""
    store = ctx.store

    def submit_run(config_yaml: str) -> int:
        """Queue a run from a YAML config (the same shape as a recipe); returns its id."""
        try:
            cfg = StudioConfig.from_yaml(config_yaml)
        except ConfigError as exc:
            raise gr.Error(str(exc)) from exc
        return service.submit(store, cfg, origin="the API")

    def run_status(run_id: int) -> dict:
        """Status, progress and error of one run."""
        return queries.run_status(store, int(run_id))

    def cancel_run(run_id: int) -> str:
        """Request cancellation; returns the run's status afterwards."""
        try:
            return str(service.cancel(store, int(run_id)))
        except service.RunError as exc:
            raise gr.Error(str(exc)) from exc

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


# ----------------------------------------------------------------------------- serve


def free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def start_worker(root: DataRoot, stop: threading.Event) -> threading.Thread:
    """An embedded `engine.runs.worker.Worker` on its own store, in a daemon thread, until `stop`."""
    from engine.runs.worker import Worker

    worker = Worker(Store.open(root), root, stop=stop)
    thread = threading.Thread(target=worker.run, name="verl-studio-worker", daemon=True)
    thread.start()
    return thread


def launch(store: Store, root: DataRoot, *, host: str, port: int) -> tuple[gr.Blocks, str]:
    """Build the dashboard and serve it on host:port (0 = a free one) without blocking;
    returns (the app, its URL). `app.close()` stops it."""
    port = port or free_port(host)
    app = build_app(store, root)
    app.queue(default_concurrency_limit=4)
    _, url, _ = app.launch(
        server_name=host,
        server_port=port,
        prevent_thread_lock=True,
        quiet=True,
        css=CSS,
        footer_links=["api"],
    )
    return app, url
