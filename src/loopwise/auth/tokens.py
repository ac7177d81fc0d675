"""API tokens with roles: create, list and revoke them, and check requests against them.

A token's secret is ``lw_`` followed by 43 URL-safe characters (32 random bytes). It is
shown once, by :func:`create_token`; the store keeps only its SHA-256 and a short
non-secret ``prefix`` (``lw_`` and the next six characters) that identifies it in listings.

A role is a set of permissions, written down as data in :data:`ROLE_PERMISSIONS`; a route
declares the one permission it needs and the check is one set lookup:

======== =============================== ===================================
role     permissions                     routes
======== =============================== ===================================
predict  ``predict``, ``feedback``       ``POST /predict``, ``POST /feedback``
reader   ``read``                        ``GET /model``, ``/metrics``, the docs;
                                         the server's ``GET /api/v1/...``
writer   ``read``, ``write``             the server's writes (runs, metrics, ...)
admin    every permission                everything
======== =============================== ===================================

The roles were first called ``read`` and ``write``: those names are still accepted on
create and tokens stored with them keep working, read back as ``reader`` / ``writer``
(:data:`ROLE_ALIASES`); no stored row is rewritten.

A token may also be *scoped*: limited to experiments and models whose names match
``fnmatch`` patterns (``churn-*``). A scoped token reaches only the names its patterns
match, for each kind: ``experiments=["churn-*"]`` with no model patterns reaches no model
(pass ``models=["*"]`` to leave models open). The server checks the scope per route
(:mod:`loopwise.server.access`); the serving endpoints ignore it.

``GET /health`` and ``GET /ready`` need no token; the docs (``/openapi.json``, ``/docs``,
``/redoc``) need ``read`` under the endpoint config's ``docs: token``.
:class:`TokenAuthenticator` is what a server uses: it holds the tokens in memory and
refreshes them from the store in a background thread, so a request costs one SHA-256 and
one dict lookup, never a query.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import hashlib
import json
import logging
import secrets
import threading
import time
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any, NamedTuple

from sqlalchemy import Connection, bindparam, or_, select, update
from sqlalchemy.exc import IntegrityError

from loopwise.clock import now_us, to_datetime, to_us
from loopwise.errors import Conflict, Forbidden, InvalidInput, NotFound, Unauthorized
from loopwise.identity import current_user
from loopwise.ids import is_id, label_pattern, new_id
from loopwise.store import Store
from loopwise.store.tables import api_tokens

logger = logging.getLogger(__name__)

#: What each role may do. A route needs one permission; ``admin`` holds them all.
ROLE_PERMISSIONS: Mapping[str, frozenset[str]] = MappingProxyType(
    {
        "predict": frozenset({"predict", "feedback"}),
        "reader": frozenset({"read"}),
        "writer": frozenset({"read", "write"}),
        "admin": frozenset({"predict", "feedback", "read", "write", "admin"}),
    }
)
ROLES = tuple(ROLE_PERMISSIONS)
#: Former role names, accepted on create and read back from the store as the new ones.
ROLE_ALIASES: Mapping[str, str] = MappingProxyType({"read": "reader", "write": "writer"})
PERMISSIONS = frozenset().union(*ROLE_PERMISSIONS.values())

SECRET_PREFIX = "lw_"
SECRET_BYTES = 32
PREFIX_CHARS = 6  # random characters after "lw_" kept in clear to recognise a token
MAX_NAME_LENGTH = 64
#: Bounds on a token's scope: patterns per kind, and characters per pattern.
MAX_PATTERNS = 32
MAX_PATTERN_LENGTH = 256
#: ``last_used_at`` is written at most this often per token (and only on a refresh).
LAST_USED_RESOLUTION_S = 60.0

_NAME = label_pattern(MAX_NAME_LENGTH)
_HOW_TO_SEND = "send the header `Authorization: Bearer <token>`"


@dataclasses.dataclass(frozen=True)
class TokenInfo:
    """What the store knows about a token: everything but its secret."""

    id: str
    name: str
    role: str
    prefix: str
    created_at: datetime
    created_by: str | None = None
    expires_at: datetime | None = None
    revoked_at: datetime | None = None
    revoked_by: str | None = None
    last_used_at: datetime | None = None
    #: Name patterns the token is limited to; None for both means not scoped at all.
    experiments: tuple[str, ...] | None = None
    models: tuple[str, ...] | None = None

    @property
    def permissions(self) -> frozenset[str]:
        return ROLE_PERMISSIONS[self.role]

    @property
    def scoped(self) -> bool:
        """True when the token is limited to some experiment or model names."""
        return self.experiments is not None or self.models is not None

    def allows_experiment(self, name: str) -> bool:
        """Whether the token's scope reaches the experiment called ``name``."""
        return _matches(self.experiments, name)

    def allows_model(self, name: str) -> bool:
        """Whether the token's scope reaches the registered model called ``name``."""
        return _matches(self.models, name)

    def status(self, now: datetime | None = None) -> str:
        """``"active"``, ``"expired"`` or ``"revoked"`` at ``now`` (default: the current time)."""
        if self.revoked_at is not None:
            return "revoked"
        now = datetime.now(UTC) if now is None else now
        if self.expires_at is not None and self.expires_at <= now:
            return "expired"
        return "active"

    def to_dict(self) -> dict[str, Any]:
        def iso(value: datetime | None) -> str | None:
            return None if value is None else value.isoformat()

        return {
            "id": self.id,
            "name": self.name,
            "role": self.role,
            "prefix": self.prefix,
            "status": self.status(),
            "created_at": iso(self.created_at),
            "created_by": self.created_by,
            "expires_at": iso(self.expires_at),
            "revoked_at": iso(self.revoked_at),
            "revoked_by": self.revoked_by,
            "last_used_at": iso(self.last_used_at),
            "experiments": None if self.experiments is None else list(self.experiments),
            "models": None if self.models is None else list(self.models),
        }


