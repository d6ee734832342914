"""The URL's place (app.url_state): strict parsing of untrusted queries, one URL per place."""

from __future__ import annotations

import pytest

from app.url_state import MAX_RUNS, UrlState, parse, parse_int, to_query

TABS = ("launch", "monitor", "inspector", "compare")


def test_round_trip_of_every_field():
    state = UrlState(
        tab="inspector", runs=(7, 3), run=3, step=120, group=2, response=5,
        compare=(3, 7), metric="er_mean",
    )  # fmt: skip
    assert parse(to_query(state), TABS) == state


def test_the_default_place_is_the_bare_url():
    assert to_query(UrlState()) == ""
    assert parse("", TABS) == UrlState()
    assert parse(None, TABS) == UrlState()


@pytest.mark.parametrize(
    "query",
    [
        "tab=admin",  # a tab that does not exist
        "tab=%3Cscript%3E",
        "runs=-1",
        "runs=1e3",
        "runs=0",
        "run=abc",
        "run=0",
        "run=99999999999999999999",  # past the store's 32-bit ids
        "step=-2",
        "step=1.5",
        "step=%EF%BC%93",  # a full-width digit: str.isdigit() says yes, int() would take it
        "group=",
        "response=%00",
        "runs=;DROP TABLE runs",
        "compare=0,-1",
        "metric=er_mean'--",
        "metric=ER_MEAN",
        "metric=" + "a" * 65,
        "%ZZ=%%%",
        "?" * 5000,
    ],
)
def test_a_bad_value_is_dropped_as_if_absent(query):
    assert parse(query, TABS) == UrlState()


def test_unknown_keys_are_ignored_and_the_first_of_a_repeated_key_wins():
    state = parse("?utm_source=mail&tab=compare&tab=monitor&runs=4&runs=5", TABS)
    assert state == UrlState(tab="compare", runs=(4,))


def test_runs_keep_their_order_without_duplicates_or_bad_items():
    assert parse("runs=5,2,x,5,,3", TABS).runs == (5, 2, 3)
    many = ",".join(str(i) for i in range(1, 100))
    assert parse(f"runs={many}", TABS).runs == tuple(range(1, MAX_RUNS + 1))


def test_one_bad_field_leaves_the_others():
    state = parse("tab=inspector&run=3&step=two&group=1&response=0", TABS)
    assert state == UrlState(tab="inspector", run=3, step=None, group=1, response=0)


def test_a_run_that_may_not_exist_is_kept_for_the_page_to_name():
    assert parse("run=99&runs=99", TABS) == UrlState(runs=(99,), run=99)


def test_the_inspector_fields_are_written_only_under_their_run():
    assert to_query(UrlState(step=3, group=1, response=0)) == ""
    assert to_query(UrlState(run=4, step=3, group=None, response=0)) == "?run=4&step=3"


def test_parse_int_bounds():
    assert parse_int("0") == 0
    assert parse_int("0", low=1) is None
    assert parse_int(str(2**31 - 1)) == 2**31 - 1
    assert parse_int(str(2**31)) is None
    assert parse_int(" 3") is None


def test_pages_restore_a_link_with_their_own_runs_only(tmp_path):
    """A link naming an eval job (or an unknown metric) is restored without Gradio's "value not
    in the choices" warning: the Runs and Compare pickers list training runs only."""
    import warnings

    from app.pages import compare, monitor
    from app.queries import run_label
    from engine.paths import resolve
    from engine.storage import Store

    root = resolve(data_dir=tmp_path)
    with Store(root.db_url) as store, warnings.catch_warnings():
        warnings.simplefilter("error")
        train = store.create_run({}, name="t", algorithm="verl", total_steps=3)
        job = store.create_run({}, name="e", algorithm="eval", kind="eval", total_steps=1)
        label = run_label(store.get_run(train))

        picker, status = monitor.place(store, parse(f"runs={job}", TABS))
        assert picker.value == [] and "an evaluation job" in status
        picker, status = monitor.place(store, parse(f"runs={job},{train}", TABS))
        assert picker.value == [label]

        picker, metric = compare.place(store, parse(f"compare={job},{train}&metric=nope", TABS), False)  # fmt: skip
        assert picker.value == [label] and metric == gr_skip()
        picker, metric = compare.place(store, parse("metric=reward_mean", TABS), False)
        assert picker == gr_skip() and metric == "reward_mean"
        picker, metric = compare.place(store, parse("", TABS), True)
        assert picker.value == [] and metric == compare.DEFAULT_METRIC


def gr_skip():
    import gradio as gr

    return gr.skip()
