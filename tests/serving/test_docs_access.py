"""Who may read the API documentation (``/openapi.json``, ``/docs``, ``/redoc``): the
endpoint config's ``docs`` key, over real HTTP, with API tokens on SQLite and PostgreSQL.

Why it matters: the OpenAPI document names the model's input columns and their types, so
once tokens protect an endpoint, its docs must not stay open to anyone who can reach it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest
import yaml
from fastapi import FastAPI

from loopwise import context
from loopwise.auth.tokens import TokenAuthenticator, create_token
from loopwise.errors import InvalidInput, LoopwiseError
from loopwise.serving.app import create_app
from loopwise.serving.endpoint import Endpoint
from loopwise.serving.endpoint_config import DOCS_MODES, EndpointConfig
from loopwise.serving.live_model import LiveModel
from loopwise.serving.server import ServerThread, config_document
from tests.helpers import assert_error, free_port, register_credit_risk, running, serve_env

DOCS_ROUTES = ("/openapi.json", "/docs", "/redoc")
URI = "models:/credit-risk@champion"
ROLES_USED = ("predict", "read", "admin")  # predict lacks the read permission


@pytest.fixture
def tokens(lw) -> dict[str, str]:
    """credit-risk registered, and one token (its secret) per role, by role."""
    register_credit_risk(lw)
    store = context.get_store()
    return {role: create_token(store, f"{role}-client", role)[1] for role in ROLES_USED}


@contextmanager
def serving(config: EndpointConfig, **app_options) -> Iterator[httpx.Client]:
    """``config`` served over HTTP with the store's tokens, as ``loopwise serve`` wires it."""
    store = context.get_store()
    endpoint = Endpoint(config, store=store, authenticator=TokenAuthenticator(store)).start()
    try:
        with (
            ServerThread(create_app(endpoint, **app_options)) as server,
            httpx.Client(base_url=server.url, timeout=10) as client,
        ):
            yield client
    finally:
        endpoint.stop()


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


def assert_docs_served(client: httpx.Client, headers: dict[str, str] | None = None) -> None:
    """The three routes answer, and the document is the one that names the signature."""
    spec = client.get("/openapi.json", headers=headers)
    assert spec.status_code == 200, spec.text
    assert spec.headers["content-type"].startswith("application/json")
    description = spec.json()["paths"]["/predict"]["post"]["description"]
    assert "`income`: float" in description
    for page in ("/docs", "/redoc"):
        answer = client.get(page, headers=headers)
        assert answer.status_code == 200, answer.text
        assert answer.headers["content-type"].startswith("text/html")
        assert "/openapi.json" in answer.text


# -- token (the default) ---------------------------------------------------------------------


def test_by_default_the_docs_are_open_while_tokens_are_disabled(lw):
    register_credit_risk(lw)
    config = EndpointConfig.single(URI)
    assert config.docs == "token"
    with serving(config) as client:
        assert_docs_served(client)
        assert client.get("/model").status_code == 200  # tokens are indeed off


def test_by_default_the_docs_need_a_read_token_once_tokens_exist(tokens):
    with serving(EndpointConfig.single(URI)) as client:
        for route in DOCS_ROUTES:
            refused = client.get(route)
            error = assert_error(refused, 401, "Unauthorized", "Authorization: Bearer")
            assert refused.headers["www-authenticate"] == 'Bearer realm="loopwise"'
            assert "income" not in refused.text
            assert set(error) == {"type", "message"}
            unknown = client.get(route, headers=bearer("lw_" + "x" * 43))
            assert_error(unknown, 401, "Unauthorized")
            forbidden = client.get(route, headers=bearer(tokens["predict"]))
            assert_error(forbidden, 403, "Forbidden", "'predict-client'", "'read'")
            assert "www-authenticate" not in forbidden.headers
            assert "income" not in forbidden.text
        assert_docs_served(client, bearer(tokens["read"]))
        assert_docs_served(client, bearer(tokens["admin"]))
        # The routes still advertise the docs, which are served (to whoever may read them).
        assert_error(client.get("/nope"), 404, "not_found", "/docs")


