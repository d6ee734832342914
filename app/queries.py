"""Store rows -> chart-shaped frames and plain values for the pages. No Gradio here.

Every function takes the `Store` (and ids) explicitly; "nothing yet" is an empty frame or list.
The monitor's cheap poll is `monitor_signature`: one small query per selected run, compared by
the page to decide whether the (much dearer) `steps_frames` + figures must be rebuilt.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd
import yaml

from app.plots import REWARD_FUNCTION_PREFIX, CurveTrace, panel_columns, segment_deltas
from engine.config import HEALTH_FLAGS
from engine.data.audit import AuditResult, answer_label, audit
from engine.health import CLEAR, FLAG, HEALTH_EVENT_PREFIX, STOP, flagged_responses
from engine.runs.failure import explain_failure
from engine.runs.lifecycle import error_summary
from engine.storage import Store
from engine.storage.samples import BOOL, FLOAT, INT, SAMPLE_KINDS
from engine.storage.schema import STEP_METRICS

log = logging.getLogger(__name__)

X_COLUMNS = ("step", "wall_time", "tokens")
RUNS_TABLE_COLUMNS = (
    "id",
    "name",
    "algorithm",
    "status",
    "step / total",
    "ETA",
    "best held-out acc",
    "health",
    "started",
)
YAML_DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


NAME_CELL_CHARS = 32  # a longer run name is shortened in the runs table (whole in the status line)


def short_name(name: str, limit: int = NAME_CELL_CHARS) -> str:
    """A run name cut to `limit` characters for a table cell, keeping its start and its end
    (where names differ: '…-seed0-lr1e-6') around an ellipsis; a short name as it is.

    >>> short_name("verl-qwen2.5-0.5b-instruct-gsm8k-kappa2-seed0-lr1e-6", 24)
    'verl-qwen2.5-0.5…-lr1e-6'
    """
    if len(name) <= limit:
        return name
    tail = (limit - 1) // 3
    return name[: limit - 1 - tail] + "…" + name[len(name) - tail :]


def run_label(run: Any) -> str:
    """How a run is named in legends and pickers: '#12 my-run'."""
    return f"#{run.id} {run.name}"


def choice_id(value: str | int | None) -> int | None:
    """The run id from a picker value ('#12 my-run', '12' or 12)."""
    if value is None or value == "":
        return None
    if isinstance(value, int):
        return value
    head = str(value).lstrip("#").split(" ", 1)[0]
    return int(head) if head.isdigit() else None


def _status(run: Any) -> str:
    return str(getattr(run.status, "value", run.status))


def _fmt_time(t: dt.datetime | None) -> str:
    return "" if t is None else t.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def _fmt_duration(seconds: float) -> str:
    seconds = int(max(seconds, 0))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}h{m:02d}m" if h else f"{m}m{s:02d}s"


def eta(run: Any, now: dt.datetime | None = None) -> str:
    """Remaining time of a running run from its mean pace so far; '' when unknown."""
    step, total = run.step or 0, run.total_steps or 0
    if _status(run) != "running" or not run.started_at or step < 1 or total <= step:
        return ""
    now = now or dt.datetime.now(dt.UTC)
    elapsed = (now - run.started_at).total_seconds()
    return _fmt_duration(elapsed / step * (total - step))


def best_heldout(store: Store, run_id: int) -> float | None:
    values = store.step_columns(run_id, ["heldout_accuracy"])["heldout_accuracy"]
    values = values[~np.isnan(values)]
    return float(values.max()) if values.size else None


def runs_table(store: Store, kind: str | None = "train") -> pd.DataFrame:
    """The runs table, newest first: one row per run, `RUNS_TABLE_COLUMNS`; a long name is
    shortened (`short_name`: the status line above the charts says it whole)."""
    rows = []
    runs = sorted(store.list_runs(kind=kind), key=lambda r: r.id, reverse=True)
    flags = health_flags(store, [r.id for r in runs])
    for run in runs:
        best = best_heldout(store, run.id)
        rows.append(
            (
                run.id,
                short_name(run.name),
                run.algorithm,
                _status(run),
                f"{run.step or 0} / {run.total_steps or 0}",
                eta(run),
                "" if best is None else f"{best:.3f}",
                flags_cell(flags.get(run.id, [])),
                _fmt_time(run.started_at),
            )
        )
    return pd.DataFrame(rows, columns=list(RUNS_TABLE_COLUMNS))


# ----------------------------------------------------------------------------- health flags


@dataclass(frozen=True)
class FlagState:
    """One health flag of a run as its events tell it: raised at `since`, last held at `last`
    (the run's latest step while active), with the sentence of the step that raised it."""

    kind: str
    since: int
    last: int
    message: str
    active: bool
    stopped: bool = False  # this flag stopped the run


def health_flags(store: Store, run_ids: Sequence[int]) -> dict[int, list[FlagState]]:
    """Run id -> its health flags, latest episode of each kind, active ones first. One query."""
    if not run_ids:
        return {}
    events = store.kind_events([FLAG, CLEAR, STOP], run_ids)
    states: dict[int, dict[str, FlagState]] = {}
    latest = {r: None for r in run_ids}
    for e in events:
        verb, _, kind = e["kind"].partition(":")
        run_flags = states.setdefault(e["run_id"], {})
        step = int(e["step"] or 0)
        if verb + ":" == FLAG:
            message = e["message"].removeprefix(HEALTH_EVENT_PREFIX)
            run_flags[kind] = FlagState(kind, step, step, message, active=True)
        elif kind in run_flags and verb + ":" == CLEAR:
            run_flags[kind] = replace(run_flags[kind], last=step - 1, active=False)
        elif kind in run_flags and verb + ":" == STOP:
            run_flags[kind] = replace(run_flags[kind], last=step, stopped=True)
    out = {}
    for run_id, run_flags in states.items():
        if latest.get(run_id) is None:
            latest[run_id] = store.latest_step(run_id)
        flags = [
            replace(f, last=max(f.last, latest[run_id])) if f.active else f
            for f in run_flags.values()
        ]
        out[run_id] = sorted(flags, key=lambda f: (not f.active, HEALTH_FLAGS.index(f.kind)))
    return out


def flags_cell(flags: Sequence[FlagState]) -> str:
    """The runs table's health cell: active flags by name ('' when healthy)."""
    active = [f.kind.replace("_", " ") for f in flags if f.active or f.stopped]
    return ("⚠ " + ", ".join(active)) if active else ""


def flags_markdown(flags: Sequence[FlagState]) -> str:
    """The banner at the top of a run's monitor: one line per flag, active ones first."""
    if not flags:
        return ""
    lines = ["**GRPO health**"]
    for f in flags:
        span = f"step {f.since}" if f.last <= f.since else f"steps {f.since}-{f.last}"
        state = "stopped the run" if f.stopped else "active" if f.active else "cleared"
        icon = "⚠️" if f.active or f.stopped else "✓"
        lines.append(f"- {icon} **{f.kind}** ({state}, {span}): {escape_markdown(f.message)}")
    return "\n".join(lines)


def escape_markdown(text: str) -> str:
    return re.sub(r"([\\`*_{}\[\]<>#|])", r"\\\1", text)


def flag_links(flags: Sequence[FlagState]) -> list[tuple[str, str]]:
    """(label, kind) of each flag, for the picker that lists the responses behind one."""
    return [(f"{f.kind}: responses at step {f.last}", f.kind) for f in flags]


FLAG_RESPONSE_COLUMNS = ("step", "group", "sample", "reward", "length", "truncated", "reason")


def flag_responses(store: Store, run_id: int, kind: str) -> pd.DataFrame:
    """The responses behind a run's flag at the last step it held (with recorded responses):
    step, group, sample, reward, length, truncated and the flag's reason for each."""
    flag = next((f for f in health_flags(store, [run_id]).get(run_id, []) if f.kind == kind), None)
    if flag is None:
        return pd.DataFrame(columns=list(FLAG_RESPONSE_COLUMNS))
    steps = [s for s in store.sample_steps(run_id) if flag.since <= s <= flag.last]
    if not steps:
        return pd.DataFrame(columns=list(FLAG_RESPONSE_COLUMNS))
    step = steps[-1]
    rows = flagged_responses(kind, store.samples(run_id, step))
    table = [
        (
            step,
            r.get("group_idx"),
            r.get("sample_idx"),
            r.get("reward"),
            r.get("length"),
            r.get("truncated"),
            r["reason"],
        )
        for r in rows
    ]
    return pd.DataFrame(table, columns=list(FLAG_RESPONSE_COLUMNS))


def other_jobs_note(store: Store) -> str:
    """Where the runs missing from the runs table are: eval jobs share the run ids ('' if none)."""
    evals = sorted(store.list_runs(kind="eval"), key=lambda r: r.id)
    if not evals:
        return ""
    listed = ", ".join(f"#{r.id} ({_status(r)})" for r in evals)
    return (
        f"Run ids are shared with eval jobs, which are listed on the **Evaluate** page: {listed}."
    )


def run_choices(store: Store, kind: str | None = "train") -> list[str]:
    """Picker labels of every run, newest first."""
    return [run_label(r) for r in sorted(store.list_runs(kind=kind), key=lambda r: -r.id)]


SHAPING_COLUMNS = ("explore_weight_mean", "bonus_mean", "bonus_share", "frac_shaped")


def missing_reasons(run: Any) -> dict[str, str]:
    """Step columns this run will never record, each with why ("KL is not computed: beta = 0").

    Read from the run's config and outcome alone; "*" stands for every column (a run that
    failed before its first step). An empty dict when everything may still come.
    """
    if run is None:
        return {}
    if _status(run) == "failed" and not run.step:
        why = error_summary(run.error) or "no error recorded"
        return {"*": f"run #{run.id} failed before its first step ({why})"}
    cfg = run.config or {}
    grpo, run_cfg = cfg.get("grpo") or {}, cfg.get("run") or {}
    reasons = {}
    if float(grpo.get("beta", 0.0) or 0.0) == 0.0:
        reasons["kl"] = "KL is not computed: beta = 0"
    every, steps = int(run_cfg.get("eval_every", 0) or 0), int(run_cfg.get("max_steps", 0) or 0)
    if every <= 0:
        reasons["heldout_accuracy"] = "held-out accuracy is not evaluated: eval_every = 0"
    elif steps and every > steps:
        reasons["heldout_accuracy"] = (
            f"held-out accuracy is never evaluated: eval_every = {every} > max_steps = {steps}"
        )
    if str(getattr(run, "algorithm", "")) == "grpo":
        reasons.update(dict.fromkeys(SHAPING_COLUMNS, "no VERL shaping: algorithm = grpo"))
    return reasons


def monitor_reasons(store: Store, run_ids: Sequence[int]) -> dict[str, dict[str, str]]:
    """Run label -> `missing_reasons` of that run, for every existing run among `run_ids`."""
    runs = [store.get_run(i) for i in run_ids]
    return {run_label(r): missing_reasons(r) for r in runs if r is not None}


def monitor_signature(store: Store, run_ids: Sequence[int]) -> tuple:
    """What the timer compares: (run id, status, latest step) per selected run. Cheap."""
    sig = []
    for run_id in run_ids:
        run = store.get_run(run_id)
        if run is not None:
            sig.append((run_id, _status(run), store.latest_step(run_id)))
    return tuple(sig)


# steps-frame column -> the step-payload key it was read from before schema v6 typed it
LEGACY_PAYLOAD_SERIES = {"clipped_ratio": "completions/clipped_ratio"}
REWARD_MEAN_KEY = re.compile(r"rewards/(.+)/mean")  # TRL: mean of one reward function per step


def _legacy_payload_series(store: Store, run_id: int) -> dict[str, str]:
    """Steps-frame column -> payload key, for a run recorded before schema v6 (its clipped
    ratio and reward-function means only sit in the step payload)."""
    keys = dict(LEGACY_PAYLOAD_SERIES)
    for key in store.last_payload_keys(run_id):
        match = REWARD_MEAN_KEY.fullmatch(key)
        if match:
            keys[REWARD_FUNCTION_PREFIX + match.group(1)] = key
    return keys


def _aligned(values: dict[str, np.ndarray], steps: np.ndarray) -> dict[str, np.ndarray]:
    """Columns read in another SELECT, aligned to `steps` (a step may have landed between)."""
    if np.array_equal(values["step"], steps):
        return values
    by_step = pd.DataFrame(values).drop_duplicates("step").set_index("step")
    return {k: v.to_numpy() for k, v in by_step.reindex(steps).reset_index().items()}


def steps_frame(store: Store, run_id: int) -> pd.DataFrame:
    """One row per step with the x columns and every column a monitor panel draws: typed step
    columns (TRL's clipped ratio among them), the mean of each reward function and the training
    seconds of a step (its seconds minus generation)."""
    wanted = list(dict.fromkeys([*X_COLUMNS, *panel_columns()]))
    typed = [c for c in wanted if c in STEP_METRICS or c == "step"]
    frame = pd.DataFrame(store.step_columns(run_id, typed), columns=typed)
    steps = frame["step"].to_numpy()
    means = _aligned(store.step_reward_means(run_id), steps)
    for name, values in means.items():
        if name != "step":
            frame[REWARD_FUNCTION_PREFIX + name] = values
    if len(frame) and len(means) == 1 and frame["clipped_ratio"].isna().all():
        legacy = _legacy_payload_series(store, run_id)
        values = _aligned(store.step_payload_columns(run_id, list(legacy.values())), steps)
        for column, key in legacy.items():
            frame[column] = np.asarray(values[key], dtype=np.float64)
    frame["train_seconds"] = frame["step_seconds"] - frame["generation_seconds"]
    return frame


def steps_frames(store: Store, run_ids: Sequence[int]) -> dict[str, pd.DataFrame]:
    """Run label -> steps frame, for every existing run among `run_ids`."""
    frames = {}
    for run_id in run_ids:
        run = store.get_run(run_id)
        if run is not None:
            frames[run_label(run)] = steps_frame(store, run_id)
    return frames


def log_tail(store: Store, run_id: int, limit: int = 200) -> str:
    """The run's events, oldest first, one line each; the error tail last when it failed."""
    events = store.events(run_id, limit=limit)
    lines = [
        f"{_fmt_time(e.get('created_at') or e.get('time'))} {e.get('level', 'info'):7} "
        f"{e.get('message', '')}"
        for e in events
    ]
    run = store.get_run(run_id)
    if run is not None and run.error:
        lines += ["", "error:", run.error]
    return "\n".join(lines) if lines else "(no log lines yet)"


def run_details(store: Store, run_id: int) -> tuple[str, str]:
    """(config YAML, environment YAML) of a run."""
    run = store.get_run(run_id)
    if run is None:
        return "", ""
    env = dict(run.environment or {})
    env.setdefault("host", run.host)
    env.setdefault("pid", run.pid)
    env.setdefault("attempt", getattr(run, "attempt", 1))
    return (
        yaml.dump(run.config, Dumper=YAML_DUMPER, sort_keys=False),
        yaml.dump(env, Dumper=YAML_DUMPER, sort_keys=False, default_flow_style=False),
    )


def failure_paragraph(run: Any) -> str:
    """Why a failed or interrupted run stopped, in one paragraph (what, the field, the fix);
    "" for any other run (`engine.runs.failure.explain_failure`)."""
    if _status(run) not in ("failed", "interrupted"):
        return ""
    failure = explain_failure(run.error, run.config)
    return failure.paragraph() if failure else ""


def run_status(store: Store, run_id: int) -> dict:
    """A JSON-ready status of one run (the /run_status API)."""
    run = store.get_run(run_id)
    if run is None:
        return {"id": run_id, "status": "missing"}
    return {
        "id": run.id,
        "name": run.name,
        "algorithm": run.algorithm,
        "status": _status(run),
        "step": store.latest_step(run_id),
        "total_steps": run.total_steps,
        "attempt": getattr(run, "attempt", 1),
        "cancel_requested": bool(getattr(run, "cancel_requested", False)),
        "error": error_summary(run.error),
        "explanation": failure_paragraph(run),
        "created": _fmt_time(run.created_at),
        "started": _fmt_time(run.started_at),
        "finished": _fmt_time(run.finished_at),
    }


# ----------------------------------------------------------------------------- trace inspector


@dataclass(frozen=True)
class Response:
    """One generated response as the inspector shows it."""

    group_idx: int
    sample_idx: int
    prompt: str
    completion: str
    token_ids: np.ndarray  # (T,) int
    token_entropy: np.ndarray | None  # (T,)
    token_logprob: np.ndarray | None  # (T,)
    curve: np.ndarray  # (J,)
    positions: np.ndarray  # (J,) int
    stats: dict[str, Any]


# the per-response scalars of the sample row, in its order (reward, correct, advantage, ...)
STAT_KEYS = tuple(n for n, k in SAMPLE_KINDS.items() if k in (FLOAT, INT, BOOL))
# the group table leaves out the curve's geometry (stride, offset)
TABLE_KEYS = tuple(k for k in STAT_KEYS if not k.startswith("curve_"))
ANSWER_KEYS = ("answer_read", "gold_read")  # text: what the verifier read, the gold it compared


def _array(value: Any, dtype: Any) -> np.ndarray:
    return np.asarray([] if value is None else value, dtype=dtype)


def _response(row: dict) -> Response:
    return Response(
        group_idx=int(row.get("group_idx") or 0),
        sample_idx=int(row.get("sample_idx") or 0),
        prompt=row.get("prompt") or "",
        completion=row.get("completion") or "",
        token_ids=_array(row.get("token_ids"), np.int64),
        token_entropy=None
        if row.get("token_entropy") is None
        else _array(row["token_entropy"], np.float64),
        token_logprob=None
        if row.get("token_logprob") is None
        else _array(row["token_logprob"], np.float64),
        curve=_array(row.get("curve"), np.float64),
        positions=_array(row.get("curve_positions"), np.int64),
        stats={k: row.get(k) for k in (*STAT_KEYS, *ANSWER_KEYS)}
        | {"rewards": row.get("rewards") or {}},
    )


def inspector_steps(store: Store, run_id: int) -> list[int]:
    """Steps with recorded responses."""
    return list(store.sample_steps(run_id))


def group_responses(store: Store, run_id: int, step: int, group_idx: int) -> list[Response]:
    """Every response of one prompt group, by sample index."""
    rows = store.samples(run_id, step, group_idx=group_idx)
    return sorted((_response(r) for r in rows), key=lambda r: r.sample_idx)


AUDIT_COLUMNS = (
    "group_idx",
    "sample_idx",
    "prompt",
    "completion",
    "correct",
    "reward",
    "answer_read",
    "gold_read",
)


def answer_audit(
    store: Store, run_id: int, step_min: int | None = None, step_max: int | None = None
) -> AuditResult:
    """The answer audit (engine.data.audit) of a run's responses in [step_min, step_max]."""
    return audit(store.sample_records(run_id, AUDIT_COLUMNS, step_min, step_max))


def step_groups(store: Store, run_id: int, step: int) -> list[int]:
    """Prompt groups recorded at a step."""
    return sorted({int(r.get("group_idx") or 0) for r in store.samples(run_id, step)})


def curve_traces(responses: Sequence[Response], selected: int) -> list[CurveTrace]:
    return [
        CurveTrace(
            label=f"#{r.sample_idx} r={_num(r.stats.get('reward'))}",
            positions=r.positions,
            curve=r.curve,
            correct=r.stats.get("correct"),
            selected=r.sample_idx == selected,
        )
        for r in responses
    ]


def _num(v: Any) -> str:
    return "-" if v is None else f"{v:.3g}" if isinstance(v, float) else str(v)


def stats_table(responses: Sequence[Response]) -> pd.DataFrame:
    """One row per response of the group: reward, the answer read and the gold beside it,
    correctness, advantages, bonus, ER/ERV/ERA."""
    rest = [k for k in TABLE_KEYS if k != "reward"]
    rows = [
        [r.sample_idx, r.stats.get("reward")]
        + [answer_label(r.stats.get(k)) for k in ANSWER_KEYS]
        + [r.stats.get(k) for k in rest]
        for r in responses
    ]
    return pd.DataFrame(rows, columns=["sample", "reward", "answer read", "gold", *rest]).round(4)


def token_pieces(tokenizer: Any, token_ids: np.ndarray, completion: str) -> list[str]:
    """The text of each response token (one decode per id); the whole completion as one piece
    when no tokenizer is available."""
    if tokenizer is None or len(token_ids) == 0:
        return [completion]
    return tokenizer.batch_decode([[int(t)] for t in token_ids], skip_special_tokens=False)


def response_deltas(response: Response, n_pieces: int) -> list[float | None]:
    """ΔER per displayed piece: per token when pieces are tokens, else unshaded."""
    if n_pieces != len(response.token_ids):
        return [None] * n_pieces
    return segment_deltas(n_pieces, response.positions, response.curve)
