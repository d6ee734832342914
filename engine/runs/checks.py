"""Submit-time checks that need more than the config itself: what the config asks of the model.

`config_fits_model(cfg)` lists (field path, message) for settings the chosen model cannot honour,
read from the model's config.json only (engine.models.positions; no weights, no torch). The
submit-time check (`engine.runs.admission.check_submission`) runs it before a run is queued, so
a run that cannot work never gets a row.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from engine.config import StudioConfig


def config_fits_model(cfg: StudioConfig) -> list[tuple[str, str]]:
    """Problems of `cfg` against its model: a completion longer than the model's positions.

    >>> from engine.config import StudioConfig
    >>> config_fits_model(StudioConfig())[0][0]   # 1,536 new tokens on the 256-position demo
    'grpo.max_completion_length'
    """
    from engine.models.positions import model_positions

    positions, source = model_positions(cfg.model.name_or_path)
    length = cfg.grpo.max_completion_length
    if positions is None or length < positions:
        return []
    return [
        (
            "grpo.max_completion_length",
            f"{length} tokens do not fit model {cfg.model.name_or_path!r}, which has "
            f"{positions} positions ({source}) for the prompt and the completion together: "
            f"use less than {positions}, leaving room for the prompt",
        )
    ]