def _matches(patterns: tuple[str, ...] | None, name: str) -> bool:
    # fnmatchcase: names are case-sensitive everywhere else, so patterns are too.
    return patterns is None or any(fnmatch.fnmatchcase(name, p) for p in patterns)


def hash_secret(secret: str) -> str:
    """The SHA-256 (hex) under which a token's secret is stored and looked up.

    A fast hash is the right tool here, and a slow password hash (bcrypt, scrypt, Argon2)
    the wrong one. Slow hashes exist to make guessing *low-entropy* passwords from a stolen
    hash expensive; a token secret is 256 random bits, so guessing it from its SHA-256 is
    already out of reach, and slowing the hash down would add nothing but tens of
    milliseconds to every request (the hash is computed per request to find the token).
    SHA-256 is also deterministic (no salt), which is what lets the lookup be a dict
    access by hash instead of a comparison against every stored token.
    """
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def _looks_like_secret(value: str) -> bool:
    return value.startswith(SECRET_PREFIX)


def _check_name(name: object) -> str:
    if isinstance(name, str) and _looks_like_secret(name):
        # Never echo it: it may be a real secret pasted in the wrong place.
        raise InvalidInput(
            f"The 'name' parameter of create_token must be a label such as 'ci-deploy'; got a "
            f"value starting with {SECRET_PREFIX!r}, which looks like a token secret "
            "(names may not start with it)."
        )
    if not isinstance(name, str) or not _NAME.fullmatch(name) or is_id(name):
        raise InvalidInput(
            f"The 'name' parameter of create_token must be 1 to {MAX_NAME_LENGTH} letters, "
            "digits, '.', '_' or '-', starting with a letter or digit, and not shaped like a "
            f"26-character token id (e.g. 'ci-deploy'). Got {name!r} instead."
        )
    return name


def _check_role(role: object) -> str:
    """The role's current name (``read`` -> ``reader``); InvalidInput for an unknown one."""
    if isinstance(role, str) and role in ROLE_ALIASES:
        return ROLE_ALIASES[role]
    if not isinstance(role, str) or role not in ROLE_PERMISSIONS:
        raise InvalidInput(
            "The 'role' parameter of create_token must be one of "
            f"{', '.join(map(repr, ROLES))}. Got {role!r} instead."
        )
    return role


