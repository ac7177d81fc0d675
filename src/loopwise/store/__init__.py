"""The store: metadata in SQL (SQLite or PostgreSQL) and artifacts in a folder or S3.

Public names: :class:`Store` (a database plus an artifact store, chosen by URLs),
:class:`Database`, :class:`ArtifactStore` (an interface: a local folder or S3, picked by
:func:`~loopwise.store.artifacts.open_artifact_store`). The store imports no domain module.
What SQLite and PostgreSQL do differently lives here too: row and advisory locks
(:mod:`.locks`), version numbering (:mod:`.numbering`), JSON fields and numbers in text
(:mod:`.expressions`), upserts (:mod:`.upsert`), compression (:mod:`.compression`).
"""

from __future__ import annotations

from typing import Any

from loopwise.config import Settings, load_settings
from loopwise.store.artifacts import ArtifactStore, open_artifact_store
from loopwise.store.database import Database

__all__ = ["ArtifactStore", "Database", "Store"]


class Store:
    """A metadata database and an artifact store, plus the settings they were opened with.

    Every service function takes a ``Store`` explicitly; ``loopwise.configure`` decides
    which one the module-level API uses.
    """

    def __init__(
        self,
        store_url: str | None = None,
        artifacts_url: str | None = None,
        *,
        settings: Settings | None = None,
        storage_options: dict[str, Any] | None = None,
    ) -> None:
        if settings is None:
            settings = load_settings(store_url=store_url, artifacts_url=artifacts_url)
        self.settings = settings
        self.db = Database(settings.store_url)
        self._storage_options = (
            storage_options if storage_options is not None else settings.storage_options()
        )
        self._artifacts: ArtifactStore | None = None

    @property
    def artifacts(self) -> ArtifactStore:
        """The artifact store, opened on first use."""
        if self._artifacts is None:
            self._artifacts = open_artifact_store(
                self.settings.artifacts_url, storage_options=self._storage_options
            )
        return self._artifacts

    def __repr__(self) -> str:
        return f"Store(db={self.db.safe_url!r}, artifacts={self.settings.artifacts_url!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        # by its settings: a worker process (a pipeline step on local processes or Ray)
        # opens the same database and artifacts, once per process
        return (_reopen, (self.settings, self._storage_options))


_reopened: dict[tuple[str, str], Store] = {}


def _reopen(settings: Settings, storage_options: dict[str, Any]) -> Store:
    """The store a pickled :class:`Store` names, opened once per process."""
    key = (settings.store_url, settings.artifacts_url)
    store = _reopened.get(key)
    if store is None:
        store = _reopened[key] = Store(settings=settings, storage_options=storage_options)
    return store
