"""The playground: one kept-loaded model, streamed answers with a growing rank curve, and the
teacher-forced analysis of any prompt + response.

Rows of the rank curve are the last layer's hidden states *at* each response token (after the
final norm; `hidden_states[-1][:, P:P+C]` for a prompt of P tokens), the rows the trainer
records: so a response's playground curve and its training-time curve agree. The EOS token, when
generated, is a response token (the text keeps it, e.g. `<|im_end|>`, so pasting the streamed
text back gives the same tokens). Token proxies are the model's own distribution (temperature 1)
at each response position: entropy H_t = −Σ p log p and the sampled token's log p.

Streaming: each sampled token is fed back through the KV cache, which yields its hidden state;
at t = s, 2s, … a curve point ER(X[:t+1]) is added (the whole window is recomputed once the
response is longer than `max_len`). The last update holds the full analysis from
`rank_dynamics` over all rows, which equals, to float32 round-off, the teacher-forced
`analyze_ids` of the same tokens, and `analyze(prompt, text)` of the finished text whenever the
text re-tokenizes to the sampled tokens. (Byte-level BPE sampled at T = 1 can emit a
non-canonical split, e.g. `St`+`ep` for `Step`; pasting such a text analyses its canonical
tokens, which is what the model would have read.)

All torch work runs with 1 thread (restored afterwards), so the app stays responsive.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from engine.config import ConfigError, field_help, field_problems
from engine.threads import single_threaded

log = logging.getLogger(__name__)


@dataclass
class GenerationSettings:
    max_new_tokens: int = 64
    temperature: float = 1.0
    top_p: float = 1.0
    greedy: bool = False
    seed: int = 0


@dataclass
class RankSettings:
    stride: int = 4  # s: a curve point every s response tokens
    max_len: int | None = 512  # the curve covers the last max_len response tokens


# Each Playground input -> the run-config field for the same quantity, whose type, rule and help
# text it shares (one source: a temperature the training config refuses, the Playground refuses)
INPUT_FIELDS = {
    "max new tokens": "grpo.max_completion_length",
    "temperature": "grpo.temperature",
    "top p": "grpo.top_p",
    "seed": "run.seed",
    "stride s": "shaping.stride",
}


def input_help(label: str) -> str:
    """The help text a Playground input shows: its run-config field's, naming that field."""
    path = INPUT_FIELDS[label]
    return f"{field_help(path)} (as {path} of a run)"


def check_inputs(values: dict[str, Any]) -> None:
    """ConfigError naming each bad Playground input by its label ("temperature: must be in
    (0, 10]"), judged by its run-config field's type and rule (`INPUT_FIELDS`); `values` maps
    labels to values as typed in the page (None for an empty box). KeyError for an unknown
    label."""
    problems = field_problems({INPUT_FIELDS[label]: v for label, v in values.items()})
    label_of = {path: label for label, path in INPUT_FIELDS.items()}
    if problems:
        raise ConfigError([(label_of[path], message) for path, message in problems])


def checked_settings(
    *, max_new_tokens: Any, temperature: Any, top_p: Any, seed: Any, stride: Any, greedy: bool
) -> tuple[GenerationSettings, RankSettings]:
    """The Generate inputs as settings once `check_inputs` passes them; ConfigError else."""
    given = (max_new_tokens, temperature, top_p, seed, stride)
    check_inputs(dict(zip(INPUT_FIELDS, given, strict=True)))
    gen = GenerationSettings(
        int(max_new_tokens), float(temperature), float(top_p), bool(greedy), int(seed)
    )
    return gen, RankSettings(stride=int(stride))


@dataclass
class Analysis:
    """Rank and token metrics of one response."""

    token_ids: list[int]
    tokens: list[str]  # each response token's text
    curve: np.ndarray  # (J,) ER of each prefix
    positions: np.ndarray  # (J,) response-token index of each curve point's last row
    er: float
    erv: float
    era: float
    entropy: float  # mean token entropy
    mean_logprob: float
    token_entropy: np.ndarray  # (C,)
    token_logprob: np.ndarray  # (C,)

    @property
    def length(self) -> int:
        return len(self.token_ids)


@dataclass
class StreamUpdate:
    text: str  # the response so far
    token_ids: list[int]
    curve: np.ndarray  # (J,) the curve so far
    positions: np.ndarray  # (J,)
    done: bool = False
    analysis: Analysis | None = None  # on the last update


