"""A local S3 (moto) server for tests, as a session-scoped pytest fixture.

Why: the S3 code paths (s3fs over aiobotocore over HTTP) must be exercised for real, not
through in-process mocks that patch botocore, and without reaching the internet. moto's
``ThreadedMotoServer`` serves the S3 API on 127.0.0.1 from a thread of the test process; the
port is chosen by the OS (port 0), so parallel sessions never collide.

Use it from any test module::

    from tests.s3_server import s3_endpoint  # noqa: F401

    def test_x(s3_endpoint):
        open_artifact_store(f"s3://{s3_endpoint['bucket']}/x",
                            storage_options=s3_endpoint["storage_options"])

Dummy AWS credentials and region are put in ``os.environ`` for the session only (saved and
restored), together with settings that stop botocore from looking for real credentials,
config files or the EC2 metadata service.
"""

from __future__ import annotations

import os
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

BUCKET = "loopwise-test"
REGION = "us-east-1"
KEY = "testing"
SECRET = "testing"

_ENV = {
    "AWS_ACCESS_KEY_ID": KEY,
    "AWS_SECRET_ACCESS_KEY": SECRET,
    "AWS_SESSION_TOKEN": None,
    "AWS_SECURITY_TOKEN": None,
    "AWS_PROFILE": None,
    "AWS_DEFAULT_PROFILE": None,
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    "AWS_EC2_METADATA_DISABLED": "true",
    "AWS_ENDPOINT_URL": None,
    "AWS_ENDPOINT_URL_S3": None,
    "NO_PROXY": "127.0.0.1,localhost",
    "no_proxy": "127.0.0.1,localhost",
}


def storage_options(endpoint_url: str, **extra: Any) -> dict[str, Any]:
    """fsspec/s3fs options for the test server (extra keys are merged in)."""
    return {
        "endpoint_url": endpoint_url,
        "key": KEY,
        "secret": SECRET,
        "client_kwargs": {"region_name": REGION},
        **extra,
    }


def _wait_until_up(endpoint_url: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    while True:
        try:
            with opener.open(endpoint_url + "/moto-api/", timeout=1):
                return
        except urllib.error.HTTPError:
            return  # it answered
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[dict[str, Any]]:
    """Start moto's S3 server on 127.0.0.1, create a bucket, yield connection details.

    Yields ``{"endpoint_url": ..., "bucket": ..., "storage_options": {...}}``.
    """
    pytest.importorskip("s3fs")
    boto3 = pytest.importorskip("boto3")
    moto_server = pytest.importorskip("moto.server")

    saved = {name: os.environ.get(name) for name in _ENV}
    for name, value in _ENV.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint_url = f"http://{host}:{port}"
        _wait_until_up(endpoint_url)
        boto3.client(
            "s3",
            endpoint_url=endpoint_url,
            aws_access_key_id=KEY,
            aws_secret_access_key=SECRET,
            region_name=REGION,
        ).create_bucket(Bucket=BUCKET)
        yield {
            "endpoint_url": endpoint_url,
            "bucket": BUCKET,
            "storage_options": storage_options(endpoint_url),
        }
    finally:
        server.stop()
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
