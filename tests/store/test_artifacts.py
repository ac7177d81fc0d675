"""Conformance tests for ArtifactStore, run against a local folder and a local S3 (moto).

Why one suite for both: the rest of loopwise must not care which backend holds the bytes, so
both must agree on results, errors and atomicity guarantees.
"""

from __future__ import annotations

import hashlib
import os
import socket
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import pytest

from loopwise.errors import (
    ConfigurationError,
    InvalidInput,
    LoopwiseError,
    NotFound,
    StoreUnavailable,
)
from loopwise.store import artifacts
from loopwise.store.artifacts import ArtifactStore, BlobInfo, local, open_artifact_store, streams
from loopwise.store.artifacts.local import LocalArtifactStore
from loopwise.store.artifacts.s3 import S3ArtifactStore
from tests.s3_server import s3_endpoint  # noqa: F401
from tests.s3_server import storage_options as s3_options


@pytest.fixture(params=["local", "s3"])
def store(request, tmp_path) -> ArtifactStore:
    if request.param == "local":
        return open_artifact_store(str(tmp_path / "artifacts"))
    ep = request.getfixturevalue("s3_endpoint")
    # A fresh prefix per test: the moto server lives for the whole session.
    return open_artifact_store(
        f"s3://{ep['bucket']}/t-{uuid.uuid4().hex}", storage_options=ep["storage_options"]
    )


@pytest.fixture
def s3(request) -> dict:
    """The session's moto server (``s3_endpoint``), under a name that does not shadow it."""
    return request.getfixturevalue("s3_endpoint")


@pytest.fixture
def local_store(tmp_path) -> ArtifactStore:
    return open_artifact_store(str(tmp_path / "artifacts"))


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# -- both backends ------------------------------------------------------------------------


def test_put_bytes_roundtrip(store):
    data = b"hello loopwise\n"
    info = store.put_bytes(data)
    assert info == BlobInfo(sha256=sha(data), size=len(data))
    assert store.has_blob(info.sha256)
    assert store.read_blob(info.sha256) == data
    with store.open_blob(info.sha256) as f:
        assert f.read() == data
    h = info.sha256
    assert store.blob_path(h).endswith(f"blobs/sha256/{h[:2]}/{h[2:]}")
    assert store.list() == [f"blobs/sha256/{h[:2]}/{h[2:]}"]


def test_put_file_roundtrip(store, tmp_path):
    src = tmp_path / "model.bin"
    data = os.urandom(3000) * 3
    src.write_bytes(data)
    info = store.put_file(src)
    assert info == BlobInfo(sha256=sha(data), size=len(data))
    assert store.read_blob(info.sha256) == data


def test_empty_blob(store):
    info = store.put_bytes(b"")
    assert info == BlobInfo(sha(b""), 0)
    assert store.read_blob(info.sha256) == b""


def test_dedup(store, tmp_path):
    data = b"same content" * 100
    src = tmp_path / "a.txt"
    src.write_bytes(data)
    first = store.put_bytes(data)
    second = store.put_bytes(data)
    third = store.put_file(src)
    assert first == second == third
    assert store.list("blobs") == [f"blobs/sha256/{first.sha256[:2]}/{first.sha256[2:]}"]
    other = store.put_bytes(b"different")
    assert store.has_blob(other.sha256)
    assert len(store.list("blobs")) == 2
    assert not store.has_blob(sha(b"never stored"))


def test_large_file_streamed(store, tmp_path, monkeypatch):
    data = os.urandom(5 * 1024 * 1024 + 123)
    src = tmp_path / "big.bin"
    src.write_bytes(data)
    reads: list[int] = []
    real_open = open

    class CountingReader:
        def __init__(self, f):
            self._f = f

        def read(self, n=-1):
            reads.append(n)
            return self._f.read(n)

        def __getattr__(self, name):
            return getattr(self._f, name)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self._f.close()

    def counting_open(path, mode="r", *args, **kwargs):
        f = real_open(path, mode, *args, **kwargs)
        if os.fspath(path) == str(src) and "r" in mode:
            return CountingReader(f)
        return f

    monkeypatch.setattr(local, "open", counting_open, raising=False)
    monkeypatch.setattr(streams, "open", counting_open, raising=False)
    info = store.put_file(src)
    monkeypatch.undo()
    assert info == BlobInfo(sha(data), len(data))
    # The source was read in bounded chunks, never whole.
    assert reads
    assert all(0 < n <= artifacts.CHUNK_SIZE for n in reads)
    assert store.read_blob(info.sha256) == data
    dest = tmp_path / "out" / "deep" / "big.bin"
    store.get_blob(info.sha256, dest)
    assert dest.read_bytes() == data


