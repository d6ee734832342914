"""`VerlTrainer`: TRL's GRPOTrainer (pinned 1.16) with hidden-state capture and VERL shaping.

The smallest override: `_generate_and_score_completions` calls `super()`; then for a training
generation the trainer

1. captures the backbone's post-norm last hidden state through a forward hook during a call of
   TRL's own `_get_per_token_logps_and_entropies(..., compute_entropy=True)` on the wrapped model
   (so FSDP / ZeRO-3 gather parameters). `shaping.hidden_alignment` says which state stands for
   completion token j: "produced" (default) the state at prompt length - 1 + j, the one whose
   logits sampled token j, as the reference's decode-time capture (hf618/VERL
   hidden_vllm/worker/model_runner.py L1414-1420 and L1480-1501: the last prompt position for
   j = 0; the last response token's own state is never used); "read" the state at prompt
   length + j, the one that has read token j. The same forward
   gives per-token log-probs and entropies at the sampling temperature, without (B, T, V) logits
   and without `output_hidden_states=True` (every layer);
2. measures ER / ERV / ERA (`engine.rank.scheduling.rank_dynamics`) on the response tokens
   (TRL's `completion_mask`) and the token-level proxies (`token_proxies`);
3. shapes the advantages (`engine.shaping.generation_bonus`, from the baselines before this
   generation; plain `grpo` runs the same code with a zero bonus, so the two algorithms are
   comparable);
4. once every response of the generation is measured: advances the baselines
   (`engine.shaping.advance_baselines`, means over every process), writes the shaped values back
   into TRL's logged advantages, adds the scalars to TRL's metrics and queues one
   `GenerationRecord` (every response of every process, gathered on the main process) for the
   recording callback.

Which forward carries the hook:
- the loss forward (`capture_in_loss`), when every micro-step that consumes the generation runs
  on the weights that generated it: num_iterations = 1 and the optimizer steps only between
  generations (gradient_accumulation_steps a multiple of steps_per_generation; the demo and the
  GPU recipes). TRL runs that forward anyway, so capture costs no extra forward: `_compute_loss`
  marks its inputs, and its `_get_per_token_logps_and_entropies` call keeps the hidden states of
  its slice of the generation, measures them and puts the shaped advantages into the inputs
  before TRL reads them. A slice's bonus needs only the baselines from before the generation;
  the last slice advances them. TRL shuffles the rows; a row-index column (`ROW_KEY`) says which
  response each row is. The loss forward runs in training mode, as the separate capture below
  does, so a model with active dropout sees dropout in both;
- otherwise (num_iterations > 1: later passes run on updated weights) one extra no-grad forward
  over the whole generation right after it is generated (`capture`).

Evaluation generations (`self.model.training` False) are returned untouched.
"""

from __future__ import annotations

import errno
import logging
import shutil
import time
from collections import defaultdict, deque
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from accelerate.utils import gather_object
from trl import GRPOTrainer
from trl.models.utils import disable_gradient_checkpointing

from engine.config import ShapingConfig
from engine.data.rewards import answer_audit, last_boxed
from engine.rank.effective_rank import (
    NonFiniteHiddenStates,
    RankDynamics,
    TokenProxies,
    token_proxies,
)
from engine.rank.scheduling import rank_dynamics
from engine.shaping import (
    Shaping,
    ShapingState,
    advance_baselines,
    apply_bonus,
    generation_bonus,
    task_scores,
)
from engine.storage.samples import SampleRow

log = logging.getLogger(__name__)

TRAIN = "train"
METRIC_PREFIX = "verl/"
PRODUCED = "produced"  # shaping.hidden_alignment
ROW_KEY = "verl_row"  # generation row index carried through TRL's shuffle to the loss


@dataclass
class GenerationRecord:
    """One training generation as the store wants it: scalars + one row per response."""

    generation: int
    stats: dict[str, float | None]
    samples: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Capture:
    """Per-token data of one generation batch, (B, C) unless noted."""

    hidden: torch.Tensor  # (B, C, D) post-norm last hidden states of token j (hidden_alignment)
    logps: torch.Tensor
    entropies: torch.Tensor
    mask: torch.Tensor  # bool, TRL's completion_mask


@dataclass
class MeasuredSlice:
    """Some responses of a generation, measured and shaped; tensors in the slice's row order."""

    index: list[int]  # the generation row of each slice row
    cap: Capture
    rd: RankDynamics
    tp: TokenProxies
    sh: Shaping
    x: torch.Tensor  # (b, 3) float64 [ERA, ERV, ER]


