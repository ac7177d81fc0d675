"""API tokens on SQLite and PostgreSQL: the service functions and the request authenticator.

Why through a real store: what can go wrong is what is stored (never the secret), the
uniqueness of names among tokens not revoked (a partial index), and how soon a server
sees tokens created or revoked after it started.
"""

from __future__ import annotations

import hashlib
import logging
import time
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, text, update
from sqlalchemy.exc import IntegrityError

from loopwise.auth.tokens import (
    PERMISSIONS,
    ROLE_PERMISSIONS,
    ROLES,
    TokenAuthenticator,
    create_token,
    hash_secret,
    list_tokens,
    revoke_token,
)
from loopwise.errors import (
    Conflict,
    Forbidden,
    InvalidInput,
    LoopwiseError,
    NotFound,
    StoreUnavailable,
    Unauthorized,
)
from loopwise.store.database import HEAD_REVISION, Database
from loopwise.store.tables import api_tokens


def _bearer(secret: str) -> str:
    return f"Bearer {secret}"


def _expire(store, token_id: str) -> None:
    """Move a token's expiry into the past (instead of sleeping until it comes)."""
    with store.db.write() as conn:
        conn.execute(
            update(api_tokens).where(api_tokens.c.id == token_id).values(expires_at=1_000_000)
        )


@pytest.fixture
def auth(store):
    authenticator = TokenAuthenticator(store, cache_ttl=60.0)
    yield authenticator
    authenticator.stop()


# -- the service functions -------------------------------------------------------------------


def test_create_returns_the_secret_once_and_stores_only_its_hash(store):
    info, secret = create_token(store, "ci-deploy", "predict")
    assert secret.startswith("lw_")
    assert len(secret) == 3 + 43  # 32 random bytes, URL-safe base 64
    assert info.name == "ci-deploy"
    assert info.role == "predict"
    assert info.prefix == secret[:9]
    assert info.status() == "active"
    assert info.expires_at is None
    assert info.revoked_at is None
    assert info.created_at.tzinfo is not None
    assert "secret" not in info.to_dict()

    with store.db.read() as conn:
        rows = [dict(r._mapping) for r in conn.execute(select(api_tokens))]
    assert len(rows) == 1
    stored = rows[0]
    assert stored["secret_sha256"] == hashlib.sha256(secret.encode()).hexdigest()
    assert stored["secret_sha256"] == hash_secret(secret)
    # The secret appears nowhere in clear, nor any long part of it beyond the prefix.
    everything = " ".join(str(v) for v in stored.values())
    assert secret not in everything
    assert secret[9:20] not in everything

    [listed] = list_tokens(store)
    assert listed == info
    assert secret not in repr(listed)
    assert secret not in str(listed.to_dict())


def test_every_secret_is_different(store):
    secrets = {create_token(store, f"t{i}", "read")[1] for i in range(5)}
    assert len(secrets) == 5


def test_list_revoke_and_include_revoked(store):
    first, _ = create_token(store, "first", "predict")
    second, _ = create_token(store, "second", "read")
    assert [t.name for t in list_tokens(store)] == ["first", "second"]  # oldest first

    revoked = revoke_token(store, "first")
    assert revoked.id == first.id
    assert revoked.status() == "revoked"
    assert revoked.revoked_at is not None

    assert [t.name for t in list_tokens(store)] == ["second"]
    everything = list_tokens(store, include_revoked=True)
    assert [(t.name, t.status()) for t in everything] == [
        ("first", "revoked"),
        ("second", "active"),
    ]
    assert everything[0].revoked_at == revoked.revoked_at

    revoke_token(store, second.id)  # by id
    assert list_tokens(store) == []


def test_revoke_by_secret_never_echoes_it(store):
    info, secret = create_token(store, "leaked", "admin")
    assert revoke_token(store, secret).id == info.id
    with pytest.raises(Conflict, match="already revoked"):
        revoke_token(store, info.id)
    with pytest.raises(NotFound) as caught:
        revoke_token(store, secret + "x")
    assert secret not in str(caught.value)


def test_revoking_what_does_not_exist(store):
    create_token(store, "keep", "read")
    with pytest.raises(NotFound, match=r"No token named 'nope'.*keep.*loopwise tokens list"):
        revoke_token(store, "nope")
    with pytest.raises(NotFound, match="No token with id"):
        revoke_token(store, "01aaaaaaaaaaaaaaaaaaaaaaaa")
    with pytest.raises(InvalidInput, match="name_or_id"):
        revoke_token(store, "")