def test_get_blob_atomic(store, tmp_path):
    data = b"weights" * 1000
    info = store.put_bytes(data)
    dest = tmp_path / "download" / "sub" / "w.bin"
    store.get_blob(info.sha256, dest)
    assert dest.read_bytes() == data
    assert sorted(os.listdir(dest.parent)) == ["w.bin"]  # no temp file left
    # Overwrites an existing file in place, atomically.
    other = store.put_bytes(b"v2")
    store.get_blob(other.sha256, str(dest))
    assert dest.read_bytes() == b"v2"
    assert sorted(os.listdir(dest.parent)) == ["w.bin"]


def test_get_blob_missing_leaves_dest_untouched(store, tmp_path):
    dest = tmp_path / "d" / "keep.bin"
    dest.parent.mkdir()
    dest.write_bytes(b"old")
    missing = sha(b"missing")
    with pytest.raises(NotFound, match=missing):
        store.get_blob(missing, dest)
    assert dest.read_bytes() == b"old"
    assert sorted(os.listdir(dest.parent)) == ["keep.bin"]


def test_paths(store):
    p = "predictions/ep/date=2026-01-01/part-x.parquet"
    info = store.write_bytes(p, b"col\n1\n")
    assert info == BlobInfo(sha(b"col\n1\n"), 6)
    assert store.exists(p)
    assert store.read_bytes(p) == b"col\n1\n"
    store.write_bytes(p, b"replaced")
    assert store.read_bytes(p) == b"replaced"
    store.write_bytes("predictions/ep/date=2026-01-02/part-y.parquet", b"y")
    store.write_bytes("logs/run.txt", b"log")
    assert store.list() == [
        "logs/run.txt",
        "predictions/ep/date=2026-01-01/part-x.parquet",
        "predictions/ep/date=2026-01-02/part-y.parquet",
    ]
    assert store.list("predictions/ep") == [
        "predictions/ep/date=2026-01-01/part-x.parquet",
        "predictions/ep/date=2026-01-02/part-y.parquet",
    ]
    assert store.list("predictions/ep/") == store.list("predictions/ep")
    assert store.list("nothing/here") == []
    assert not store.exists("predictions/ep")  # a folder is not a file
    assert not store.exists("logs/other.txt")
    store.delete(p)
    assert not store.exists(p)
    assert store.list("predictions") == ["predictions/ep/date=2026-01-02/part-y.parquet"]


@pytest.mark.parametrize(
    "bad",
    ["", "x" * 63, "X" * 64, "g" * 64, "a" * 65, "../" + "a" * 61, None],
)
def test_invalid_sha(store, bad):
    for call in (store.has_blob, store.read_blob, store.open_blob, store.blob_path):
        with pytest.raises(InvalidInput, match="64 lowercase hex"):
            call(bad)
    with pytest.raises(InvalidInput, match="64 lowercase hex"):
        store.get_blob(bad, "/nonexistent/never-written")


@pytest.mark.parametrize(
    "bad",
    ["../x", "a/../x", "a/..", "/etc/passwd", "a\\b", "a//b", "./a", "", "s3://b/x"],
)
def test_invalid_paths(store, bad):
    calls = [
        lambda: store.write_bytes(bad, b"x"),
        lambda: store.read_bytes(bad),
        lambda: store.exists(bad),
        lambda: store.delete(bad),
    ]
    for call in calls:
        with pytest.raises(InvalidInput, match="relative path") as exc:
            call()
        assert repr(bad) in str(exc.value)
    if bad:
        with pytest.raises(InvalidInput, match="relative path"):
            store.list(bad)
    assert store.list() == []