# -- public and off --------------------------------------------------------------------------


def test_public_docs_are_open_with_tokens_enabled(tokens):
    with serving(EndpointConfig.single(URI, docs="public")) as client:
        assert_docs_served(client)
        assert_error(client.get("/model"), 401, "Unauthorized")  # only the docs are open


def test_off_serves_no_docs_and_does_not_advertise_them(tokens):
    with serving(EndpointConfig.single(URI, docs="off")) as client:
        for route in DOCS_ROUTES:
            for headers in (None, bearer(tokens["admin"])):
                error = assert_error(client.get(route, headers=headers), 404, "not_found", route)
                assert "/docs" not in error["message"].replace(route, "")
        error = assert_error(client.get("/nope"), 404, "not_found", "/predict", "/metrics")
        assert "/docs" not in error["message"]
        assert client.get("/model", headers=bearer(tokens["read"])).status_code == 200


def test_off_with_tokens_disabled_is_still_off(lw):
    register_credit_risk(lw)
    with serving(EndpointConfig.single(URI, docs="off")) as client:
        for route in DOCS_ROUTES:
            assert_error(client.get(route), 404, "not_found")
        assert client.get("/health").json() == {"status": "ok"}


# -- the create_app override -----------------------------------------------------------------


def test_create_app_docs_overrides_the_config(tokens):
    with serving(EndpointConfig.single(URI, docs="public"), docs="token") as client:
        assert_error(client.get("/openapi.json"), 401, "Unauthorized")
        assert_docs_served(client, bearer(tokens["read"]))
    with serving(EndpointConfig.single(URI), docs="off") as client:
        assert_error(client.get("/docs", headers=bearer(tokens["admin"])), 404, "not_found")
    with serving(EndpointConfig.single(URI), docs="public") as client:
        assert_docs_served(client)


@pytest.mark.parametrize("docs", ["open", "", "OFF", False, 1])
def test_create_app_refuses_a_bad_docs_value(lw, docs):
    register_credit_risk(lw)
    live = LiveModel(URI, store=lw.get_store()).start()
    try:
        with pytest.raises(InvalidInput) as e:
            create_app(live, docs=docs)
    finally:
        live.stop()
    message = str(e.value)
    assert message.startswith("The 'docs' parameter of create_app must be one of")
    assert "'token', 'public', 'off'" in message
    assert f"Got {docs!r} instead." in message


# -- the docs under a prefix -----------------------------------------------------------------


def test_mounted_docs_point_at_the_mounted_document(tokens):
    store = context.get_store()
    endpoint = Endpoint(
        EndpointConfig.single(URI), store=store, authenticator=TokenAuthenticator(store)
    ).start()
    outer = FastAPI(openapi_url=None)
    outer.mount("/models/credit", create_app(endpoint))
    headers = bearer(tokens["read"])
    try:
        with (
            ServerThread(outer) as server,
            httpx.Client(base_url=server.url, timeout=10) as client,
        ):
            assert_error(client.get("/models/credit/docs"), 401, "Unauthorized")
            swagger = client.get("/models/credit/docs", headers=headers)
            assert swagger.status_code == 200, swagger.text
            assert "'/models/credit/openapi.json'" in swagger.text
            redoc = client.get("/models/credit/redoc", headers=headers)
            assert 'spec-url="/models/credit/openapi.json"' in redoc.text
            spec = client.get("/models/credit/openapi.json", headers=headers)
            assert spec.status_code == 200, spec.text
            assert spec.json()["servers"] == [{"url": "/models/credit"}]
            # The unmounted document is cached and keeps no server of the mount.
            assert "servers" not in endpoint_app_schema(outer)
    finally:
        endpoint.stop()


def endpoint_app_schema(outer: FastAPI) -> dict:
    [mount] = [r for r in outer.routes if getattr(r, "path", "") == "/models/credit"]
    return mount.app.openapi()


