"""A server app on a fresh store of each backend, driven in-process (TestClient runs the
ASGI app with its lifespan, so the token authenticator starts and stops as in a server)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from loopwise.server.app import create_server_app


@pytest.fixture
def client(store):
    with TestClient(create_server_app(store, token_refresh_s=0.2)) as c:
        yield c
