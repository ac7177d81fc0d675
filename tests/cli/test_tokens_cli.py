"""``loopwise tokens create|list|revoke`` through CliRunner, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
import typer
from sqlalchemy import select
from typer.testing import Result

from loopwise import context
from loopwise.auth.tokens import ROLE_ALIASES, ROLES, TokenAuthenticator, hash_secret
from loopwise.cli.tokens import Role, parse_duration
from loopwise.store.tables import api_tokens

Invoke = Callable[..., Result]


def _create(invoke: Invoke, *args: str) -> str:
    result = invoke("tokens", "create", *args)
    assert result.exit_code == 0, result.output
    return result.stdout.strip()


def test_create_prints_the_secret_once_on_stdout(invoke):
    result = invoke("tokens", "create", "ci-deploy", "--role", "predict")
    assert result.exit_code == 0, result.output
    secret = result.stdout.strip()
    assert secret.startswith("lw_")
    assert "\n" not in secret  # alone on stdout: TOKEN=$(loopwise tokens create ...) works
    assert "Created token 'ci-deploy'" in result.stderr
    assert "not shown again" in result.stderr
    assert "Authorization: Bearer <token>" in result.stderr
    assert secret not in result.stderr

    with context.get_store().db.read() as conn:
        stored = conn.execute(select(api_tokens)).one()._mapping
    assert stored["secret_sha256"] == hash_secret(secret)
    assert secret not in " ".join(str(v) for v in stored.values())

    listed = invoke("tokens", "list")
    assert listed.exit_code == 0, listed.output
    assert "ci-deploy" in listed.stdout
    assert f"{secret[:9]}…" in listed.stdout  # the prefix identifies it
    assert secret not in listed.output
    assert "never" in listed.stdout  # expires

    as_json = json.loads(invoke("tokens", "list", "--json").stdout)
    assert [t["name"] for t in as_json] == ["ci-deploy"]
    assert as_json[0]["status"] == "active"
    assert as_json[0]["prefix"] == secret[:9]
    assert secret not in json.dumps(as_json)


def test_the_created_secret_authenticates(invoke):
    secret = _create(invoke, "reader", "--role", "read")
    with TokenAuthenticator(context.get_store()) as auth:
        assert auth.authenticate(f"Bearer {secret}", "read").name == "reader"


def test_create_with_json_and_expiry(invoke):
    result = invoke("tokens", "create", "nightly", "-r", "admin", "--expires-in", "30d", "--json")
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    assert body["secret"].startswith("lw_")
    assert body["role"] == "admin"
    expires = datetime.fromisoformat(body["expires_at"])
    assert abs(expires - (datetime.now(UTC) + timedelta(days=30))) < timedelta(minutes=1)
    assert "expires" in result.stderr


def test_revoke_by_name_and_id_and_list_all(invoke):
    _create(invoke, "one", "--role", "predict")
    _create(invoke, "two", "--role", "read")
    two_id = json.loads(invoke("tokens", "list", "--json").stdout)[1]["id"]

    result = invoke("tokens", "revoke", "one")
    assert result.exit_code == 0, result.output
    assert "Revoked token 'one'" in result.stdout
    assert "within" in result.stderr

    result = invoke("tokens", "revoke", two_id)
    assert result.exit_code == 0, result.output
    assert "Revoked token 'two'" in result.stdout

    empty = invoke("tokens", "list")
    assert empty.exit_code == 0
    assert empty.stdout == ""
    assert "loopwise tokens create NAME --role predict" in empty.stderr

    everything = invoke("tokens", "list", "--all")
    assert everything.exit_code == 0
    assert "revoked" in everything.stdout
    assert "one" in everything.stdout
    assert "two" in everything.stdout
    statuses = [t["status"] for t in json.loads(invoke("tokens", "list", "--all", "--json").stdout)]
    assert statuses == ["revoked", "revoked"]


def test_errors_exit_1_with_the_fix(invoke):
    _create(invoke, "dup", "--role", "predict")
    result = invoke("tokens", "create", "dup", "--role", "read")
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: A token named 'dup' already exists")
    assert "loopwise tokens revoke" in result.stderr

    result = invoke("tokens", "revoke", "missing")
    assert result.exit_code == 1
    assert "Error: No token named 'missing'" in result.stderr

    result = invoke("tokens", "create", "bad name", "--role", "read")
    assert result.exit_code == 1
    assert "'name' parameter" in result.stderr


def test_usage_errors_exit_2(invoke):
    result = invoke("tokens", "create", "x", "--role", "superuser")
    assert result.exit_code == 2
    assert "superuser" in result.output

    result = invoke("tokens", "create", "x")
    assert result.exit_code == 2
    assert "--role" in result.output

    result = invoke("tokens", "create", "x", "--role", "read", "--expires-in", "soon")
    assert result.exit_code == 2
    assert "is not a duration" in result.output


def test_parse_duration():
    assert parse_duration("30d") == timedelta(days=30)
    assert parse_duration("12h") == timedelta(hours=12)
    assert parse_duration("90m") == timedelta(minutes=90)
    assert parse_duration("2W") == timedelta(weeks=2)
    assert parse_duration(" 45s ") == timedelta(seconds=45)
    for bad in ("", "0d", "-1d", "1.5h", "3", "d", "1y"):
        with pytest.raises(typer.BadParameter):
            parse_duration(bad)


def test_cli_roles_are_the_service_roles():
    assert tuple(r.value for r in Role) == ROLES + tuple(ROLE_ALIASES)


def test_create_with_scopes_and_list_them(invoke):
    result = invoke(
        "tokens", "create", "ci", "--role", "writer",
        "--experiments", "churn-*", "--experiments", "ab-test", "--models", "churn-*",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    secret = result.stdout.strip()
    assert "role writer" in result.stderr
    assert "experiments churn-*, ab-test, models churn-*" in result.stderr
    _create(invoke, "open", "--role", "write")
    _create(invoke, "models-only", "--role", "reader", "--models", "fraud-*")

    as_json = json.loads(invoke("tokens", "list", "--json").stdout)
    scopes = {t["name"]: (t["role"], t["experiments"], t["models"]) for t in as_json}
    assert scopes == {
        "ci": ("writer", ["churn-*", "ab-test"], ["churn-*"]),
        "open": ("writer", None, None),
        "models-only": ("reader", [], ["fraud-*"]),
    }
    listed = invoke("tokens", "list")
    assert listed.exit_code == 0, listed.output
    assert "experiments" in listed.stdout
    assert "churn-*, ab-test" in listed.stdout
    assert "fraud-*" in listed.stdout
    assert "none" in listed.stdout
    with TokenAuthenticator(context.get_store()) as auth:
        token = auth.authenticate(f"Bearer {secret}", "write")
        assert token.allows_experiment("churn-a")
        assert not token.allows_experiment("fraud-b")


def test_a_listing_without_scoped_tokens_has_no_scope_columns(invoke):
    _create(invoke, "open", "--role", "reader")
    listed = invoke("tokens", "list")
    assert "reader" in listed.stdout
    assert "models" not in listed.stdout


def test_a_bad_scope_is_an_error_line(invoke):
    result = invoke("tokens", "create", "x", "--role", "writer", "--models", "")
    assert result.exit_code == 1
    assert "'models' patterns" in result.output


@pytest.mark.parametrize("duration", ["999999999d", "99999999999999999999d", "9999999w"])
def test_an_expiry_past_year_9999_is_an_error_line(invoke, duration):
    result = invoke("tokens", "create", "forever", "-r", "read", "--expires-in", duration)
    assert result.exit_code == 2
    assert "Traceback" not in result.output
    assert "reaches past the year 9999" in result.output
    assert "forever" not in invoke("tokens", "list").stdout  # nothing was created