def test_revoking_twice_by_name_is_not_found_and_says_so(store):
    create_token(store, "once", "read")
    revoke_token(store, "once")
    with pytest.raises(NotFound, match=r"not revoked.*--all"):
        revoke_token(store, "once")


def test_names_are_unique_among_tokens_not_revoked(store):
    held, _ = create_token(store, "ci", "predict")
    with pytest.raises(Conflict) as caught:
        create_token(store, "ci", "read")
    message = str(caught.value)
    assert "'ci' already exists" in message
    assert held.id in message
    assert f"loopwise tokens revoke {held.id}" in message

    _expire(store, held.id)  # an expired token keeps its name until revoked
    with pytest.raises(Conflict, match="expired"):
        create_token(store, "ci", "read")

    revoke_token(store, held.id)
    again, _ = create_token(store, "ci", "read")  # a revoked token's name can be used again
    assert again.id != held.id
    assert [t.id for t in list_tokens(store, include_revoked=True)] == [held.id, again.id]


def test_the_database_enforces_unique_active_names(store):
    """The partial unique index holds even when the service's check is bypassed (a race)."""
    create_token(store, "raced", "read")
    row = {
        "id": "01bbbbbbbbbbbbbbbbbbbbbbbb",
        "name": "raced",
        "role": "read",
        "prefix": "lw_xxxxxx",
        "secret_sha256": "0" * 64,
        "created_at": 1,
    }
    with pytest.raises(IntegrityError), store.db.write() as conn:
        conn.execute(api_tokens.insert().values(**row))
    with store.db.write() as conn:
        conn.execute(api_tokens.insert().values(**row, revoked_at=2))  # revoked: allowed


@pytest.mark.parametrize("role", ["", "Admin", "Writer", "readers", None, 1])
def test_bad_roles_are_refused(store, role):
    with pytest.raises(
        InvalidInput, match=r"'role' .* one of 'predict', 'reader', 'writer', 'admin'"
    ):
        create_token(store, "x", role)


@pytest.mark.parametrize(("given", "stored"), [("read", "reader"), ("write", "writer")])
def test_former_role_names_are_accepted_and_shown_under_the_new_ones(store, auth, given, stored):
    token, secret = create_token(store, "ci", given)
    assert token.role == stored
    with store.db.read() as conn:
        assert conn.execute(select(api_tokens.c.role)).scalar() == stored
    [listed] = list_tokens(store)
    assert listed.role == stored
    auth.refresh()
    assert auth.authenticate(_bearer(secret), "read").role == stored


def test_a_token_stored_under_a_former_role_name_still_works(store, auth):
    _, secret = create_token(store, "ci", "writer")
    with store.db.write() as conn:  # as a loopwise from before the rename stored it
        conn.execute(update(api_tokens).values(role="write"))
    auth.refresh()
    assert auth.authenticate(_bearer(secret), "write").role == "writer"
    assert list_tokens(store)[0].role == "writer"


def test_scopes_are_stored_listed_and_matched(store):
    token, _ = create_token(
        store, "ci", "writer", experiments=["churn-*", "churn-*", "ab"], models=["churn-*"]
    )
    assert token.experiments == ("churn-*", "ab")
    [listed] = list_tokens(store)
    assert (listed.experiments, listed.models) == (("churn-*", "ab"), ("churn-*",))
    assert listed.to_dict()["experiments"] == ["churn-*", "ab"]
    assert listed.scoped
    assert listed.allows_experiment("churn-a")
    assert listed.allows_experiment("ab")
    assert not listed.allows_experiment("fraud-b")
    assert not listed.allows_experiment("Churn-a")  # names are case-sensitive
    assert listed.allows_model("churn-x")
    assert not listed.allows_model("fraud")


def test_a_scope_on_one_kind_closes_the_other(store):
    token, _ = create_token(store, "ci", "writer", experiments=["churn-*"])
    assert token.models == ()
    assert not list_tokens(store)[0].allows_model("churn-a")
    open_models, _ = create_token(store, "ci2", "writer", experiments=["a"], models=["*"])
    assert open_models.allows_model("anything")


