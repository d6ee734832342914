"""`verl-studio rank --demo`: ER / ERV / ERA of the embedded model's own responses.

The demo loads the embedded tiny reasoner (`engine.models.loading.load_policy("embedded")`), samples
`DemoSettings.samples` responses to one built-in held-out arithmetic problem, and reads, in one
forward pass over prompt + response, the backbone's post-norm last hidden state of every response
token (for token j the state at prompt length + j, the one that has read token j, as the trainer
captures it) and the log-prob and entropy of each sampled token. It prints, per response,
ER / ERV / ERA (`engine.rank.scheduling.rank_dynamics`) beside the token-level proxies
(`token_proxies`), and saves the rank curves (ER of each prefix against the response's token
index) as a self-contained plotly HTML page (or a PNG where kaleido is installed).
"""

from __future__ import annotations

import importlib.util
import logging
from dataclasses import dataclass
from pathlib import Path

import torch

from engine.config import EMBEDDED_MODEL
from engine.rank.effective_rank import RankDynamics, TokenProxies, token_proxies
from engine.rank.scheduling import rank_dynamics

log = logging.getLogger(__name__)

HTML, PNG = ".html", ".png"


@dataclass(frozen=True)
class DemoSettings:
    """What the demo samples and how it measures."""

    model: str = EMBEDDED_MODEL
    samples: int = 8  # responses to the one problem
    temperature: float = 1.0
    max_new_tokens: int = 48
    seed: int = 0
    problem_index: int = 0  # which held-out problem
    max_len: int | None = 512  # curve window (the paper's)


@dataclass
class DemoResult:
    """The problem, the responses and their rank dynamics."""

    prompt: str
    answer: str
    completions: list[str]
    correct: list[bool]
    ids: torch.Tensor  # (B, P + C) prompt + sampled tokens (padded after each eos)
    prompt_len: int  # P
    hidden: torch.Tensor  # (B, C, D) float32 response-token hidden states
    mask: torch.Tensor  # (B, C) bool, True = a response token (up to and with the eos)
    rd: RankDynamics
    tp: TokenProxies


def sample(model, tok, prompt: str, settings: DemoSettings) -> tuple[torch.Tensor, int]:
    """(ids (B, P + C), P): `samples` sampled continuations of one prompt, from a fixed seed."""
    enc = tok([prompt], return_tensors="pt", add_special_tokens=False)
    ids = enc["input_ids"].repeat(settings.samples, 1)  # (B, P)
    with torch.random.fork_rng(devices=[]), torch.no_grad():
        torch.manual_seed(settings.seed)
        out = model.generate(
            input_ids=ids,
            attention_mask=torch.ones_like(ids),
            do_sample=True,
            temperature=settings.temperature,
            top_k=0,
            top_p=1.0,
            max_new_tokens=settings.max_new_tokens,
            eos_token_id=tok.eos_token_id,
            pad_token_id=tok.pad_token_id,
        )
    return out, ids.shape[1]


def response_mask(completion_ids: torch.Tensor, eos_id: int) -> torch.Tensor:
    """(B, C) bool: the tokens up to and including the first eos (TRL's completion_mask).

    >>> response_mask(torch.tensor([[5, 2, 0, 0], [5, 6, 7, 8]]), eos_id=2).tolist()
    [[True, True, False, False], [True, True, True, True]]
    """
    is_eos = (completion_ids == eos_id).long()
    return (is_eos.cumsum(1) - is_eos) == 0


def measure(model, ids: torch.Tensor, p: int, mask: torch.Tensor, temperature: float):
    """hidden (B, C, D), logps (B, C), entropies (B, C) of the response tokens, one forward."""
    attention = torch.cat([torch.ones_like(ids[:, :p]), mask.long()], dim=1)  # (B, P + C)
    backbone = getattr(model, model.base_model_prefix)
    with torch.no_grad():
        states = backbone(input_ids=ids, attention_mask=attention).last_hidden_state  # post-norm
        logits = model.get_output_embeddings()(states[:, p - 1 : -1]).float() / temperature
    logp_all = torch.log_softmax(logits, dim=-1)  # (B, C, V): position P-1+j predicts token j
    logps = logp_all.gather(-1, ids[:, p:, None]).squeeze(-1)
    entropies = -(logp_all.exp() * logp_all).sum(-1)
    return states[:, p:].float(), logps, entropies


