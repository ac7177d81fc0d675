"""The module-level data API: ``lw.log_dataset``, ``lw.load_dataset`` and friends.

Bound to the default store, and to the active run (a logged dataset becomes an input of
the run in the lineage graph). With a ``tracking_url`` configured, each call goes through
that server instead (:class:`~loopwise.client.datasets.RemoteDatasets`) and answers the
same records, frames and errors.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from loopwise import context
from loopwise.data import datasets
from loopwise.data.frames import DataLike
from loopwise.tracking.fluent import active_run

if TYPE_CHECKING:  # the client imports httpx, which only a remote setup needs
    from loopwise.client.datasets import RemoteDatasets


def _remote() -> RemoteDatasets | None:
    """The server's dataset calls when a ``tracking_url`` is configured, else None."""
    http = context.remote_http()
    if http is None:
        return None
    from loopwise.client.datasets import RemoteDatasets

    return RemoteDatasets(http)


def log_dataset(
    data: DataLike,
    name: str,
    *,
    description: str | None = None,
    schema: Any = None,
) -> datasets.DatasetVersion:
    """Store ``data`` as a version of dataset ``name`` and link it to the active run.

    Identical data is the same version, not a copy. With ``schema``, the data is validated
    first: error anomalies raise :class:`~loopwise.data.validation.DataValidationError`
    (nothing is stored), and the schema and report are recorded with the version.
    """
    run = active_run()
    run_id = run.id if run is not None else None
    remote = _remote()
    if remote is not None:
        return remote.log_dataset(data, name, description=description, run_id=run_id, schema=schema)
    report = None
    if schema is not None:
        from loopwise.data.validation import DataValidationError, validate

        report = validate(data, schema)
        if not report.ok:
            raise DataValidationError(report, what=f"dataset {name!r}")
    return datasets.log_dataset(
        context.local_store(),
        data,
        name,
        description=description,
        run_id=run_id,
        schema=schema,
        validation=report,
    )


def load_dataset(ref: str, *, as_: str = "pandas") -> Any:
    """The data of ``datasets:/name/3`` or ``datasets:/name@latest`` (pandas by default)."""
    remote = _remote()
    if remote is not None:
        return remote.load_dataset(ref, as_=as_)
    return datasets.load_dataset(context.local_store(), ref, as_=as_)


def get_dataset_version(ref: str) -> datasets.DatasetVersion:
    """A dataset version's metadata: rows, columns, profile, schema, producing run."""
    remote = _remote()
    if remote is not None:
        return remote.get_dataset_version(ref)
    return datasets.get_dataset_version(context.local_store(), ref)


def list_datasets() -> list[datasets.DatasetInfo]:
    """Every dataset with its number of versions."""
    remote = _remote()
    if remote is not None:
        return remote.list_datasets()
    return datasets.list_datasets(context.local_store())
