"""Mistakes get one clear line (``Error: ...``, exit code 1), never a traceback, and a
stopped import is finished by the next one."""

from __future__ import annotations

import http.server
import shutil
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import free_port
from tests.interop.conftest import Served, Source
from tests.interop.readback import check_initial, imported_ids


def _refused(done, *words: str) -> str:
    assert done.exit_code == 1, done.output
    assert "Traceback" not in done.output
    assert done.exception is None or isinstance(done.exception, SystemExit)
    lines = [line for line in done.output.splitlines() if line.strip()]
    assert len(lines) == 1, done.output  # one line (the progress bar, if any, is gone)
    assert lines[0].startswith("Error: "), done.output
    for word in words:
        assert word in done.output, done.output
    return done.output


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
def test_not_an_mlflow_database(invoke, tmp_path: Path) -> None:
    text = tmp_path / "notes.db"
    text.write_text("just some text\n" * 100)
    _refused(invoke("import", "mlflow", "--from", f"sqlite:///{text}"), "not an MLflow")
    empty = tmp_path / "empty.db"
    sqlite3.connect(empty).close()
    _refused(invoke("import", "mlflow", "--from", f"sqlite:///{empty}"), "not an MLflow")
    _refused(
        invoke("import", "mlflow", "--from", f"sqlite:///{tmp_path}/absent.db"), "no such file"
    )
    _refused(invoke("import", "mlflow", "--from", "ftp://host/x"), "not an MLflow source")


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize(
    ("revision", "words"),
    [("451aebb31d03", ["older", "mlflow db upgrade"]), ("fedcba987654", ["does not know"])],
)
def test_an_mlflow_schema_too_old_or_too_new(
    invoke, shared_source: Source, tmp_path: Path, revision: str, words: list[str]
) -> None:
    copy = tmp_path / "mlflow.db"
    shutil.copy(shared_source.db, copy)
    with sqlite3.connect(copy) as conn:
        conn.execute("UPDATE alembic_version SET version_num = ?", (revision,))
    output = _refused(invoke("import", "mlflow", "--from", f"sqlite:///{copy}"), *words)
    assert "dc11669786a5" in output  # the newest revision it reads


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
def test_an_unreachable_server(invoke) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    _refused(invoke("import", "mlflow", "--from", url), "Cannot reach the MLflow server", url)


@pytest.fixture
def refusing_server() -> Iterator[str]:
    """A server that answers 401 to everything, as an MLflow behind auth without a token."""

    class Refuse(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(401)
            self.end_headers()

        do_POST = do_GET

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Refuse)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
def test_a_server_that_wants_a_token(invoke, refusing_server: str) -> None:
    _refused(
        invoke("import", "mlflow", "--from", refusing_server, "--token", "wrong"),
        "MLFLOW_TRACKING_TOKEN",
        "--token",
    )


def test_mlflow_artifacts_without_an_artifacts_root(invoke, store, served_source: Served) -> None:
    """The server's database names its files mlflow-artifacts:/...: without the folder
    they are in, the import stops and says which option is missing; given it, the next
    import finishes what the first began (nothing copied twice)."""
    url = f"sqlite:///{served_source.db}"
    _refused(invoke("import", "mlflow", "--from", url), "--artifacts-root", "mlflow-artifacts")
    done = invoke(
        "import", "mlflow", "--from", url, "--artifacts-root", str(served_source.artifacts)
    )
    assert done.exit_code == 0, done.output
    ids = check_initial(store, served_source.logged)
    assert imported_ids(store) == ids


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
def test_an_unknown_experiment(invoke, shared_source: Source) -> None:
    _refused(
        invoke("import", "mlflow", "--from", shared_source.url, "-e", "nope"), "'nope'", "fraud"
    )
