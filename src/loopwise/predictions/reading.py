"""Reading the prediction log back: part files, the listing read again when files are
merged away, unified tables, and the feedback join.

Readers never lock: a writer merges its small part files into one that names the files it
``replaces`` (see :mod:`.compaction`), then deletes them. So a reader drops
any file that another file it read replaces, and lists again when a file it listed is gone
(:func:`relisting`). Files are read on a few threads (S3 latency); each is decoded on the
thread that fetched it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TypeVar

import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from loopwise._version import __version__
from loopwise.errors import InvalidInput, NotFound
from loopwise.predictions.files import (
    ARROW_ERRORS,
    FEEDBACK,
    FEEDBACK_TYPES,
    FORMAT_VERSION,
    HOUR_US,
    PREDICTION_TYPES,
    PREDICTIONS,
    as_text,
    list_parts,
    part_hour,
    require_endpoint,
)
from loopwise.store.artifacts import ArtifactStore

_READ_THREADS = 8  # files in flight (S3 latency); each is decoded on one thread
RELIST_ATTEMPTS = 5  # listings tried when files vanish under a reader (compaction)
T = TypeVar("T")


def read_part(artifacts: ArtifactStore, path: str, columns: Sequence[str] | None) -> pa.Table:
    """One part file (only ``columns`` of it, those it has, when given), checked."""
    return _read_part(artifacts, path, columns)[0]


def read_merged_part(artifacts: ArtifactStore, path: str) -> tuple[pa.Table, list[str]]:
    """One part file whole, and the names of the files it replaces (for merging it)."""
    return _read_part(artifacts, path, None)


def _read_part(
    artifacts: ArtifactStore, path: str, columns: Sequence[str] | None
) -> tuple[pa.Table, list[str]]:
    """One part file and the names of the files it replaces (a merged file; see
    :mod:`.compaction`).

    Decoded on the calling thread: Arrow's own thread pool (``use_threads``) made about one
    interpreter exit in five abort here ("terminate called without an active exception",
    apache/arrow#34314); files are read in parallel by :func:`read_parts` instead.
    """
    parquet = pq.ParquetFile(pa.BufferReader(artifacts.read_bytes(path)))
    schema = parquet.schema_arrow
    stamp = json.loads((schema.metadata or {}).get(b"loopwise", b"{}"))
    if stamp.get("format_version", FORMAT_VERSION) > FORMAT_VERSION:
        raise InvalidInput(
            f"{path} in artifact store {artifacts.url} has format_version "
            f"{stamp['format_version']}; this loopwise ({__version__}) reads format_version "
            f"<= {FORMAT_VERSION}. Upgrade loopwise."
        )
    wanted = None if columns is None else [c for c in columns if c in schema.names]
    table = parquet.read(columns=wanted, use_threads=False).replace_schema_metadata(None)
    return table, list(stamp.get("replaces", ()))


def read_parts(
    artifacts: ArtifactStore,
    paths: Sequence[str],
    start_us: int | None = None,
    end_us: int | None = None,
    columns: Sequence[str] | None = None,
) -> list[pa.Table]:
    """The files' rows with a timestamp in [start, end), files read on a few threads.

    Rows lie in the partition of their own hour, so only the files of the first and last
    hour of the range are filtered row by row.
    """
    first = None if start_us is None else start_us // HOUR_US
    last = None if end_us is None else (end_us - 1) // HOUR_US

    def read(path: str) -> tuple[pa.Table, list[str]]:
        table, replaces = _read_part(artifacts, path, columns)
        hour = part_hour(path)
        if hour is None or hour in (first, last):
            table = _in_range(table, start_us, end_us)
        return table, replaces

    if len(paths) <= 1:
        read_back = [read(p) for p in paths]
    else:
        with ThreadPoolExecutor(min(_READ_THREADS, len(paths))) as pool:
            read_back = list(pool.map(read, paths))
    # a merged file's rows are its parts' rows: whichever a listing caught, count them once
    replaced = {name for _, names in read_back for name in names}
    return [
        table
        for path, (table, _) in zip(paths, read_back, strict=True)
        if path.rsplit("/", 1)[-1] not in replaced
    ]


def read_listed(
    artifacts: ArtifactStore,
    kind: str,
    endpoint: str,
    start_us: int | None = None,
    end_us: int | None = None,
    columns: Sequence[str] | None = None,
) -> list[pa.Table]:
    """:func:`read_parts` of what :func:`list_parts` finds, listed again if a file vanishes
    in between (merged and deleted by its writer: the merged file, written first, is in
    the new listing)."""

    def attempt() -> list[pa.Table]:
        paths = list_parts(artifacts, kind, endpoint, start_us, end_us)
        return read_parts(artifacts, paths, start_us, end_us, columns)

    return relisting(attempt)


def relisting(read: Callable[[], T]) -> T:
    """``read()``, tried again (up to ``RELIST_ATTEMPTS`` in all) while it meets a file that
    vanished after it was listed: each try lists anew."""
    for _ in range(RELIST_ATTEMPTS - 1):
        try:
            return read()
        except NotFound:
            continue
    return read()


def _in_range(table: pa.Table, start_us: int | None, end_us: int | None) -> pa.Table:
    if start_us is None and end_us is None:
        return table
    ts = table["timestamp"].cast(pa.int64())
    keep = None
    if start_us is not None:
        keep = pc.greater_equal(ts, start_us)
    if end_us is not None:
        below = pc.less(ts, end_us)
        keep = below if keep is None else pc.and_(keep, below)
    return table.filter(keep)


def concat_unified(tables: Sequence[pa.Table]) -> pa.Table:
    """Concatenate tables by column name: missing columns are null, int and float make float,
    and columns whose types cannot be reconciled become text."""
    seen: dict[str, set[pa.DataType]] = {}
    for table in tables:
        for f in table.schema:
            if not pa.types.is_null(f.type):
                seen.setdefault(f.name, set()).add(f.type)
    targets = {name: _common_type(types) for name, types in seen.items() if len(types) > 1}
    if targets:
        tables = [_cast_columns(t, targets) for t in tables]
    return pa.concat_tables(tables, promote_options="permissive")


def _common_type(types: set[pa.DataType]) -> pa.DataType:
    try:
        schemas = [pa.schema([pa.field("c", t)]) for t in types]
        return pa.unify_schemas(schemas, promote_options="permissive").field("c").type
    except ARROW_ERRORS:
        return pa.string()


def _cast_columns(table: pa.Table, targets: dict[str, pa.DataType]) -> pa.Table:
    for name, target in targets.items():
        i = table.schema.get_field_index(name)
        if i < 0 or table.schema.field(i).type == target:
            continue
        column = table.column(i)
        try:
            column = column.cast(target)
        except ARROW_ERRORS:
            column = pa.array([as_text(v) for v in column.to_pylist()], pa.string())
        table = table.set_column(i, name, column)
    return table


# -- reading back -------------------------------------------------------------------------


@dataclass(frozen=True, repr=False)
class LatestFeedback:
    """An endpoint's feedback timestamped at or after ``since_us`` (None: all of it), as a
    join uses it: the latest label per (request_id, row), and per request for feedback
    given for all of its rows (``row`` null).

    Read once (:meth:`read`) and joined to several reads of the log (:meth:`join`): a
    monitor backfill reads the log a day at a time, and a day's labels may arrive any time
    later, so a join per read would read all the later feedback files again for every day.
    Held: request id, row, label and timestamp of the latest label of each (request, row)
    -- not the predictions, nor labels replaced by later ones: less than the join of a
    backfill's first chunk held before (all the feedback from its start on, as read).
    Labels whose types disagree between files are unified over all the files read (see
    :func:`concat_unified`), where a read of its own unified those from its start on.
    """

    endpoint: str
    since_us: int | None
    per_row: pl.DataFrame  # request_id, row, _label_r, _ts_r
    per_request: pl.DataFrame  # request_id, _label_a, _ts_a

    @classmethod
    def read(cls, artifacts: ArtifactStore, endpoint: str, since_us: int | None) -> LatestFeedback:
        """The feedback files from ``since_us`` to the end of the log, each read once."""
        tables = read_listed(artifacts, FEEDBACK, endpoint, since_us, None)
        return cls.of(endpoint, _polars(concat_unified(tables)) if tables else None, since_us)

    @classmethod
    def of(
        cls, endpoint: str, feedback: pl.DataFrame | None, since_us: int | None
    ) -> LatestFeedback:
        """Reduce feedback rows (in writing order) to the latest label of each key."""
        if feedback is None:
            feedback = _polars(pa.schema(FEEDBACK_TYPES).empty_table())
        # Files come in writing order: within one timestamp, the later write wins.
        feedback = feedback.with_row_index("_seq").sort(["timestamp", "_seq"])
        per_row = (
            feedback.filter(pl.col("row").is_not_null())
            .unique(["request_id", "row"], keep="last", maintain_order=True)
            .select("request_id", "row", _label_r="label", _ts_r="timestamp")
        )
        per_request = (
            feedback.filter(pl.col("row").is_null())
            .unique(["request_id"], keep="last", maintain_order=True)
            .select("request_id", _label_a="label", _ts_a="timestamp")
        )
        return cls(endpoint, since_us, per_row, per_request)

    def __repr__(self) -> str:
        labels = self.per_row.height + self.per_request.height
        return f"LatestFeedback({self.endpoint!r}, since_us={self.since_us}, labels={labels})"

    def covers(self, since_us: int | None) -> bool:
        """Whether this holds all the feedback from ``since_us`` on."""
        return self.since_us is None or (since_us is not None and since_us >= self.since_us)

    def join(self, predictions: pl.DataFrame, since_us: int | None = None) -> pl.DataFrame:
        """Add ``label`` and ``feedback_timestamp``: the latest label for the row, from
        feedback for that row or for the whole request (``row`` null), whichever came last,
        counting only feedback timestamped at or after ``since_us``.

        Filtering the latest labels by time gives what reducing the filtered feedback would:
        a key whose latest label is older than ``since_us`` has no label that is not.
        """
        per_row, per_request = self.per_row, self.per_request
        if since_us is not None and (self.since_us is None or since_us > self.since_us):
            per_row = per_row.filter(pl.col("_ts_r").dt.epoch("us") >= since_us)
            per_request = per_request.filter(pl.col("_ts_a").dt.epoch("us") >= since_us)
        if per_row.height == 0 and per_request.height == 0:
            no_time = pl.lit(None, dtype=pl.Datetime("us", "UTC"))
            return predictions.with_columns(label=pl.lit(None), feedback_timestamp=no_time)
        if per_row.height + per_request.height > predictions.height:
            # Labels for other reads (a backfill's later days): a left join hashes all of
            # them (~100 ms for 600,000 labels and a day's 48,000 predictions), a semi join
            # keeping those of these requests first takes a fifth of that.
            ids = predictions.select("request_id").unique()
            per_row = per_row.join(ids, on="request_id", how="semi")
            per_request = per_request.join(ids, on="request_id", how="semi")
        joined = predictions.join(per_row, on=["request_id", "row"], how="left").join(
            per_request, on="request_id", how="left"
        )
        use_row = pl.col("_ts_r").is_not_null() & (
            pl.col("_ts_a").is_null() | (pl.col("_ts_r") >= pl.col("_ts_a"))
        )
        return joined.with_columns(
            label=pl.when(use_row).then(pl.col("_label_r")).otherwise(pl.col("_label_a")),
            feedback_timestamp=pl.when(use_row).then(pl.col("_ts_r")).otherwise(pl.col("_ts_a")),
        ).drop("_label_r", "_ts_r", "_label_a", "_ts_a")


def feedback_since(start_us: int | None) -> int | None:
    """Where the feedback joined to predictions from ``start_us`` on starts: an hour
    earlier (labels are logged after their predictions)."""
    return None if start_us is None else start_us - HOUR_US


def read_log(
    artifacts: ArtifactStore,
    endpoint: str,
    start_us: int | None,
    end_us: int | None,
    columns: Sequence[str] | None = None,
    *,
    feedback: bool | LatestFeedback = True,
) -> pl.DataFrame:
    """The predictions in [start, end) (``columns`` only, with the keys, when given), with
    ``label`` and ``feedback_timestamp`` unless ``feedback`` is False (a LatestFeedback:
    joined from it, read earlier; it must cover the read); sorted by time."""
    require_endpoint(artifacts, endpoint)
    wanted = None
    if columns is not None:
        wanted = list(dict.fromkeys(["request_id", "row", "timestamp", *columns]))
    tables = read_listed(artifacts, PREDICTIONS, endpoint, start_us, end_us, wanted)
    table = concat_unified(tables) if tables else pa.schema(PREDICTION_TYPES).empty_table()
    if wanted is not None:
        for name in wanted:
            if name not in table.column_names:
                type_ = PREDICTION_TYPES.get(name, pa.null())
                table = table.append_column(name, pa.nulls(table.num_rows, type_))
        table = table.select(wanted)
    fixed = [n for n in PREDICTION_TYPES if n in table.column_names]
    frame = _polars(table.select(fixed + [n for n in table.column_names if n not in fixed]))
    if isinstance(feedback, LatestFeedback) or feedback:
        since = feedback_since(start_us)
        if not isinstance(feedback, LatestFeedback):
            feedback = LatestFeedback.read(artifacts, endpoint, since)
        frame = feedback.join(frame, since)
    # Stable: rows with one timestamp keep their file order (by writing time, then row).
    return frame if frame["timestamp"].is_sorted() else frame.sort("timestamp", maintain_order=True)


def _polars(table: pa.Table) -> pl.DataFrame:
    frame = pl.from_arrow(table)
    assert isinstance(frame, pl.DataFrame)
    return frame