@dataclass
class PendingGeneration:
    """A training generation from `_generate_and_score_completions` until all of it is measured."""

    inputs: list[dict[str, Any]]  # TRL's prompt rows, generation order
    out: dict[str, Any]  # what TRL's `_generate_and_score_completions` returned
    local: dict[str, Any]  # `_local_view`: rewards, correctness, group ties
    slices: list[MeasuredSlice] = field(default_factory=list)
    seconds: float = 0.0  # TRL's generation and scoring of this generation (this process)

    @property
    def complete(self) -> bool:
        return sum(len(s.index) for s in self.slices) == len(self.inputs)


class NonFiniteRun(RuntimeError):
    """A step whose hidden states hold NaN or inf: the run stops with the step, the response
    and a hint, instead of LAPACK's "ill-conditioned" error from the eigenvalue solver."""

    def __init__(self, step: int, row: int, group_size: int):
        super().__init__(
            f"step {step}: non-finite hidden states (NaN or inf) in response {row} "
            f"(group {row // group_size}, sample {row % group_size}): the model diverged or "
            "overflowed. Lower grpo.learning_rate, or set model.dtype to bfloat16 (not float16)"
        )
        self.step, self.row = step, row


FULL_DISK_BYTES = 16 << 20  # less free space than this after a failed write: the disk is full


def disk_nearly_full(folder: Path) -> bool:
    """Whether the file system holding `folder` (or its nearest existing parent) is full."""
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    try:
        return shutil.disk_usage(folder).free < FULL_DISK_BYTES
    except OSError:
        return False