# -- the endpoint config ---------------------------------------------------------------------


@pytest.mark.parametrize("docs", DOCS_MODES)
def test_each_docs_value_round_trips(docs):
    config = EndpointConfig.skeleton(0.5, docs=docs)
    assert config.docs == docs
    assert EndpointConfig.from_dict(config_document(config)) == config
    assert EndpointConfig.from_dict(yaml.safe_load(yaml.safe_dump(config.to_dict()))) == config


@pytest.mark.parametrize("value", ["open", "private", "", "Token", None, 1, ["token"]])
def test_a_bad_docs_value_is_refused_with_its_key(value):
    with pytest.raises(LoopwiseError) as e:
        EndpointConfig.from_dict({"name": "x", "fallback": 1, "docs": value})
    assert isinstance(e.value, InvalidInput)
    message = str(e.value)
    assert message.startswith("docs: must be 'token'")
    assert "'public' (open to anyone) or 'off' (not served)" in message
    assert f"got {value!r}." in message


def test_yaml_docs_off_unquoted_means_off_and_on_is_explained(tmp_path):
    path = tmp_path / "endpoint.yaml"
    path.write_text("name: x\nfallback: 1\ndocs: off\n")  # YAML 1.1 reads this as false
    assert EndpointConfig.load(path).docs == "off"
    path.write_text("name: x\nfallback: 1\ndocs: public\n")
    assert EndpointConfig.load(path).docs == "public"
    path.write_text("name: x\nfallback: 1\ndocs: on\n")
    with pytest.raises(InvalidInput) as e:
        EndpointConfig.load(path)
    assert "endpoint.yaml" in str(e.value)
    assert "docs: must be" in str(e.value)
    assert "YAML reads an unquoted on, yes or true as true" in str(e.value)


def test_a_misspelt_docs_key_is_an_unknown_key():
    with pytest.raises(InvalidInput, match=r"doc: unknown key 'doc' — did you mean 'docs'\?"):
        EndpointConfig.from_dict({"name": "x", "fallback": 1, "doc": "off"})


# -- loopwise serve --docs -------------------------------------------------------------------


def test_cli_docs_option_values_are_the_config_values():
    from loopwise.cli.serve import DocsAccess

    assert tuple(DocsAccess) == DOCS_MODES


def test_cli_docs_option_refuses_an_unknown_value(invoke):
    result = invoke("serve", "--skeleton", "0.5", "--docs", "open")
    assert result.exit_code == 2
    assert "'open' is not one of 'token', 'public', 'off'" in result.output


def test_cli_docs_option_goes_into_the_emitted_container(invoke, tmp_path):
    target = tmp_path / "Dockerfile"
    result = invoke("serve", "--skeleton", "0.5", "--docs", "off", "--emit-dockerfile", str(target))
    assert result.exit_code == 0, result.output
    text = target.read_text()
    baked = text.split("/home/loopwise/endpoint.yaml\n", 1)[1].split("\nEOF_ENDPOINT", 1)[0]
    assert EndpointConfig.from_dict(yaml.safe_load(baked)).docs == "off"


def test_cli_docs_public_reaches_every_worker(lw, store_url, tmp_path):
    _, secret = create_token(context.get_store(), "reader", "read")
    context.get_store().db.engine.dispose()
    args = ["--skeleton", "0.5", "--docs", "public", "--workers", "2"]
    with running(args, serve_env(store_url, tmp_path), tmp_path, free_port()) as url:
        for _ in range(6):  # new connections, so both workers are likely asked
            with httpx.Client(base_url=url, timeout=10) as client:
                spec = client.get("/openapi.json")
                assert spec.status_code == 200, spec.text
                assert "/predict" in spec.json()["paths"]
                assert client.get("/docs").status_code == 200
                assert_error(client.get("/model"), 401, "Unauthorized")
                assert client.get("/model", headers=bearer(secret)).status_code == 200
