"""Pure figure and table builders for the compare, analysis, evaluate and playground pages.

Data in, plotly `Figure` or pandas `DataFrame` out; no Gradio, no store. Every figure sets
`layout.uirevision` so zoom and hidden traces survive refreshes, and uses SVG traces only
(`go.Scatter`, never WebGL: headless CI Chromium has no GPU).
"""

from __future__ import annotations

import html
from collections.abc import Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from app.plots import add_notes, axes_layout, empty_figure, integer_axis, metric_titles

LOWER_IS_BETTER = frozenset({"loss", "kl", "step_seconds", "frac_zero_std"})
LABELS = {
    "er": "ER",
    "erv": "ERV",
    "era": "ERA",
    "entropy": "token entropy",
    "mean_logprob": "mean log-prob",
    "length": "response length",
}


def label(metric: str) -> str:
    return LABELS.get(metric, metric.replace("_", " "))


# ---------------------------------------------------------------- compare


def compare_figure(
    series: dict[str, tuple[Sequence, Sequence]],
    metric: str,
    missing: dict[str, str] | None = None,
) -> go.Figure:
    """One labelled line per run: `series[run label] = (steps, values)`. Runs without a single
    value draw no line; `missing[run label]` (why it has none) is said under the title."""
    missing = missing or {}
    drawn = {name: xy for name, xy in series.items() if len(xy[0])}
    notes = [f"{name}: {missing.get(name) or f'no {label(metric)} recorded'}"
             for name in series if name not in drawn]  # fmt: skip
    if not drawn:
        return empty_figure("<br>".join(map(html.escape, notes)) or "pick runs to compare")
    fig = go.Figure()
    for name, (x, y) in drawn.items():
        fig.add_trace(go.Scatter(x=list(x), y=list(y), mode="lines+markers", name=name))
    fig.update_xaxes(integer_axis([np.asarray(x, dtype=float) for x, _ in drawn.values()]))
    layout = axes_layout(
        metric_titles().get(metric, label(metric)),  # the dropdown's title, not the column
        "step",
        label(metric),
        f"compare-{metric}",
        height=None,
        title_on_plot=True,
    )
    if notes:  # own lines under the title: a two-line title overlaps the plot area
        add_notes(layout, notes)
    return fig.update_layout(**layout, showlegend=True)  # a single line is labelled too


DELTA_FINAL, DELTA_BEST = "Δ final", "Δ best"  # short: the page says which run they are from
SIGNIFICANT = 4  # digits a compared value shows on the page (exact in `compare_table`)


def compare_table(
    series: dict[str, tuple[Sequence, Sequence]],
    metric: str,
    missing: dict[str, str] | None = None,
) -> pd.DataFrame:
    """Exact final and best value of each run, and each one's difference from the first run's
    (`Δ final`, `Δ best`); a run without values says why in its `note`."""
    lower = metric in LOWER_IS_BETTER
    rows = []
    for name, (x, y) in series.items():
        x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
        ok = np.isfinite(y)
        if not ok.any():
            why = (missing or {}).get(name) or f"no {label(metric)} recorded yet"
            rows.append({"run": name, "final": None, "best": None, "best step": None, "note": why})
            continue
        x, y = x[ok], y[ok]
        i = int(np.argmin(y) if lower else np.argmax(y))
        rows.append({"run": name, "final": y[-1], "best": y[i], "best step": int(x[i]), "note": ""})
    df = pd.DataFrame(rows, columns=["run", "final", "best", "best step", "note"])
    for col, delta in (("final", DELTA_FINAL), ("best", DELTA_BEST)):
        values = df[col].astype(float)
        df[delta] = values - (values.iloc[0] if len(df) else np.nan)
    return df[[c for c in df.columns if c != "note"] + ["note"]]


def display_decimals(values: Sequence[float], significant: int = SIGNIFICANT) -> int:
    """Decimals that show `significant` digits of the largest |value| (accuracy 0.4567 -> 4,
    loss 21.9998 -> 2, tokens 12345.6 -> 0); 0 when there is no finite value."""
    finite = np.abs(np.asarray(values, dtype=float))
    finite = finite[np.isfinite(finite) & (finite > 0)]
    if not finite.size:
        return 0
    return max(0, significant - 1 - int(np.floor(np.log10(finite.max()))))


def compare_display(table: pd.DataFrame, first_run: str | None) -> tuple[pd.DataFrame, str]:
    """(the table as the page shows it, the markdown under it) from `compare_table`: values
    rounded to the metric's significant digits, the notes and what Δ means under the table
    (a `note` column made the table wider than the page)."""
    shown = table.drop(columns=["note"])
    value_cols = ["final", "best", DELTA_FINAL, DELTA_BEST]
    decimals = display_decimals(shown[["final", "best"]].to_numpy(dtype=float).ravel())
    shown[value_cols] = shown[value_cols].astype(float).round(decimals)
    shown["best step"] = shown["best step"].astype("Int64")
    lines = []
    if first_run is not None and len(table) > 1:
        lines.append(f"Δ = the run's value − {html.escape(first_run)}'s (the first run picked).")
    lines += [f"- **{html.escape(r)}**: {html.escape(n)}" for r, n in zip(table["run"], table["note"], strict=True) if n]  # fmt: skip
    return shown, "\n".join(lines)


