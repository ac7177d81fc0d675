"""``loopwise tokens``: create, list and revoke the API tokens of the serving endpoints.

``create`` prints the secret once, alone on stdout (so ``TOKEN=$(loopwise tokens create
...)`` works), with a warning on stderr that it is not shown again; the store keeps only
its hash. Listings show a token's short prefix, never its secret.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated

import typer
from rich.text import Text

from loopwise.cli.options import JsonOption, json_option
from loopwise.cli.render import (
    MISSING,
    console,
    error_console,
    local_time,
    new_table,
    print_json,
    print_note,
    text,
)
from loopwise.clock import now as clock_now

if TYPE_CHECKING:
    from loopwise.auth.tokens import TokenInfo

app = typer.Typer(
    help="Create, list and revoke API tokens for the serving endpoints.", no_args_is_help=True
)

STATUS_STYLES = {"active": "green", "expired": "yellow", "revoked": "red"}


class Role(StrEnum):
    """The roles of :data:`loopwise.auth.tokens.ROLES` and their former names ``read`` and
    ``write`` (spelled out: importing that module here would load SQLAlchemy for
    ``loopwise --help``)."""

    predict = "predict"
    reader = "reader"
    writer = "writer"
    admin = "admin"
    read = "read"
    write = "write"


def parse_duration(value: str) -> timedelta:
    """``30d``, ``12h``, ``90m``, ``2w`` or ``45s`` as a positive duration."""
    from loopwise.clock import parse_duration as seconds_of
    from loopwise.errors import InvalidInput

    try:
        seconds = seconds_of(value, "--expires-in")
    except InvalidInput:
        raise typer.BadParameter(
            f"{value!r} is not a duration; use a positive number and a unit: 45s, 90m, 12h, "
            "30d or 2w.",
            param_hint="'--expires-in'",
        ) from None
    try:
        return timedelta(seconds=seconds)
    except OverflowError:
        raise _too_long(value) from None


def expiry(duration: timedelta, given: str) -> datetime:
    """The moment ``duration`` from now; a BadParameter past the last representable year."""
    try:
        return clock_now() + duration
    except OverflowError:
        raise _too_long(given) from None


def _too_long(value: str) -> typer.BadParameter:
    return typer.BadParameter(
        f"{value!r} reaches past the year 9999; use a shorter duration, such as 365d, or "
        "leave --expires-in out for a token that never expires.",
        param_hint="'--expires-in'",
    )


def _patterns(patterns: tuple[str, ...] | None) -> str:
    """A scope's patterns as listed: ``*`` when unlimited, ``none`` when empty."""
    if patterns is None:
        return "*"
    return ", ".join(patterns) or "none"


def _scope_note(token: TokenInfo) -> str:
    if not token.scoped:
        return ""
    return f", experiments {_patterns(token.experiments)}, models {_patterns(token.models)}"


def _status(token: TokenInfo) -> Text:
    status = token.status()
    return Text(status, style=STATUS_STYLES.get(status, ""))


