"""Compaction of the prediction log: one writer's small part files become a few large ones.

Why: a serving process writes a part file every flush (every second), 3,600 an hour; reading
an hour back opened 3,600 files (~4 s locally, far more on S3), so a monitor over a day of
real traffic spent minutes listing and opening files. :class:`Compactor` merges what *its
own* writer wrote, so writers never touch each other's files:

- every ``batch`` parts of one (kind, hour) are merged into one file, during the hour, from
  the tables the writer still holds (no reading back: the merge is one Parquet write of a
  minute's rows, ~15 ms, most of it outside the interpreter lock the requests need);
- once the hour is over (``grace`` seconds after its end, so late rows are in), or when the
  log closes, the hour's files of this writer are merged into one.

A merged file is written whole before the parts it replaces are deleted, and its schema
metadata lists their names (``replaces``). Readers (:func:`read_listed` in
:mod:`.prediction_log_reading`) drop any file that another file they read replaces, and list
again when a file vanishes between listing and reading, so a reader never sees a row twice
or misses one, and a crash between the write and the deletes leaves only files that
readers skip (deleted by nothing; they are the same rows).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import pyarrow as pa

from loopwise.errors import NotFound
from loopwise.serving.prediction_log_files import HOUR_US, encode_part, store_part
from loopwise.serving.prediction_log_reading import concat_unified, read_part
from loopwise.store import ArtifactStore

log = logging.getLogger("loopwise.prediction_log")

COMPACT_BATCH = 60  # parts of one hour merged at once while the hour runs
COMPACT_GRACE_S = 10.0  # seconds after an hour ends before it is merged whole

_Key = tuple[str, int]  # (kind, hour)


class Compactor:
    """The part files one writer wrote, per (kind, hour), and their merging."""

    def __init__(
        self,
        artifacts: ArtifactStore,
        endpoint: str,
        *,
        batch: int = COMPACT_BATCH,
        grace_s: float = COMPACT_GRACE_S,
    ) -> None:
        self.artifacts, self.endpoint = artifacts, endpoint
        self.batch, self.grace_us = max(2, batch), int(grace_s * 1_000_000)
        self._small: dict[_Key, list[tuple[str, pa.Table]]] = {}  # parts as flushed
        self._merged: dict[_Key, list[str]] = {}  # files merged from them
        self.files_merged = 0

    def wrote(self, kind: str, hour: int, path: str, table: pa.Table) -> None:
        """Record a part file this writer has just written, with its rows (kept until they
        are merged: at most ``batch`` parts per hour)."""
        self._small.setdefault((kind, hour), []).append((path, table))

    def run(self, now_us: int, *, final: bool = False) -> None:
        """Merge what is due (everything with ``final``, when the writer closes)."""
        for key in sorted(set(self._small) | set(self._merged)):
            kind, hour = key
            closed = final or (hour + 1) * HOUR_US + self.grace_us <= now_us
            small = self._small.get(key, [])
            # (forgotten before merging: a merge that fails leaves its files as they are,
            # never to be merged twice into two files with the same rows)
            if len(small) >= self.batch and not closed:
                self._small.pop(key)
                self._merged.setdefault(key, []).append(self._merge(kind, hour, small))
            elif closed:
                merged = [(p, None) for p in self._merged.pop(key, [])]
                files = merged + self._small.pop(key, [])
                if len(files) > 1:
                    self._merge(kind, hour, files)

    def _merge(self, kind: str, hour: int, files: Sequence[tuple[str, pa.Table | None]]) -> str:
        """One file with the rows of ``files`` (in their order; a table None is read back),
        then the files deleted."""
        tables = [read_part(self.artifacts, p, None) if t is None else t for p, t in files]
        paths = [p for p, _ in files]
        names = [p.rsplit("/", 1)[-1] for p in paths]
        data = encode_part(kind, concat_unified(tables), replaces=names)
        merged = store_part(self.artifacts, kind, self.endpoint, hour, data)
        for path in paths:  # readers skip them from now on: deleting is only tidying
            try:
                self.artifacts.delete(path)
            except NotFound:
                pass
            except Exception as e:  # e.g. no delete permission: the files are skipped anyway
                log.warning("prediction log of %r: could not delete %s: %s", self.endpoint, path, e)
        self.files_merged += len(paths)
        log.debug(
            "prediction log of %r: merged %d files into %s", self.endpoint, len(paths), merged
        )
        return merged
