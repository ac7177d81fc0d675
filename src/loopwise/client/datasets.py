"""The data calls through a ``loopwise server``: what ``lw.log_dataset``,
``lw.load_dataset``, ``lw.get_dataset_version`` and ``lw.list_datasets`` do when
``tracking_url`` is set.

Each call answers what the local service answers (the same
:class:`~loopwise.data.datasets.DatasetVersion` and
:class:`~loopwise.data.datasets.DatasetInfo` records, the same frames, the same errors).

Data travels as Parquet both ways. The client turns whatever it is given (a pandas or
Polars frame, an Arrow table, a file path) into the Polars frame the local call would
store and writes it to a temporary file, streamed up as one request; Parquet keeps every
column type, so the server stores the very bytes a local call would, and identical data
is the same version wherever it was logged from. A schema travels inside that file (JSON
under the metadata key ``loopwise.schema``) and the server validates against it. The
client validates first too, as the local call does: the caller gets the same
:class:`~loopwise.errors.DataValidationError` with its ``report``, bad data is never
uploaded, and checks written as Python functions (which cannot travel) still run.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import quote

import polars as pl

from loopwise.client.http import HttpClient
from loopwise.data import datasets
from loopwise.data.datasets import DatasetInfo, DatasetVersion
from loopwise.data.frames import DataLike, to_polars
from loopwise.errors import InvalidInput

#: The media type of a version's data on the wire.
PARQUET = "application/vnd.apache.parquet"
#: The Parquet metadata key under which an upload carries its schema (JSON).
SCHEMA_KEY = "loopwise.schema"
#: The longest description the server takes (it travels in the query).
MAX_DESCRIPTION = 10_000
#: Datasets per listing request (the server's largest page).
LIST_PAGE = 1000
_CHUNK = 1024 * 1024


def _versions_path(name: str) -> str:
    return f"/datasets/{quote(name, safe='')}/versions"


class RemoteDatasets:
    """The dataset services of one server, over its HTTP connection."""

    def __init__(self, http: HttpClient) -> None:
        self.http = http

    def __repr__(self) -> str:
        return f"<RemoteDatasets {self.http.url}>"

    def log_dataset(
        self,
        data: DataLike,
        name: str,
        *,
        description: str | None = None,
        run_id: str | None = None,
        schema: Any = None,
    ) -> DatasetVersion:
        """Upload ``data`` as a version of dataset ``name`` (or find the identical one),
        validated against ``schema`` first, here and on the server."""
        datasets.check_name(name)
        if description is not None and len(description) > MAX_DESCRIPTION:
            raise InvalidInput(
                f"The description of dataset {name!r} has {len(description):,} characters; "
                f"a server takes at most {MAX_DESCRIPTION:,}. Shorten it."
            )
        frame = to_polars(data, what=f"dataset {name!r}")
        datasets.check_columns(frame, name)
        metadata = None
        if schema is not None:
            from loopwise.data.validation import DataValidationError, validate

            report = validate(frame, schema)
            if not report.ok:
                raise DataValidationError(report, what=f"dataset {name!r}")
            metadata = {SCHEMA_KEY: json.dumps(schema.to_dict())}
        query = {
            "description": description,
            "run_id": run_id,
            "source": datasets.source_of(data),
        }
        with tempfile.TemporaryDirectory(prefix="loopwise-upload-") as folder:
            path = Path(folder) / "data.parquet"
            frame.write_parquet(path, metadata=metadata)
            with path.open("rb") as body:
                answer = self.http.request(
                    "POST",
                    _versions_path(name),
                    params={k: v for k, v in query.items() if v is not None},
                    content=body,
                    headers={"Content-Type": PARQUET},
                )
        return DatasetVersion.from_dict(answer)

    def get_dataset_version(self, ref: str) -> DatasetVersion:
        """The version ``ref`` names, with its profile, schema and report."""
        name, number = datasets.parse_dataset_ref(ref)
        version = "latest" if number is None else str(number)
        answer = self.http.get(f"{_versions_path(name)}/{version}", full="true")
        return DatasetVersion.from_dict(answer)

    def load_dataset(self, ref: str, *, as_: str = "pandas") -> Any:
        """The data of the version ``ref`` names, downloaded (streamed to a temporary
        file) and read as the local call reads it."""
        datasets.check_format(as_)
        name, number = datasets.parse_dataset_ref(ref)
        version = "latest" if number is None else str(number)
        handle, temp = tempfile.mkstemp(prefix="loopwise-download-", suffix=".parquet")
        try:
            with (
                os.fdopen(handle, "wb") as out,
                self.http.stream(f"{_versions_path(name)}/{version}/data") as answer,
            ):
                for chunk in answer.iter_bytes(_CHUNK):
                    out.write(chunk)
            frame = pl.read_parquet(temp)
        finally:
            os.unlink(temp)
        return datasets.frame_as(frame, as_)

    def list_datasets(self) -> list[DatasetInfo]:
        """Every dataset, by name, through every page of the listing."""
        found: list[DatasetInfo] = []
        token = None
        while True:
            answer = self.http.get("/datasets", max_results=LIST_PAGE, page_token=token)
            found += [DatasetInfo.from_dict(d) for d in answer["datasets"]]
            token = answer.get("next_page_token")
            if not token:
                return found


__all__ = ["MAX_DESCRIPTION", "PARQUET", "SCHEMA_KEY", "RemoteDatasets"]