def run_demo(stride: int, settings: DemoSettings | None = None) -> DemoResult:
    """Sample, measure and compute ER / ERV / ERA (see the module docstring)."""
    from engine.data.rewards import is_correct
    from engine.data.tasks import heldout_problems
    from engine.models.loading import load_policy

    settings = settings or DemoSettings()
    problem = heldout_problems(settings.problem_index + 1)[settings.problem_index]
    log.info("loading the %s model", settings.model)
    model, tok = load_policy(settings.model)
    model.eval()
    log.info("sampling %d responses to %r", settings.samples, problem.question)
    ids, p = sample(model, tok, problem.prompt, settings)
    mask = response_mask(ids[:, p:], tok.eos_token_id)
    hidden, logps, entropies = measure(model, ids, p, mask, settings.temperature)
    completions = [
        tok.decode(row[m], skip_special_tokens=True)
        for row, m in zip(ids[:, p:], mask, strict=True)
    ]
    return DemoResult(
        prompt=problem.prompt,
        answer=problem.answer,
        completions=completions,
        correct=[is_correct(c, problem.answer) for c in completions],
        ids=ids,
        prompt_len=p,
        hidden=hidden,
        mask=mask,
        rd=rank_dynamics(hidden, mask, stride=stride, max_len=settings.max_len),
        tp=token_proxies(logps, entropies, mask),
    )


def table(result: DemoResult) -> str:
    """The per-response numbers as a plain-text table."""
    head = f"{'#':>2} {'correct':>7} {'tokens':>6} {'ER':>8} {'ERV':>8} {'ERA':>8}"
    head += f" {'entropy':>8} {'mean logp':>9}  response"
    lines = [f"problem: {result.prompt!r}   gold answer: {result.answer}", head]
    for i, text in enumerate(result.completions):
        one_line = " | ".join(part.strip() for part in text.strip().splitlines())
        lines.append(
            f"{i:>2} {'yes' if result.correct[i] else 'no':>7} {int(result.mask[i].sum()):>6}"
            f" {result.rd.er[i].item():>8.3f} {result.rd.erv[i].item():>8.3f}"
            f" {result.rd.era[i].item():>8.3f} {result.tp.entropy[i].item():>8.3f}"
            f" {result.tp.mean_logprob[i].item():>9.3f}  {one_line[:70]}"
        )
    return "\n".join(lines)


def curve_figure(result: DemoResult, stride: int):
    """Plotly figure: each response's rank curve, ER against its response-token index."""
    import plotly.graph_objects as go

    fig = go.Figure()
    for i, (x, y) in enumerate(zip(result.rd.positions, result.rd.curves, strict=True)):
        mark = "correct" if result.correct[i] else "wrong"
        name = f"#{i} ({mark}) ER {result.rd.er[i].item():.2f}, ERV {result.rd.erv[i].item():.2f}"
        fig.add_trace(go.Scatter(x=x.tolist(), y=y.tolist(), mode="lines+markers", name=name))
    fig.update_layout(
        title=f"Rank curves of the embedded model's responses to {result.prompt!r} (s = {stride})",
        xaxis_title="response token index (last row of the prefix)",
        yaxis_title="effective rank of the prefix",
        template="plotly_white",
    )
    return fig


def save_figure(fig, out: Path) -> None:
    """.html: self-contained (plotly.js inlined, works offline); .png: needs kaleido."""
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix.lower() == PNG:
        if importlib.util.find_spec("kaleido") is None:
            raise ValueError(f"{out}: PNG export needs the kaleido package; use {HTML} instead")
        fig.write_image(str(out))
    elif out.suffix.lower() == HTML:
        fig.write_html(str(out), include_plotlyjs=True, full_html=True)
    else:
        raise ValueError(f"{out}: the plot is saved as {HTML} or {PNG}")
