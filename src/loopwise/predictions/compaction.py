"""Compaction of the prediction log: small part files become a few large ones.

Why: a serving process writes a part file every flush (every second), 3,600 an hour, and a
batch job calling ``log_predictions`` every minute 1,440 a day; reading an hour back opened
every one of them (~4 s locally for 3,600, far more on S3), so a monitor over a day of real
traffic spent minutes listing and opening files. Two kinds of merging:

- :class:`Compactor`: a serving writer merges the parts *it* wrote, from the tables it
  still holds (no reading back): every ``batch`` parts of one (kind, hour) during the hour
  (one Parquet write of a minute's rows, ~15 ms, most of it outside the interpreter lock
  the requests need), and the hour's files whole once the hour is over (``grace`` seconds
  after its end, so late rows are in) or when the log closes;
- :func:`compact_log`: any process (``loopwise endpoints compact``) merges every file of
  each closed hour, whoever wrote it: the parts of ``log_predictions`` / ``log_feedback``
  calls, several serving processes' merged files, the parts a killed writer left.

Two mergers of one hour at once would each write a file with the same rows, so every merge
holds the hour's lease (:mod:`loopwise.store.leases`) and lists the hour again under it:
a file another merger has merged away is gone from that listing, and is not merged twice.

A merged file is written whole before the files it replaces are deleted, and its schema
metadata lists their names (``replaces``), with the names of any files those replaced that
are still there (a delete that failed), so a replaced file never comes back. Readers
(:func:`read_listed` in :mod:`.reading`) drop any file that another file
they read replaces, and list again when a file vanishes between listing and reading, so a
reader never sees a row twice or misses one, and a crash between the write and the deletes
leaves only files that readers skip (the same rows; the next merge of the hour deletes
them).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

import pyarrow as pa

from loopwise.clock import now_us, parse_duration
from loopwise.errors import InvalidInput, NotFound
from loopwise.ids import new_id
from loopwise.param_errors import bad_param
from loopwise.predictions.files import (
    FEEDBACK,
    HOUR_US,
    PREDICTIONS,
    check_endpoint,
    check_time,
    encode_part,
    list_parts,
    part_hour,
    partition_dir,
    require_endpoint,
    store_part,
)
from loopwise.predictions.reading import concat_unified, read_merged_part
from loopwise.store import ArtifactStore, Store
from loopwise.store.leases import held

log = logging.getLogger("loopwise.prediction_log")

COMPACT_BATCH = 60  # parts of one hour merged at once while the hour runs
COMPACT_GRACE_S = 10.0  # seconds after an hour ends before it is merged whole
SETTLE_S = 600.0  # compact_log: hours that ended at least this long ago (writers are done)
WRITER_LEASE_S = 60.0  # a writer's merge: one write of at most an hour of its own rows
HOUR_LEASE_S = 600.0  # compact_log's merge of one hour, renewed before it writes
FINAL_WAIT_S = 2.0  # a closing writer waits this long for an hour another process merges
RETRY_AFTER_S = 30.0  # after the lease could not be asked for (the database is down)
_READ_THREADS = 8

_Key = tuple[str, int]  # (kind, hour)


def lease_name(endpoint: str, kind: str, hour: int) -> str:
    """The lease every merger of one hour of one log holds."""
    return f"prediction-log/{endpoint}/{kind}/{hour}"


def _name(path: str) -> str:
    return path.rsplit("/", 1)[-1]


def _listed(artifacts: ArtifactStore, kind: str, endpoint: str, hour: int) -> dict[str, str]:
    """The hour's part files as they are now: name -> path."""
    paths = artifacts.list(partition_dir(kind, endpoint, hour))
    return {_name(p): p for p in paths if part_hour(p) == hour}


def _replace(
    artifacts: ArtifactStore,
    kind: str,
    endpoint: str,
    hour: int,
    tables: Sequence[pa.Table],
    merged: Sequence[str],
    dead: Sequence[str],
    before_write: Callable[[], bool] = lambda: True,
) -> str | None:
    """Write one file with ``tables`` replacing the files ``merged`` and ``dead`` (paths),
    then delete those; None (nothing written) if ``before_write()`` says no."""
    names = [_name(p) for p in (*merged, *dead)]
    data = encode_part(kind, concat_unified(tables), replaces=names)
    if not before_write():
        return None
    path = store_part(artifacts, kind, endpoint, hour, data)
    _delete(artifacts, endpoint, (*merged, *dead))
    return path


def _delete(artifacts: ArtifactStore, endpoint: str, paths: Sequence[str]) -> int:
    """Delete replaced files (readers skip them already: this is only tidying); how many
    could not be deleted."""
    failed = 0
    for path in paths:
        try:
            artifacts.delete(path)
        except NotFound:
            pass
        except Exception as e:  # e.g. no delete permission: the files are skipped anyway
            failed += 1
            log.warning("prediction log of %r: could not delete %s: %s", endpoint, path, e)
    return failed