# ---------------------------------------------------------------- analysis


def scatter_figure(
    x: np.ndarray,
    y: np.ndarray,
    step: np.ndarray,
    drawn: np.ndarray,
    *,
    x_metric: str,
    y_metric: str,
    r: float,
    r2: float,
) -> go.Figure:
    """Per-response scatter of the `drawn` points, coloured by step; r and R² are of all points."""
    n = int(np.sum(np.isfinite(x) & np.isfinite(y)))
    if n == 0:
        return empty_figure("no recorded responses in this range")
    shown = f"{len(drawn):,} of {len(x):,} drawn" if len(drawn) < len(x) else f"n = {n:,}"
    fig = go.Figure(
        go.Scatter(
            x=x[drawn].tolist(),  # plain lists: plotly would ship numpy as base64 typed arrays
            y=y[drawn].tolist(),
            mode="markers",
            marker={"size": 5, "opacity": 0.6, "color": step[drawn].tolist(), "colorscale": "Viridis",
                    "colorbar": {"title": "step"}},
            name="responses",
        )
    )  # fmt: skip
    # the numbers on their own line under the title: plotly anchors a two-line title by its
    # first line, so its second line sat on the points and the top y tick
    layout = axes_layout(
        f"{label(x_metric)} vs {label(y_metric)}",
        label(x_metric),
        label(y_metric),
        f"scatter-{x_metric}-{y_metric}",
        height=None,
        title_on_plot=True,
    )
    add_notes(layout, [f"r = {r:+.3f}, R² = {r2:.3f} ({shown})"])
    return fig.update_layout(**layout)


def step_r_figure(
    steps: Sequence[int], step_r: dict[tuple[str, str], Sequence[float]]
) -> go.Figure:
    """Pearson r of each pair, per training step."""
    if not len(steps):
        return empty_figure("not enough responses per step")
    fig = go.Figure()
    for (x, y), r in step_r.items():
        fig.add_trace(
            go.Scatter(x=list(steps), y=list(r), mode="lines+markers", name=f"r({label(x)}, {label(y)})")
        )  # fmt: skip
    fig.add_hline(y=0, line={"color": "grey", "dash": "dot"})
    fig.update_yaxes(range=[-1.05, 1.05])
    fig.update_xaxes(integer_axis([np.asarray(steps, dtype=float)]))
    return fig.update_layout(
        **axes_layout("Pearson r per step", "step", "r", "step-r", height=None, title_on_plot=True)
    )


def stats_table(pairs, length_r: dict[str, float]) -> pd.DataFrame:
    """One row per pair "x vs y": n, r, R², each metric's r with length, partial r given length."""
    rows = [
        {
            "pair": f"{label(p.x)} vs {label(p.y)}",
            "n": p.n,
            "r": round(p.r, 4),
            "R²": round(p.r2, 4),
            "r(x, length)": round(length_r.get(p.x, np.nan), 4),
            "r(y, length)": round(length_r.get(p.y, np.nan), 4),
            "partial r given length": round(p.partial_r_length, 4),
        }
        for p in pairs
    ]
    return pd.DataFrame(rows)


def length_table(length_r: dict[str, float]) -> pd.DataFrame:
    return pd.DataFrame(
        [{"metric": label(m), "r with response length": round(r, 4)} for m, r in length_r.items()]
    )


# ---------------------------------------------------------------- evaluate


def pass_at_k_figure(curves: list[tuple[str, Sequence[int], Sequence[float]]]) -> go.Figure:
    """pass@k against k, one line per (run, checkpoint)."""
    if not curves:
        return empty_figure("no evaluations yet")
    fig = go.Figure()
    for name, ks, values in curves:
        fig.add_trace(go.Scatter(x=list(ks), y=list(values), mode="lines+markers", name=name))
    fig.update_yaxes(range=[0, 1.02])
    fig.update_xaxes(type="log", dtick=np.log10(2))
    return fig.update_layout(
        **axes_layout(
            "pass@k (unbiased estimator)",
            "k",
            "pass@k",
            "pass-at-k",
            height=None,
            title_on_plot=True,
        )
    )


# ---------------------------------------------------------------- playground


def rank_curve_figure(positions: Sequence[int], curve: Sequence[float], title: str) -> go.Figure:
    """ER of each response prefix against the token index of its last row."""
    fig = go.Figure(
        go.Scatter(x=list(positions), y=list(curve), mode="lines+markers", name="ER of prefix")
    )
    return fig.update_layout(
        **axes_layout(
            title, "response token", "ER", "playground-curve", height=None, title_on_plot=True
        )
    )


def token_proxy_figure(entropy: Sequence[float], logprob: Sequence[float]) -> go.Figure:
    x = list(range(len(entropy)))
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=x, y=list(entropy), mode="lines", name="entropy"))
    fig.add_trace(go.Scatter(x=x, y=list(logprob), mode="lines", name="log-prob"))
    layout = axes_layout(
        "Token entropy and log-prob",
        "response token",
        "nats",
        "playground-proxies",
        height=None,
        title_on_plot=True,
    )
    return fig.update_layout(**layout)
