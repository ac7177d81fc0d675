"""``loopwise import mlflow --from http://...``: a real ``mlflow server`` (its artifacts
proxied from a folder), read through MLflow's REST API, on both metadata backends."""

from __future__ import annotations

from loopwise.registry import models as registry
from tests.interop.conftest import Served
from tests.interop.readback import MODEL, check_initial, imported_ids
from tests.interop.readback import refused as _refused


def test_import_from_a_server(invoke, store, served_source: Served) -> None:
    done = invoke("import", "mlflow", "--from", served_source.url)
    assert done.exit_code == 0, done.output
    check_initial(store, served_source.logged)

    again = invoke("import", "mlflow", "--from", served_source.url)
    assert again.exit_code == 0, again.output
    assert "Nothing new to copy" in again.output
    assert len(registry.list_versions(store, MODEL)) == 2


def test_the_servers_database_with_its_artifacts_folder(
    invoke, store, served_source: Served
) -> None:
    """The same data read from the server's database, its mlflow-artifacts:/ files from
    the folder the server keeps them in."""
    done = invoke(
        "import",
        "mlflow",
        "--from",
        f"sqlite:///{served_source.db}",
        "--artifacts-root",
        str(served_source.artifacts),
    )
    assert done.exit_code == 0, done.output
    check_initial(store, served_source.logged)


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
