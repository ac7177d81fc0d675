"""Mistakes get one clear line (``Error: ...``, exit code 1), never a traceback. The
mistakes that need MLflow's data sit beside the tests that make it (test_import_database.py,
test_import_server.py), so each test process makes it once."""

from __future__ import annotations

import http.server
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import free_port
from tests.interop.readback import refused as _refused


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
