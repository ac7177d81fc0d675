"""Batch scoring: a registered model over a Parquet or CSV file, in bounded memory.

:func:`score` scores with a model version of the store it is given
(:func:`loopwise.batch.api.score_file` binds the default store). It reads the input in
chunks of ``chunk_rows`` rows, scores each chunk with the model and appends it to the
output at once, so memory follows the chunk size, not the file size. The file's columns are checked
against the model signature before anything is written. The output holds the input columns,
``prediction`` (and ``proba_<class>`` with ``proba=True``), ``model_version``
(``name/version``), ``model_version_id`` and ``scored_at`` (one UTC time for the whole job).
It is written under a temporary name beside ``dest`` and moved into place when complete, so
a failure never leaves a half-written file at ``dest``.

An executor turns input chunks into scored columns, in input order: ``local`` scores in
this process; ``ray`` (:mod:`loopwise.batch.ray_runner`, from :data:`EXECUTORS`, imported
only when chosen) scores the same chunks as Ray tasks, so both write identical files.
"""

from __future__ import annotations

import os
import re
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from importlib import import_module
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from loopwise.errors import Conflict, InvalidInput, NotFound
from loopwise.param_errors import bad_param
from loopwise.registry.signature import check_input
from loopwise.store import Store

if TYPE_CHECKING:
    from loopwise.registry.packaging import LoadedModel

#: Executor name -> the module whose ``run`` scores the chunks (``None``: in this process).
EXECUTORS = {"local": None, "ray": "loopwise.batch.ray_runner"}
FORMATS = {".parquet": "parquet", ".pq": "parquet", ".parq": "parquet", ".csv": "csv"}
#: Columns the output adds after the input columns (plus ``proba_<class>`` with proba).
ADDED_COLUMNS = ("prediction", "model_version", "model_version_id", "scored_at")
_CSV_BLOCK_BYTES = 1 << 20  # the reader reads about 32 blocks ahead
_READ_BUFFER_BYTES = 1 << 20
#: Signature type -> Arrow type: CSV columns the model reads are parsed as the model takes them.
_ARROW_TYPES = {
    "integer": pa.int64(),
    "float": pa.float64(),
    "string": pa.string(),
    "boolean": pa.bool_(),
}

Scored = dict[str, pa.Array]  # the model's columns for one chunk: prediction, proba_*


@dataclass(frozen=True)
class ScoreProgress:
    """How far a job is, passed to ``progress`` after each chunk (and once at the start).

    Parquet knows ``total_rows``; CSV knows ``bytes_read`` of ``total_bytes`` instead.
    """

    rows: int
    chunks: int
    total_rows: int | None
    bytes_read: int | None
    total_bytes: int | None


@dataclass(frozen=True)
class ScoreSummary:
    """What a batch job did: rows scored, in how many chunks and how fast, where it went."""

    rows: int
    chunks: int
    seconds: float
    rows_per_s: float
    model: str  # name/version
    dest: str
    executor: str = "local"

    def summary(self) -> str:
        """One line for people."""
        chunks = f"{self.chunks} chunk{'' if self.chunks == 1 else 's'}"
        return (
            f"Scored {self.rows:,} rows with {self.model} in {self.seconds:.1f}s "
            f"({self.rows_per_s:,.0f} rows/s, {chunks}, {self.executor}) → {self.dest}"
        )

    def to_dict(self) -> dict[str, Any]:
        return dict(vars(self))


