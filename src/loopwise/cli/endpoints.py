"""``loopwise endpoints``: switch an endpoint's model off and on, and see who did it.

``loopwise endpoints flag credit-risk off --reason "bad scores after the 2am release"``
makes every worker and replica of the endpoint answer its fallback within one poll
interval; ``... flag credit-risk on`` gives the model back. Without a state, the command
shows the current flag and its history.
"""

from __future__ import annotations

from typing import Annotated

import typer

from loopwise.cli.render import console, local_time, new_table, print_json, print_note, text
from loopwise.errors import InvalidInput

app = typer.Typer(help="Manage serving endpoints (the model flag).", no_args_is_help=True)

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")]
_STATES = {"on": True, "off": False}


@app.command("flag")
def flag_command(
    endpoint: Annotated[str, typer.Argument(help="The endpoint name, e.g. credit-risk.")],
    state: Annotated[
        str | None, typer.Argument(help="on (the model answers) or off (the fallback does).")
    ] = None,
    reason: Annotated[
        str | None, typer.Option("--reason", "-r", help="Why: kept in the flag's history.")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Turn the endpoint's model on or off; without a state, show the flag's history."""
    from loopwise.context import get_store
    from loopwise.serving.flags import flag_history, set_model_flag

    store = get_store()
    if state is not None:
        if state.lower() not in _STATES:
            raise InvalidInput(f"the flag state must be 'on' or 'off'; got {state!r}.")
        flag = set_model_flag(store, endpoint, _STATES[state.lower()], reason=reason)
        word = "on: the model answers" if flag.enabled else "off: the fallback answers"
        if as_json:
            print_json({"endpoint": endpoint, "enabled": flag.enabled, "reason": reason})
        else:
            console().print(f"endpoint {endpoint!r} model flag {word} (within a poll interval)")
        return
    if reason is not None:
        raise InvalidInput("--reason goes with a state: loopwise endpoints flag NAME off -r WHY.")
    history = flag_history(store, endpoint)
    if as_json:
        print_json(
            [
                {"enabled": f.enabled, "reason": f.reason, "set_at": f.set_at, "set_by": f.set_by}
                for f in history
            ]
        )
        return
    if not history:
        print_note(f"The model flag of {endpoint!r} was never switched: the model answers.")
        return
    table = new_table(f"model flag of {endpoint}")
    for column in ("when", "state", "by", "reason"):
        table.add_column(column)
    for f in history:
        table.add_row(
            local_time(f.set_at), "on" if f.enabled else "off", text(f.set_by), text(f.reason)
        )
    console().print(table)
