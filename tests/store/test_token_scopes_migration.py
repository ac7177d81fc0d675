"""Revision 0012 (token scopes): tokens stored before it keep working, unscoped, and a
token stored with a former role name reads back under the new name."""

from __future__ import annotations

from sqlalchemy import text

from loopwise.auth.tokens import TokenAuthenticator, hash_secret, list_tokens
from loopwise.store import Store
from loopwise.store.database import HEAD_REVISION, Database

SECRET = "lw_" + "a" * 43


def test_a_token_from_before_scopes_keeps_working(store_url, tmp_path):
    db = Database(store_url)
    db.upgrade("0011")
    with db.engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO api_tokens (id, name, role, prefix, secret_sha256, created_at) "
                "VALUES ('01aaaaaaaaaaaaaaaaaaaaaaaa', 'old-ci', 'write', 'lw_aaaaaa', :h, 1)"
            ),
            {"h": hash_secret(SECRET)},
        )
    db.ensure_schema()
    assert db.current_revision() == HEAD_REVISION
    db.engine.dispose()

    store = Store(store_url, str(tmp_path / "artifacts"))
    [token] = list_tokens(store)
    assert (token.name, token.role, token.experiments, token.models) == (
        "old-ci",
        "writer",
        None,
        None,
    )
    assert not token.scoped
    auth = TokenAuthenticator(store)
    info = auth.authenticate(f"Bearer {SECRET}", "write")
    assert info is not None
    assert info.role == "writer"
    assert info.allows_experiment("any")
    store.db.engine.dispose()