def score(
    store: Store,
    uri: str,
    source: str | os.PathLike[str],
    dest: str | os.PathLike[str],
    *,
    chunk_rows: int = 100_000,
    executor: str = "local",
    proba: bool = False,
    progress: Callable[[ScoreProgress], None] | None = None,
    ray_address: str | None = None,
    overwrite: bool = False,
    storage_options: dict[str, Any] | None = None,
    log_endpoint: str | None = None,
) -> ScoreSummary:
    """Score ``source`` with the model version ``uri`` of ``store`` into ``dest``.

    With ``log_endpoint``, each scored chunk (its model inputs and prediction) is also
    written to that endpoint's prediction log (variant ``"batch"``), so a model run as a
    batch job is monitored like one behind an endpoint. Chunks are logged as they are
    scored: a job that fails part-way has logged the chunks it predicted.

    ``source`` and ``dest`` are Parquet or CSV files (told apart by their suffix): local
    paths or fsspec URLs such as ``s3://bucket/key.parquet`` (``storage_options`` go to
    fsspec; for ``s3://`` they default to the store's S3 endpoint and region). An existing
    ``dest`` is replaced only with ``overwrite=True``. ``progress`` is called with a
    :class:`ScoreProgress` after each chunk. ``executor="ray"`` runs the chunks as Ray tasks
    on the cluster at ``ray_address`` (default: the connected one, else a local Ray).
    """
    started = time.perf_counter()
    _check_options(uri, chunk_rows, executor, proba, ray_address, overwrite)
    if log_endpoint is not None:
        from loopwise.serving.endpoint_config import check_endpoint_name

        check_endpoint_name(log_endpoint)
    backend = import_module(EXECUTORS[executor]) if EXECUTORS[executor] else None
    if backend is not None:
        backend.require_ray()
    src_url, dest_url = os.fspath(source), os.fspath(dest)
    src_opts = _options(store, src_url, storage_options)
    dest_opts = _options(store, dest_url, storage_options)
    version, root, manifest = _resolve(store, uri)
    signature = manifest.signature
    if signature is not None and signature.is_tensor:
        raise InvalidInput(
            f"{version.uri} takes a tensor; batch scoring reads table columns from a file. "
            "Score tensors with lw.load_model(...).predict in your own loop."
        )
    if proba and not manifest.has_predict_proba:
        raise InvalidInput(
            f"{version.uri} (flavor {manifest.flavor!r}) has no predict_proba; "
            "score without proba=True (--proba)."
        )
    names = signature.input_names if signature is not None and signature.inputs else None
    reader = Source(src_url, src_opts, chunk_rows=chunk_rows, signature=signature)
    try:
        output = _Output(dest_url, dest_opts, overwrite=overwrite, source=src_url)
        reader.check_columns(names, proba, what=version.uri)
        stamp = _Stamp(f"{version.name}/{version.version}", version.id, datetime.now(UTC))
        if backend is None:
            chunks = _local(reader, Scorer(_load(root), names, proba))
        else:
            chunks = backend.run(reader, root, version.id, names, proba, ray_address)
        rows = n_chunks = 0
        _report(progress, reader, 0, 0)
        try:
            for batch, scored in chunks:
                table = _assemble(batch, scored, stamp, where=_rows(reader, rows, batch))
                output.write(table)
                if log_endpoint is not None:
                    _log_chunk(store, log_endpoint, table, names, version)
                rows += batch.num_rows
                n_chunks += 1
                _report(progress, reader, rows, n_chunks)
            output.commit(lambda: _empty_schema(reader, manifest, stamp))
        finally:
            chunks.close()  # the Ray executor cancels the tasks still running
            output.abort()  # a no-op after commit
    finally:
        reader.close()
    seconds = time.perf_counter() - started
    return ScoreSummary(
        rows=rows,
        chunks=n_chunks,
        seconds=seconds,
        rows_per_s=rows / seconds if seconds > 0 else 0.0,
        model=stamp.label,
        dest=dest_url,
        executor=executor,
    )


# -- checks ----------------------------------------------------------------------------------


def _param(name: str, rule: str, value: Any) -> InvalidInput:
    return bad_param("score_file", name, rule, value)


def _check_options(
    uri: Any, chunk_rows: Any, executor: Any, proba: Any, ray_address: Any, overwrite: Any
) -> None:
    if not isinstance(uri, str) or not uri.startswith("models:/"):
        raise _param("uri", "a models:/ reference such as 'models:/name@champion'", uri)
    if isinstance(chunk_rows, bool) or not isinstance(chunk_rows, int) or chunk_rows < 1:
        raise _param("chunk_rows", "an int >= 1", chunk_rows)
    if executor not in EXECUTORS:
        raise _param("executor", f"one of {', '.join(map(repr, EXECUTORS))}", executor)
    for name, value in (("proba", proba), ("overwrite", overwrite)):
        if not isinstance(value, bool):
            raise _param(name, "True or False", value)
    if ray_address is not None and executor != "ray":
        raise _param("ray_address", "None unless executor='ray'", ray_address)


def _options(store: Store, url: str, given: dict[str, Any] | None) -> dict[str, Any]:
    """fsspec options: as given; for ``s3://``, the store's S3 endpoint and region."""
    if given is not None:
        return dict(given)
    if url.startswith("s3://"):
        return replace(store.settings, artifacts_url=url).storage_options()
    return {}


