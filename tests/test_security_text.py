"""User text is shown as text, errors are one line (issue 12, faults 5 and 6).

Regressions: a run named `<img src=http://host/x.png>` made the status line fetch from an
outside host; `/run_status` returned 30-line tracebacks with server paths to anyone. The
Markdown each handler returns is rendered here by a CommonMark renderer with raw HTML on (what
Gradio's Markdown does with a name): no tag, link or image may come out of user text.
"""

from __future__ import annotations

import gradio as gr
import pytest
from markdown_it import MarkdownIt

from app import queries
from app.pages.common import as_text, user_error
from app.pages.evaluate import launch as launch_eval
from app.pages.monitor import status_text
from engine.config import ConfigError, StudioConfig
from engine.runs.admission import AccessPolicy
from engine.storage import RunStatus, Store

HOSTILE = (
    "<img src=http://evil.example/x.png> <script>alert(1)</script> [click](http://evil.example) "
    "![i](http://evil.example/i.png) <http://evil.example> http://evil.example **bold** `code`"
)
QUEUED = (RunStatus.QUEUED,)
TRACEBACK = (
    "Traceback (most recent call last):\n"
    '  File "/srv/secret/engine/training/train.py", line 88, in main\n'
    "    model = load_policy(cfg.model)\n"
    "OSError: the model folder has no config.json"
)


def rendered(markdown: str) -> str:
    return MarkdownIt("commonmark", {"html": True}).render(markdown)


def assert_inert(markdown: str) -> None:
    html = rendered(markdown)
    for tag in ("<img", "<a ", "<script", "<strong>bold", "<code>code"):
        assert tag not in html, (tag, html)


def test_the_renderer_would_render_the_raw_text():
    """The check below can fail: unescaped, the same text makes tags and links."""
    html = rendered(HOSTILE)
    assert "<img" in html and "<a " in html and "<script" in html


@pytest.fixture
def store(data_root):
    with Store(data_root.db_url) as s:
        yield s


def test_the_status_line_shows_a_name_and_an_error_as_text(store):
    run_id = store.create_run({}, name=HOSTILE, algorithm="verl", total_steps=3)
    assert store.finish_run(run_id, RunStatus.FAILED, error=HOSTILE, from_statuses=QUEUED)
    text = status_text(store, [run_id])
    assert_inert(text)
    assert text.count("evil") == 2 * HOSTILE.count("evil")  # name and error, shown as text


def test_run_status_returns_one_line_without_the_trace(store):
    run_id = store.create_run({}, name="r", algorithm="verl", total_steps=3)
    assert store.finish_run(run_id, RunStatus.FAILED, error=TRACEBACK, from_statuses=QUEUED)
    status = queries.run_status(store, run_id)
    assert status["error"] == "OSError: the model folder has no config.json"
    assert "/srv/secret" not in str(status)


def test_the_eval_message_shows_a_refused_name_as_text(store, data_root):
    src = store.create_run(StudioConfig().to_dict(), name="s", algorithm="grpo", total_steps=1)
    policy = AccessPolicy.network(data_root)
    message, _ = launch_eval(store, policy, f"#{src} s", [], False, HOSTILE, 5, 4, 4, 1.0, 0)
    assert "Not queued" in message and store.list_runs(kind="eval") == []
    assert_inert(message)


def test_user_error_is_one_escaped_line():
    err = user_error(ConfigError([("data.reward", HOSTILE), ("run.name", "two\nlines")]))
    assert isinstance(err, gr.Error) and "\n" not in err.message
    assert "<img" not in err.message and "&lt;img" in err.message


def test_as_text_keeps_the_words():
    assert rendered(as_text("a_b*c (d) 1.5 - x")).strip() == "<p>a_b*c (d) 1.5 - x</p>"


def test_the_log_tail_is_for_the_operator_only(store, data_root):
    """Run logs name server paths and hold traces: with a token required, a session without
    it gets the notice in the log box and every other output unchanged."""
    from app.auth import WriteGuard
    from app.main import build_app
    from app.pages.monitor import LOG_LOCKED
    from engine.storage import RunStatus

    run_id = store.create_run({}, name="r", algorithm="verl", total_steps=3)
    store.finish_run(
        run_id,
        RunStatus.FAILED,
        error='Traceback\n  File "/srv/secret/x.py"\nOSError',
        from_statuses=(RunStatus.QUEUED,),
    )
    label = queries.run_label(store.get_run(run_id))
    fns = {}
    for guard in (WriteGuard(), WriteGuard("t0ken")):
        blocks = build_app(store, data_root, guard=guard)
        fns[guard.required] = next(f.fn for f in blocks.fns.values() if f.name == "draw")
    open_out = fns[False]([label], "step", 0.0)
    locked_out = fns[True]([label], "step", 0.0)
    changed = [
        i
        for i, (a, b) in enumerate(zip(open_out, locked_out, strict=True))
        if a is not b and a != b
    ]
    assert LOG_LOCKED in locked_out and LOG_LOCKED not in open_out
    # the log tail and the full error box (a stored traceback) are locked, nothing else
    assert [locked_out[i] for i in changed if isinstance(locked_out[i], str)] == [LOG_LOCKED] * 2
