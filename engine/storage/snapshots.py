"""Consistent copies of a SQLite store in a folder on a bucket mount, and getting the latest back.

A Space's disk is wiped at every restart, and a bucket mount is not a POSIX disk (no file
locking, last writer wins, uploads on close: hf-mount's README), so SQLite's WAL must never run
there. The live database stays on local disk; `take_snapshot` writes a consistent copy of it
(`VACUUM INTO` a local file, then one plain copy onto the mount under a new name) and keeps the
newest `keep`; at start, `restore_latest` copies the newest snapshot that opens as a database
back to local disk. A snapshot cut short by a crash fails that check and the one before is used.

`SnapshotKeeper` is a thread that snapshots whenever the set of finished runs changes (a run
ended, was renamed or deleted), polling the store every `poll_s` seconds, and once more on stop.
"""

from __future__ import annotations

import datetime as dt
import logging
import shutil
import sqlite3
import tempfile
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy.engine import make_url

if TYPE_CHECKING:
    from engine.storage.store import Store

log = logging.getLogger(__name__)

PREFIX, SUFFIX = "studio-", ".db"


def sqlite_path(url: str) -> Path | None:
    """The file of a SQLite URL; None for another database or an in-memory one."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database)


def snapshots(folder: Path) -> list[Path]:
    """The snapshot files in `folder`, newest first (names carry a UTC time stamp)."""
    if not folder.is_dir():
        return []
    return sorted(folder.glob(f"{PREFIX}*{SUFFIX}"), reverse=True)


def _usable(path: Path) -> bool:
    """Whether a file opens as a SQLite database that has a runs table and passes quick_check."""
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
            ok = conn.execute("PRAGMA quick_check").fetchone()[0] == "ok"
            tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
        return ok and "runs" in tables
    except sqlite3.Error:
        return False


def take_snapshot(store: Store, folder: Path, *, keep: int = 3) -> Path:
    """Copy the store's SQLite database consistently into `folder`; returns the new file.

    Raises ValueError when the store is not a SQLite file, OSError when the folder is unwritable.
    """
    source = sqlite_path(store.url)
    if source is None:
        raise ValueError(f"snapshots need a SQLite database file, not {store.url.split(':')[0]}")
    folder.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%fZ")
    target = folder / f"{PREFIX}{stamp}{SUFFIX}"
    with tempfile.TemporaryDirectory(dir=source.parent) as tmp:
        local = Path(tmp) / target.name
        raw = store.engine.raw_connection()
        try:
            raw.driver_connection.execute("VACUUM INTO ?", (str(local),))
        finally:
            raw.close()
        shutil.copyfile(local, target)  # one sequential write: the mount uploads it on close
    for old in snapshots(folder)[keep:]:
        old.unlink(missing_ok=True)
    log.info("snapshot of %s written to %s", source.name, target)
    return target


def restore_latest(folder: Path, db_file: Path) -> Path | None:
    """Copy the newest usable snapshot in `folder` to `db_file` (which must not exist yet: a live
    database is never overwritten); returns the snapshot used, or None when there is none."""
    if db_file.exists():
        log.info("%s exists; not restoring a snapshot over it", db_file)
        return None
    for snap in snapshots(folder):
        if _usable(snap):
            db_file.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(snap, db_file)
            log.info("restored %s from %s", db_file.name, snap)
            return snap
        log.warning("skipping snapshot %s: not a complete database", snap)
    return None


class SnapshotKeeper:
    """Snapshots a store into `folder` whenever its finished runs change, until `stop` is set."""

    def __init__(
        self,
        store: Store,
        folder: Path,
        *,
        keep: int = 3,
        poll_s: float = 10.0,
        stop: threading.Event | None = None,
    ):
        self.store, self.folder, self.keep, self.poll_s = store, folder, keep, poll_s
        self.stop = stop or threading.Event()
        self._last: tuple | None = None
        self._thread: threading.Thread | None = None

    def signature(self) -> tuple:
        """What a snapshot must follow: every finished run's id, status, step, name and notes."""
        return tuple(
            (r.id, r.status.value, r.step, r.name, r.notes)
            for r in self.store.list_runs()
            if r.status.finished
        )

    def check(self) -> Path | None:
        """Snapshot if the signature moved since the last snapshot; returns the new file."""
        sig = self.signature()
        if sig == self._last:
            return None
        path = take_snapshot(self.store, self.folder, keep=self.keep)
        self._last = sig
        return path

    def run(self) -> None:
        self._last = self.signature()  # the state just restored or seeded is already saved
        while not self.stop.wait(self.poll_s):
            self._check_logged()
        self._check_logged()

    def _check_logged(self) -> None:
        try:
            self.check()
        except Exception:  # a full or vanished mount must not stop the app; the log says why
            log.exception("snapshot to %s failed", self.folder)

    def start(self) -> SnapshotKeeper:
        self._thread = threading.Thread(target=self.run, name="snapshot-keeper", daemon=True)
        self._thread.start()
        return self

    def join(self, timeout: float | None = None) -> None:
        if self._thread is not None:
            self._thread.join(timeout)