class Compactor:
    """The part files one writer wrote, per (kind, hour), and their merging."""

    def __init__(
        self,
        store: Store,
        endpoint: str,
        *,
        batch: int = COMPACT_BATCH,
        grace_s: float = COMPACT_GRACE_S,
    ) -> None:
        self.store, self.endpoint = store, endpoint
        self.batch, self.grace_us = max(2, batch), int(grace_s * 1_000_000)
        self.holder = new_id()
        self._small: dict[_Key, list[tuple[str, pa.Table]]] = {}  # parts as flushed
        # files merged from them, with the names each replaces
        self._merged: dict[_Key, list[tuple[str, list[str]]]] = {}
        self._retry_at = 0.0  # (monotonic) no merge before, after a lease could not be asked
        self.files_merged = 0

    def wrote(self, kind: str, hour: int, path: str, table: pa.Table) -> None:
        """Record a part file this writer has just written, with its rows (kept until they
        are merged: at most ``batch`` parts per hour)."""
        self._small.setdefault((kind, hour), []).append((path, table))

    def run(self, now_us: int, *, final: bool = False) -> None:
        """Merge what is due (everything with ``final``, when the writer closes)."""
        if not final and time.monotonic() < self._retry_at:
            return
        for key in sorted(set(self._small) | set(self._merged)):
            hour = key[1]
            closed = final or (hour + 1) * HOUR_US + self.grace_us <= now_us
            small = self._small.get(key, [])
            if len(small) >= self.batch and not closed:
                self._merge_batch(key, small)
            elif closed:
                self._merge_hour(key, final)

    def _merge_batch(self, key: _Key, small: list[tuple[str, pa.Table]]) -> None:
        # (forgotten before merging: a merge that fails leaves its files as they are,
        # never to be merged twice into two files with the same rows)
        self._small.pop(key)
        done = self._merge(key, small, [], wait_s=0.0)
        if done is None:  # another process merges the hour now: next time
            self._small[key] = small + self._small.get(key, [])
        elif done[0] is not None:
            self._merged.setdefault(key, []).append(done)

    def _merge_hour(self, key: _Key, final: bool) -> None:
        merged, small = self._merged.pop(key, []), self._small.pop(key, [])
        if len(merged) + len(small) < 2:
            return
        done = self._merge(key, small, merged, wait_s=FINAL_WAIT_S if final else 0.0)
        if done is None and not final:  # another process merges the hour now: next time
            self._merged[key], self._small[key] = merged, small

    def _merge(
        self,
        key: _Key,
        small: list[tuple[str, pa.Table]],
        merged: list[tuple[str, list[str]]],
        *,
        wait_s: float,
    ) -> tuple[str | None, list[str]] | None:
        """Under the hour's lease, the files of ``merged`` and ``small`` that are still
        there merged into one: (its path, or None if fewer than two were left; the names it
        replaces). None if another process holds the lease."""
        kind, hour = key
        name = lease_name(self.endpoint, kind, hour)
        try:
            with held(
                self.store, name, ttl_s=WRITER_LEASE_S, wait_s=wait_s, holder=self.holder
            ) as lease:
                return None if lease is None else self._merge_held(kind, hour, small, merged)
        except Exception:  # the store is down: not again for a while (the files stay)
            self._retry_at = time.monotonic() + RETRY_AFTER_S
            raise

    def _merge_held(
        self,
        kind: str,
        hour: int,
        small: list[tuple[str, pa.Table]],
        merged: list[tuple[str, list[str]]],
    ) -> tuple[str | None, list[str]]:
        artifacts = self.store.artifacts
        now = _listed(artifacts, kind, self.endpoint, hour)
        # a file gone from the listing was merged away by another process (compact_log)
        mine = [(p, None) for p, _ in merged if _name(p) in now]
        mine += [(p, t) for p, t in small if _name(p) in now]
        dead = sorted({now[n] for _, names in merged for n in names if n in now})
        if not mine or (len(mine) == 1 and not dead):
            return None, []
        tables = [read_merged_part(artifacts, p)[0] if t is None else t for p, t in mine]
        paths = [p for p, _ in mine]
        path = _replace(artifacts, kind, self.endpoint, hour, tables, paths, dead)
        self.files_merged += len(paths)
        log.debug("prediction log of %r: merged %d files into %s", self.endpoint, len(paths), path)
        return path, [_name(p) for p in (*paths, *dead)]


# -- any process: every file of the closed hours ---------------------------------------------


@dataclass
class CompactionResult:
    """What :func:`compact_log` did: hours merged (and how many files became how many),
    rows in them, and the hours it left: still open, or being merged by another process."""

    endpoint: str
    hours: int = 0
    files_before: int = 0
    files_after: int = 0
    rows: int = 0
    open_hours: int = 0
    busy_hours: int = 0

    def to_dict(self) -> dict[str, int | str]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CompactionResult:
        """The result :meth:`to_dict` wrote (what the remote client reads back)."""
        counts = {f: int(data.get(f) or 0) for f in _COUNTS}
        return cls(str(data["endpoint"]), **counts)


