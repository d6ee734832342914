"""The page's place in its URL (pure): which page, which runs, which response.

A query such as `?tab=inspector&runs=3,5&run=3&step=2&group=0&response=1` says: the Trace
inspector tab is open, runs #3 and #5 are on the Runs page's charts, and the inspector shows
response 1 of prompt group 0 at step 2 of run #3. `compare=3,5&metric=er_mean` are the Compare
page's runs and metric. `app.main` writes it on user actions (tab
clicks, picks) and reads it back on page load and on browser back/forward.

The query comes from whoever wrote the link, so `parse` is strict and never raises: unknown keys
are ignored, and a value that is not what its key holds (a tab that does not exist, a number out
of range, text where a number goes) is dropped as if absent. A well-formed id of a run that does
not exist is kept: the page says so where the run would be shown.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from urllib.parse import parse_qsl, quote, urlencode

MAX_QUERY = 2000  # characters read from a query; the rest is ignored
MAX_RUNS = 16  # runs on the charts kept from a link
MAX_INT = 2**31 - 1  # ids, steps, groups and sample indices are 32-bit in the store
KEYS = ("tab", "runs", "run", "step", "group", "response", "compare", "metric")
MAX_NAME = 64  # characters of a metric name


@dataclass(frozen=True)
class UrlState:
    """One place in the dashboard. `None` / `()`: not named (the page's default)."""

    tab: str | None = None  # a tab id (app.main.PAGES)
    runs: tuple[int, ...] = ()  # run ids on the Runs page's charts, in order
    run: int | None = None  # the inspector's run id
    step: int | None = None  # the inspector's step
    group: int | None = None  # its prompt group index
    response: int | None = None  # its response (sample) index
    compare: tuple[int, ...] = ()  # run ids on the Compare page, in order
    metric: str | None = None  # the Compare page's metric (a step column name)


def parse_int(text: str | None, low: int = 0, high: int = MAX_INT) -> int | None:
    """A decimal integer in [low, high], or None for anything else.

    >>> parse_int("12"), parse_int("-1"), parse_int("1e3"), parse_int("٣"), parse_int(None)
    (12, None, None, None, None)
    """
    if text is None or not text.isascii() or not text.isdigit() or len(text) > 10:
        return None
    value = int(text)
    return value if low <= value <= high else None


def parse_runs(text: str | None) -> tuple[int, ...]:
    """Run ids from "3,5": each a positive integer, duplicates and bad items dropped.

    >>> parse_runs("3,5,x,3,0"), parse_runs("")
    ((3, 5), ())
    """
    ids: list[int] = []
    for item in (text or "").split(","):
        run_id = parse_int(item.strip(), low=1)
        if run_id is not None and run_id not in ids:
            ids.append(run_id)
    return tuple(ids[:MAX_RUNS])


def parse_name(text: str | None) -> str | None:
    """A column name ("er_mean"): lower-case ASCII letters, digits and "_", else None. Whether
    the column exists is the page's to say.

    >>> parse_name("er_mean"), parse_name("x); drop"), parse_name("")
    ('er_mean', None, None)
    """
    if not text or len(text) > MAX_NAME or not text.isascii():
        return None
    return text if all(c.islower() or c.isdigit() or c == "_" for c in text) else None


def parse(query: str | None, tabs: Collection[str]) -> UrlState:
    """The place named by a URL query ("?tab=monitor&runs=3" or "tab=monitor&runs=3").

    `tabs`: the tab ids that exist. Never raises: see the module docstring.

    >>> parse("?tab=monitor&runs=3,5&run=3&step=2&group=0&response=1&x=1", {"monitor"})
    UrlState(tab='monitor', runs=(3, 5), run=3, step=2, group=0, response=1, compare=(), metric=None)
    >>> parse("tab=nope&step=-2&run=abc&runs=1;2&metric=<b>", {"monitor"})
    UrlState(tab=None, runs=(), run=None, step=None, group=None, response=None, compare=(), metric=None)
    """
    text = str(query or "")[:MAX_QUERY].lstrip("?")
    values: dict[str, str] = {}
    for key, value in parse_qsl(text, keep_blank_values=False):
        if key in KEYS:
            values.setdefault(key, value)  # the first of a repeated key
    tab = values.get("tab")
    return UrlState(
        tab=tab if tab in tabs else None,
        runs=parse_runs(values.get("runs")),
        run=parse_int(values.get("run"), low=1),
        step=parse_int(values.get("step")),
        group=parse_int(values.get("group")),
        response=parse_int(values.get("response")),
        compare=parse_runs(values.get("compare")),
        metric=parse_name(values.get("metric")),
    )


def to_query(state: UrlState) -> str:
    """The query naming `state` ("" for the default place): keys in a fixed order, so one place
    always has one URL, and the inspector's step / group / response only under its run.

    >>> to_query(UrlState(tab="inspector", runs=(3, 5), run=3, step=2, group=0, response=1))
    '?tab=inspector&runs=3,5&run=3&step=2&group=0&response=1'
    >>> to_query(UrlState())
    ''
    """
    pairs: list[tuple[str, str]] = []
    if state.tab:
        pairs.append(("tab", state.tab))
    if state.runs:
        pairs.append(("runs", ",".join(map(str, state.runs))))
    if state.run is not None:
        pairs.append(("run", str(state.run)))
        for key in ("step", "group", "response"):
            value = getattr(state, key)
            if value is None:
                break  # a response without its step or group names nothing
            pairs.append((key, str(value)))
    if state.compare:
        pairs.append(("compare", ",".join(map(str, state.compare))))
    if state.metric:
        pairs.append(("metric", state.metric))
    return "?" + urlencode(pairs, safe=",", quote_via=quote) if pairs else ""