def _format(url: str, what: str) -> str:
    name = url.rstrip("/").rsplit("/", 1)[-1].lower()
    for suffix, fmt in FORMATS.items():
        if name.endswith(suffix):
            return fmt
    raise InvalidInput(
        f"cannot tell the format of the {what} {url!r} from its name; "
        f"name it with one of {', '.join(FORMATS)}."
    )


def _filesystem(url: str, options: dict[str, Any], what: str) -> tuple[Any, str]:
    """(fsspec filesystem, path in it) for a local path or a URL."""
    from fsspec.core import url_to_fs

    try:
        return url_to_fs(url, **options)
    except ImportError as e:
        raise InvalidInput(
            f"cannot open the {what} {url!r}: {e}. Install the fsspec backend for it "
            "(pip install 'loopwise[s3]' for s3://)."
        ) from e
    except (ValueError, TypeError) as e:
        raise InvalidInput(f"cannot open the {what} {url!r}: {e}.") from e


def _is_local(fs: Any) -> bool:
    protocol = fs.protocol if isinstance(fs.protocol, tuple) else (fs.protocol,)
    return "file" in protocol or "local" in protocol


def _resolve(store: Store, uri: str) -> tuple[Any, Path, Any]:
    """The version, its local package folder and its manifest (the model is not loaded)."""
    from loopwise.registry.loading import package_dir
    from loopwise.registry.models import get_model_version
    from loopwise.registry.packaging import read_manifest

    version = get_model_version(store, uri)
    root = package_dir(store, version).resolve()
    return version, root, read_manifest(root)


def _load(root: Path) -> LoadedModel:
    from loopwise.registry.packaging import load_package

    return load_package(root)


# -- reading ---------------------------------------------------------------------------------


class Source:
    """The input file: its columns, its size, and its rows in chunks of ``chunk_rows``."""

    def __init__(self, url: str, options: dict[str, Any], *, chunk_rows: int, signature: Any):
        self.url, self.options, self.chunk_rows = url, options, chunk_rows
        self.format = _format(url, "source")
        fs, path = _filesystem(url, options, "source")
        if not fs.exists(path):
            raise NotFound(f"no source file at {url!r}; check the path.")
        if fs.isdir(path):
            raise InvalidInput(f"the source {url!r} is a folder; score one file at a time.")
        self.total_rows: int | None = None
        self.total_bytes: int | None = None
        self._file: Any = None
        self._parquet: Any = None
        self._csv: Any = None
        if self.format == "parquet":
            self._parquet = open_parquet(url, options, fs, path)
            self.columns = self._parquet.schema_arrow.names
            self.total_rows = self._parquet.metadata.num_rows
            # workers of a Ray job open it again: an absolute path works from any cwd
            self.task_url = os.path.abspath(path) if _is_local(fs) else url
        else:
            self.total_bytes = fs.size(path)
            try:
                self._file = fs.open(path, "rb")
            except OSError as e:
                raise InvalidInput(f"cannot read the source {url!r}: {e}") from e
            self._csv = self._open_csv(signature)
            self.columns = self._csv.schema.names
            self.task_url = None

    def _open_csv(self, signature: Any) -> Any:
        from pyarrow import csv

        specs = signature.inputs if signature is not None else []
        types = {c.name: _ARROW_TYPES[c.type] for c in specs if c.type in _ARROW_TYPES}
        try:
            return csv.open_csv(
                self._file,
                read_options=csv.ReadOptions(block_size=_CSV_BLOCK_BYTES),
                convert_options=csv.ConvertOptions(column_types=types),
            )
        except pa.ArrowException as e:
            self.close()
            raise self._csv_error(e, self._header()) from e

    def _header(self) -> list[str]:
        import csv

        fs, path = _filesystem(self.url, self.options, "source")
        try:
            with fs.open(path, "rt", encoding="utf-8", newline="") as f:
                return next(csv.reader(f), [])
        except (OSError, ValueError):  # not text: pyarrow's message has to do
            return []

    def _csv_error(self, e: Exception, columns: list[str], after: int = 0) -> InvalidInput:
        """``e`` from pyarrow, with the name of the column it numbers."""
        found = re.search(r"column #(\d+)", str(e))
        index = int(found.group(1)) if found else -1
        name = f" (column #{index} is {columns[index]!r})" if 0 <= index < len(columns) else ""
        where = f" after row {after:,}" if after else ""
        return InvalidInput(
            f"cannot read the source {self.url!r} as CSV{where}: {e}{name}. Columns the "
            "model reads are parsed as its signature's types, others as their first rows "
            "suggest; make the values of each column one type."
        )

    def check_columns(self, names: list[str] | None, proba: bool, *, what: str) -> None:
        """Refuse, before anything is written, a file that lacks a model input or already
        has a column the output adds."""
        missing = [n for n in names or [] if n not in self.columns]
        if missing:
            raise InvalidInput(
                f"the source {self.url!r} lacks the column(s) {', '.join(map(repr, missing))} "
                f"that {what} takes; it has: {', '.join(self.columns)}."
            )
        taken = [c for c in self.columns if c in ADDED_COLUMNS or (proba and c[:6] == "proba_")]
        if taken:
            raise InvalidInput(
                f"the source {self.url!r} already has the column(s) "
                f"{', '.join(map(repr, taken))}, which the output adds; rename or drop them."
            )

    def chunks(self) -> Iterator[pa.RecordBatch]:
        """The rows in order, ``chunk_rows`` at a time (the last chunk may be shorter)."""
        if self._parquet is not None:
            yield from rebatch(self._parquet.iter_batches(self.chunk_rows), self.chunk_rows)
            return
        rows = 0
        try:
            for chunk in rebatch(self._csv, self.chunk_rows):
                yield chunk
                rows += chunk.num_rows
        except pa.ArrowInvalid as e:
            raise self._csv_error(e, self.columns, after=rows) from e

    @property
    def schema(self) -> pa.Schema:
        return self._parquet.schema_arrow if self._parquet is not None else self._csv.schema

    def bytes_read(self) -> int | None:
        if self._file is None or self._file.closed:
            return None
        return min(self._file.tell(), self.total_bytes or 0)

    def close(self) -> None:
        if self._parquet is not None:
            self._parquet.close()
        if self._file is not None:
            self._file.close()