def _check_patterns(kind: str, patterns: object) -> tuple[str, ...] | None:
    if patterns is None:
        return None
    if isinstance(patterns, str) or not isinstance(patterns, Iterable):
        raise InvalidInput(
            f"The {kind!r} parameter of create_token must be a list of name patterns such as "
            f"['churn-*']. Got {str(patterns)[:100]!r} instead."
        )
    found = tuple(patterns)
    if len(found) > MAX_PATTERNS:
        raise InvalidInput(
            f"The {kind!r} parameter of create_token takes at most {MAX_PATTERNS} patterns; "
            f"got {len(found)}. Use wider patterns, such as 'churn-*'."
        )
    for pattern in found:
        if not isinstance(pattern, str) or not 1 <= len(pattern) <= MAX_PATTERN_LENGTH:
            raise InvalidInput(
                f"Each of the {kind!r} patterns of create_token must be 1 to "
                f"{MAX_PATTERN_LENGTH} characters, such as 'churn-*'. Got "
                f"{str(pattern)[:100]!r} instead."
            )
    return tuple(dict.fromkeys(found))


def _patterns_out(stored: str | None) -> tuple[str, ...] | None:
    return None if stored is None else tuple(json.loads(stored))


def _patterns_in(patterns: tuple[str, ...] | None) -> str | None:
    return None if patterns is None else json.dumps(list(patterns))


def _info(row: Mapping[str, Any]) -> TokenInfo:
    """A :class:`TokenInfo` for a row of ``api_tokens`` (a result row's ``_mapping``)."""
    return TokenInfo(
        id=row["id"],
        name=row["name"],
        role=ROLE_ALIASES.get(row["role"], row["role"]),
        prefix=row["prefix"],
        created_at=to_datetime(row["created_at"]),  # type: ignore[arg-type]
        created_by=row["created_by"],
        expires_at=to_datetime(row["expires_at"]),
        revoked_at=to_datetime(row["revoked_at"]),
        revoked_by=row["revoked_by"],
        last_used_at=to_datetime(row["last_used_at"]),
        experiments=_patterns_out(row["experiment_scope"]),
        models=_patterns_out(row["model_scope"]),
    )


def _day(value: datetime | None) -> str:
    return "never" if value is None else value.strftime("%Y-%m-%d %H:%M UTC")


# -- service functions ---------------------------------------------------------------------


def create_token(
    store: Store,
    name: str,
    role: str,
    *,
    expires_at: datetime | None = None,
    experiments: Iterable[str] | None = None,
    models: Iterable[str] | None = None,
) -> tuple[TokenInfo, str]:
    """Create a token and return it with its secret, which is not stored and not shown again.

    ``name`` is a label unique among tokens not revoked (an expired token keeps its name
    until it is revoked); ``role`` is one of :data:`ROLES` (or a former name of
    :data:`ROLE_ALIASES`); ``expires_at`` is a timezone-aware time in the future, or None
    for a token that does not expire. ``experiments`` and ``models`` are fnmatch patterns
    that scope the token; giving either scopes it, and the kind not given then reaches
    nothing (so a scope never widens by omission).
    """
    _check_name(name)
    role = _check_role(role)
    experiment_scope = _check_patterns("experiments", experiments)
    model_scope = _check_patterns("models", models)
    if experiment_scope is not None or model_scope is not None:
        experiment_scope = experiment_scope or ()
        model_scope = model_scope or ()
    now = now_us()
    expires_us = None
    if expires_at is not None:
        expires_us = to_us(expires_at, what="expires_at")
        if expires_us <= now:
            raise InvalidInput(
                f"The 'expires_at' parameter of create_token must be in the future. Got "
                f"{to_datetime(expires_us).isoformat()} instead."  # type: ignore[union-attr]
            )
    secret = SECRET_PREFIX + secrets.token_urlsafe(SECRET_BYTES)
    row = {
        "id": new_id(),
        "name": name,
        "role": role,
        "prefix": secret[: len(SECRET_PREFIX) + PREFIX_CHARS],
        "secret_sha256": hash_secret(secret),
        "created_at": now,
        "created_by": current_user(),
        "expires_at": expires_us,
        "revoked_at": None,
        "revoked_by": None,
        "last_used_at": None,
        "experiment_scope": _patterns_in(experiment_scope),
        "model_scope": _patterns_in(model_scope),
    }
    try:
        with store.db.write() as conn:
            _refuse_taken_name(conn, name)
            conn.execute(api_tokens.insert().values(**row))
    except IntegrityError as e:  # a concurrent create took the name between check and insert
        raise Conflict(
            f"A token named {name!r} was created at the same time; choose another name, or "
            f"revoke that one first (`loopwise tokens revoke {name}`)."
        ) from e
    return _info(row), secret