def _default_loader(name: str):
    from engine.models.loading import load_policy

    return load_policy(name, require_chat_template=False)  # plain prompts need none


@dataclass
class Playground:
    """Holds one model at a time; `load` swaps it only when another one is asked for."""

    loader: Callable = _default_loader
    name: str | None = None
    model: object = field(default=None, repr=False)
    tokenizer: object = field(default=None, repr=False)

    def load(self, name_or_path: str) -> str:
        if name_or_path != self.name or self.model is None:
            self.model, self.tokenizer = None, None  # free the old one first
            with single_threaded():
                model, tok = self.loader(name_or_path)
            model.eval()
            self.model, self.tokenizer, self.name = model, tok, name_or_path
            log.info("playground model: %s", name_or_path)
        return self.name

    # ------------------------------------------------------------ tokens

    def prompt_ids(self, prompt: str, chat: bool = False) -> list[int]:
        tok = self._need_tokenizer()
        if chat:
            messages = [{"role": "user", "content": prompt}]
            text = tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        else:
            text = prompt
        return list(tok(text, add_special_tokens=False)["input_ids"])

    def response_ids(self, response: str) -> list[int]:
        return list(self._need_tokenizer()(response, add_special_tokens=False)["input_ids"])

    def _need_tokenizer(self):
        if self.tokenizer is None:
            raise RuntimeError("no model loaded: call load() first")
        return self.tokenizer

    def _token_texts(self, ids: list[int]) -> list[str]:
        return [self.tokenizer.decode([i], skip_special_tokens=False) for i in ids]

    # ------------------------------------------------------------ teacher forcing

    def analyze(
        self, prompt: str, response: str, *, chat: bool = False, rank: RankSettings | None = None
    ) -> Analysis:
        """Teacher-forced rank curve, ER/ERV/ERA and token proxies of `response` after `prompt`."""
        p_ids, r_ids = self.prompt_ids(prompt, chat), self.response_ids(response)
        return self.analyze_ids(p_ids, r_ids, rank=rank)

    def analyze_ids(
        self, p_ids: list[int], r_ids: list[int], *, rank: RankSettings | None = None
    ) -> Analysis:
        """`analyze` on token ids: one forward over prompt + response (teacher forcing)."""
        import torch

        if not p_ids:
            raise ValueError("the prompt is empty")
        if not r_ids:
            raise ValueError("the response is empty")
        P, C = len(p_ids), len(r_ids)
        ids = torch.tensor([p_ids + r_ids], device=self.model.device)  # (1, P + C)
        with single_threaded(), torch.no_grad():
            out = self.model(input_ids=ids, output_hidden_states=True, use_cache=False)
            H = out.hidden_states[-1][0, P : P + C]  # (C, D) states at the response tokens
            logits = out.logits[0, P - 1 : P + C - 1].float()  # (C, V) predicting each token
            logp_all = torch.log_softmax(logits, dim=-1)
            logp = logp_all.gather(1, ids[0, P:, None]).squeeze(1)  # (C,)
            ent = -(logp_all.exp() * logp_all).sum(-1)  # (C,)
        return self._analysis(r_ids, H, logp, ent, rank or RankSettings())

    def _analysis(self, r_ids, H, logp, ent, rank: RankSettings) -> Analysis:
        import torch

        from engine.rank.effective_rank import token_proxies
        from engine.rank.scheduling import rank_dynamics

        mask = torch.ones(1, H.shape[0], dtype=torch.bool)
        with single_threaded():
            rd = rank_dynamics(
                H[None].cpu(), mask, stride=rank.stride, max_len=rank.max_len, workers=1
            )
            tp = token_proxies(logp[None].cpu(), ent[None].cpu(), mask)
        return Analysis(
            token_ids=list(r_ids),
            tokens=self._token_texts(list(r_ids)),
            curve=rd.curves[0].numpy(),
            positions=rd.positions[0].numpy(),
            er=float(rd.er[0]),
            erv=float(rd.erv[0]),
            era=float(rd.era[0]),
            entropy=float(tp.entropy[0]),
            mean_logprob=float(tp.mean_logprob[0]),
            token_entropy=ent.double().cpu().numpy(),
            token_logprob=logp.double().cpu().numpy(),
        )

    # ------------------------------------------------------------ streaming

    def stream(
        self,
        prompt: str,
        *,
        chat: bool = False,
        gen: GenerationSettings | None = None,
        rank: RankSettings | None = None,
    ) -> Iterator[StreamUpdate]:
        """Sample a response token by token; each update carries the text and the curve so far."""
        import torch

        gen, rank = gen or GenerationSettings(), rank or RankSettings()
        p_ids = self.prompt_ids(prompt, chat)
        if not p_ids:
            raise ValueError("the prompt is empty")
        eos = self.tokenizer.eos_token_id
        rng = torch.Generator().manual_seed(gen.seed)
        ids = torch.tensor([p_ids], device=self.model.device)  # (1, P)
        with single_threaded(), torch.no_grad():
            out = self.model(input_ids=ids, use_cache=True)
        cache, logits = out.cache, out.logits[0, -1].float()  # (V,)
        r_ids: list[int] = []
        rows, logps, ents = [], [], []  # (D,) states, token log-probs and entropies
        curve = _GrowingCurve(rank)
        for _ in range(gen.max_new_tokens):
            logp_all = torch.log_softmax(logits, dim=-1)  # (V,) at temperature 1
            token = _pick(logits, gen, rng)
            logps.append(logp_all[token])
            ents.append(-(logp_all.exp() * logp_all).sum())
            r_ids.append(token)
            with single_threaded(), torch.no_grad():
                out = self.model(
                    input_ids=torch.tensor([[token]], device=self.model.device),
                    cache=cache,
                    use_cache=True,
                    output_hidden_states=True,
                )
            cache, logits = out.cache, out.logits[0, -1].float()
            rows.append(out.hidden_states[-1][0, -1])  # (D,) state at this response token
            curve.add(rows)
            text = self.tokenizer.decode(r_ids, skip_special_tokens=False)
            if token == eos:
                break
            yield StreamUpdate(text, list(r_ids), *curve.arrays())
        if not r_ids:
            return
        H = torch.stack(rows)  # (C, D)
        analysis = self._analysis(r_ids, H, torch.stack(logps), torch.stack(ents), rank)
        text = self.tokenizer.decode(r_ids, skip_special_tokens=False)
        yield StreamUpdate(text, r_ids, analysis.curve, analysis.positions, True, analysis)