def open_parquet(url: str, options: dict[str, Any], fs: Any = None, path: str = "") -> Any:
    """A ``pyarrow.parquet.ParquetFile`` for a local path or an fsspec URL."""
    import pyarrow.parquet as pq

    if fs is None:
        fs, path = _filesystem(url, options, "source")
    try:
        # pre_buffer would read every row group ahead; a read buffer keeps memory near
        # one chunk even inside a large row group
        source = path if _is_local(fs) else fs.open(path, "rb")
        return pq.ParquetFile(source, pre_buffer=False, buffer_size=_READ_BUFFER_BYTES)
    except FileNotFoundError as e:
        raise NotFound(f"no source file at {url!r}; check the path.") from e
    except OSError as e:
        raise InvalidInput(f"cannot read the source {url!r}: {e}") from e
    except pa.ArrowException as e:
        raise InvalidInput(f"the source {url!r} is not a readable Parquet file: {e}") from e


def read_rows(
    url: str, options: dict[str, Any], columns: list[str] | None, lo: int, hi: int, size: int
) -> pa.RecordBatch:
    """Rows ``lo`` to ``hi`` of a Parquet file, read from the row groups that hold them."""
    parquet = open_parquet(url, options)
    try:
        meta, start, groups, first = parquet.metadata, 0, [], None
        for i in range(meta.num_row_groups):
            end = start + meta.row_group(i).num_rows
            if start < hi and end > lo:
                groups.append(i)
                first = start if first is None else first
            start = end
        batches = parquet.iter_batches(size, row_groups=groups, columns=columns)
        return next(rebatch(batches, hi - lo, skip=lo - (first or 0)))
    finally:
        parquet.close()


def rebatch(batches: Any, size: int, *, skip: int = 0) -> Iterator[pa.RecordBatch]:
    """``batches`` cut and joined into batches of exactly ``size`` rows (the last may be
    shorter), after dropping the first ``skip`` rows."""
    pending: list[pa.RecordBatch] = []
    have = 0
    for batch in batches:
        if skip:
            if batch.num_rows <= skip:
                skip -= batch.num_rows
                continue
            batch, skip = batch.slice(skip), 0
        if not pending and batch.num_rows == size:
            yield batch
            continue
        pending.append(batch)
        have += batch.num_rows
        while have >= size:
            table = pa.Table.from_batches(pending)
            yield _one_batch(table.slice(0, size))
            rest = table.slice(size)
            pending, have = ([_one_batch(rest)] if rest.num_rows else []), rest.num_rows
    if have:
        yield _one_batch(pa.Table.from_batches(pending))