def test_tmp_is_reserved(store):
    with pytest.raises(InvalidInput, match="reserved"):
        store.write_bytes("tmp/x", b"x")


def test_not_found(store):
    missing = sha(b"nope")
    for call in (store.read_blob, store.open_blob):
        with pytest.raises(NotFound) as exc:
            call(missing)
        assert missing in str(exc.value)
        assert store.url in str(exc.value)
    for call in (store.read_bytes, store.delete):
        with pytest.raises(NotFound) as exc:
            call("no/such/file.txt")
        assert "no/such/file.txt" in str(exc.value)
        assert store.url in str(exc.value)
    assert isinstance(exc.value, LookupError)  # NotFound is also a LookupError


def test_construction_is_side_effect_free(tmp_path):
    root = tmp_path / "not" / "yet"
    store = open_artifact_store(str(root))
    assert not root.exists()
    assert store.list() == []
    assert not store.exists("a")
    assert not root.exists()
    store.put_bytes(b"x")
    assert root.is_dir()


def test_one_interface_chosen_by_url(store, tmp_path):
    assert isinstance(store, ArtifactStore)
    assert repr(store) == f"ArtifactStore({store.url!r})"
    expected = LocalArtifactStore if store.url.startswith("file://") else S3ArtifactStore
    assert type(store) is expected


def test_the_interface_is_abstract():
    with pytest.raises(TypeError):
        ArtifactStore()  # type: ignore[abstract]


def test_url_schemes_pick_their_backend(tmp_path):
    assert type(open_artifact_store(str(tmp_path))) is LocalArtifactStore
    assert type(open_artifact_store(f"FILE://{tmp_path}")) is LocalArtifactStore
    s3 = open_artifact_store("S3://bucket/x", storage_options={"anon": True})
    assert type(s3) is S3ArtifactStore
    assert s3.url == "s3://bucket/x"


def test_local_store_loads_no_filesystem_layer(tmp_path):
    code = (
        "import sys; from loopwise.store.artifacts import open_artifact_store; "
        f"s = open_artifact_store({str(tmp_path / 'a')!r}); "
        "h = s.put_bytes(b'x').sha256; assert s.read_blob(h) == b'x'; "
        "s.get_blob(h, s.blob_path(h) + '.copy'); "
        "assert 'fsspec' not in sys.modules, 'fsspec'; "
        "assert 'loopwise.store.artifacts.s3' not in sys.modules, 's3'"
    )
    import subprocess

    subprocess.run([sys.executable, "-c", code], check=True)


# -- local only ---------------------------------------------------------------------------


