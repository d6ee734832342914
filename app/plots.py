"""Pure figure builders: plain arrays and frames in, plotly `Figure` (or escaped HTML) out.

No storage, no Gradio: every function here is tested alone against slow, obvious versions.

Conventions shared by every figure:
- `layout.uirevision` is set from the caller's key (run ids + x-axis), so zoom and legend
  clicks survive a redraw with new points.
- Series longer than `MAX_POINTS` are reduced by min/max per bucket (`minmax_downsample`), so
  spikes survive and the browser never receives more than `MAX_POINTS` points per trace.
- Only SVG traces (`scatter`); never `scattergl` — headless CI Chromium has no GPU.
- Smoothing is the debiased exponential moving average TensorBoard uses:
  s_t = w s_{t-1} + (1 - w) y_t, shown as s_t / (1 - w^n_t) over the n_t finite points so far.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import plotly.graph_objects as go

try:  # a dependency of gradio; only the JSON speed-up needs it
    import orjson
except ImportError:  # pragma: no cover
    orjson = None

MAX_POINTS = 2000
PALETTE = (
    "#1f77b4",
    "#d62728",
    "#2ca02c",
    "#9467bd",
    "#ff7f0e",
    "#8c564b",
    "#e377c2",
    "#17becf",
)
CORRECT_COLOUR = "#2ca02c"
INCORRECT_COLOUR = "#d62728"
X_AXES = {"step": "step", "wall_time": "wall time (min)", "tokens": "tokens"}


@dataclass(frozen=True)
class Line:
    """One plotted quantity: a step column, its legend label, dash, optional p10/p90 band."""

    column: str
    label: str
    dash: str = "solid"
    band: tuple[str, str] | None = None


@dataclass(frozen=True)
class Panel:
    """One monitor chart: a title, a y label and the step columns it draws; with `prefix`, also
    one line per frame column named `prefix + label` (e.g. one per reward function)."""

    key: str
    title: str
    y_label: str
    lines: tuple[Line, ...] = field(default_factory=tuple)
    prefix: str | None = None

    def lines_for(self, frame: pd.DataFrame) -> tuple[Line, ...]:
        if self.prefix is None:
            return self.lines
        extra = tuple(
            Line(c, c[len(self.prefix) :]) for c in frame.columns if c.startswith(self.prefix)
        )
        return self.lines + extra


def _rank_panel(k: str, name: str) -> Panel:
    return Panel(
        key=k,
        title=f"{name} (mean, p10-p90 band; correct / incorrect; baseline m)",
        y_label=name,
        lines=(
            Line(f"{k}_mean", f"{name} all", band=(f"{k}_p10", f"{k}_p90")),
            Line(f"{k}_correct", f"{name} correct", dash="dash"),
            Line(f"{k}_incorrect", f"{name} incorrect", dash="dot"),
            Line(f"m_{k}", f"baseline m_{name}", dash="dashdot"),
        ),
    )


REWARD_FUNCTION_PREFIX = "reward_fn/"  # steps-frame columns: mean of one reward function

# The GRPO health panels (issue 17): what says a run is learning nothing.
HEALTH_PANELS: tuple[Panel, ...] = (
    Panel(
        "health",
        "GRPO health: tied groups, truncated, clipped (share of the step)",
        "share",
        (
            Line("frac_zero_std", "groups tied (no gradient)"),
            Line("truncated_share", "truncated (no EOS)", dash="dash"),
            Line("clipped_ratio", "TRL clipped_ratio", dash="dot"),
        ),
    ),
    Panel(
        "reward_functions",
        "Reward per function (mean over the step)",
        "reward",
        prefix=REWARD_FUNCTION_PREFIX,
    ),
    Panel(
        "completion_length",
        "Response length (mean, p10-p90 band)",
        "tokens",
        (Line("completion_length", "length", band=("length_p10", "length_p90")),),
    ),
    Panel("entropy", "Policy entropy (mean token entropy)", "nats", (Line("entropy", "entropy"),)),
    Panel(
        "time",
        "Step time: generation vs training",
        "seconds",
        (
            Line("step_seconds", "step"),
            Line("generation_seconds", "generation", dash="dash"),
            Line("train_seconds", "training", dash="dot"),
        ),
    ),
    Panel(
        "throughput",
        "Generation throughput",
        "tokens / s",
        (Line("tokens_per_second", "tokens/s"),),
    ),
)

PANELS: tuple[Panel, ...] = (
    Panel("reward", "Reward", "reward", (Line("reward_mean", "reward", band=None),)),
    Panel(
        "accuracy",
        "Accuracy",
        "accuracy",
        (Line("accuracy", "training"), Line("heldout_accuracy", "held-out", dash="dash")),
    ),
    *HEALTH_PANELS,
    _rank_panel("er", "ER"),
    _rank_panel("erv", "ERV"),
    _rank_panel("era", "ERA"),
    Panel(
        "shaping",
        "Shaping: explore weight and bonus",
        "value",
        (
            Line("explore_weight_mean", "explore_weight"),
            Line("bonus_mean", "bonus", dash="dash"),
            Line("bonus_share", "bonus share", dash="dot"),
            Line("frac_shaped", "fraction shaped", dash="dashdot"),
        ),
    ),
    Panel("loss", "Loss", "loss", (Line("loss", "loss"),)),
    Panel("kl", "KL", "KL", (Line("kl", "KL"),)),
    Panel("mean_logprob", "Mean log-prob", "log p", (Line("mean_logprob", "mean log-prob"),)),
)


def metric_titles() -> dict[str, str]:
    """Step column -> its human title, read from the monitor's panels (the one source): the
    line's label, with its panel's title when the label alone is ambiguous ("baseline m_ER":
    "ER ... baseline m"); a band column gets its line's label and "p10"/"p90"."""
    titles: dict[str, str] = {}
    for panel in PANELS:
        short = panel.title.split(" (")[0].split(":")[0]  # "GRPO health", "Shaping"
        for line in panel.lines:
            if short.lower() in line.label.lower():
                text = line.label  # "ER all", "baseline m_ER"
            elif line.label.lower() in short.lower():
                text = short  # "Policy entropy", "Step time"
            else:
                text = f"{short}: {line.label}"  # "GRPO health: groups tied (no gradient)"
            titles.setdefault(line.column, text)
            for col, q in zip(line.band or (), ("p10", "p90"), strict=False):
                titles.setdefault(col, f"{text} {q}")
    return titles