def _one_batch(table: pa.Table) -> pa.RecordBatch:
    batches = table.combine_chunks().to_batches()
    return batches[0] if batches else pa.RecordBatch.from_pylist([], schema=table.schema)


def _rows(reader: Source, start: int, batch: pa.RecordBatch) -> str:
    return f"rows {start + 1:,}-{start + batch.num_rows:,} of {reader.url!r}"


def _report(
    progress: Callable[[ScoreProgress], None] | None, reader: Source, rows: int, chunks: int
) -> None:
    if progress is not None:
        progress(
            ScoreProgress(rows, chunks, reader.total_rows, reader.bytes_read(), reader.total_bytes)
        )


# -- scoring ---------------------------------------------------------------------------------


class Scorer:
    """The model's half of the work: ``prediction`` (and ``proba_*``) for one chunk."""

    def __init__(self, model: LoadedModel, names: list[str] | None, proba: bool) -> None:
        self.model, self.names, self.proba = model, names, proba

    def columns(self, batch: pa.RecordBatch, *, where: str = "input") -> Scored:
        model, signature = self.model, self.model.signature
        if self.names is None:
            data: Any = batch.to_pandas()
        else:
            columns = {n: batch.column(n).to_numpy(zero_copy_only=False) for n in self.names}
            data = check_input(signature, columns, what=where)
        out = {"prediction": _prediction(model.predict(data), where)}
        if self.proba:
            probabilities = np.asarray(model.predict_proba(data), dtype=np.float64)
            for name, column in zip(
                _proba_names(model, probabilities), probabilities.T, strict=True
            ):
                out[name] = pa.array(column)
        return out


def _local(reader: Source, scorer: Scorer) -> Iterator[tuple[pa.RecordBatch, Scored]]:
    start = 0
    for batch in reader.chunks():
        yield batch, scorer.columns(batch, where=_rows(reader, start, batch))
        start += batch.num_rows


def _prediction(values: Any, where: str) -> pa.Array:
    arr = np.asarray(values)
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim == 1:
        return pa.array(arr)
    if arr.ndim == 2:
        return pa.FixedSizeListArray.from_arrays(pa.array(arr.reshape(-1)), arr.shape[1])
    raise InvalidInput(
        f"{where}: the model returned predictions of shape {arr.shape}; batch scoring "
        "writes one prediction (a value or a list of values) per row."
    )


def _proba_names(model: LoadedModel, probabilities: np.ndarray) -> list[str]:
    """``proba_<class>`` per column, by the model's class labels (else 0, 1, ...)."""
    classes = getattr(model.raw, "classes_", getattr(model.raw, "classes", None))
    width = probabilities.shape[1] if probabilities.ndim == 2 else 0
    if classes is None or len(classes) != width:
        classes = range(width)
    return [f"proba_{c.item() if isinstance(c, np.generic) else c}" for c in classes]


@dataclass(frozen=True)
class _Stamp:
    """The columns every output row gets: the version and when the job scored it."""

    label: str
    version_id: str
    scored_at: datetime

    def arrays(self, n: int) -> list[pa.Array]:
        return [
            pa.repeat(pa.scalar(self.label), n),
            pa.repeat(pa.scalar(self.version_id), n),
            pa.repeat(pa.scalar(self.scored_at, pa.timestamp("us", tz="UTC")), n),
        ]


def _assemble(batch: pa.RecordBatch, scored: Scored, stamp: _Stamp, *, where: str) -> pa.Table:
    taken = [name for name in scored if name in batch.schema.names]
    if taken:
        raise InvalidInput(
            f"{where}: the source already has the column(s) {', '.join(map(repr, taken))}, "
            "which the output adds; rename or drop them."
        )
    names = [*batch.schema.names, *scored, *ADDED_COLUMNS[1:]]
    arrays = [*batch.columns, *scored.values(), *stamp.arrays(batch.num_rows)]
    return pa.Table.from_arrays(arrays, names=names)