_COUNTS = ("hours", "files_before", "files_after", "rows", "open_hours", "busy_hours")


def compact_predictions(
    store: Store,
    endpoint: str,
    start: datetime | None = None,
    end: datetime | None = None,
    *,
    settle: str | timedelta = "10m",
    progress: Callable[[int, int], None] | None = None,
) -> CompactionResult:
    """Merge each closed hour of ``endpoint``'s prediction log and feedback with a timestamp
    in [start, end) (timezone-aware; None: unbounded) into one file per hour, for hours that
    ended at least ``settle`` ago ("10m", "1h" or a timedelta). See :func:`compact_log`."""
    func = "compact_predictions"
    check_endpoint(endpoint, func)
    start_us, end_us = check_time(start, "start", func), check_time(end, "end", func)
    if start_us is not None and end_us is not None and end_us < start_us:
        raise bad_param(func, "end", f"at or after start ({start})", end)
    settle_s = settle_seconds(settle, func)
    require_endpoint(store.artifacts, endpoint)
    return compact_log(
        store, endpoint, start_us=start_us, end_us=end_us, settle_s=settle_s, progress=progress
    )


def settle_seconds(settle: Any, func: str) -> float:
    """Seconds of a ``settle`` argument ("10m", "1h" or a timedelta >= 0), checked as
    :func:`compact_predictions` checks it (the remote client checks it the same way)."""
    rule = "a duration such as 10m or 1h, or a timedelta >= 0"
    if isinstance(settle, timedelta):
        if settle < timedelta(0):
            raise bad_param(func, "settle", rule, settle)
        return settle.total_seconds()
    try:
        return float(parse_duration(settle, "settle"))
    except InvalidInput:
        raise bad_param(func, "settle", rule, settle) from None


def compact_log(
    store: Store,
    endpoint: str,
    *,
    start_us: int | None = None,
    end_us: int | None = None,
    settle_s: float = SETTLE_S,
    progress: Callable[[int, int], None] | None = None,
    now: int | None = None,
) -> CompactionResult:
    """Merge the files of every hour of ``endpoint``'s log (predictions and feedback) in
    [start, end) that ended at least ``settle_s`` seconds ago into one file per hour.

    Each hour is merged under its lease, so this may run while the endpoint serves, in
    several processes at once, or be interrupted: an hour another process is merging is
    left (``busy_hours``), and the rows are never doubled or lost. An hour is read into
    memory whole (an hour of a busy endpoint: a few hundred MB). ``progress(done, total)``
    is called after each hour. ``now`` (epoch microseconds) is the time the hours are
    settled by (default: now).
    """
    result = CompactionResult(endpoint)
    artifacts = store.artifacts
    now = now_us() if now is None else now
    settled = (now - int(settle_s * 1_000_000)) // HOUR_US  # first hour not settled
    work: list[tuple[str, int]] = []
    for kind in (PREDICTIONS, FEEDBACK):
        counts: dict[int, int] = {}
        for path in list_parts(artifacts, kind, endpoint, start_us, end_us):
            hour = part_hour(path)
            if hour is not None:
                counts[hour] = counts.get(hour, 0) + 1
        for hour, n in sorted(counts.items()):
            if n < 2:
                continue
            if hour + 1 > settled:
                result.open_hours += 1
            else:
                work.append((kind, hour))
    for i, (kind, hour) in enumerate(work):
        with held(store, lease_name(endpoint, kind, hour), ttl_s=HOUR_LEASE_S) as lease:
            if lease is None:
                result.busy_hours += 1
            else:
                _compact_hour(artifacts, kind, endpoint, hour, lease.renew, result)
        if progress is not None:
            progress(i + 1, len(work))
    return result


def _compact_hour(
    artifacts: ArtifactStore,
    kind: str,
    endpoint: str,
    hour: int,
    renew: Callable[[], bool],
    result: CompactionResult,
) -> None:
    """One hour's files merged into one (under its lease); its files counted in ``result``."""
    paths = sorted(_listed(artifacts, kind, endpoint, hour).values(), key=_name)
    if len(paths) < 2:
        return
    with ThreadPoolExecutor(min(_READ_THREADS, len(paths))) as pool:
        read = list(pool.map(lambda p: read_merged_part(artifacts, p), paths))
    replaced = {n for _, names in read for n in names}
    live = [(p, t) for p, (t, _) in zip(paths, read, strict=True) if _name(p) not in replaced]
    dead = [p for p in paths if _name(p) in replaced]
    if len(live) == 1:  # merged already: only files a failed delete left
        result.files_before += len(paths)
        result.files_after += 1 + _delete(artifacts, endpoint, dead)
        return
    path = _replace(
        artifacts,
        kind,
        endpoint,
        hour,
        [t for _, t in live],
        [p for p, _ in live],
        dead,
        before_write=renew,
    )
    if path is None:  # the lease expired and another process took it: its merge, not ours
        result.busy_hours += 1
        return
    result.hours += 1
    result.files_before += len(paths)
    result.files_after += 1
    result.rows += sum(t.num_rows for _, t in live)
