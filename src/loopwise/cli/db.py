"""``loopwise db``: see and apply schema migrations of the metadata database.

Stores migrate themselves on first use, so these commands are for operators who want to
upgrade a shared PostgreSQL store deliberately (e.g. before rolling out a new version)
or check which revision a database is at.
"""

from __future__ import annotations

import typer

from loopwise.cli.render import console

app = typer.Typer(help="Inspect and upgrade the metadata database schema.", no_args_is_help=True)


def _describe(revision: str | None) -> str:
    from loopwise.store.database import HEAD_REVISION

    if revision is None:
        return "none (empty database)"
    if revision == HEAD_REVISION:
        return f"{revision} (head)"
    return f"{revision} (head is {HEAD_REVISION})"


@app.command()
def current() -> None:
    """Print the schema revision the metadata database is at (without changing it)."""
    from loopwise.context import get_store

    store = get_store()
    typer.echo(_describe(store.db.current_revision()))


@app.command()
def upgrade() -> None:
    """Apply pending migrations and print the revision before → after."""
    from loopwise.context import get_store

    store = get_store()
    before = store.db.current_revision()
    store.db.upgrade()
    after = store.db.current_revision()
    out = console()
    if before == after:
        out.print(f"{store.db.safe_url}: already at {_describe(after)}", markup=False)
    else:
        out.print(f"{store.db.safe_url}: {_describe(before)} → {_describe(after)}", markup=False)
