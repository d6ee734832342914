"""Every shipped recipe loads and validates without loading a model; each header says where each
setting comes from."""

from __future__ import annotations

import pytest

from engine.config import StudioConfig
from engine.resources import recipe_names, recipe_path

SHIPPED = ("demo-cpu", "qwen2.5-math-1.5b-gsm8k", "qwen2.5-7b-math-multi-gpu")


def test_the_three_recipes_ship():
    assert set(SHIPPED) <= set(recipe_names())


@pytest.mark.parametrize("name", recipe_names())
def test_recipe_loads_and_validates(name):
    cfg = StudioConfig.load(recipe_path(name)).validate()
    assert cfg.run.algorithm in ("grpo", "verl")
    # a recipe round-trips through its own dict form unchanged
    assert StudioConfig.from_dict(cfg.to_dict()) == cfg


def test_multi_gpu_recipe_has_the_papers_shaping_settings():
    cfg = StudioConfig.load(recipe_path("qwen2.5-7b-math-multi-gpu"))
    s = cfg.shaping
    assert (s.stride, s.kappa, s.alpha, s.gain) == (40, 2.0, 0.3, 2.0)
    assert (s.w_explore, s.w_exploit) == ([0.0, 0.0, 1.0], [0.0, 1.0, 0.0])
    assert cfg.grpo.num_generations >= 4 and cfg.grpo.max_completion_length == 1536
    assert cfg.run.num_processes > 1 and cfg.run.algorithm == "verl"


def test_demo_recipe_runs_the_embedded_model_on_cpu():
    cfg = StudioConfig.load(recipe_path("demo-cpu"))
    assert cfg.model.name_or_path == "embedded" and cfg.data.task == "arithmetic"
    assert cfg.run.device == "cpu" and cfg.run.torch_threads <= 2
    # the demo's shaping must make the bonus matter, not leave VERL equal to GRPO
    assert cfg.run.algorithm == "verl" and cfg.shaping.aux_weight > 1.0


def test_override_of_a_recipe_is_validated_all_at_once():
    from engine.config import ConfigError

    with pytest.raises(ConfigError) as err:
        StudioConfig.load(recipe_path("demo-cpu"), ["shaping.kappa=0.5", "run.max_steps=0"])
    assert {p for p, _ in err.value.errors} == {"shaping.kappa", "run.max_steps"}


@pytest.mark.parametrize("name", recipe_names())
def test_recipe_header_names_the_source_of_its_settings(name):
    """A recipe once called itself the paper's setting while the reference ran another model."""
    header = recipe_path(name).read_text().split("\nmodel:")[0]
    assert "Where each setting comes from" in header
    assert "our choice" in header and "reference" in header
    cfg = StudioConfig.load(recipe_path(name))
    assert f"bonus_on {cfg.shaping.bonus_on}" in header  # the placement is a stated choice
