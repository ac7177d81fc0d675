"""Leases: a named claim that one process at a time holds, for work that two doing at once
would spoil (two processes merging the same hour of a prediction log would each write a
file with the same rows).

Why not a database lock: the work is artifact I/O that may take seconds, and on SQLite a
write transaction held that long stalls every other writer of the store (metric flushes,
runs). A lease is a row taken in one short transaction: free or expired, it becomes the
caller's; held by another, the caller learns so at once. A holder that dies leaves it to
expire (``ttl_s``); a long job renews it before each step that must not overlap.

Expiry times come from the holders' clocks, so ``ttl_s`` must be far longer than the clock
skew between the machines sharing a store (seconds against minutes).
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator

from sqlalchemy import delete, select
from sqlalchemy.dialects import postgresql, sqlite

from loopwise.clock import now_us
from loopwise.errors import InvalidInput
from loopwise.ids import new_id
from loopwise.store import Store
from loopwise.store.tables import leases

log = logging.getLogger("loopwise.store")

NAME_MAX = 255


def take(store: Store, name: str, holder: str, *, ttl_s: float) -> bool:
    """Take or renew lease ``name`` for ``holder`` until ``ttl_s`` from now: True if
    ``holder`` holds it now, False if another holder's lease has not expired."""
    _check(name, ttl_s)
    with store.db.write() as conn:
        now = now_us()  # (once the transaction is open: opening may have waited)
        row = {"name": name, "holder": holder, "expires_at": now + int(ttl_s * 1_000_000)}
        module = postgresql if conn.dialect.name == "postgresql" else sqlite
        stmt = module.insert(leases).values(row)
        stmt = stmt.on_conflict_do_update(
            index_elements=["name"],
            set_={"holder": stmt.excluded.holder, "expires_at": stmt.excluded.expires_at},
            where=(leases.c.expires_at < now) | (leases.c.holder == holder),
        )
        conn.execute(stmt)
        held_by = conn.execute(select(leases.c.holder).where(leases.c.name == name)).scalar()
    return held_by == holder


def give_back(store: Store, name: str, holder: str) -> None:
    """Release lease ``name`` if ``holder`` still holds it (an expired lease another has
    taken since is theirs, and stays)."""
    with store.db.write() as conn:
        conn.execute(delete(leases).where(leases.c.name == name, leases.c.holder == holder))


class Lease:
    """A lease held by this process: :meth:`renew` before each step that must not overlap
    another holder's work; False means it was lost (expired, and taken by another)."""

    def __init__(self, store: Store, name: str, holder: str, ttl_s: float) -> None:
        self.store, self.name, self.holder, self.ttl_s = store, name, holder, ttl_s

    def renew(self) -> bool:
        return take(self.store, self.name, self.holder, ttl_s=self.ttl_s)


@contextlib.contextmanager
def held(
    store: Store, name: str, *, ttl_s: float, wait_s: float = 0.0, holder: str | None = None
) -> Iterator[Lease | None]:
    """``with held(store, name, ttl_s=60) as lease:`` — the lease, or None if another holds
    it (after trying for up to ``wait_s`` seconds); given back on leaving the block."""
    holder = holder or new_id()
    deadline = time.monotonic() + wait_s
    delay = 0.05
    while not take(store, name, holder, ttl_s=ttl_s):
        if time.monotonic() + delay > deadline:
            yield None
            return
        time.sleep(delay)
        delay = min(delay * 2, 1.0)
    try:
        yield Lease(store, name, holder, ttl_s)
    finally:
        try:
            give_back(store, name, holder)
        except Exception as e:  # (the store is down): the lease expires by itself
            log.warning("could not release lease %r: %s; it expires in %g s", name, e, ttl_s)


def _check(name: str, ttl_s: float) -> None:
    if not isinstance(name, str) or not 0 < len(name) <= NAME_MAX:
        raise InvalidInput(f"a lease name must be a text of 1-{NAME_MAX} characters; got {name!r}.")
    if isinstance(ttl_s, bool) or not isinstance(ttl_s, int | float) or not 0 < ttl_s < 86_400:
        raise InvalidInput(f"a lease's ttl_s must be seconds in (0, 86400); got {ttl_s!r}.")