class VerlTrainer(GRPOTrainer):
    """GRPOTrainer + capture, rank dynamics and VERL advantage shaping (see module docstring)."""

    def __init__(
        self,
        *args: Any,
        shaping: ShapingConfig,
        algorithm: str,
        **kwargs: Any,
    ):
        super().__init__(*args, **kwargs)
        self.shaping_cfg = shaping
        self.shaping_enabled = algorithm == "verl"
        self.shaping_state = ShapingState()
        self.generations: deque[GenerationRecord] = deque()
        self.timings: dict[str, float] = defaultdict(float)
        self.capture_in_loss = (
            self.args.num_iterations == 1
            and self.args.gradient_accumulation_steps % self.args.steps_per_generation == 0
            and not self.args.use_liger_kernel  # its loss never calls TRL's scorer
        )
        self._pending: PendingGeneration | None = None  # generation awaiting its loss forward
        self._loss_inputs: dict[str, Any] | None = None  # that loss's inputs, while it runs

    # ---- the overrides --------------------------------------------------------------------
    def _save_checkpoint(self, model, trial):
        """transformers' checkpoint; a write that failed on a full disk says so (torch's zip
        writer reports it as "unexpected pos"), naming the folder."""
        try:
            return super()._save_checkpoint(model, trial)
        except (OSError, RuntimeError) as exc:
            folder = Path(self.args.output_dir)
            if disk_nearly_full(folder):
                raise OSError(errno.ENOSPC, "No space left on device", str(folder)) from exc
            raise

    def _generate_and_score_completions(self, inputs: list[dict[str, Any]]) -> dict[str, Any]:
        t0 = time.perf_counter()
        out = super()._generate_and_score_completions(inputs)
        seconds = time.perf_counter() - t0
        if not self.model.training:
            return out
        if self._pending is not None:
            raise RuntimeError("a training generation was never consumed by its loss forward")
        pending = PendingGeneration(
            inputs, out, self._timed("shaping", self._local_view, inputs, out), seconds=seconds
        )
        if self.capture_in_loss:
            out[ROW_KEY] = torch.arange(len(inputs), device=out["advantages"].device)
            self._pending = pending
            return out
        cap = self._timed("capture", self.capture, out)
        out["advantages"] = self._measure_slice(pending, list(range(len(inputs))), cap)
        return out

    def _compute_loss(self, model: torch.nn.Module, inputs: dict[str, Any]) -> torch.Tensor:
        if self._pending is not None and ROW_KEY in inputs:
            self._loss_inputs = inputs
        try:
            return super()._compute_loss(model, inputs)
        finally:
            self._loss_inputs = None

    def _get_per_token_logps_and_entropies(
        self, model, input_ids, attention_mask, logits_to_keep, *args: Any, **kwargs: Any
    ):
        inputs, self._loss_inputs = self._loss_inputs, None
        scorer = super()._get_per_token_logps_and_entropies
        if inputs is None:
            return scorer(model, input_ids, attention_mask, logits_to_keep, *args, **kwargs)
        chunks: list[torch.Tensor] = []
        with self._last_hidden_kept(chunks, logits_to_keep):
            logps, entropies, aux_loss = scorer(
                model, input_ids, attention_mask, logits_to_keep, *args, **kwargs
            )
        if entropies is None:
            raise RuntimeError(
                "TRL's loss forward no longer computes entropies; capture needs them"
            )
        t0 = time.perf_counter()
        cap = Capture(
            hidden=torch.cat(chunks, dim=0),
            logps=logps.detach(),
            entropies=entropies.detach(),
            mask=inputs["completion_mask"].bool(),
        )
        self.timings["capture"] += time.perf_counter() - t0
        pending = self._pending
        index = inputs.pop(ROW_KEY).tolist()  # TRL shuffled and sliced the generation's rows
        inputs["advantages"] = self._measure_slice(pending, index, cap)
        if pending.complete:
            self._pending = None
        return logps, entropies, aux_loss

    # ---- pieces ---------------------------------------------------------------------------
    def _measure_slice(self, pending: PendingGeneration, index: list[int], cap: Capture):
        """Rank dynamics and bonus of the generation rows `index` (captured in `cap`); returns
        their A' ((b,), or (b, C) for `last_token`). The last slice completes the generation."""
        try:
            rd = self._timed(
                "rank_dynamics",
                rank_dynamics,
                cap.hidden,
                cap.mask,
                stride=self.shaping_cfg.stride,
                max_len=self.shaping_cfg.max_len,
                workers=torch.get_num_threads(),  # the run's torch_threads: keep the app live
            )
        except NonFiniteHiddenStates as exc:
            row = pending.local["index0"] + index[exc.response]
            raise NonFiniteRun(self.state.global_step + 1, row, self.num_generations) from exc
        t0 = time.perf_counter()
        tp = token_proxies(cap.logps, cap.entropies, cap.mask)
        x = torch.stack([rd.era, rd.erv, rd.er], dim=1).to(torch.float64)  # (b, 3)
        advantages = pending.out["advantages"][index]
        sh = generation_bonus(
            self.shaping_state,
            x,
            advantages,
            pending.local["std_zero"][index],
            self.shaping_cfg,
            enabled=self.shaping_enabled,
        )
        pending.slices.append(MeasuredSlice(index, cap, rd, tp, sh, x))
        shaped = apply_bonus(advantages, sh.bonus, cap.mask, self.shaping_cfg.bonus_on)
        self.timings["shaping"] += time.perf_counter() - t0
        if pending.complete:
            self._finish_generation(pending)
        return shaped

    def _finish_generation(self, pending: PendingGeneration) -> None:
        """Advance the baselines, patch TRL's logged advantages, queue the record."""
        t0 = time.perf_counter()
        # generation order, so that the means do not depend on how TRL shuffled and sliced it
        rows_in = torch.argsort(torch.tensor([i for s in pending.slices for i in s.index]))
        x = torch.cat([s.x for s in pending.slices])[rows_in]  # (B, 3)
        boxed = torch.tensor([last_boxed(t) is not None for t in pending.local["texts"]])
        scores = task_scores(pending.local["correct"], boxed, self.shaping_cfg.score_rule)
        advance_baselines(self.shaping_state, x, scores, self.shaping_cfg, self.accelerator.device)
        rows = sorted(
            (row for s in pending.slices for row in self._rows(pending, s)),
            key=lambda r: (r["group_idx"], r["sample_idx"]),
        )
        shaped = torch.tensor([r["advantage_shaped"] for r in rows], dtype=torch.float64)
        self._patch_logged_advantages(shaped)
        self.timings["shaping"] += time.perf_counter() - t0
        all_rows = gather_object(rows)
        record = GenerationRecord(self.shaping_state.n, {}, all_rows)
        record.stats = generation_stats(all_rows, self.shaping_state, pending.seconds)
        for name, value in record.stats.items():
            if value is not None:
                self._metrics[TRAIN][METRIC_PREFIX + name].append(value)
        if self.accelerator.is_main_process:
            self.generations.append(record)

    def _timed(self, name: str, fn, *args, **kwargs):
        t0 = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            self.timings[name] += time.perf_counter() - t0

    def backbone(self) -> torch.nn.Module:
        """The module whose output's last_hidden_state is post-norm (Qwen2Model, LlamaModel...)."""
        model = self.accelerator.unwrap_model(self.model)
        if hasattr(model, "get_base_model"):  # PEFT
            model = model.get_base_model()
        return model.base_model

    @contextmanager
    def _last_hidden_kept(self, chunks: list[torch.Tensor], completion_length: int):
        """While open, every backbone forward over prompt + completion (P + C positions) appends
        the (b, C, D) hidden states of the completion tokens, detached: positions P - 1 ..
        P + C - 2 ("produced") or P .. P + C - 1 ("read")."""
        C = completion_length
        produced = self.shaping_cfg.hidden_alignment == PRODUCED

        def keep(_module, _args, output):
            hidden = output.last_hidden_state if hasattr(output, "last_hidden_state") else output[0]
            kept = hidden[:, -C - 1 : -1] if produced else hidden[:, -C:]  # (b, C, D)
            chunks.append(kept.detach())

        handle = self.backbone().register_forward_hook(keep)
        try:
            yield
        finally:
            handle.remove()

    @torch.no_grad()
    def capture(self, out: dict[str, Any]) -> Capture:
        """One no-grad forward through TRL's scorer with a hook keeping the last hidden state."""
        completion_ids, completion_mask = out["completion_ids"], out["completion_mask"]
        C = completion_ids.size(1)
        ids = torch.cat([out["prompt_ids"], completion_ids], dim=1)  # (B, P + C)
        attention = torch.cat([out["prompt_mask"], completion_mask], dim=1)  # (B, P + C)
        chunks: list[torch.Tensor] = []
        with (
            self._last_hidden_kept(chunks, C),
            disable_gradient_checkpointing(self.model, self.args.gradient_checkpointing_kwargs),
        ):
            logps, entropies, _ = self._get_per_token_logps_and_entropies(
                self.model,
                ids,
                attention,
                C,
                batch_size=self.args.per_device_train_batch_size,
                compute_entropy=True,
            )
        return Capture(
            hidden=torch.cat(chunks, dim=0),
            logps=logps.detach(),
            entropies=entropies.detach(),
            mask=completion_mask.bool(),
        )

    def _local_view(self, inputs: list[dict[str, Any]], out: dict[str, Any]) -> dict[str, Any]:
        """This process's rewards, correctness and group-tie mask, rebuilt from TRL's logs."""
        B = len(inputs)
        N = B * self.accelerator.num_processes
        start = self.accelerator.process_index * B
        per_func = {name: list(self._logs["rewards"][name])[-N:] for name in self.reward_func_names}
        matrix = torch.tensor([per_func[n] for n in self.reward_func_names], dtype=torch.float64).T
        weights = self.reward_weights.detach().cpu().double()
        rewards = torch.nan_to_num(matrix, nan=0.0) @ weights  # (N,)
        groups = rewards.view(-1, self.num_generations)
        tie = torch.isclose(groups.std(dim=1), torch.zeros(groups.size(0), dtype=torch.float64))
        std_zero = tie.repeat_interleave(self.num_generations)[start : start + B]
        texts = self.processing_class.batch_decode(out["completion_ids"], skip_special_tokens=True)
        # correct = the first (accuracy) reward function gave full marks
        first = torch.tensor(per_func[self.reward_func_names[0]], dtype=torch.float64)[start:]
        correct = torch.nan_to_num(first[:B], nan=0.0) >= 1.0 - 1e-9
        return {
            "rewards": rewards[start : start + B],
            "per_func": {n: v[start : start + B] for n, v in per_func.items()},
            "std_zero": std_zero,
            "correct": correct,
            "texts": texts,
            "index0": start,
        }

    def _patch_logged_advantages(self, shaped: torch.Tensor) -> None:
        """TRL logged the pre-shaping advantages of every process; replace them with A'."""
        gathered = self.accelerator.gather(shaped.to(self.accelerator.device)).cpu().tolist()
        logged = self._logs["advantages"]
        n = len(gathered)
        for i, value in enumerate(gathered):
            logged[len(logged) - n + i] = value

    def _answer_read(self, pending: PendingGeneration, i: int) -> tuple[str, str]:
        """(answer read, normalised gold) of generation row i, as the first reward judged it."""
        inputs = pending.inputs[i]
        text = pending.local["texts"][i]
        return answer_audit(self.reward_func_names[0], text, inputs, inputs.get("prompt"))

    def _rows(self, pending: PendingGeneration, part: MeasuredSlice) -> list[dict]:
        """One store row (`SampleRow`, as a dict) per response of a measured slice."""
        G = self.num_generations
        local, cap, rd, tp, sh = pending.local, part.cap, part.rd, part.tp, part.sh
        a = pending.out["advantages"].detach().cpu().double()
        ids = pending.out["completion_ids"].cpu()
        ends = {*self.eos_token_ids, self.processing_class.pad_token_id}  # as TRL's clipped_ratio
        limit = self.args.max_completion_length
        mask = cap.mask.cpu()
        logps, ent = cap.logps.float().cpu(), cap.entropies.float().cpu()
        max_len = self.shaping_cfg.max_len
        rows = []
        for j, i in enumerate(part.index):  # j: row in the slice, i: row in the generation
            valid = mask[j]
            length = int(valid.sum())
            last = int(ids[i][valid][-1]) if length else None
            g = local["index0"] + i
            answer_read, gold_read = self._answer_read(pending, i)
            row = SampleRow(
                group_idx=g // G,
                sample_idx=g % G,
                prompt=prompt_transcript(pending.inputs[i]["prompt"]),
                completion=local["texts"][i],
                token_ids=ids[i][valid].numpy().astype("int32"),
                token_entropy=ent[j][valid].numpy(),
                token_logprob=logps[j][valid].numpy(),
                reward=float(local["rewards"][i]),
                rewards={n: _finite(v[i]) for n, v in local["per_func"].items()},
                correct=bool(local["correct"][i]),
                advantage=float(a[i]),
                advantage_shaped=float(a[i] + sh.bonus[j]),
                bonus=float(sh.bonus[j]),
                er=float(rd.er[j]),
                erv=float(rd.erv[j]),
                era=float(rd.era[j]),
                entropy=float(tp.entropy[j]),
                mean_logprob=float(tp.mean_logprob[j]),
                length=length,
                truncated=length >= limit and last not in ends,
                curve=rd.curves[j].numpy(),
                curve_stride=self.shaping_cfg.stride,
                curve_positions=rd.positions[j].numpy(),
                curve_offset=max(0, length - max_len) if max_len else 0,
                answer_read=answer_read,
                gold_read=gold_read,
            )
            # + the exploration weight, which generation_stats averages but the store does not keep
            rows.append(row.as_dict() | {"explore_weight": float(sh.explore_weight[j])})
        return rows


