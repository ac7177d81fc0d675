"""The ``loopwise`` command: the root group, global options and the error boundary.

The CLI is a thin layer over the service functions (design principle 2), so this module
only wires sub-commands together. Two things live here because they apply to every
command: the global ``--store-url`` / ``--artifacts-url`` options, which reconfigure the
process-wide default store, and the error boundary, which turns any
:class:`~loopwise.errors.LoopwiseError` into ``Error: <message>`` on stderr and exit code 1
instead of a traceback.

Importing this module is cheap: pandas, SQLAlchemy and the store are imported by the
commands that need them, so ``loopwise --help`` and ``--version`` start fast.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from loopwise import __version__
from loopwise.cli import (
    audit,
    data,
    datasets,
    db,
    endpoints,
    experiments,
    import_mlflow,
    init,
    loadtest,
    models,
    monitor,
    pipeline_schedules,
    pipelines,
    runs,
    scheduler,
    score,
    serve,
    server,
    tokens,
)
from loopwise.cli.render import print_error
from loopwise.errors import LoopwiseError


class _LoopwiseGroup(TyperGroup):
    """The root group: every command runs inside its ``invoke``, so errors stop here."""

    def invoke(self, ctx: typer.Context) -> Any:
        try:
            return super().invoke(ctx)
        except LoopwiseError as e:
            print_error(str(e))
            raise typer.Exit(1) from None


app = typer.Typer(
    name="loopwise",
    cls=_LoopwiseGroup,
    help="Track, compare and manage machine-learning runs in a loopwise store.",
    no_args_is_help=True,
    add_completion=False,
    # Locals can hold store URLs with passwords: never print them with a traceback.
    pretty_exceptions_show_locals=False,
)
app.add_typer(experiments.app, name="experiments")
app.add_typer(runs.app, name="runs")
app.add_typer(data.app, name="data")
app.add_typer(datasets.app, name="datasets")
app.add_typer(models.app, name="models")
app.command("evaluate")(models.evaluate_command)
app.command("serve")(serve.serve_command)
app.command("server")(server.server_command)
app.command("score")(score.score_command)
app.add_typer(endpoints.app, name="endpoints")
app.command("loadtest")(loadtest.loadtest_command)
app.add_typer(monitor.app, name="monitor")
app.add_typer(pipelines.app, name="pipelines")
pipelines.app.command("schedule")(pipeline_schedules.schedule_command)
pipelines.app.command("schedules")(pipeline_schedules.schedules_command)
pipelines.app.command("unschedule")(pipeline_schedules.unschedule_command)
app.command("scheduler")(scheduler.scheduler_command)
app.add_typer(db.app, name="db")
app.add_typer(tokens.app, name="tokens")
app.command("audit")(audit.audit_command)
app.add_typer(import_mlflow.app, name="import")
app.command("init")(init.init_command)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"loopwise {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    store_url: Annotated[
        str | None,
        typer.Option(
            "--store-url",
            help="Metadata database URL (sqlite:///... or postgresql://...). "
            "Overrides LOOPWISE_STORE_URL and loopwise.toml.",
            show_default=False,
        ),
    ] = None,
    artifacts_url: Annotated[
        str | None,
        typer.Option(
            "--artifacts-url",
            help="Artifact store URL (a folder or s3://bucket/prefix). "
            "Overrides LOOPWISE_ARTIFACTS_URL and loopwise.toml.",
            show_default=False,
        ),
    ] = None,
    tracking_url: Annotated[
        str | None,
        typer.Option(
            "--tracking-url",
            help="A loopwise server (http://host:5000) to work through instead of the store. "
            "Overrides LOOPWISE_TRACKING_URL and loopwise.toml.",
            show_default=False,
        ),
    ] = None,
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            callback=_print_version,
            is_eager=True,
            help="Print the loopwise version and exit.",
        ),
    ] = False,
) -> None:
    """Track, compare and manage machine-learning runs in a loopwise store.

    Without --store-url the store is the Python API's: LOOPWISE_STORE_URL, then loopwise.toml,
    then ./.loopwise/ in the current directory. With --tracking-url (or
    LOOPWISE_TRACKING_URL) runs, experiments, datasets and models are read and written
    through that loopwise server.
    """
    if store_url is not None or artifacts_url is not None or tracking_url is not None:
        from loopwise import context

        extra = {} if tracking_url is None else {"tracking_url": tracking_url}
        context.configure(store_url=store_url, artifacts_url=artifacts_url, **extra)


__all__ = ["app"]