def metric_choices(columns: Sequence[str]) -> list[tuple[str, str]]:
    """(human title (column), column) per step column, for a dropdown whose value is the
    column name (what the URL holds)."""
    titles = metric_titles()
    return [(f"{titles.get(c, c.replace('_', ' '))} ({c})", c) for c in columns]


def panel_columns() -> list[str]:
    """Every named column some panel reads: typed step columns, TRL payload series and derived
    ones (what the monitor's steps frame must hold; prefix panels add their own columns)."""
    cols: list[str] = []
    for panel in PANELS:
        for line in panel.lines:
            for c in (line.column, *(line.band or ())):
                if c not in cols:
                    cols.append(c)
    return cols


def minmax_downsample(
    x: np.ndarray, y: np.ndarray, max_points: int = MAX_POINTS
) -> tuple[np.ndarray, np.ndarray]:
    """Keep, per bucket of consecutive points, the min and the max of y (in x order).

    x, y: (N,). Returns at most `max_points` points; N <= max_points returns the input.
    NaNs never win a bucket unless the whole bucket is NaN (then its first point is kept).
    """
    n = len(y)
    if n <= max_points:
        return x, y
    n_buckets = max_points // 2
    starts = np.linspace(0, n, n_buckets + 1).astype(np.int64)[:-1]  # (n_buckets,), none empty
    sizes = np.diff(np.append(starts, n))
    index = np.arange(n)
    keep = []
    for filled, best in ((np.where(np.isnan(y), np.inf, y), np.minimum),
                         (np.where(np.isnan(y), -np.inf, y), np.maximum)):  # fmt: skip
        extreme = np.repeat(best.reduceat(filled, starts), sizes)  # (N,) its bucket's min / max
        # the first index holding it (a bucket of NaNs only: its first point)
        keep.append(np.minimum.reduceat(np.where(filled == extreme, index, n), starts))
    # buckets are disjoint and in order: each bucket's pair sorted is the whole sorted
    pairs = np.sort(np.stack(keep, axis=1), axis=1).ravel()  # (2 * n_buckets,)
    pairs = pairs[np.append(True, pairs[1:] != pairs[:-1])]  # min and max at one point: once
    return x[pairs], y[pairs]