def _refuse_taken_name(conn: Connection, name: str) -> None:
    query = select(api_tokens).where(api_tokens.c.name == name, api_tokens.c.revoked_at.is_(None))
    row = conn.execute(query).first()
    if row is None:
        return
    held = _info(row._mapping)
    expired = held.status() == "expired"
    state = f"expired {_day(held.expires_at)}" if expired else "active"
    raise Conflict(
        f"A token named {name!r} already exists (id {held.id}, role {held.role}, {state}). "
        "Names are unique among tokens not revoked: choose another name, or revoke it first "
        f"with `loopwise tokens revoke {held.id}`."
    )


def list_tokens(store: Store, *, include_revoked: bool = False) -> list[TokenInfo]:
    """Tokens, oldest first: those not revoked (expired ones included), or all of them."""
    query = select(api_tokens).order_by(api_tokens.c.id)
    if not include_revoked:
        query = query.where(api_tokens.c.revoked_at.is_(None))
    with store.db.read() as conn:
        return [_info(row._mapping) for row in conn.execute(query)]


def revoke_token(store: Store, name_or_id: str) -> TokenInfo:
    """Revoke a token given by its name, its id or its secret; return it as revoked.

    A server using :class:`TokenAuthenticator` refuses it within ``cache_ttl`` seconds.
    """
    if not isinstance(name_or_id, str) or not name_or_id:
        raise InvalidInput(
            "The 'name_or_id' parameter of revoke_token must be a token name or id (see "
            f"`loopwise tokens list`). Got {name_or_id!r} instead."
        )
    now = now_us()
    with store.db.write() as conn:
        held = _find(conn, name_or_id)
        if held.revoked_at is not None:
            raise Conflict(
                f"Token {held.name!r} (id {held.id}) was already revoked at "
                f"{_day(held.revoked_at)}; there is nothing to do."
            )
        user = current_user()
        done = conn.execute(
            update(api_tokens)
            .where(api_tokens.c.id == held.id, api_tokens.c.revoked_at.is_(None))
            .values(revoked_at=now, revoked_by=user)
        )
        if done.rowcount == 0:
            raise Conflict(f"Token {held.name!r} (id {held.id}) was revoked concurrently.")
    return dataclasses.replace(held, revoked_at=to_datetime(now), revoked_by=user)


def _find(conn: Connection, name_or_id: str) -> TokenInfo:
    if _looks_like_secret(name_or_id):
        query = select(api_tokens).where(api_tokens.c.secret_sha256 == hash_secret(name_or_id))
        described = "with that secret"  # never echo a secret
    elif is_id(name_or_id):
        query = select(api_tokens).where(api_tokens.c.id == name_or_id)
        described = f"with id {name_or_id!r}"
    else:
        query = select(api_tokens).where(
            api_tokens.c.name == name_or_id, api_tokens.c.revoked_at.is_(None)
        )
        described = f"named {name_or_id!r} that is not revoked"
    row = conn.execute(query).first()
    if row is None:
        names = select(api_tokens.c.name).where(api_tokens.c.revoked_at.is_(None))
        known = sorted(r[0] for r in conn.execute(names.limit(20)))
        raise NotFound(
            f"No token {described}. Tokens not revoked: {', '.join(known) or 'none'}; "
            "`loopwise tokens list --all` shows every token with its id."
        )
    return _info(row._mapping)


