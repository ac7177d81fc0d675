"""The ``invoke`` fixture every CLI test module uses: the real ``loopwise`` command through
Typer's CliRunner, on the store of the ``store_url`` fixture (SQLite and PostgreSQL)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from loopwise import context
from loopwise.cli.main import app

Invoke = Callable[..., Result]


@pytest.fixture
def invoke(store_url: str, tmp_path: Path) -> Iterator[Invoke]:
    """Run ``loopwise --store-url <store> --artifacts-url <tmp>/artifacts ARGS...``: the
    store and artifacts the ``lw`` fixture configures too, so data it logs is seen."""
    runner = CliRunner()
    artifacts = str(tmp_path / "artifacts")
    base_env = {"COLUMNS": "200", "LOOPWISE_CACHE_DIR": str(tmp_path / "cli-cache")}

    def run(*args: str, env: dict[str, str] | None = None) -> Result:
        return runner.invoke(
            app,
            ["--store-url", store_url, "--artifacts-url", artifacts, *args],
            env=base_env | (env or {}),
        )

    yield run
    old = context.reset()  # before the store_url fixture drops a PostgreSQL schema
    if old is not None:
        old.db.engine.dispose()
