"""Where a studio's data lives: one data root holding the database, checkpoints, exports, uploads.

The root is `--data-dir` > `VERL_STUDIO_HOME` > the platform's user data directory. The database
is `<root>/studio.db` unless `--db` / `VERL_STUDIO_DB` names a path or any SQLAlchemy URL.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import platformdirs

log = logging.getLogger(__name__)

HOME_ENV = "VERL_STUDIO_HOME"


class DataRootError(OSError):
    """A data root that cannot exist where it was asked for; one line naming the folder."""


DB_ENV = "VERL_STUDIO_DB"
DB_FILENAME = "studio.db"


@dataclass(frozen=True)
class DataRoot:
    root: Path
    db_url: str

    @property
    def checkpoints(self) -> Path:
        return self.root / "checkpoints"

    @property
    def exports(self) -> Path:
        return self.root / "exports"

    @property
    def uploads(self) -> Path:
        return self.root / "uploads"

    def run_checkpoints(self, run_id: int | str) -> Path:
        return self.checkpoints / str(run_id)

    def ensure(self) -> DataRoot:
        """Create the root and its folders where it can: a read-only root stays usable for
        reading commands (whatever then needs to write there names the folder it cannot)."""
        for folder in (self.root, self.checkpoints, self.exports, self.uploads):
            try:
                folder.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                if not folder.parent.is_dir():
                    raise DataRootError(
                        f"cannot create the data folder {folder}: {exc.strerror}"
                    ) from None
                log.info("data folder %s cannot be created (%s): read-only", folder, exc.strerror)
        return self


def db_url_from(value: str, root: Path) -> str:
    """A SQLAlchemy URL from a URL or a file path (relative paths are taken from the cwd)."""
    if "://" in value:
        return value
    return f"sqlite:///{Path(value).expanduser().resolve()}"


def resolve(data_dir: str | Path | None = None, db: str | None = None) -> DataRoot:
    """The data root and database URL, by the precedence in the module docstring."""
    if data_dir:
        root = Path(data_dir)
    elif os.environ.get(HOME_ENV):
        root = Path(os.environ[HOME_ENV])
    else:
        root = Path(platformdirs.user_data_dir("verl-studio", appauthor=False))
    root = root.expanduser().resolve()
    db = db or os.environ.get(DB_ENV)
    url = db_url_from(db, root) if db else f"sqlite:///{root / DB_FILENAME}"
    return DataRoot(root=root, db_url=url).ensure()
