"""Under `accelerate launch` only rank 0 owns the run's status and creates runs."""

from __future__ import annotations

import pytest

from engine.config import ConfigError, StudioConfig
from engine.storage import Store
from engine.training.train import is_main_process, main


def test_rank_zero_is_the_main_process(monkeypatch):
    monkeypatch.delenv("RANK", raising=False)
    assert is_main_process()
    monkeypatch.setenv("RANK", "0")
    assert is_main_process()
    monkeypatch.setenv("RANK", "3")
    assert not is_main_process()


def test_a_secondary_rank_never_creates_a_run(data_root, monkeypatch):
    monkeypatch.setenv("RANK", "1")
    with pytest.raises(ConfigError, match="run_id"):
        main(StudioConfig(), root=data_root)
    with Store(data_root.db_url) as store:
        assert store.list_runs() == []
