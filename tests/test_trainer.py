"""The VERL trainer end to end on the embedded model (real TRL, real store, real checkpoints)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.conftest import require
from tests.fixtures.training import data_root_at, embedded_model_ready, tiny_config

pytestmark = pytest.mark.slow


def weights(folder: Path, name: str = "model.safetensors") -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(folder / name))


def all_samples(store, run_id):
    return {step: store.samples(run_id, step) for step in store.sample_steps(run_id)}


# ---- the shared tiny run ----------------------------------------------------------------------


def test_every_parameter_changed(trained_run):
    from engine.models.loading import embedded_model_dir
    from engine.storage import Store

    with Store(trained_run.store_url) as store:
        last = store.last_checkpoint(trained_run.run_id)
    before = weights(embedded_model_dir())
    after = weights(Path(last["path"]))
    assert before.keys() == after.keys() and len(before) > 10
    unchanged = [k for k in before if torch.equal(before[k], after[k])]
    assert not unchanged, f"parameters that did not move: {unchanged}"


def test_store_holds_steps_responses_evals_and_checkpoints(trained_run):
    from engine.storage import Store
    from engine.storage.samples import SAMPLE_COLUMNS

    cfg = trained_run.config
    B = cfg.grpo.per_device_train_batch_size
    with Store(trained_run.store_url) as store:
        run = store.get_run(trained_run.run_id)
        steps = store.steps(trained_run.run_id)
        samples = all_samples(store, trained_run.run_id)
        evals = store.evals(trained_run.run_id)
        checkpoints = store.checkpoints(trained_run.run_id)
    assert run.status == "completed"
    assert [s["step"] for s in steps] == [1, 2, 3]
    for s in steps:
        for col in ("reward_mean", "accuracy", "er_mean", "erv_mean", "era_mean", "loss",
                    "m_er", "m_erv", "m_era", "explore_weight_mean", "frac_shaped", "tokens"):  # fmt: skip
            assert s[col] is not None and math.isfinite(s[col]), (s["step"], col)
    assert [s["heldout_accuracy"] is not None for s in steps] == [False, True, False]
    assert [e["step"] for e in evals] == [0, 2] and all(e["n"] == 1 for e in evals)
    assert [c["step"] for c in checkpoints] == [2, 3]
    assert all(Path(c["path"], "shaping_state.json").is_file() for c in checkpoints)
    assert sorted(samples) == [1, 2, 3]
    for rows in samples.values():
        assert len(rows) == B
        assert sorted((r["group_idx"], r["sample_idx"]) for r in rows) == [
            (g, i) for g in range(B // 8) for i in range(8)
        ]
        for r in rows:
            n = r["length"]
            assert n > 0 and len(r["token_ids"]) == n
            assert len(r["token_entropy"]) == n and len(r["token_logprob"]) == n
            assert np.isfinite(r["token_entropy"]).all() and np.isfinite(r["token_logprob"]).all()
            assert all(math.isfinite(r[k]) for k in ("er", "erv", "era", "entropy", "mean_logprob"))
            assert len(r["curve"]) == len(r["curve_positions"])
            assert (len(r["curve"]) > 0) == (n > cfg.shaping.stride)  # points at s, 2s, ... < n
            assert np.isfinite(r["curve"]).all() and (r["curve_positions"] < n).all()
            assert r["curve_stride"] == cfg.shaping.stride and r["completion"] is not None
            assert r["correct"] == (r["reward"] >= 1.0)
            assert all(r[k] is not None for k in SAMPLE_COLUMNS), r  # every SampleRow field


def test_health_numbers_of_each_step_match_its_responses(trained_run):
    """truncated = hit max_completion_length without EOS (TRL's clipped_ratio rule), and the
    step's truncated share, length p10/p90 and tokens/s follow from its responses."""
    from engine.models.loading import load_policy
    from engine.storage import Store

    cfg = trained_run.config
    _, tokenizer = load_policy(cfg.model.name_or_path, dtype="float32", device="cpu")
    ends = {tokenizer.eos_token_id, tokenizer.pad_token_id}
    limit = cfg.grpo.max_completion_length
    with Store(trained_run.store_url) as store:
        steps = {s["step"]: s for s in store.steps(trained_run.run_id)}
        samples = all_samples(store, trained_run.run_id)
    for step, rows in samples.items():
        s = steps[step]
        for r in rows:
            cut = r["length"] == limit and int(r["token_ids"][-1]) not in ends
            assert r["truncated"] is cut, r
        lengths = np.array([r["length"] for r in rows], dtype=np.float64)
        assert s["truncated_share"] == pytest.approx(np.mean([r["truncated"] for r in rows]))
        assert s["length_p10"] == pytest.approx(np.quantile(lengths, 0.1))
        assert s["length_p90"] == pytest.approx(np.quantile(lengths, 0.9))
        assert 0 < s["generation_seconds"] < s["step_seconds"]
        assert s["tokens_per_second"] == pytest.approx(lengths.sum() / s["generation_seconds"])
        assert s["clipped_ratio"] == pytest.approx(s["truncated_share"])  # TRL's, typed
        assert s["reward_means"]["accuracy"] == pytest.approx(np.mean([r["reward"] for r in rows]))


def test_shaping_invariants_hold_on_every_response(trained_run):
    from engine.storage import Store

    kappa = trained_run.config.shaping.kappa
    with Store(trained_run.store_url) as store:
        samples = all_samples(store, trained_run.run_id)
        steps = {s["step"]: s for s in store.steps(trained_run.run_id)}
    shaped = 0
    for step, rows in samples.items():
        groups: dict[int, list[dict]] = {}
        for r in rows:
            groups.setdefault(r["group_idx"], []).append(r)
            a, a2, bonus = r["advantage"], r["advantage_shaped"], r["bonus"]
            assert 0.0 <= bonus <= abs(a) / kappa + 1e-12
            assert a2 == pytest.approx(a + bonus, abs=1e-12)
            assert a == 0 or a2 == 0 or np.sign(a2) == np.sign(a)
            shaped += bonus > 0
        if step == 1:  # warm-up generation
            assert all(r["bonus"] == 0.0 for r in rows)
        for g in groups.values():
            if len({r["reward"] for r in g}) == 1:  # tied group: exactly no bonus
                assert all(r["bonus"] == 0.0 for r in g)
        frac = sum(r["bonus"] > 0 for r in rows) / len(rows)
        assert steps[step]["frac_shaped"] == pytest.approx(frac)
        assert steps[step]["bonus_mean"] == pytest.approx(np.mean([r["bonus"] for r in rows]))
    assert shaped > 0, "no advantage was shaped"


# ---- LoRA, capture, resume ------------------------------------------------------------------


def run_directly(tmp_path, *overrides):
    """engine.training.train.train on a fresh root (returns the trainer for white-box checks)."""
    from engine.runs.admission import AccessPolicy
    from engine.runs.service import submit
    from engine.storage import Store
    from engine.training.train import train

    root = data_root_at(tmp_path / "home")
    cfg = tiny_config(*overrides)
    store = Store(root.db_url)
    run_id = submit(store, cfg, policy=AccessPolicy.command_line())
    result = train(cfg, store=store, root=root, run_id=run_id, progress=False)
    return result, store, run_id


def test_lora_run_trains_the_adapters_only(tmp_path):
    require(embedded_model_ready(), "the embedded demo model (assets/demo-model)")
    result, store, run_id = run_directly(
        tmp_path, "model.lora=true", "run.max_steps=2", "run.eval_every=0",
        "grpo.learning_rate=1e-3",
    )  # fmt: skip
    try:
        model = result.trainer.model
        from engine.models.loading import embedded_model_dir

        base = weights(embedded_model_dir())
        named = dict(model.named_parameters())
        lora = {k: p for k, p in named.items() if "lora_" in k}
        assert lora and all(p.requires_grad for p in lora.values())
        frozen = {k: p for k, p in named.items() if "lora_" not in k}
        assert not any(p.requires_grad for p in frozen.values())
        # lora_B starts at zero: every one moved; base weights did not
        assert all(p.detach().abs().sum() > 0 for k, p in lora.items() if "lora_B" in k)
        for k, p in frozen.items():
            key = k.replace("base_model.model.", "").replace(".base_layer", "")
            if key in base:
                assert torch.equal(p.detach().cpu(), base[key]), key
        rows = store.samples(run_id, 2)
        assert len(rows) == 16 and any(r["bonus"] > 0 for r in rows)
        # TRL's logged advantages are the shaped ones
        logged = list(result.trainer._logs["advantages"])
        assert logged == pytest.approx([r["advantage_shaped"] for r in rows], abs=1e-9)
        ck = store.last_checkpoint(run_id)
        assert Path(ck["path"], "adapter_model.safetensors").is_file()
    finally:
        store.close()


def test_building_the_trainer_emits_no_checkpointing_alias_warning(tmp_path):
    """transformers 5.x warned (FutureWarning) at every trainer build that TRL's
    `gradient_checkpointing` is a deprecated alias: twice per run in every log. Exactly that
    warning is filtered where the trainer and its GRPOConfig (CPU and CUDA settings) are built."""
    import warnings

    require(embedded_model_ready(), "the embedded demo model (assets/demo-model)")
    from engine.training.train import build_trainer, grpo_args

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        build_trainer(tiny_config(), tmp_path / "out")
        grpo_args(tiny_config("run.device=cuda"), tmp_path / "gpu")  # checkpointing on
    alias = [w for w in caught if "gradient_checkpointing" in str(w.message)]
    assert alias == [], [str(w.message) for w in alias]
    with pytest.warns(FutureWarning, match="gradient_checkpointing"):  # the filter is scoped
        from transformers import TrainingArguments

        TrainingArguments(output_dir=str(tmp_path / "plain"), gradient_checkpointing=True)


@pytest.mark.parametrize("alignment", ["produced", "read"])
def test_captured_hidden_states_equal_the_last_layer_of_output_hidden_states(tmp_path, alignment):
    """Row j is the state that produced completion token j (position P - 1 + j, the reference's
    decode-time capture: hf618/VERL hidden_vllm/worker/model_runner.py L1414-1420, L1480-1501),
    or with `read` the state that has read it (P + j). Before `hidden_alignment` existed the
    trainer always took P + j while its docstring claimed the reference's alignment."""
    require(embedded_model_ready(), "the embedded demo model (assets/demo-model)")
    from engine.data.tasks import load_dataset_for
    from engine.training.train import build_trainer

    cfg = tiny_config(f"shaping.hidden_alignment={alignment}")
    trainer = build_trainer(cfg, tmp_path / "out")
    model, tok = trainer.model, trainer.processing_class
    prompts = [r["prompt"] for r in load_dataset_for(cfg.data, "eval", limit=4)]
    enc = tok(prompts, return_tensors="pt", padding=True)  # left-padded
    torch.manual_seed(0)
    with torch.no_grad():
        gen = model.generate(
            **enc, do_sample=True, max_new_tokens=40, pad_token_id=tok.pad_token_id
        )
    P = enc["input_ids"].size(1)
    completion = gen[:, P:]  # (B, C)
    is_eos = completion == tok.eos_token_id
    first_eos = torch.where(is_eos.any(1), is_eos.int().argmax(1), completion.size(1))
    mask = (torch.arange(completion.size(1))[None] <= first_eos[:, None]).int()  # (B, C)
    out = {
        "prompt_ids": enc["input_ids"],
        "prompt_mask": enc["attention_mask"],
        "completion_ids": completion,
        "completion_mask": mask,
    }
    cap = trainer.capture(out)
    with torch.no_grad():
        ref = model(
            input_ids=gen,
            attention_mask=torch.cat([enc["attention_mask"], mask], 1),
            output_hidden_states=True,
        )
    last = ref.hidden_states[-1]  # (B, P + C, D) post-norm last layer
    expected = last[:, P - 1 : -1] if alignment == "produced" else last[:, P:]  # (B, C, D)
    m = mask.bool()
    assert cap.hidden.shape == expected.shape
    torch.testing.assert_close(cap.hidden[m], expected[m], rtol=1e-5, atol=1e-5)
    # "produced": the kept state's own logits sampled token j
    head_logp = torch.log_softmax(model.lm_head(cap.hidden).float() / cfg.grpo.temperature, -1)
    own = head_logp.gather(-1, completion[..., None])[..., 0]  # (B, C)
    agrees = torch.isclose(own[m], cap.logps[m], rtol=1e-4, atol=1e-4)
    assert bool(agrees.all()) == (alignment == "produced")
    # the same forward's log-probs and entropies at the sampling temperature
    logits = ref.logits[:, P - 1 : -1] / cfg.grpo.temperature  # (B, C, V) predicting token j
    logp = torch.log_softmax(logits.float(), -1)
    token_logp = logp.gather(-1, completion[..., None])[..., 0]
    entropy = -(logp.exp() * logp).sum(-1)
    torch.testing.assert_close(cap.logps[m], token_logp[m], rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(cap.entropies[m], entropy[m], rtol=1e-4, atol=1e-4)


def test_capture_in_the_loss_forward_equals_a_separate_capture_and_feeds_the_loss(tmp_path):
    """The demo setting captures inside TRL's loss forward, here over two micro-step slices of
    each generation: the same hidden states, log-probs and entropies as the separate no-grad
    capture, rows traced through TRL's shuffle, and each loss reads its shaped advantages."""
    require(embedded_model_ready(), "the embedded demo model (assets/demo-model)")
    from trl.trainer.grpo_trainer import GRPOTrainer
    from trl.trainer.utils import shuffle_sequence_dict, split_tensor_dict

    from engine.data.tasks import load_dataset_for
    from engine.training.train import build_trainer
    from engine.training.trainer import ROW_KEY

    cfg = tiny_config()
    trainer = build_trainer(cfg, tmp_path / "out")
    assert trainer.capture_in_loss
    trainer.model.train()
    trainer.current_gradient_accumulation_steps = 1  # set by Trainer's loop, which is not run here
    G = cfg.grpo.num_generations
    prompts = list(load_dataset_for(cfg.data, "train", limit=2))  # one TRL batch
    rows = [row for row in prompts for _ in range(G)]  # TRL's sampler repeats each prompt G times
    spied = []
    measure = trainer._measure_slice
    trainer._measure_slice = lambda pending, index, cap: (
        spied.append((index, cap)) or measure(pending, index, cap)
    )
    torch.manual_seed(0)
    for generation in range(1, 9):  # until one past warm-up has a shaped response
        out = trainer._generate_and_score_completions(rows)
        separate = trainer.capture(out)
        slices = split_tensor_dict(shuffle_sequence_dict(out), 2)  # what TRL hands the losses
        orders = [part[ROW_KEY].clone() for part in slices]
        assert not torch.equal(torch.cat(orders), torch.arange(len(rows)))
        spied.clear()
        losses = []
        m_before = trainer.shaping_state.m
        for k, part in enumerate(slices):
            assert trainer._pending is not None and len(trainer.generations) == generation - 1
            losses.append(trainer._compute_loss(trainer.model, part))
            assert ROW_KEY not in part and (index := spied[k][0]) == orders[k].tolist()
            cap = spied[k][1]
            m = separate.mask[index]
            assert torch.equal(cap.mask, m)
            for name in ("hidden", "logps", "entropies"):
                got, want = getattr(cap, name), getattr(separate, name)[index]
                torch.testing.assert_close(got[m], want[m], rtol=1e-5, atol=1e-5)
        assert trainer._pending is None and len(trainer.generations) == generation
        record = trainer.generations[-1]
        # the baselines took in the whole generation once, after its last slice
        mu = torch.tensor(
            [[r[k] for k in ("era", "erv", "er")] for r in record.samples], dtype=torch.float64
        ).mean(0)
        alpha = cfg.shaping.alpha
        m = mu if m_before is None else (1 - alpha) * m_before + alpha * mu
        assert trainer.shaping_state.n == generation
        torch.testing.assert_close(trainer.shaping_state.m, m, rtol=1e-9, atol=0)
        shaped = torch.tensor([r["advantage_shaped"] for r in record.samples], dtype=torch.float64)
        for part, order in zip(slices, orders, strict=True):
            torch.testing.assert_close(
                part["advantages"].double(), shaped[order], atol=1e-6, rtol=0
            )
        if any(r["bonus"] > 0 for r in record.samples):
            break
    assert generation > 1 and any(r["bonus"] > 0 for r in record.samples)
    # each loss used its shaped advantages: TRL's own loss on the same inputs is the same
    for part, loss in zip(slices, losses, strict=True):
        assert loss.requires_grad and torch.isfinite(loss)
        torch.testing.assert_close(loss, GRPOTrainer._compute_loss(trainer, trainer.model, part))
    unshaped = [
        {**part, "advantages": out["advantages"][order]}
        for part, order in zip(slices, orders, strict=True)
    ]
    assert any(
        not torch.allclose(GRPOTrainer._compute_loss(trainer, trainer.model, part), loss)
        for part, loss in zip(unshaped, losses, strict=True)
    )


def test_gradient_accumulation_captures_in_the_loss_forward_of_each_micro_step(tmp_path):
    """Two micro-steps per generation: each loss forward measures its slice; the step records
    and shapes every response of the generation."""
    require(embedded_model_ready(), "the embedded demo model (assets/demo-model)")
    result, store, run_id = run_directly(
        tmp_path, "grpo.gradient_accumulation_steps=2", "run.max_steps=2", "run.eval_every=0"
    )
    try:
        assert result.trainer.capture_in_loss
        assert result.trainer.timings["capture"] < 0.5  # no extra forward: only a concatenation
        rows = store.samples(run_id, 2)
        assert len(rows) == 32 and any(r["bonus"] > 0 for r in rows)
        assert all(math.isfinite(r[k]) for r in rows for k in ("er", "erv", "era"))
        logged = list(result.trainer._logs["advantages"])[-32:]
        assert logged == pytest.approx([r["advantage_shaped"] for r in rows], abs=1e-9)
    finally:
        store.close()


def test_several_passes_per_generation_capture_right_after_generation(tmp_path):
    """num_iterations = 2: the second pass runs on updated weights, so capture runs its own
    forward after generation; the generation's rows belong to its first optimizer step."""
    require(embedded_model_ready(), "the embedded demo model (assets/demo-model)")
    result, store, run_id = run_directly(
        tmp_path, "grpo.num_iterations=2", "run.max_steps=4", "run.eval_every=0"
    )
    try:
        assert not result.trainer.capture_in_loss and result.trainer.shaping_state.n == 2
        assert store.sample_steps(run_id) == [1, 3]
        rows = store.samples(run_id, 3)
        assert len(rows) == 16 and any(r["bonus"] > 0 for r in rows)
        assert all(math.isfinite(r[k]) for r in rows for k in ("er", "erv", "era"))
    finally:
        store.close()


def test_resume_continues_the_run_exactly(finished_run_copy, tmp_path):
    """A run resumed from its last checkpoint (weights, optimizer, RNG, shaping state) records
    the same next step as a run that never stopped."""
    from engine.storage import Store
    from engine.training.train import train

    cfg = tiny_config("run.max_steps=4", "run.eval_every=0")
    with Store(finished_run_copy.store_url) as store:
        resumed = train(cfg, store=store, root=finished_run_copy.root,
                        run_id=finished_run_copy.run_id, progress=False)  # fmt: skip
        assert resumed.trainer.shaping_state.n == 4
        after_resume = store.samples(finished_run_copy.run_id, 4)
        assert [s["step"] for s in store.steps(finished_run_copy.run_id)] == [1, 2, 3, 4]
    straight, store2, run2 = run_directly(tmp_path, "run.max_steps=4")
    try:
        expected = store2.samples(run2, 4)
    finally:
        store2.close()
    assert [r["completion"] for r in after_resume] == [r["completion"] for r in expected]
    for a, b in zip(after_resume, expected, strict=True):
        assert a["bonus"] == pytest.approx(b["bonus"], abs=1e-6)
        assert a["er"] == pytest.approx(b["er"], rel=1e-6)


# ---- the benchmarks' --quick modes run ---------------------------------------------------------


@pytest.mark.parametrize("script", ["bench_step.py", "bench_learning.py"])
def test_benchmark_quick_mode_runs(script):
    import subprocess
    import sys

    require(embedded_model_ready(), "the embedded demo model (assets/demo-model)")
    bench = Path(__file__).resolve().parent.parent / "bench" / script
    out = subprocess.run(
        [sys.executable, str(bench), "--quick"], capture_output=True, text=True, timeout=280
    )
    assert out.returncode == 0, out.stderr[-3000:]
    if script == "bench_step.py":
        assert "verl / grpo" in out.stdout and "grpo / plain" in out.stdout
    else:
        assert "mean pass@1 gain" in out.stdout