def test_local_url_forms(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert (
        open_artifact_store("./.loopwise/artifacts").url == f"file://{tmp_path}/.loopwise/artifacts"
    )
    assert open_artifact_store(f"file://{tmp_path}/a/").url == f"file://{tmp_path}/a"
    assert open_artifact_store(str(tmp_path / "b")).url == f"file://{tmp_path}/b"
    store = open_artifact_store(f"file://{tmp_path}/c")
    h = store.put_bytes(b"x").sha256
    assert store.blob_path(h) == f"{tmp_path}/c/blobs/sha256/{h[:2]}/{h[2:]}"
    assert Path(store.blob_path(h)).read_bytes() == b"x"


def test_bad_urls():
    for url in ("", "   ", "gs://bucket/x", "s3://", "s3:///"):
        with pytest.raises(ConfigurationError, match="LOOPWISE_ARTIFACTS_URL"):
            open_artifact_store(url)


def test_local_no_temp_files_left(local_store, tmp_path):
    src = tmp_path / "f.bin"
    src.write_bytes(os.urandom(2 * artifacts.CHUNK_SIZE + 5))
    local_store.put_file(src)
    local_store.put_file(src)  # dedup path: temp file discarded
    local_store.put_bytes(b"abc")
    local_store.put_bytes(b"abc")
    local_store.write_bytes("a/b.txt", b"x")
    local_store.write_bytes("a/b.txt", b"y")
    tmp_dir = tmp_path / "artifacts" / "tmp"
    assert list(tmp_dir.iterdir()) == []
    assert all(not p.startswith("tmp/") for p in local_store.list())


def test_local_crash_mid_write(local_store, tmp_path, monkeypatch):
    data = os.urandom(3 * artifacts.CHUNK_SIZE)
    src = tmp_path / "f.bin"
    src.write_bytes(data)

    def crash_after_first_chunk(src_f, dst_f, hasher):
        chunk = src_f.read(artifacts.CHUNK_SIZE)
        hasher.update(chunk)
        dst_f.write(chunk)
        raise RuntimeError("simulated crash")

    monkeypatch.setattr(local, "copy_chunks", crash_after_first_chunk)
    with pytest.raises(RuntimeError, match="simulated crash"):
        local_store.put_file(src)
    monkeypatch.undo()

    h = sha(data)
    assert not local_store.has_blob(h)
    assert not os.path.exists(local_store.blob_path(h))
    assert local_store.list() == []
    assert list((tmp_path / "artifacts" / "tmp").iterdir()) == []
    # A later, uninterrupted write succeeds.
    assert local_store.put_file(src).sha256 == h
    assert local_store.read_blob(h) == data


def test_local_orphan_temp_files_are_not_listed(local_store):
    local_store.write_bytes("a.txt", b"a")
    # What a hard crash (kill -9) would leave behind.
    Path(local_store.url.removeprefix("file://"), "tmp", "deadbeef").write_bytes(b"partial")
    assert local_store.list() == ["a.txt"]


def test_local_concurrent_winner_is_kept(local_store, tmp_path, monkeypatch):
    data = os.urandom(artifacts.CHUNK_SIZE + 7)
    h = sha(data)
    src = tmp_path / "f.bin"
    src.write_bytes(data)
    other_process = open_artifact_store(local_store.url)
    real_copy = streams.copy_chunks

    def copy_while_another_writer_wins(src_f, dst_f, hasher):
        size = real_copy(src_f, dst_f, hasher)
        assert other_process.put_bytes(data).sha256 == h  # wins the race
        return size

    monkeypatch.setattr(local, "copy_chunks", copy_while_another_writer_wins)
    real_commit = LocalArtifactStore._commit
    commits = []

    def counting_commit(tmp, final):
        commits.append(final)
        real_commit(tmp, final)

    monkeypatch.setattr(LocalArtifactStore, "_commit", staticmethod(counting_commit))
    info = local_store.put_file(src)
    assert info == BlobInfo(h, len(data))
    assert len(commits) == 1  # only the winner's write; ours was discarded
    winner_inode = os.stat(local_store.blob_path(h)).st_ino
    assert local_store.put_bytes(data).sha256 == h  # already there: nothing written
    assert len(commits) == 1
    assert os.stat(local_store.blob_path(h)).st_ino == winner_inode
    assert list((tmp_path / "artifacts" / "tmp").iterdir()) == []
    assert local_store.read_blob(h) == data


def test_local_write_conflict(local_store):
    local_store.write_bytes("a", b"file")
    with pytest.raises(LoopwiseError, match="in the way"):
        local_store.write_bytes("a/b", b"x")
    assert local_store.read_bytes("a") == b"file"


def test_put_file_missing_source(local_store, tmp_path):
    with pytest.raises(InvalidInput, match="existing local file"):
        local_store.put_file(tmp_path / "nope.bin")


def test_fsspec_not_imported_by_module():
    code = (
        "import sys, loopwise.store.artifacts; "
        "assert 'fsspec' not in sys.modules and 's3fs' not in sys.modules"
    )
    import subprocess

    subprocess.run([sys.executable, "-c", code], check=True)


# -- s3 only ------------------------------------------------------------------------------


def test_s3_url_and_blob_path(s3):
    ep = s3
    store = open_artifact_store(f"s3://{ep['bucket']}/p/q/", storage_options=ep["storage_options"])
    assert store.url == f"s3://{ep['bucket']}/p/q"
    assert "testing" not in repr(store)  # no credentials in reprs
    h = sha(b"x")
    assert store.blob_path(h) == f"s3://{ep['bucket']}/p/q/blobs/sha256/{h[:2]}/{h[2:]}"


def test_s3_stores_are_isolated(s3):
    ep = s3
    a = open_artifact_store(f"s3://{ep['bucket']}/iso", storage_options=ep["storage_options"])
    b = open_artifact_store(
        f"s3://{ep['bucket']}/iso",
        storage_options=s3_options("http://127.0.0.1:9", config_kwargs=_fast_fail()),
    )
    assert a._fs is not b._fs


def test_s3_sees_other_writers(s3):
    ep = s3
    url = f"s3://{ep['bucket']}/shared-{uuid.uuid4().hex}"
    a = open_artifact_store(url, storage_options=ep["storage_options"])
    b = open_artifact_store(url, storage_options=ep["storage_options"])
    assert a.list() == []
    b.write_bytes("x/y.txt", b"1")
    assert a.list() == ["x/y.txt"]
    assert a.exists("x/y.txt")


def _fast_fail() -> dict:
    return {"connect_timeout": 1, "read_timeout": 1, "retries": {"max_attempts": 1}}


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_s3_unreachable_endpoint(s3):  # s3: sanitised AWS_* env
    endpoint = f"http://127.0.0.1:{_closed_port()}"
    store = open_artifact_store(
        "s3://bucket/prefix", storage_options=s3_options(endpoint, config_kwargs=_fast_fail())
    )
    calls = [
        lambda: store.put_bytes(b"x"),
        lambda: store.has_blob(sha(b"x")),
        lambda: store.read_bytes("a.txt"),
        lambda: store.list(),
    ]
    for call in calls:
        start = time.monotonic()
        with pytest.raises(StoreUnavailable) as exc:
            call()
        assert time.monotonic() - start < 5
        msg = str(exc.value)
        assert "s3://bucket/prefix" in msg
        assert endpoint in msg
        assert "LOOPWISE_ARTIFACTS_URL" in msg
        assert "LOOPWISE_S3_ENDPOINT_URL" in msg
        assert exc.value.__cause__ is not None


def test_s3_missing_bucket(s3):
    ep = s3
    store = open_artifact_store("s3://no-such-bucket/x", storage_options=ep["storage_options"])
    for call in (
        lambda: store.put_bytes(b"x"),
        lambda: store.read_bytes("a.txt"),
        lambda: store.has_blob(sha(b"x")),
        lambda: store.list(),
    ):
        with pytest.raises(StoreUnavailable, match="no-such-bucket"):
            call()


def test_s3_missing_s3fs(monkeypatch):
    import importlib

    registry_module = importlib.import_module("fsspec.registry")  # the name is shadowed
    monkeypatch.delitem(registry_module._registry, "s3", raising=False)
    monkeypatch.setitem(sys.modules, "s3fs", None)
    with pytest.raises(ConfigurationError, match=r"pip install 'loopwise\[s3\]'"):
        open_artifact_store("s3://bucket/prefix")


def _set_moto_auth(endpoint_url: str, free_requests: str) -> None:
    """Make the moto server check credentials after ``free_requests`` requests ('inf': never)."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    request = urllib.request.Request(
        endpoint_url + "/moto-api/reset-auth",
        data=free_requests.encode(),
        headers={"Content-Type": "text/plain"},  # a form body would not reach moto
        method="POST",
    )
    with opener.open(request, timeout=5) as response:
        assert response.status == 200


def test_s3_credentials_refused(s3):
    store = open_artifact_store(f"s3://{s3['bucket']}/auth", storage_options=s3["storage_options"])
    _set_moto_auth(s3["endpoint_url"], "0")  # the dummy key is now an unknown access key
    try:
        for call in (lambda: store.put_bytes(b"x"), lambda: store.read_bytes("a.txt")):
            with pytest.raises(StoreUnavailable, match="credentials") as exc:
                call()
            assert s3["endpoint_url"] in str(exc.value)
    finally:
        _set_moto_auth(s3["endpoint_url"], "inf")
    assert store.put_bytes(b"x").size == 1