# -- checking requests ---------------------------------------------------------------------


class _Entry(NamedTuple):
    info: TokenInfo
    permissions: frozenset[str]
    expires_us: int | None


def _roles_granting(permission: str) -> list[str]:
    return [role for role, allowed in ROLE_PERMISSIONS.items() if permission in allowed]


class TokenAuthenticator:
    """Checks ``Authorization`` headers against the store's tokens, without a query per request.

    The tokens not revoked are held in memory, keyed by the SHA-256 of their secret.
    :meth:`start` loads them and starts a daemon thread that reloads them every
    ``cache_ttl`` seconds, so:

    - a token created after the server started works within ``cache_ttl`` seconds, and the
      first one turns authentication on (:attr:`enabled`) within that time;
    - a revoked token is refused within ``cache_ttl`` seconds;
    - expiry is exact: it is checked on every request against the cached expiry time.

    If the store cannot be read during a refresh the previous tokens stay in force (a
    warning is logged, :attr:`refresh_error` says why): requests keep being answered, and
    a revocation made meanwhile takes effect once the store is back.

    The lookup is a dict access by hash rather than :func:`hmac.compare_digest` on secrets.
    A constant-time comparison protects a comparison of a *secret* against a guess; here the
    guess is hashed first, so any timing difference in the dict lookup can only reveal
    something about the SHA-256 of the attacker's own guess, which does not help find an
    input hashing to a stored value. It is also O(1), however many tokens there are.

    ``last_used_at`` is recorded in memory and written by the refresh thread, one batched
    UPDATE for every token used since the last one, at most once per token every
    :data:`LAST_USED_RESOLUTION_S` seconds (and on :meth:`stop`).
    """

    def __init__(self, store: Store, *, cache_ttl: float = 5.0) -> None:
        if isinstance(cache_ttl, bool) or not isinstance(cache_ttl, int | float):
            cache_ttl = -1
        if not cache_ttl > 0:
            raise InvalidInput(
                "The 'cache_ttl' parameter of TokenAuthenticator must be a number of seconds "
                f"> 0. Got {cache_ttl!r} instead."
            )
        self.store = store
        self.cache_ttl = float(cache_ttl)
        self.refreshed_at: float | None = None  # time.monotonic() of the last good refresh
        self.refresh_error: str | None = None
        self._tokens: dict[str, _Entry] | None = None
        self._enabled = False
        self._used: dict[str, int] = {}
        self._used_lock = threading.Lock()
        self._written: dict[str, int] = {}
        self._refresh_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> TokenAuthenticator:
        """Load the tokens (raising if the store is unreachable) and start refreshing."""
        if self._thread is not None:
            return self
        self.refresh()
        self._stop.clear()
        self._thread = threading.Thread(
            target=self._run, name="loopwise-token-refresh", daemon=True
        )
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop refreshing and write the pending ``last_used_at`` times."""
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout)
        self._flush_last_used()

    def __enter__(self) -> TokenAuthenticator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _run(self) -> None:
        while not self._stop.wait(self.cache_ttl):
            try:
                self.refresh()
            except Exception as e:  # keep the last known tokens; never let the thread die
                self.refresh_error = f"{type(e).__name__}: {e}"
                logger.warning("cannot refresh API tokens: %s", self.refresh_error)

    def refresh(self) -> None:
        """Write pending ``last_used_at`` times, then reload the tokens from the store."""
        with self._refresh_lock:
            self._flush_last_used()
            query = select(api_tokens).where(api_tokens.c.revoked_at.is_(None))
            with self.store.db.read() as conn:
                rows = conn.execute(query).all()
            tokens = {
                row.secret_sha256: _Entry(info, ROLE_PERMISSIONS[info.role], row.expires_at)
                for row in rows
                # a role from a newer loopwise is not honoured
                if (info := _info(row._mapping)).role in ROLE_PERMISSIONS
            }
            now = now_us()
            if any(e.expires_us is None or e.expires_us > now for e in tokens.values()):
                self._enabled = True
            self._tokens = tokens  # one assignment: requests see the old or the new set
            self.refreshed_at = time.monotonic()
            self.refresh_error = None

    def _flush_last_used(self) -> None:
        with self._used_lock:
            used, self._used = self._used, {}
        resolution = int(LAST_USED_RESOLUTION_S * 1_000_000)
        due = [
            {"token_id": token_id, "used_at": at}
            for token_id, at in used.items()
            if token_id not in self._written or at - self._written[token_id] >= resolution
        ]
        if not due:
            return
        column = api_tokens.c.last_used_at
        stmt = (
            update(api_tokens)
            .where(api_tokens.c.id == bindparam("token_id"))
            .where(or_(column.is_(None), column < bindparam("used_at")))
            .values(last_used_at=bindparam("used_at"))
        )
        try:
            with self.store.db.write() as conn:
                conn.execute(stmt, due)
        except Exception as e:  # a read-only store, a lock: usage times are not worth a failure
            logger.warning("cannot record when API tokens were last used: %s", e)
            return
        self._written.update((d["token_id"], d["used_at"]) for d in due)

    # -- checking ----------------------------------------------------------------------------

    @property
    def enabled(self) -> bool:
        """True once the store has held a token that is neither revoked nor expired.

        It then stays True for the life of this authenticator: revoking every token locks
        every client out instead of opening the endpoints to anyone.
        """
        if self._tokens is None:
            self.refresh()
        return self._enabled

    def authenticate(self, authorization_header: str | None, permission: str) -> TokenInfo | None:
        """The token of a request allowed ``permission``; None while :attr:`enabled` is False.

        Raises :class:`~loopwise.errors.Unauthorized` (401) for a missing, malformed,
        unknown, expired or revoked token and :class:`~loopwise.errors.Forbidden` (403) when
        the token's role does not grant ``permission`` (one of :data:`PERMISSIONS`).
        """
        tokens = self._tokens
        if tokens is None:  # not started: load once (a server calls start() at startup)
            self.refresh()
            tokens = self._tokens or {}
        if not self._enabled:
            return None
        secret = _bearer_token(authorization_header, permission)
        entry = tokens.get(hash_secret(secret))
        if entry is None:
            raise Unauthorized(
                "The API token is not valid: it is unknown or has been revoked. "
                f"{_HOW_TO_SEND} with a current token; `loopwise tokens list` shows them."
            )
        now = now_us()
        if entry.expires_us is not None and now >= entry.expires_us:
            raise Unauthorized(
                f"The API token {entry.info.name!r} expired at {_day(entry.info.expires_at)}. "
                f"Create a new one with `loopwise tokens create NAME --role {entry.info.role}`."
            )
        if permission not in entry.permissions:
            if permission not in PERMISSIONS:  # a route declaring a permission that is none
                raise ValueError(
                    f"unknown permission {permission!r}; use one of {sorted(PERMISSIONS)}"
                )
            raise Forbidden(
                f"The API token {entry.info.name!r} has role {entry.info.role!r}, which does "
                f"not allow {permission!r}. Use a token with role "
                f"{' or '.join(map(repr, _roles_granting(permission)))}."
            )
        with self._used_lock:
            self._used[entry.info.id] = now
        return entry.info


def _bearer_token(header: str | None, permission: str) -> str:
    if header:
        scheme, _, token = header.strip().partition(" ")
        token = token.strip()
        if token and scheme.lower() == "bearer":
            return token
    create = f"`loopwise tokens create NAME --role {(_roles_granting(permission) or ['admin'])[0]}`"
    if not header or not header.strip():
        raise Unauthorized(
            f"This endpoint needs an API token: {_HOW_TO_SEND}. Create one with {create}."
        )
    raise Unauthorized(
        f"The Authorization header is not a bearer token: {_HOW_TO_SEND}. "
        f"Create a token with {create}."
    )


__all__ = [
    "PERMISSIONS",
    "ROLES",
    "ROLE_ALIASES",
    "ROLE_PERMISSIONS",
    "TokenAuthenticator",
    "TokenInfo",
    "create_token",
    "hash_secret",
    "list_tokens",
    "revoke_token",
]
