"""Who is acting: the name recorded on runs, model versions, alias moves, flags and tokens.

One rule for every layer (the store's services and the API tokens need it as much as
tracking does), so it sits beside the settings and the errors rather than in a domain
package. In a process of one user it is the OS user. The server serves many callers from
one process: for each request it names the caller's API token (:func:`acting_as`), so an
alias moved through the REST API records the token's name, not the server's OS user.
"""

from __future__ import annotations

import functools
import getpass
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

# Per task and thread context: a request's caller never leaks into another request.
_actor: ContextVar[str | None] = ContextVar("loopwise_actor", default=None)


def current_user() -> str | None:
    """The caller acting now (set by :func:`acting_as`), else the OS user (None if
    unknown)."""
    actor = _actor.get()
    if actor is not None:
        return actor
    return _os_user()


@functools.cache
def _os_user() -> str | None:
    """The OS user, looked up once per process (getpass reads the environment, then the
    passwd database: on every run, step and version recorded otherwise)."""
    try:
        return getpass.getuser()
    except Exception:  # no passwd entry in some containers
        return None


def act_as(name: str) -> None:
    """Name the caller for the rest of the current context (a server request's task)."""
    _actor.set(name)


@contextmanager
def acting_as(name: str) -> Iterator[None]:
    """Name the caller inside the block."""
    token = _actor.set(name)
    try:
        yield
    finally:
        _actor.reset(token)