def prompt_transcript(prompt: Any) -> str:
    """The prompt as the store keeps it: plain text as is; chat messages as 'role: content'
    lines (unlike `passk.render_prompt`, no chat template)."""
    if isinstance(prompt, str):
        return prompt
    return "\n".join(f"{m.get('role', '')}: {m.get('content', '')}" for m in prompt)


def _finite(v: float | None) -> float | None:
    return None if v is None or v != v else float(v)


def _mean(values: list[float]) -> float | None:
    return float(sum(values) / len(values)) if values else None


def _quantile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    return float(torch.quantile(torch.tensor(values, dtype=torch.float64), q))


def generation_stats(
    rows: list[dict[str, Any]], state: ShapingState, seconds: float | None = None
) -> dict[str, float | None]:
    """Step-row scalars of one generation (every process's rows) in the store's column names.
    `seconds`: TRL's generation + scoring time of it (the main process's), for the time split."""
    stats: dict[str, float | None] = {}
    for k in ("er", "erv", "era"):
        values = [r[k] for r in rows]
        stats[f"{k}_mean"] = _mean(values)
        stats[f"{k}_p10"] = _quantile(values, 0.1)
        stats[f"{k}_p90"] = _quantile(values, 0.9)
        stats[f"{k}_correct"] = _mean([r[k] for r in rows if r["correct"]])
        stats[f"{k}_incorrect"] = _mean([r[k] for r in rows if not r["correct"]])
    m = state.m.tolist() if state.m is not None else [None] * 3
    stats.update(m_era=m[0], m_erv=m[1], m_er=m[2])
    stats["accuracy"] = _mean([float(r["correct"]) for r in rows])
    stats["explore_weight_mean"] = _mean([r["explore_weight"] for r in rows])
    stats["bonus_mean"] = _mean([r["bonus"] for r in rows])
    shaped = [r for r in rows if r["bonus"] > 0]
    stats["frac_shaped"] = len(shaped) / len(rows) if rows else None
    shares = [r["bonus"] / abs(r["advantage"]) for r in shaped]
    stats["bonus_share"] = _quantile(shares, 0.5)  # median bonus / |A| over shaped responses
    stats["mean_logprob"] = _mean([r["mean_logprob"] for r in rows])
    stats["token_entropy"] = _mean([r["entropy"] for r in rows])
    lengths = [float(r["length"]) for r in rows]
    stats["truncated_share"] = _mean([float(r["truncated"]) for r in rows])
    stats["length_p10"] = _quantile(lengths, 0.1)
    stats["length_p90"] = _quantile(lengths, 0.9)
    stats["generation_seconds"] = seconds
    stats["tokens_per_second"] = sum(lengths) / seconds if seconds and lengths else None
    return stats