def _pick(logits, gen: GenerationSettings, rng) -> int:
    """The next token: argmax, or a sample from softmax(logits / T) within the top-p nucleus."""
    import torch

    if gen.greedy:
        return int(torch.argmax(logits))
    probs = torch.softmax(logits / gen.temperature, dim=-1)  # (V,)
    if gen.top_p < 1.0:
        sorted_p, order = torch.sort(probs, descending=True)
        keep = torch.cumsum(sorted_p, 0) - sorted_p < gen.top_p  # always keeps the top token
        probs = torch.zeros_like(probs).scatter(0, order[keep], sorted_p[keep])
    return int(torch.multinomial(probs, 1, generator=rng))


class _GrowingCurve:
    """The rank curve of the rows seen so far, one new ER per stride (see the module docstring)."""

    def __init__(self, rank: RankSettings):
        self.rank = rank
        self.values: list[float] = []
        self.positions: list[int] = []

    def add(self, rows: list) -> None:
        import torch

        from engine.rank.effective_rank import curve_points, effective_rank, window
        from engine.rank.scheduling import rank_dynamics

        n, s, max_len = len(rows), self.rank.stride, self.rank.max_len
        t = n - 1  # index of the newest row
        if curve_points(n, s)[-1:] != [t]:  # the newest row closes no curve point
            return
        with single_threaded():
            if window(n, max_len)[0] == 0:  # the window still holds every row
                self.values.append(float(effective_rank(torch.stack(rows).double())))
                self.positions.append(t)
                return
            H = torch.stack(rows)[None]  # (1, n, D): the window slides, recompute it
            rd = rank_dynamics(H, torch.ones(1, n, dtype=torch.bool), stride=s, max_len=max_len)
        self.values = rd.curves[0].tolist()
        self.positions = rd.positions[0].tolist()

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        return np.asarray(self.values, dtype=np.float64), np.asarray(self.positions, dtype=np.int64)