def ema_smooth(y: np.ndarray, weight: float) -> np.ndarray:
    """Debiased EMA over the finite points of y (NaNs stay NaN and do not advance it). y: (N,).

    pandas' adjusted EWM, sum_i w^(k-i) y_i / sum_i w^(k-i), equals s_k / (1 - w^(k+1)).
    """
    y = np.asarray(y, dtype=np.float64)
    if weight <= 0:
        return y.copy()
    out = np.full(len(y), np.nan)
    ok = np.isfinite(y)
    out[ok] = pd.Series(y[ok]).ewm(alpha=1.0 - weight, adjust=True).mean().to_numpy()
    return out


def x_values(frame: pd.DataFrame, x_axis: str) -> np.ndarray:
    """The x column of a steps frame: step, minutes since the run's first step, or tokens."""
    if x_axis == "wall_time":
        w = frame["wall_time"].to_numpy(dtype=np.float64)
        finite = w[np.isfinite(w)]
        return (w - (finite.min() if finite.size else 0.0)) / 60.0
    return frame[x_axis].to_numpy(dtype=np.float64)


def _column(frame: pd.DataFrame, name: str) -> np.ndarray | None:
    if name not in frame.columns:
        return None
    y = frame[name].to_numpy(dtype=np.float64, na_value=np.nan)
    return y if np.isfinite(y).any() else None


