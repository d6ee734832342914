"""What running as a Hugging Face Space needs from the engine: storage at start, and its run rules.

At start (`prepare_storage`, before the store is opened): with a bucket folder configured
(`SpacesSettings.snapshot_dir`), the newest snapshot is copied to the live SQLite file on local
disk (engine.storage.snapshots). Then (`seed_if_empty`) a store without runs gets the shipped demo
runs (a finished VERL and a finished GRPO run of the demo recipe, `assets/seed-runs.jsonl.gz`,
written by scripts/make_seed_runs.py from two real runs), so every page has data on the first visit.

Run rules on a Space (`SpaceRules`): one run at a time; anonymous visitors may start only a
"try it" run (the demo recipe, at most `try_it_max_steps` steps, and only while the owner has
switched "try it" on); everything else needs the owner, which the app decides (app.spaces).
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from engine.config import SpacesSettings, StudioConfig
from engine.runs import service
from engine.storage import RunKind
from engine.storage.snapshots import SnapshotKeeper, restore_latest, sqlite_path

if TYPE_CHECKING:
    from engine.paths import DataRoot
    from engine.storage import Store

log = logging.getLogger(__name__)

SEED_ASSET = "seed-runs.jsonl.gz"
DEMO_RECIPE = "demo-cpu"
TRY_IT_NAME = "try it: demo"


def seed_bundle() -> Path:
    """The shipped bundle of seeded demo runs."""
    from engine.resources import asset_file

    return asset_file(SEED_ASSET)


def prepare_storage(root: DataRoot, settings: SpacesSettings) -> Path | None:
    """Restore the newest bucket snapshot into the (not yet existing) local SQLite file.

    Returns the snapshot used, or None (no bucket folder, no snapshot, or a database other
    than a local SQLite file, which needs no snapshots)."""
    db_file = sqlite_path(root.db_url)
    if not settings.snapshot_dir or db_file is None:
        return None
    return restore_latest(Path(settings.snapshot_dir), db_file)


def seed_if_empty(store: Store, bundle: Path | None = None) -> list[int]:
    """Import the seeded demo runs into a store that has no runs; returns the new run ids."""
    if store.list_runs():
        return []
    ids = service.import_runs(store, bundle or seed_bundle(), note="seeded demo run")
    log.info("seeded %d demo runs", len(ids))
    return ids


def snapshot_keeper(
    store: Store, settings: SpacesSettings, stop: threading.Event
) -> SnapshotKeeper | None:
    """A started SnapshotKeeper when a bucket folder is configured and the store is SQLite."""
    if not settings.snapshot_dir or sqlite_path(store.url) is None:
        return None
    return SnapshotKeeper(
        store,
        Path(settings.snapshot_dir),
        keep=settings.snapshot_keep,
        poll_s=settings.snapshot_poll_s,
        stop=stop,
    ).start()


@dataclass(eq=False)
class SpaceRules:
    """One Space's run rules; `try_it` is the owner's switch (per app, not per process)."""

    settings: SpacesSettings
    try_it: bool = False
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def from_settings(cls, settings: SpacesSettings) -> SpaceRules:
        return cls(settings=settings, try_it=settings.try_it)

    def try_it_config(self) -> StudioConfig:
        """The only config an anonymous visitor may run: the demo recipe, steps capped."""
        from engine.resources import recipe_path

        cfg = StudioConfig.load(recipe_path(DEMO_RECIPE))
        cfg.run.max_steps = min(cfg.run.max_steps, self.settings.try_it_max_steps)
        cfg.run.name = TRY_IT_NAME
        return cfg.validate()

    def submit(self, store: Store, cfg: StudioConfig, *, owner: bool, **kw) -> int:
        """Queue `cfg` if the rules allow (one run at a time; anonymous: try-it only).

        Raises service.RunError with one line otherwise. `kw` goes to service.submit."""
        with self._lock:
            if not owner:
                if not self.try_it:
                    raise service.RunError(
                        "launching runs on this Space needs the owner's Hugging Face login"
                    )
                cfg = self.try_it_config()
            busy = store.list_runs(kind=RunKind.TRAIN, status=service.ACTIVE)
            if busy:
                raise service.RunError(
                    f"run {busy[0].id} is {busy[0].status.value}: this Space trains one run at "
                    "a time; wait for it to finish"
                )
            return service.submit(store, cfg, **kw)
