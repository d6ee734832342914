"""Playground on the embedded model: the streamed curve ends equal to the teacher-forced one."""

from __future__ import annotations

import numpy as np
import pytest

from engine.studio.playground import GenerationSettings, Playground, RankSettings
from tests.conftest import require

TOL = 1e-4


@pytest.fixture(scope="module")
def pg():
    from engine.models.loading import embedded_model_dir

    require((embedded_model_dir() / "model.safetensors").is_file(), "the shipped demo model")
    require(_has_rank_engine(), "engine.effective_rank")
    playground = Playground()
    playground.load("embedded")
    return playground


def _has_rank_engine() -> bool:
    try:
        import engine.rank.effective_rank  # noqa: F401
    except ImportError:
        return False
    return True


def _prompts(n: int) -> list[str]:
    from engine.data.tasks import heldout_problems

    return [p.prompt for p in heldout_problems(n)]


def _assert_same(a, tf):
    assert len(a.curve) >= 2
    np.testing.assert_array_equal(a.positions, tf.positions)
    np.testing.assert_allclose(a.curve, tf.curve, rtol=0, atol=TOL)
    for name in ("er", "erv", "era", "entropy", "mean_logprob"):
        assert getattr(a, name) == pytest.approx(getattr(tf, name), abs=TOL), name
    np.testing.assert_allclose(a.token_logprob, tf.token_logprob, atol=TOL)
    np.testing.assert_allclose(a.token_entropy, tf.token_entropy, atol=TOL)


@pytest.mark.parametrize("max_len", [512, 16], ids=["whole", "sliding-window"])
def test_streamed_curve_ends_equal_to_teacher_forced(pg, max_len):
    """Sampled and greedy answers: the streamed (KV-cache) analysis equals one teacher-forced
    forward over the same tokens, and over the finished text whenever that text re-tokenizes to
    the sampled tokens (a sampled byte-level sequence need not be the canonical tokenization;
    a greedy answer is, and must be checked)."""
    rank = RankSettings(stride=4, max_len=max_len)
    cases = [(p, GenerationSettings(64, seed=seed)) for seed, p in enumerate(_prompts(3))]
    cases.append((_prompts(1)[0], GenerationSettings(64, greedy=True)))
    by_text = 0
    for prompt, gen in cases:
        updates = list(pg.stream(prompt, gen=gen, rank=rank))
        final = updates[-1]
        assert final.done and final.analysis is not None
        assert all(not u.done for u in updates[:-1])
        _assert_same(
            final.analysis, pg.analyze_ids(pg.prompt_ids(prompt), final.token_ids, rank=rank)
        )
        if pg.response_ids(final.text) == final.token_ids:
            _assert_same(final.analysis, pg.analyze(prompt, final.text, rank=rank))
            by_text += 1
        else:
            assert not gen.greedy, f"greedy text does not re-tokenize: {final.text!r}"
    assert by_text >= 1


def test_curve_grows_as_tokens_arrive(pg):
    gen = GenerationSettings(max_new_tokens=64, seed=0)
    updates = list(pg.stream(_prompts(1)[0], gen=gen, rank=RankSettings(4, max_len=None)))
    sizes = [len(u.curve) for u in updates]
    assert sizes == sorted(sizes) and sizes[0] == 0 and sizes[-1] >= 3
    assert len({len(u.token_ids) for u in updates[:-1]}) == len(updates) - 1  # one token each
    final = updates[-1].curve
    for u in updates[:-1]:  # every partial curve is a prefix of the final one
        np.testing.assert_allclose(u.curve, final[: len(u.curve)], atol=TOL)


def test_teacher_forced_logprob_matches_the_models_own_loss(pg):
    """mean log-prob of a pasted response = −(the model's cross-entropy on the response)."""
    import torch

    from engine.data.tasks import heldout_problems

    problem = heldout_problems(1)[0]
    a = pg.analyze(problem.prompt, problem.solution)
    p_ids, r_ids = pg.prompt_ids(problem.prompt), pg.response_ids(problem.solution)
    ids = torch.tensor([p_ids + r_ids])
    labels = ids.clone()
    labels[0, : len(p_ids)] = -100
    with torch.no_grad():
        loss = pg.model(input_ids=ids, labels=labels).loss.item()
    assert a.mean_logprob == pytest.approx(-loss, abs=1e-5)
    assert a.length == len(r_ids) and len(a.tokens) == len(r_ids)
    assert np.all(a.token_entropy >= 0) and np.all(a.token_logprob <= 0)


def test_greedy_is_deterministic_and_load_keeps_one_model(pg):
    gen = GenerationSettings(max_new_tokens=20, greedy=True)
    prompt = _prompts(1)[0]
    first = list(pg.stream(prompt, gen=gen))[-1].text
    model = pg.model
    assert pg.load("embedded") == "embedded" and pg.model is model  # not reloaded
    assert list(pg.stream(prompt, gen=gen))[-1].text == first