def _log_chunk(
    store: Store, endpoint: str, table: pa.Table, names: list[str] | None, version: Any
) -> None:
    from loopwise.predictions.log import log_predictions

    columns = [n for n in (names or table.schema.names) if n not in ADDED_COLUMNS]
    keep = [c for c in columns if not c.startswith("proba_")] + ["prediction"]
    log_predictions(store, endpoint, table.select(list(dict.fromkeys(keep))), model=version)


def _empty_schema(reader: Source, manifest: Any, stamp: _Stamp) -> pa.Schema:
    """The output schema for a source without rows: prediction typed by the signature."""
    outputs = manifest.signature.outputs if manifest.signature is not None else []
    kind = _ARROW_TYPES.get(outputs[0].type, pa.float64()) if outputs else pa.float64()
    empty = pa.RecordBatch.from_pylist([], schema=reader.schema)
    return _assemble(empty, {"prediction": pa.array([], kind)}, stamp, where="").schema


# -- writing ---------------------------------------------------------------------------------


class _Output:
    """The output file, written under a temporary name beside ``dest`` and moved to
    ``dest`` by :meth:`commit` (``os.replace`` locally, a server-side move on S3)."""

    def __init__(self, url: str, options: dict[str, Any], *, overwrite: bool, source: str):
        self.url = url
        self.format = _format(url, "output")
        self.fs, self.path = _filesystem(url, options, "output")
        if os.fspath(url) == source or (
            _is_local(self.fs) and os.path.abspath(self.path) == os.path.abspath(source)
        ):
            raise InvalidInput(f"the output {url!r} is the source; write to another file.")
        if self.fs.exists(self.path):
            if self.fs.isdir(self.path):
                raise InvalidInput(f"the output {url!r} is a folder; name a file.")
            if not overwrite:
                raise Conflict(
                    f"the output {url!r} already exists; pass overwrite=True (--overwrite) "
                    "to replace it, or choose another path."
                )
        parent, _, name = self.path.rpartition("/")
        self.tmp = f"{parent}/.{name}.partial-{uuid.uuid4().hex[:12]}"
        self._file: Any = None
        self._writer: Any = None
        self._schema: pa.Schema | None = None
        self._done = False

    def write(self, table: pa.Table) -> None:
        if self._writer is None:
            self._open(table.schema)
        elif table.schema != self._schema:
            try:
                table = table.cast(self._schema)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError, ValueError) as e:
                raise InvalidInput(
                    f"cannot append to {self.url!r}: a chunk's columns differ in type from the "
                    f"first chunk's ({e}); make each column of the source one type."
                ) from e
        self._writer.write_table(table)

    def _open(self, schema: pa.Schema) -> None:
        import pyarrow.parquet as pq
        from pyarrow import csv

        try:
            self.fs.makedirs(self.path.rpartition("/")[0] or ".", exist_ok=True)
            sink = self.tmp if _is_local(self.fs) else self.fs.open(self.tmp, "wb")
            self._file = None if isinstance(sink, str) else sink
            if self.format == "parquet":
                # Dictionary-encoding float columns costs more than the rest of the job
                # (each chunk is a row group: too small for the encoder to give up on them)
                # and rarely pays: they are written plain.
                encoded = [f.name for f in schema if not pa.types.is_floating(f.type)]
                self._writer = pq.ParquetWriter(sink, schema, use_dictionary=encoded)
            else:
                self._writer = csv.CSVWriter(sink, schema)
        except OSError as e:
            raise InvalidInput(f"cannot write the output {self.url!r}: {e}") from e
        self._schema = schema

    def _close(self) -> None:
        writer, self._writer = self._writer, None
        file, self._file = self._file, None
        try:
            if writer is not None:
                writer.close()
        finally:
            if file is not None:
                file.close()

    def commit(self, empty_schema: Callable[[], pa.Schema]) -> None:
        """Finish the file and move it to ``dest`` (an empty source still gets a file)."""
        if self._writer is None:
            self._open(empty_schema())
        self._close()
        try:
            if _is_local(self.fs):
                os.replace(self.tmp, self.path)
            else:
                self.fs.mv(self.tmp, self.path)
        except OSError as e:
            raise InvalidInput(f"cannot move the finished output to {self.url!r}: {e}") from e
        self._done = True

    def abort(self) -> None:
        """Drop the temporary file (after :meth:`commit`, nothing to do)."""
        if self._done:
            return
        try:
            self._close()
        finally:
            if self.fs.exists(self.tmp):
                self.fs.rm(self.tmp)