def test_an_unscoped_token_reaches_everything(store):
    token, _ = create_token(store, "ci", "reader")
    assert (token.experiments, token.models, token.scoped) == (None, None, False)
    assert token.to_dict()["experiments"] is None
    assert token.allows_experiment("x")
    assert token.allows_model("y")


@pytest.mark.parametrize("patterns", ["churn-*", [""], ["x" * 257], [1], ["p"] * 33], ids=str)
def test_bad_scopes_are_refused(store, patterns):
    with pytest.raises(InvalidInput, match="'experiments'"):
        create_token(store, "ci", "writer", experiments=patterns)
    assert list_tokens(store) == []


@pytest.mark.parametrize("name", ["", " ci", "ci deploy", "-ci", "a" * 65, "ü", None])
def test_bad_names_are_refused(store, name):
    with pytest.raises(InvalidInput, match="'name' parameter of create_token"):
        create_token(store, name, "read")


def test_a_name_that_looks_like_an_id_or_a_secret_is_refused(store):
    with pytest.raises(InvalidInput, match="26-character token id"):
        create_token(store, "01aaaaaaaaaaaaaaaaaaaaaaaa", "read")
    _, secret = create_token(store, "real", "read")
    with pytest.raises(InvalidInput, match="looks like a token secret") as caught:
        create_token(store, secret, "read")
    assert secret not in str(caught.value)


def test_expiry_must_be_an_aware_time_in_the_future(store):
    with pytest.raises(InvalidInput, match="must be in the future"):
        create_token(store, "x", "read", expires_at=datetime.now(UTC) - timedelta(seconds=1))
    with pytest.raises(InvalidInput, match="no time zone"):
        create_token(store, "x", "read", expires_at=datetime(2999, 1, 1))
    later = datetime.now(UTC) + timedelta(days=30)
    info, _ = create_token(store, "x", "read", expires_at=later)
    assert abs(info.expires_at - later) < timedelta(milliseconds=1)
    assert list_tokens(store)[0].expires_at == info.expires_at


# -- roles -----------------------------------------------------------------------------------


def test_roles_as_data():
    assert ROLES == ("predict", "reader", "writer", "admin")
    assert ROLE_PERMISSIONS["predict"] == {"predict", "feedback"}
    assert ROLE_PERMISSIONS["reader"] == {"read"}
    assert ROLE_PERMISSIONS["writer"] == {"read", "write"}
    assert ROLE_PERMISSIONS["admin"] == PERMISSIONS
    with pytest.raises(TypeError):
        ROLE_PERMISSIONS["guest"] = frozenset()  # type: ignore[index]


def test_errors_carry_their_http_status():
    assert issubclass(Unauthorized, LoopwiseError)
    assert issubclass(Forbidden, LoopwiseError)
    assert Unauthorized.http_status == 401
    assert Forbidden.http_status == 403


# -- the authenticator -----------------------------------------------------------------------


def test_no_tokens_means_authentication_is_off(store, auth):
    assert auth.enabled is False
    assert auth.authenticate(None, "predict") is None
    assert auth.authenticate("Bearer whatever", "read") is None


def test_each_role_gets_exactly_its_permissions(store, auth):
    secrets = {role: create_token(store, f"{role}-token", role)[1] for role in ROLES}
    auth.refresh()
    assert auth.enabled
    for role, secret in secrets.items():
        for permission in sorted(PERMISSIONS):
            if permission in ROLE_PERMISSIONS[role]:
                info = auth.authenticate(_bearer(secret), permission)
                assert info is not None
                assert (info.name, info.role) == (f"{role}-token", role)
            else:
                with pytest.raises(Forbidden) as caught:
                    auth.authenticate(_bearer(secret), permission)
                message = str(caught.value)
                assert f"role {role!r}" in message
                assert f"not allow {permission!r}" in message


def test_forbidden_names_the_roles_that_would_do(store, auth):
    _, secret = create_token(store, "reader", "read")
    auth.refresh()
    with pytest.raises(Forbidden, match=r"'reader' has role 'reader'.*role 'predict' or 'admin'"):
        auth.authenticate(_bearer(secret), "feedback")