@app.command("create")
def create(
    name: Annotated[str, typer.Argument(help="A label for the token, e.g. ci-deploy.")],
    role: Annotated[
        Role,
        typer.Option(
            "--role",
            "-r",
            help="predict: POST /predict and /feedback; reader: GET /model, /metrics, the "
            "docs and the server's reads; writer: reads and writes (runs, metrics, models); "
            "admin: everything. 'read' and 'write' are accepted as reader and writer.",
            show_default=False,
        ),
    ],
    expires_in: Annotated[
        str | None,
        typer.Option(
            "--expires-in",
            help="Expire after this long: 45s, 90m, 12h, 30d, 2w. Never, when not given.",
            show_default=False,
        ),
    ] = None,
    experiments: Annotated[
        list[str] | None,
        typer.Option(
            "--experiments",
            help="Limit the token to experiments matching this fnmatch pattern (repeatable), "
            "e.g. 'churn-*'. With --models only, the token reaches no experiment.",
            show_default=False,
        ),
    ] = None,
    models: Annotated[
        list[str] | None,
        typer.Option(
            "--models",
            help="Limit the token to registered models matching this fnmatch pattern "
            "(repeatable), e.g. 'churn-*'. With --experiments only, the token reaches no model.",
            show_default=False,
        ),
    ] = None,
    as_json: Annotated[bool, json_option("Print the token and its secret as JSON.")] = False,
) -> None:
    """Create an API token and print its secret: it is shown this once, and never stored."""
    from loopwise.auth.tokens import create_token
    from loopwise.context import get_store

    expires_at = None
    if expires_in is not None:
        expires_at = expiry(parse_duration(expires_in), expires_in)
    token, secret = create_token(
        get_store(),
        name,
        role.value,
        expires_at=expires_at,
        experiments=experiments or None,
        models=models or None,
    )
    if as_json:
        print_json({**token.to_dict(), "secret": secret})
    else:
        typer.echo(secret)
    expires = "never expires" if token.expires_at is None else "expires "
    if token.expires_at is not None:
        expires += local_time(token.expires_at, zone=True)
    error_console().print(
        Text(
            f"Created token {token.name!r} (id {token.id}, role {token.role}, {expires}"
            f"{_scope_note(token)}).\n"
            "Copy the secret now: it is not shown again and cannot be recovered (loopwise "
            "keeps only its hash).\n"
            "Clients send it as the header `Authorization: Bearer <token>`.",
            style="yellow",
        ),
        soft_wrap=True,
    )


@app.command("list")
def list_command(
    show_all: Annotated[
        bool, typer.Option("--all", "-a", help="Also list revoked tokens.")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """List API tokens, oldest first: name, id, role, prefix, status, expiry, last use."""
    from loopwise.auth.tokens import list_tokens
    from loopwise.context import get_store

    store = get_store()
    found = list_tokens(store, include_revoked=show_all)
    if as_json:
        print_json([t.to_dict() for t in found])
        return
    if not found:
        print_note(
            f"No {'' if show_all else 'unrevoked '}API tokens in {store.db.safe_url}: the "
            "serving endpoints accept requests without a token. Create one with "
            "`loopwise tokens create NAME --role predict`."
        )
        return
    table = new_table()
    table.add_column("name", style="bold")
    table.add_column("id", no_wrap=True)
    table.add_column("role")
    table.add_column("prefix", no_wrap=True)
    table.add_column("status")
    table.add_column("created", no_wrap=True)
    table.add_column("by")
    table.add_column("expires", no_wrap=True)
    table.add_column("last used", no_wrap=True)
    scoped = any(t.scoped for t in found)
    if scoped:
        table.add_column("experiments")
        table.add_column("models")
    if show_all:
        table.add_column("revoked", no_wrap=True)
    for t in found:
        row = [
            text(t.name),
            text(t.id),
            text(t.role),
            text(f"{t.prefix}…"),
            _status(t),
            local_time(t.created_at),
            text(t.created_by),
            local_time(t.expires_at) if t.expires_at else "never",
            local_time(t.last_used_at) if t.last_used_at else MISSING,
        ]
        if scoped:
            row += [text(_patterns(t.experiments)), text(_patterns(t.models))]
        if show_all:
            row.append(local_time(t.revoked_at))
        table.add_row(*row)
    console().print(table)


@app.command("revoke")
def revoke(
    name_or_id: Annotated[
        str,
        typer.Argument(
            metavar="NAME_OR_ID", help="The token's name or id (see `loopwise tokens list`)."
        ),
    ],
) -> None:
    """Revoke a token: servers refuse it within their cache TTL (5 seconds by default)."""
    from loopwise.auth.tokens import revoke_token
    from loopwise.context import get_store

    token = revoke_token(get_store(), name_or_id)
    console().print(
        Text(f"Revoked token {token.name!r} (id {token.id}, role {token.role}).", style="bold")
    )
    print_note("Running servers refuse it within their token cache TTL (5 seconds by default).")


__all__ = ["app", "parse_duration"]