def _finite(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    ok = np.isfinite(y) & np.isfinite(x)
    return x[ok], y[ok]


def _traces_for_run(
    frame: pd.DataFrame, panel: Panel, label: str, colour: str, x_axis: str, smoothing: float
) -> list[dict]:
    x = x_values(frame, x_axis)
    traces: list[dict] = []
    for line in panel.lines_for(frame):
        y = _column(frame, line.column)
        if y is None:
            continue
        name = f"{label} · {line.label}"
        if line.band is not None:
            traces += _band_traces(frame, x, line, name, colour)
        xs, ys = minmax_downsample(*_finite(x, ema_smooth(y, smoothing)))
        traces.append(
            dict(
                type="scatter",
                mode="lines+markers" if len(xs) < 40 else "lines",
                x=xs,
                y=ys,
                name=name,
                legendgroup=name,
                line=dict(color=colour, dash=line.dash, width=2),
                marker=dict(size=4),
            )
        )
    return traces


def _band_traces(frame: pd.DataFrame, x: np.ndarray, line: Line, name: str, colour: str):
    lo, hi = (_column(frame, c) for c in line.band)
    if lo is None or hi is None:
        return []
    x_lo, y_lo = minmax_downsample(*_finite(x, lo))
    x_hi, y_hi = minmax_downsample(*_finite(x, hi))
    common = dict(type="scatter", mode="lines", legendgroup=name, showlegend=False)
    return [
        dict(common, x=x_lo, y=y_lo, name=f"{name} p10", line=dict(width=0, color=colour)),
        dict(
            common,
            x=x_hi,
            y=y_hi,
            name=f"{name} p90",
            line=dict(width=0, color=colour),
            fill="tonexty",
            fillcolor=_rgba(colour, 0.15),
        ),
    ]


def _rgba(hex_colour: str, alpha: float) -> str:
    r, g, b = (int(hex_colour[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgba({r},{g},{b},{alpha})"


# Below the plot, under the x-axis title: a container-anchored legend pushes the bottom margin
# (Plotly >= 2.22), so the axis title and the tick labels never sit under it.
LEGEND_BELOW = dict(orientation="h", yref="container", y=0, yanchor="bottom", x=0, xanchor="left")
LEGEND_ROW_PX = 20
INTEGER_TICKS_SPAN = 10  # an integer axis spanning fewer steps gets a tick at every integer


def axes_layout(
    title: str,
    x_label: str,
    y_label: str,
    uirevision: str,
    height: int | None = 300,
    title_on_plot: bool = False,
) -> dict:
    """The one layout of every chart: axis titles and tick labels push the margins
    (`automargin`), so a minus sign or a long label is never clipped; the legend sits below the
    x-axis title. `height` in px (None: the page's default). `title_on_plot` anchors the title
    to the top of the plot area, so a two-line title pushes the top margin instead of being
    cut (the analysis pages' charts)."""
    layout = dict(
        # above the plot area, pushing the top margin: a two-line title is never cut
        title=dict(
            text=title, font=dict(size=14), automargin=True, yref="paper", y=1, yanchor="bottom"
        ),
        xaxis=dict(title=dict(text=x_label), gridcolor="#eee", automargin=True),
        yaxis=dict(title=dict(text=y_label), gridcolor="#eee", automargin=True),
        uirevision=uirevision,
        height=height,
        margin=dict(l=50, r=10, t=40, b=10),
        legend=dict(LEGEND_BELOW),
        plot_bgcolor="white",
        template=dict(layout=dict()),  # no default template: ~10 kB less per figure
    )
    if height is None:
        del layout["height"]
    if title_on_plot:
        layout["title"].update(yref="paper", y=1, yanchor="bottom")
        layout["margin"] = dict(l=50, r=20, t=50, b=10)
    return layout


def integer_axis(values: Sequence[np.ndarray]) -> dict:
    """x-axis settings for integer data (steps): over a short span, one tick per integer
    (Plotly would label 1.5, 2.5 ...); over a longer one Plotly's own 1-2-5 ticks are integers.
    values: arrays of x values (any length); returns {} when nothing needs changing."""
    finite = [v[np.isfinite(v)] for v in (np.asarray(a, dtype=np.float64) for a in values)]
    finite = [v for v in finite if v.size]
    if not finite:
        return {}
    lo, hi = min(float(v.min()) for v in finite), max(float(v.max()) for v in finite)
    if hi - lo > INTEGER_TICKS_SPAN:
        return {"tickformat": "d"}
    return {"tickmode": "linear", "tick0": 0, "dtick": 1}


class Figure(go.Figure):
    """A plotly Figure whose `to_json` (what `gr.Plot` sends) is one orjson pass over the raw
    traces: ~3x faster than plotly's deep copy + base64 conversion at 2,000 points. Arrays go
    out as plain JSON lists, NaN as null (a gap)."""

    def to_json(self, *args, **kwargs) -> str:
        if args or kwargs or orjson is None:
            return super().to_json(*args, **kwargs)
        raw = {"data": self._data, "layout": self._layout}
        return orjson.dumps(raw, option=orjson.OPT_SERIALIZE_NUMPY).decode()


def _figure(traces: list[dict], layout: dict) -> Figure:
    """A Figure from plain dicts without plotly's per-property validation (10x faster to build).

    Callers only pass the properties used in this module; tests rebuild every figure with
    validation on to keep them honest.
    """
    return Figure(data=traces, layout=layout, _validate=False)


def empty_figure(message: str, uirevision: str = "empty") -> go.Figure:
    """A blank figure that says why it is blank (friendly empty state)."""
    layout = axes_layout("", "", "", uirevision, height=240)
    layout["xaxis"] = dict(visible=False)
    layout["yaxis"] = dict(visible=False)
    layout["annotations"] = [
        dict(text=message, showarrow=False, xref="paper", yref="paper", x=0.5, y=0.5)
    ]
    return _figure([], layout)


def panel_notes(panel: Panel, reasons: dict[str, dict[str, str]]) -> list[str]:
    """Why lines of this panel will never be drawn, one note per (run, reason).

    reasons: run label -> {step column or "*": why} (`app.queries.missing_reasons`)."""
    notes = []
    for label, why in reasons.items():
        found = [why.get("*")] if "*" in why else [why.get(line.column) for line in panel.lines]
        for text in dict.fromkeys(t for t in found if t):
            notes.append(f"{label}: {text}" if len(reasons) > 1 else text)
    return notes


def panel_figure(
    frames: dict[str, pd.DataFrame],
    panel: Panel,
    *,
    x_axis: str = "step",
    smoothing: float = 0.0,
    uirevision: str = "monitor",
    reasons: dict[str, dict[str, str]] | None = None,
) -> go.Figure:
    """One monitor chart for one or more runs. frames: run label -> steps frame (one row/step);
    reasons: run label -> {column: why it never comes}, said on the chart instead of "no data
    yet" (an empty chart) or under its title (a line that never comes)."""
    traces: list[dict] = []
    for i, (label, frame) in enumerate(frames.items()):
        if frame.empty:
            continue
        colour = PALETTE[i % len(PALETTE)]
        traces += _traces_for_run(frame, panel, label, colour, x_axis, smoothing)
    notes = panel_notes(panel, reasons or {})
    if not traces:
        message = "<br>".join(map(html.escape, notes)) or f"{panel.title}: no data yet"
        return empty_figure(message, uirevision=f"{uirevision}:{panel.key}")
    entries = sum(1 for t in traces if t.get("showlegend", True))
    height = 300 + LEGEND_ROW_PX * max(0, -(-entries // 2) - 2)  # rows of two beyond the second
    layout = axes_layout(
        panel.title, X_AXES[x_axis], panel.y_label, f"{uirevision}:{panel.key}", height
    )
    if x_axis == "step":
        layout["xaxis"].update(integer_axis([t["x"] for t in traces]))
    if notes:
        add_notes(layout, notes)
    return _figure(traces, layout)


NOTE_LINE_PX = 15  # one line of a chart's note (11 px text)


def add_notes(layout: dict, notes: list[str]) -> None:
    """Notes on their own lines between the title and the plot area: the title is lifted by
    their height (its bottom padding) and pushes the top margin as before. A note inside a
    two-line title overlapped the plot area (plotly anchors such a title by its first line);
    a title moved to the chart's top edge went under Gradio's "Plot" badge."""
    layout["title"].update(yref="paper", y=1, yanchor="bottom", automargin=True)
    layout["title"]["pad"] = dict(b=NOTE_LINE_PX * len(notes) + 6)
    layout["annotations"] = [
        dict(
            text="<br>".join(map(html.escape, notes)),
            xref="paper", yref="paper", x=0, y=1, xanchor="left", yanchor="bottom",
            align="left", showarrow=False, font=dict(size=11, color="#555"),
        )
    ]  # fmt: skip


def monitor_figures(
    frames: dict[str, pd.DataFrame],
    *,
    x_axis: str = "step",
    smoothing: float = 0.0,
    uirevision: str = "monitor",
    reasons: dict[str, dict[str, str]] | None = None,
) -> list[go.Figure]:
    """Every panel of the live monitor, in `PANELS` order (reasons: see `panel_figure`)."""
    return [
        panel_figure(
            frames, p, x_axis=x_axis, smoothing=smoothing, uirevision=uirevision, reasons=reasons
        )
        for p in PANELS
    ]


# ----------------------------------------------------------------------------- trace inspector


@dataclass(frozen=True)
class CurveTrace:
    """One response's rank curve: ER at each stride point (token positions in the response)."""

    label: str
    positions: np.ndarray  # (J,) int, index of the prefix's last token among response tokens
    curve: np.ndarray  # (J,) float, ER(X[:t+1])
    correct: bool | None = None
    selected: bool = False


def rank_curves_figure(curves: Sequence[CurveTrace], uirevision: str = "inspector") -> go.Figure:
    """All responses of a group overlaid: ER over token position, stride points as markers.

    Correct responses are green, incorrect red; the selected response is drawn thick, on top.
    """
    ordered = sorted(curves, key=lambda c: c.selected)
    traces = []
    for c in ordered:
        if len(c.curve) == 0:
            continue
        colour = (
            PALETTE[0] if c.correct is None else (CORRECT_COLOUR if c.correct else INCORRECT_COLOUR)
        )
        traces.append(
            dict(
                type="scatter",
                mode="lines+markers",
                x=np.asarray(c.positions),
                y=np.asarray(c.curve),
                name=c.label,
                opacity=1.0 if c.selected else 0.45,
                line=dict(color=colour, width=4 if c.selected else 1.5),
                marker=dict(size=8 if c.selected else 5, symbol="circle"),
            )
        )
    if not traces:
        return empty_figure("no rank curve (responses shorter than two strides)", uirevision)
    return _figure(
        traces,
        axes_layout("ER over response tokens (stride points)", "token position", "ER", uirevision),
    )


def token_series_figure(
    entropy: np.ndarray | None, logprob: np.ndarray | None, uirevision: str = "inspector-tokens"
) -> go.Figure:
    """Token entropy and log-prob along the response. entropy, logprob: (T,)."""
    traces = []
    for name, values, colour in (
        ("token entropy", entropy, PALETTE[3]),
        ("token log-prob", logprob, PALETTE[4]),
    ):
        if values is None or len(values) == 0:
            continue
        y = np.asarray(values, dtype=np.float64)
        traces.append(
            dict(
                type="scatter",
                mode="lines",
                x=np.arange(len(y)),
                y=y,
                name=name,
                line=dict(color=colour, width=1.5),
            )
        )
    if not traces:
        return empty_figure("no per-token entropy or log-prob recorded", uirevision)
    return _figure(traces, axes_layout("Along the response", "token position", "value", uirevision))


def segment_deltas(n_tokens: int, positions: np.ndarray, curve: np.ndarray) -> list[float | None]:
    """ΔER of the stride segment containing each response token; None = unshaded.

    Segment j >= 1 holds tokens positions[j-1]+1 .. positions[j] and its ΔER is
    curve[j] - curve[j-1]. The first segment has no earlier point to differ from, and tokens
    after the last curve point (or before the truncation offset) belong to no segment: both are
    unshaded (None).
    """
    out: list[float | None] = [None] * n_tokens
    for j in range(1, len(curve)):
        delta = float(curve[j] - curve[j - 1])
        lo, hi = int(positions[j - 1]) + 1, int(positions[j])
        for t in range(max(lo, 0), min(hi, n_tokens - 1) + 1):
            out[t] = delta
    return out


def _shade(delta: float, scale: float) -> str:
    """Blue for a rising ER (new directions), orange for a falling one; alpha by |ΔER|/scale."""
    alpha = min(abs(delta) / scale, 1.0) * 0.6 if scale > 0 else 0.0
    rgb = "31,119,180" if delta >= 0 else "255,127,14"
    return f"rgba({rgb},{alpha:.3f})"


def token_html(prompt: str, pieces: Sequence[str], deltas: Sequence[float | None]) -> str:
    """The prompt (unshaded) then each response token as a span shaded by its segment's ΔER.

    Everything model-written is HTML-escaped; the title of a span carries its ΔER.
    """
    finite = [abs(d) for d in deltas if d is not None]
    scale = max(finite) if finite else 0.0
    spans = []
    for piece, delta in zip(pieces, deltas, strict=True):
        text = html.escape(piece)
        if delta is None:
            spans.append(f'<span class="tok">{text}</span>')
        else:
            spans.append(
                f'<span class="tok" title="ΔER {delta:+.3f}" '
                f'style="background:{_shade(delta, scale)}">{text}</span>'
            )
    return (
        '<div class="trace-text" style="white-space:pre-wrap;font-family:monospace">'
        f'<div class="trace-prompt" style="color:#666">{html.escape(prompt)}</div>'
        f'<div class="trace-response">{"".join(spans)}</div></div>'
    )