@pytest.mark.parametrize(
    ("header", "match"),
    [
        (None, r"needs an API token: send the header `Authorization: Bearer <token>`"),
        ("", "needs an API token"),
        ("Basic dXNlcjpwYXNz", "not a bearer token"),
        ("Bearer", "not a bearer token"),
        ("Bearer lw_not-a-real-token", "unknown or has been revoked"),
    ],
)
def test_missing_malformed_and_unknown_tokens_are_unauthorized(store, auth, header, match):
    create_token(store, "someone", "predict")
    auth.refresh()
    with pytest.raises(Unauthorized, match=match) as caught:
        auth.authenticate(header, "predict")
    if header is None or "needs" in match:
        assert "loopwise tokens create NAME --role predict" in str(caught.value)


def test_scheme_is_case_insensitive_and_spaces_are_tolerated(store, auth):
    _, secret = create_token(store, "spaced", "read")
    auth.refresh()
    assert auth.authenticate(f"  bearer   {secret} ", "read") is not None


def test_expired_token_is_refused_at_once(store, auth):
    info, secret = create_token(store, "short", "predict", expires_at=time.time() + 3600)
    auth.refresh()
    assert auth.authenticate(_bearer(secret), "predict") is not None
    _expire(store, info.id)
    auth.refresh()
    with pytest.raises(Unauthorized, match=r"'short' expired .*--role predict"):
        auth.authenticate(_bearer(secret), "predict")
    assert list_tokens(store)[0].status() == "expired"


def test_expiry_is_checked_per_request_not_per_refresh(store, auth, monkeypatch):
    info, secret = create_token(store, "brief", "read", expires_at=time.time() + 3600)
    auth.refresh()
    assert auth.authenticate(_bearer(secret), "read") is not None
    expiry_us = int(info.expires_at.timestamp() * 1_000_000)
    monkeypatch.setattr("loopwise.auth.tokens.now_us", lambda: expiry_us)  # no refresh
    with pytest.raises(Unauthorized, match="expired"):
        auth.authenticate(_bearer(secret), "read")


def test_revoked_token_is_refused_after_the_refresh(store, auth):
    _, keep = create_token(store, "keep", "admin")
    _, secret = create_token(store, "gone", "predict")
    auth.refresh()
    assert auth.authenticate(_bearer(secret), "predict") is not None
    revoke_token(store, "gone")
    # Until the next refresh the cached token still works: that is the documented window.
    assert auth.authenticate(_bearer(secret), "predict") is not None
    auth.refresh()
    with pytest.raises(Unauthorized, match="unknown or has been revoked"):
        auth.authenticate(_bearer(secret), "predict")
    assert auth.authenticate(_bearer(keep), "predict") is not None


