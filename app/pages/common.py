"""What every page shares: the per-app context, event settings and the tokenizer cache.

A page module exposes `build(ctx: AppContext) -> None`, laying out its components inside the
tab `app.main` opened for it, then wiring them. Cross-page navigation goes through the
`gr.State`s in the context (the launch page sets `focus_run`; the monitor listens to it).
"""

from __future__ import annotations

import html
import logging
import math
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gradio as gr
from gradio.context import Context

from app.auth import WriteGuard
from app.url_state import UrlState
from engine.config import EMBEDDED_MODEL, ConfigError
from engine.paths import DataRoot
from engine.runs.admission import AccessPolicy, one_line
from engine.storage import Store

log = logging.getLogger(__name__)

# Every UI event is private; only app.main's four API endpoints are public.
PRIVATE: dict[str, Any] = {"api_visibility": "private"}
# Read-only handlers (ticks, page loads, the inspector): never queue behind each other.
READ_ONLY: dict[str, Any] = {
    "api_visibility": "private",
    "concurrency_limit": None,
    "show_progress": "hidden",
}
TICK_S = 2.0


class PageId:
    """Tab ids (what `gr.Tabs(selected=...)` names)."""

    LAUNCH = "launch"
    MONITOR = "monitor"
    INSPECTOR = "inspector"
    COMPARE = "compare"


@dataclass(eq=False)
class TokenizerCache:
    """Tokenizers by model name, loaded once per app (for token boundaries in the inspector)."""

    _loaded: dict[str, Any] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def get(self, name_or_path: str) -> Any | None:
        with self._lock:
            if name_or_path not in self._loaded:
                self._loaded[name_or_path] = _load_tokenizer(name_or_path)
            return self._loaded[name_or_path]


def _model_path(name_or_path: str) -> str:
    if name_or_path != EMBEDDED_MODEL:
        return name_or_path
    from engine.resources import asset_dir

    return str(asset_dir("demo-model"))


def _load_tokenizer(name_or_path: str) -> Any | None:
    from transformers import AutoTokenizer

    from engine.models.loading import HUB_ID, is_explicit_path

    path = _model_path(name_or_path)
    hub_id = bool(HUB_ID.match(path)) and not is_explicit_path(path)
    if hub_id and Path(path).exists():  # a local folder shadows the id: read neither
        return None
    try:
        return AutoTokenizer.from_pretrained(path, local_files_only=hub_id)
    except Exception as exc:  # unknown or offline model: the inspector shows plain text
        log.warning("no tokenizer for %s (%s); responses are shown unshaded", name_or_path, exc)
        return None


@dataclass(eq=False)
class UrlPart:
    """What one page keeps in the URL (app.url_state): `read` turns the values of `inputs` into
    UrlState fields ({"runs": (3,)}); `restore(state, reset)` returns the values of `outputs`
    showing that place: on page load (reset False: what the URL does not name is left as it is)
    and on back / forward (reset True: what it does not name goes back to the default)."""

    inputs: list
    read: Callable[..., dict[str, Any]]
    outputs: list
    restore: Callable[[UrlState, bool], list]


@dataclass(eq=False)
class AppContext:
    """One app's handles. Built per `build_app` call; nothing here is module-level."""

    store: Store
    root: DataRoot
    tokenizers: TokenizerCache
    policy: AccessPolicy | None = None  # what page and API configs may name (None: network)
    guard: WriteGuard = field(default_factory=WriteGuard)  # checked in each write handler
    tabs: gr.Tabs | None = None
    focus_run: gr.State | None = None  # run id the monitor should show (set by launch)
    # (run id, step, group, response) the inspector should open (set by monitor); None: unset
    inspect_run: gr.State | None = None
    # Events that set focus_run / inspect_run and switch tabs. The receiving page, built later,
    # chains `.success(...)` on each, so its update follows the tab switch.
    monitor_openers: list = field(default_factory=list)
    inspector_openers: list = field(default_factory=list)
    space: Any = None  # app.spaces.SpaceAccess on a Hugging Face Space, else None
    # The URL keeps the place (app.main wires both): each page's part, and the user events after
    # which the place changed, with the tab they leave open.
    url_parts: list[UrlPart] = field(default_factory=list)
    url_events: list[tuple[Any, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.policy is None:  # untrusted unless told otherwise
            self.policy = AccessPolicy.network(self.root)


def elem_id(path: str) -> str:
    """The DOM id of a config field's input: `shaping.kappa` -> `cfg-shaping-kappa`."""
    return "cfg-" + path.replace(".", "-").replace("_", "-")


def on_show(fn, inputs, outputs, *, on_load: bool = True) -> None:
    """Run a read-only handler when the app loads (unless `on_load` is False: the URL's restore
    fills it then) and whenever this page's tab is opened."""
    tab, root = Context.block, Context.root_block
    if isinstance(tab, gr.Tab):
        tab.select(fn, inputs, outputs, **READ_ONLY)
    if root is not None and on_load:
        root.load(fn, inputs, outputs, **READ_ONLY)


def user_error(problem: str | Exception) -> gr.Error:
    """A refusal for the page or the API: one line, shown as text (gr.Error renders HTML).

    A ConfigError becomes its (field: message) pairs joined on one line; the trace, if any,
    stays in the server's log.
    """
    text = one_line(problem) if isinstance(problem, ConfigError) else str(problem)
    text = " ".join(text.split()) or "the request was refused"
    return gr.Error(html.escape(text[:1000]), print_exception=False)


MAX_STEP = 10**9  # no run gets near it; a larger bound is a typo (1e12), not a range


def step_bound(value: Any, field_name: str) -> int | None:
    """A step-range bound typed on a page: empty -> None (no bound), else a whole step number
    in [0, MAX_STEP]. Raises ValueError with one line naming `field_name` and the fix (for
    "-5", "1e12", "nan", "abc", "2.5")."""
    text = str(value if value is not None else "").strip()
    if not text:
        return None
    try:
        number = float(text)
    except ValueError:
        number = math.nan
    if not (math.isfinite(number) and number == int(number) and 0 <= number <= MAX_STEP):
        raise ValueError(
            f"{field_name} must be a whole step number from 0 to {MAX_STEP:,}, got {text!r}: "
            "fix it, or leave it empty for no bound."
        )
    return int(number)


def as_text(value: Any) -> str:
    r"""User-supplied text made safe inside Markdown: HTML escaped, Markdown syntax inert.

    >>> print(as_text("<img src=x> *bold* [a](b)"))
    &lt;img src=x&gt; \*bold\* \[a\]\(b\)
    """
    text = html.escape(str(value), quote=False)
    return "".join("\\" + c if c in MARKDOWN_SPECIAL else c for c in text)


MARKDOWN_SPECIAL = set("\\`*_{}[]()#+-.!|~>:")  # ":" and "." break autolinks


def row_response(row: Any) -> tuple[int, int, int] | None:
    """(step, group, response) of a clicked table row whose first three columns are those
    (client data: checked), else None.

    >>> row_response([3, 0, 2, "why", "5.0", "5", 1.0]), row_response(["x", 0, 1]), row_response(None)
    ((3, 0, 2), None, None)
    """
    try:
        step, group, sample = (int(v) for v in list(row or [])[:3])
    except (TypeError, ValueError):
        return None
    return (step, group, sample) if min(step, group, sample) >= 0 else None
