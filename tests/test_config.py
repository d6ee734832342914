"""Run config: defaults, every error at once, overrides, YAML round trip, data-root precedence."""

from __future__ import annotations

import pytest

from engine.config import ConfigError, StudioConfig, apply_overrides, field_specs
from engine.paths import resolve


def test_defaults_are_the_papers():
    cfg = StudioConfig().validate()
    s = cfg.shaping
    assert (s.stride, s.max_len, s.kappa, s.alpha, s.gain) == (40, 512, 2.0, 0.3, 2.0)
    assert (s.w_explore, s.w_exploit) == ([0.0, 0.0, 1.0], [0.0, 1.0, 0.0])
    assert (s.aux_weight, s.dynamic_weight, s.bonus_on) == (1.0, False, "all_tokens")
    assert (s.warmup_steps, s.baseline_init, s.baseline_lag) == (1, "first_batch", 0)
    # the reference's decode-time alignment (hf618/VERL hidden_vllm/worker/model_runner.py
    # L1414-1420, L1480-1501); the score rule and preset are the product's own
    assert (s.hidden_alignment, s.score_rule, s.preset) == ("produced", "binary", "custom")
    assert cfg.run.algorithm == "verl"


def test_every_error_is_reported_at_once():
    bad = {
        "shaping": {"kappa": -1, "bogus": 1, "w_explore": [1, 2]},
        "run": {"algorithm": "ppo"},
        "grpo": {"learning_rate": "fast"},
        "extra": {},
    }
    with pytest.raises(ConfigError) as info:
        StudioConfig.from_dict(bad)
    paths = {path for path, _ in info.value.errors}
    assert paths == {
        "shaping.kappa",
        "shaping.bogus",
        "shaping.w_explore",
        "run.algorithm",
        "grpo.learning_rate",
        "extra",
    }


def test_group_size_must_divide_the_batch():
    with pytest.raises(ConfigError) as info:
        StudioConfig.from_dict({"grpo": {"per_device_train_batch_size": 6, "num_generations": 4}})
    assert [p for p, _ in info.value.errors] == ["grpo.num_generations"]


def test_overrides_parse_yaml_scalars_and_lists():
    cfg = StudioConfig().with_overrides(
        ["shaping.kappa=3", "shaping.max_len=", "shaping.w_explore=[1, 0, 0]", "run.name=x y"]
    )
    assert cfg.shaping.kappa == 3.0 and isinstance(cfg.shaping.kappa, float)
    assert cfg.shaping.max_len is None
    assert cfg.shaping.w_explore == [1.0, 0.0, 0.0]
    assert cfg.run.name == "x y"


def test_malformed_override_is_an_error():
    with pytest.raises(ConfigError):
        apply_overrides({}, ["kappa=3"])


def test_yaml_round_trip():
    cfg = StudioConfig().with_overrides(["run.algorithm=grpo", "model.lora=true"])
    assert StudioConfig.from_yaml(cfg.to_yaml()) == cfg


def test_invalid_yaml_is_a_config_error():
    with pytest.raises(ConfigError):
        StudioConfig.from_yaml("run: [unclosed")


def test_every_field_has_help_text():
    specs = field_specs()
    assert all(spec["help"] for spec in specs)
    paths = {spec["path"] for spec in specs}
    for name in ("stride", "max_len", "kappa", "alpha", "gain", "w_explore", "w_exploit"):
        assert f"shaping.{name}" in paths
    assert "run.algorithm" in paths


def test_data_root_precedence(tmp_path, monkeypatch):
    monkeypatch.setenv("VERL_STUDIO_HOME", str(tmp_path / "env"))
    monkeypatch.delenv("VERL_STUDIO_DB", raising=False)
    assert resolve().root == (tmp_path / "env").resolve()
    explicit = resolve(data_dir=tmp_path / "cli")
    assert explicit.root == (tmp_path / "cli").resolve()
    assert explicit.db_url == f"sqlite:///{(tmp_path / 'cli' / 'studio.db').resolve()}"
    for folder in (explicit.checkpoints, explicit.exports, explicit.uploads):
        assert folder.is_dir()
    monkeypatch.setenv("VERL_STUDIO_DB", "postgresql+psycopg://u@h/db")
    assert resolve(data_dir=tmp_path / "cli").db_url == "postgresql+psycopg://u@h/db"
    assert resolve(db=str(tmp_path / "x.db")).db_url == f"sqlite:///{(tmp_path / 'x.db').resolve()}"


NUMERIC = [s for s in field_specs() if s["type"] in ("int", "float") and not s["choices"]]


def _message(path: str, value) -> str | None:
    section, name = path.split(".")
    return dict(StudioConfig.parse({section: {name: value}})[1]).get(path)


@pytest.mark.parametrize("spec", NUMERIC, ids=[s["path"] for s in NUMERIC])
def test_a_value_past_the_store_is_judged_by_the_fields_own_rule(spec):
    """A value the store cannot hold (an integer past 32 bits, NaN, infinity) gets the field's
    own rule when that rule refuses a moderate value of the same sign, never the store's
    bound: -10**12 steps said "integer between -2147483648 and 2147483647" (a storage
    artefact), where -5 says "must be >= 1"."""
    path = spec["path"]
    huge = 10**12 if spec["type"] == "int" else float("inf")
    for moderate, extreme in ((-5, -huge), (10**6, huge)):
        rule = _message(path, moderate)
        said = _message(path, extreme)
        assert said is not None, f"{path}={extreme} accepted"
        assert "2147483648" not in said.replace(",", ""), f"{path}: {said}"
        if rule is not None:  # the same rule (a message may quote the value)
            same = said.replace(str(extreme), "V") == rule.replace(str(moderate), "V")
            assert same, f"{path}={extreme}: {said!r}, its rule says {rule!r}"


def test_a_fraction_in_a_whole_number_field_says_so():
    assert _message("run.max_steps", 2.5) == "must be a whole number, not 2.5"
    assert "whole number" in _message("data.seed", float("nan"))


def test_every_problem_of_a_section_is_reported_with_an_ill_formed_neighbour():
    """A NaN or an out-of-store integer hid every range problem of its section (and every
    rule across sections) until it was fixed: two rounds of Launch."""
    _, errors = StudioConfig.parse(
        {"run": {"max_steps": 10**12, "seed": -1}, "shaping": {"gain": float("nan"), "kappa": 0}}
    )
    assert {p for p, _ in errors} == {"run.max_steps", "run.seed", "shaping.gain", "shaping.kappa"}


def test_the_rank_curve_room_rule_holds_under_verl_only():
    """A grpo launch with a short response window was refused for shaping.stride, a setting
    grpo runs do not train with (they only record the rank curve, coarse then)."""
    short = ["grpo.max_completion_length=12", "shaping.stride=4"]
    assert StudioConfig.from_dict({}).with_overrides(["run.algorithm=grpo", *short])
    with pytest.raises(ConfigError, match="shaping.stride"):
        StudioConfig.from_dict({}).with_overrides(["run.algorithm=verl", *short])
