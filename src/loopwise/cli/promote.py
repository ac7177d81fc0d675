"""``loopwise models promote``: run a policy's gates and move the alias only if all pass.

The exit code is the verdict (0 promoted, 1 refused), so a CI/CD pipeline can gate a
deployment on it; the table says which check failed, by how much, and on which slice.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from loopwise.cli.options import json_option
from loopwise.cli.render import console, new_table, print_json, text


def promote_command(
    uri: Annotated[str, typer.Argument(help="The candidate, e.g. models:/credit-risk/4.")],
    alias: Annotated[str, typer.Option("--alias", "-a", help="The alias to move, e.g. champion.")],
    policy: Annotated[Path, typer.Option("--policy", "-p", help="The policy YAML file.")],
    data: Annotated[
        str, typer.Option("--data", "-d", help="Evaluation data: a file or datasets:/...")
    ],
    target: Annotated[str, typer.Option("--target", "-t", help="The label column.")],
    as_json: Annotated[bool, json_option("Print JSON.")] = False,
) -> None:
    """Evaluate a candidate against a policy; exit 1 when a gate refuses it."""
    from loopwise.cli.data import _read, _steps
    from loopwise.cli.models import model_uri
    from loopwise.registry.api import promote

    with _steps(2) as (step, done):
        step(f"reading {data}")
        frame = data if data.startswith("datasets:/") else _read(data)
        done()
        step(f"evaluating {uri} against {policy}")
        decision = promote(
            model_uri(uri), alias=alias, policy=str(policy), data=frame, target=target
        )
        done()
    if as_json:
        print_json(decision.to_dict())
    else:
        out = console()
        out.print(
            decision.summary().splitlines()[0],
            style="bold green" if decision.passed else "bold red",
            markup=False,
        )
        table = new_table()
        for name in ("check", "result", "value", "limit", "slice", "message"):
            table.add_column(name)
        for check in decision.checks:
            value, limit = _apart(check.value, check.limit)
            table.add_row(
                text(check.name),
                text("pass" if check.passed else "FAIL"),
                text(value),
                text(limit),
                text(check.slice),
                text(check.message),
            )
        out.print(table)
    if not decision.passed:
        raise typer.Exit(1)


def _apart(value: object, limit: object) -> tuple[object, object]:
    """A check's value and limit for the table: floats to four significant digits, or as
    many as it takes to show them apart (0.999999 against a floor of 0.99999999)."""
    from loopwise.evaluation.gates import digits_apart

    if isinstance(value, float) and isinstance(limit, float):
        return f"{value:.{digits_apart(value, limit)}g}", f"{limit:.12g}"
    shown = [f"{v:.4g}" if isinstance(v, float) else v for v in (value, limit)]
    return shown[0], shown[1]
