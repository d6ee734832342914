"""Figure builders (app/plots.py) against slow, obvious versions; no server."""

from __future__ import annotations

import base64
import json

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app import plots

SETTINGS = settings(deadline=None, derandomize=True, max_examples=60)


def slow_bucket_extremes(y: np.ndarray, max_points: int) -> set[int]:
    """Per bucket (same edges as the fast version), the index of its min and of its max."""
    n_buckets = max_points // 2
    edges = np.linspace(0, len(y), n_buckets + 1).astype(int)
    keep = set()
    for a, b in zip(edges[:-1], edges[1:], strict=True):
        chunk = [(v, i) for i, v in enumerate(y[a:b], start=a) if not np.isnan(v)]
        if not chunk:
            keep.add(int(a))
            continue
        keep.add(min(chunk, key=lambda t: (t[0], t[1]))[1])
        keep.add(min(chunk, key=lambda t: (-t[0], t[1]))[1])
    return keep


def slow_ema(y: np.ndarray, w: float) -> np.ndarray:
    out, s, n = [], 0.0, 0
    for v in y:
        if np.isfinite(v):
            s = w * s + (1 - w) * v
            n += 1
            out.append(s / (1 - w**n))
        else:
            out.append(np.nan)
    return np.array(out)


def steps_frame(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({c: rng.random(n) for c in plots.panel_columns()})
    for name in ("accuracy", "format"):  # what the query adds per reward function
        frame[plots.REWARD_FUNCTION_PREFIX + name] = rng.random(n)
    frame["step"] = np.arange(1, n + 1)
    frame["wall_time"] = 1.7e9 + np.arange(n) * 3.0
    frame["tokens"] = np.arange(1, n + 1) * 100
    return frame


@SETTINGS
@given(
    st.lists(st.one_of(st.floats(-1e6, 1e6), st.just(float("nan"))), min_size=1, max_size=300),
    st.integers(4, 60),
)
def test_minmax_downsample_keeps_each_buckets_extremes(values, max_points):
    y = np.array(values)
    x = np.arange(len(y)) * 2.0
    xs, ys = plots.minmax_downsample(x, y, max_points)
    if len(y) <= max_points:
        assert np.array_equal(xs, x)
        return
    assert len(xs) <= max_points
    assert np.all(np.diff(xs) > 0), "x order is kept"
    assert set((xs / 2).astype(int).tolist()) == slow_bucket_extremes(y, max_points)


def test_minmax_downsample_keeps_a_single_spike():
    y = np.zeros(10_000)
    y[7_777] = 50.0
    y[1_234] = -9.0
    xs, ys = plots.minmax_downsample(np.arange(10_000), y)
    assert len(xs) <= plots.MAX_POINTS
    assert 7_777 in xs and 1_234 in xs
    assert ys.max() == 50.0 and ys.min() == -9.0


@SETTINGS
@given(
    st.lists(st.one_of(st.floats(-1e3, 1e3), st.just(float("nan"))), max_size=80),
    st.floats(0.0, 0.99),
)
def test_ema_matches_the_loop(values, w):
    y = np.array(values, dtype=float)
    got = plots.ema_smooth(y, w)
    want = slow_ema(y, w) if w > 0 else y
    assert np.allclose(got, want, equal_nan=True, rtol=1e-9, atol=1e-9)


def test_panel_figures_are_valid_plotly_with_uirevision_and_no_webgl():
    frames = {"run A": steps_frame(30), "run B": steps_frame(12, seed=1)}
    figs = plots.monitor_figures(frames, x_axis="tokens", smoothing=0.5, uirevision="r1,r2")
    assert len(figs) == len(plots.PANELS)
    for fig, panel in zip(figs, plots.PANELS, strict=True):
        d = json.loads(fig.to_json())
        go.Figure(d)  # full validation: raises on any invalid property
        assert d["layout"]["uirevision"] == f"r1,r2:{panel.key}"
        assert all(t["type"] == "scatter" for t in d["data"])
        assert "scattergl" not in fig.to_json()
        names = {t["name"] for t in d["data"]}
        assert any(n.startswith("run A") for n in names)
        assert any(n.startswith("run B") for n in names)


def test_rank_panel_draws_band_and_split_lines():
    (er,) = [p for p in plots.PANELS if p.key == "er"]
    frame = steps_frame(10)
    by_name = {t.name: t for t in plots.panel_figure({"r": frame}, er).data}
    assert np.allclose(by_name["r · ER all p10"].y, frame["er_p10"])
    assert by_name["r · ER all p90"].fill == "tonexty"
    assert np.allclose(by_name["r · ER all"].y, frame["er_mean"])
    for label in ("ER correct", "ER incorrect", "baseline m_ER"):
        assert f"r · {label}" in by_name


def test_health_panels_draw_shares_each_reward_function_and_the_length_band():
    frame = steps_frame(10)
    panels = {p.key: p for p in plots.PANELS}
    names = [t.name for t in plots.panel_figure({"r": frame}, panels["health"]).data]
    assert names == [
        "r · groups tied (no gradient)",
        "r · truncated (no EOS)",
        "r · TRL clipped_ratio",
    ]
    by_name = {t.name: t for t in plots.panel_figure({"r": frame}, panels["reward_functions"]).data}
    assert set(by_name) == {"r · accuracy", "r · format"}
    assert np.allclose(by_name["r · format"].y, frame["reward_fn/format"])
    length = {t.name: t for t in plots.panel_figure({"r": frame}, panels["completion_length"]).data}
    assert np.allclose(length["r · length p10"].y, frame["length_p10"])
    assert length["r · length p90"].fill == "tonexty"
    time = [t.name for t in plots.panel_figure({"r": frame}, panels["time"]).data]
    assert time == ["r · step", "r · generation", "r · training"]


def test_long_series_are_downsampled_to_the_budget():
    frame = steps_frame(5_000)
    (loss,) = [p for p in plots.PANELS if p.key == "loss"]
    (trace,) = plots.panel_figure({"r": frame}, loss).data
    assert len(trace.x) <= plots.MAX_POINTS
    assert max(trace.y) == frame["loss"].max()
    assert min(trace.y) == frame["loss"].min()


def test_missing_columns_and_empty_runs_give_a_message_not_an_error():
    frame = steps_frame(5).drop(columns=["kl"])
    frame["heldout_accuracy"] = None
    (kl,) = [p for p in plots.PANELS if p.key == "kl"]
    fig = plots.panel_figure({"r": frame}, kl)
    assert fig.data == ()
    assert "no data yet" in fig.layout.annotations[0].text
    (acc,) = [p for p in plots.PANELS if p.key == "accuracy"]
    names = [t.name for t in plots.panel_figure({"r": frame}, acc).data]
    assert names == ["r · training"]
    assert plots.panel_figure({"r": frame.iloc[:0]}, acc).data == ()


def test_wall_time_axis_is_minutes_since_first_step():
    frame = steps_frame(4)
    assert np.allclose(plots.x_values(frame, "wall_time"), [0, 0.05, 0.1, 0.15])


def slow_segment_deltas(n, positions, curve):
    out = []
    for t in range(n):
        d = None
        for j in range(1, len(curve)):
            if positions[j - 1] < t <= positions[j]:
                d = curve[j] - curve[j - 1]
        out.append(d)
    return out


@SETTINGS
@given(st.integers(1, 120), st.integers(1, 9), st.integers(0, 30), st.data())
def test_segment_deltas_match_the_definition(n, stride, offset, data):
    positions = np.arange(offset + stride, n, stride)
    curve = np.array(
        data.draw(st.lists(st.floats(1, 50), min_size=len(positions), max_size=len(positions)))
    )
    assert plots.segment_deltas(n, positions, curve) == slow_segment_deltas(n, positions, curve)


def test_token_html_escapes_model_text_and_shades_by_delta():
    pieces = ["<script>", "alert(1)", "</script>", " & done"]
    out = plots.token_html('<img src=x onerror="1">', pieces, [None, 0.5, -1.0, None])
    assert "<script>" not in out and "<img" not in out
    assert "&lt;script&gt;" in out and "&lt;img" in out and "&amp; done" in out
    assert out.count("background:") == 2
    assert "ΔER +0.500" in out and "ΔER -1.000" in out


def test_rank_curves_overlay_every_response_selected_on_top():
    curves = [
        plots.CurveTrace(f"#{i}", np.array([4, 8, 12]), np.array([2.0, 3.0, 3.5 + i]), i % 2 == 0)
        for i in range(4)
    ]
    curves[1] = plots.CurveTrace("#1", curves[1].positions, curves[1].curve, False, selected=True)
    curves.append(plots.CurveTrace("#short", np.array([], int), np.array([])))
    d = json.loads(plots.rank_curves_figure(curves).to_json())
    go.Figure(d)
    assert [t["name"] for t in d["data"]][-1] == "#1"
    assert len(d["data"]) == 4
    assert d["data"][-1]["line"]["width"] > d["data"][0]["line"]["width"]
    assert d["data"][0]["mode"] == "lines+markers"


@pytest.mark.parametrize("entropy", [None, np.array([0.5, 1.0, 0.2])])
def test_token_series_figure(entropy):
    fig = plots.token_series_figure(entropy, np.array([-0.1, -2.0, -0.3]))
    go.Figure(fig.to_dict())
    assert len(fig.data) == (2 if entropy is not None else 1)
    assert plots.token_series_figure(None, None).data == ()


def decode(value) -> np.ndarray:
    """A plotly typed-array spec ({dtype, bdata}) or a list, as a float array."""
    if isinstance(value, dict):
        return np.frombuffer(base64.b64decode(value["bdata"]), np.dtype(value["dtype"])).astype(
            float
        )
    return np.asarray(value, dtype=float)


def test_fast_json_matches_plotlys_own_serialisation():
    frame = steps_frame(50)
    frame.loc[3, "loss"] = np.nan
    for fig in plots.monitor_figures({"r": frame}, smoothing=0.3):
        fast = json.loads(fig.to_json())
        slow = json.loads(go.Figure.to_json(fig))  # plotly's own: typed arrays as base64
        go.Figure(fast)
        assert fast["layout"]["uirevision"] == slow["layout"]["uirevision"]
        assert len(fast["data"]) == len(slow["data"])
        for a, b in zip(fast["data"], slow["data"], strict=True):
            assert a["name"] == b["name"]
            for axis in ("x", "y"):
                got = np.array([np.nan if v is None else v for v in a[axis]], dtype=float)
                assert np.allclose(got, decode(b[axis]), equal_nan=True)