def _eventually(check, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "the condition did not hold in time"
        time.sleep(0.02)


def test_background_refresh_sees_new_and_revoked_tokens_within_the_ttl(store):
    with TokenAuthenticator(store, cache_ttl=0.1) as auth:
        assert not auth.enabled
        _, secret = create_token(store, "late", "predict")  # created after the server started
        created = time.monotonic()
        _eventually(lambda: auth.enabled)
        assert time.monotonic() - created < 2.0  # the TTL is 0.1 s; the rest is slack
        assert auth.authenticate(_bearer(secret), "predict").name == "late"

        revoke_token(store, "late")
        revoked_at = time.monotonic()

        def refused() -> bool:
            try:
                auth.authenticate(_bearer(secret), "predict")
            except Unauthorized:
                return True
            return False

        _eventually(refused)
        assert time.monotonic() - revoked_at < 2.0


def test_revoking_every_token_does_not_open_the_endpoints(store, auth):
    _, secret = create_token(store, "only", "admin")
    auth.refresh()
    revoke_token(store, "only")
    auth.refresh()
    assert auth.enabled  # sticky: no token now means nobody gets in, not everybody
    with pytest.raises(Unauthorized):
        auth.authenticate(None, "read")
    with pytest.raises(Unauthorized):
        auth.authenticate(_bearer(secret), "read")


def test_only_expired_tokens_do_not_enable_authentication(store, auth):
    info, _ = create_token(store, "stale", "read", expires_at=time.time() + 3600)
    _expire(store, info.id)
    auth.refresh()
    assert auth.enabled is False


def test_last_used_is_written_in_batches_on_refresh(store, auth):
    _, secret = create_token(store, "used", "predict")
    auth.refresh()
    before = datetime.now(UTC)
    for _ in range(50):
        auth.authenticate(_bearer(secret), "predict")
    assert list_tokens(store)[0].last_used_at is None  # no write on the request path
    auth.refresh()
    last_used = list_tokens(store)[0].last_used_at
    assert last_used is not None
    assert before - timedelta(seconds=1) <= last_used <= datetime.now(UTC)

    # Within the resolution, more use does not cause another write.
    auth.authenticate(_bearer(secret), "predict")
    auth.refresh()
    assert list_tokens(store)[0].last_used_at == last_used


def test_last_used_is_flushed_on_stop(store):
    _, secret = create_token(store, "stopping", "read")
    auth = TokenAuthenticator(store, cache_ttl=60.0).start()
    auth.authenticate(_bearer(secret), "read")
    auth.stop()
    assert list_tokens(store)[0].last_used_at is not None


def test_a_store_outage_keeps_the_known_tokens(store, monkeypatch, caplog):
    caplog.set_level(logging.WARNING, logger="loopwise.auth.tokens")
    _, secret = create_token(store, "steady", "read")

    def unavailable():
        raise StoreUnavailable("the store is down")

    with TokenAuthenticator(store, cache_ttl=0.05) as auth:
        monkeypatch.setattr(store.db, "read", unavailable)
        with pytest.raises(StoreUnavailable):
            auth.refresh()  # called directly, a refresh raises ...
        _eventually(lambda: auth.refresh_error is not None)  # ... the thread logs and goes on
        assert "the store is down" in auth.refresh_error
        assert "cannot refresh API tokens" in caplog.text
        assert auth.authenticate(_bearer(secret), "read") is not None
        monkeypatch.undo()
        _eventually(lambda: auth.refresh_error is None)  # back when the store is


def test_the_first_load_needs_the_store(tmp_path):
    from loopwise.config import load_settings
    from loopwise.store import Store

    down = Store(
        settings=load_settings(
            store_url="postgresql://postgres@127.0.0.1:1/test?connect_timeout=2",
            artifacts_url=str(tmp_path / "a"),
        )
    )
    with pytest.raises(StoreUnavailable):
        TokenAuthenticator(down).start()


def test_unknown_permission_is_a_programming_error(store, auth):
    _, secret = create_token(store, "dev", "read")
    auth.refresh()
    with pytest.raises(ValueError, match="unknown permission 'predikt'") as caught:
        auth.authenticate(_bearer(secret), "predikt")
    assert not isinstance(caught.value, LoopwiseError)  # a 500, not a client's mistake


@pytest.mark.parametrize("ttl", [0, -1, "5", True, float("nan")])
def test_cache_ttl_must_be_positive_seconds(store, ttl):
    with pytest.raises(InvalidInput, match="'cache_ttl' parameter of TokenAuthenticator"):
        TokenAuthenticator(store, cache_ttl=ttl)


def test_secrets_are_never_logged(store, caplog):
    caplog.set_level(logging.DEBUG)
    _, secret = create_token(store, "quiet", "read")
    with TokenAuthenticator(store) as auth:
        auth.authenticate(_bearer(secret), "read")
        with pytest.raises(Forbidden):
            auth.authenticate(_bearer(secret), "predict")
    revoke_token(store, "quiet")
    assert secret not in caplog.text
    assert secret[9:] not in caplog.text


# -- migration -------------------------------------------------------------------------------


def test_migration_0005_applies_to_a_store_at_0004(store_url, tmp_path):
    from loopwise.config import load_settings
    from loopwise.store import Store

    old = Database(store_url)
    old.upgrade("0004")
    assert old.current_revision() == "0004"
    with old.engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO experiments (id, name, created_at) "
                "VALUES ('01aaaaaaaaaaaaaaaaaaaaaaaa', 'before-tokens', 1)"
            )
        )
    old.engine.dispose()

    store = Store(settings=load_settings(store_url=store_url, artifacts_url=str(tmp_path / "a")))
    try:
        _, secret = create_token(store, "after-upgrade", "predict")  # migrates on first use
        assert store.db.current_revision() == HEAD_REVISION
        with store.db.read() as conn:
            assert conn.execute(text("SELECT name FROM experiments")).scalar() == "before-tokens"
        with TokenAuthenticator(store) as auth:
            assert auth.authenticate(_bearer(secret), "predict").name == "after-upgrade"
    finally:
        store.db.engine.dispose()
