"""The studio's storage: SQLAlchemy models, migrations and a `Store` returning plain data.

Only this package speaks SQL. See store.py for the API and schema.py for the tables.
"""

from engine.storage.migrations import SchemaTooNew, StoreError
from engine.storage.schema import SCHEMA_VERSION, EventLevel, RunKind, RunStatus
from engine.storage.store import DuplicateStep, RunGone, RunInfo, Store

__all__ = [
    "SCHEMA_VERSION",
    "DuplicateStep",
    "EventLevel",
    "RunInfo",
    "RunGone",
    "RunKind",
    "RunStatus",
    "SchemaTooNew",
    "Store",
    "StoreError",
]
