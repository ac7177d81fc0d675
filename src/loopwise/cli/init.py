"""``loopwise init NAME``: write a new project that follows loopwise's practices.

The files come from :mod:`loopwise.scaffold` (a layout, settings with naming rules, a
schema, a promotion policy, a monitor, a training pipeline with its unit tests, a
Makefile and a CI workflow); this command only checks where they go, writes them and
says what to run next.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from loopwise.cli.options import JsonOption
from loopwise.cli.render import console, new_table, print_json, text

#: What each top-level entry of a new project is for, in the order they are listed.
_ROLES = {
    "README.md": "what the project is and its commands",
    "loopwise.toml": "the store (in .loopwise/) and the naming rules",
    "pyproject.toml": "dependencies, ruff and pytest settings",
    "Makefile": "make lint, test, validate, train, promote",
    ".github": "CI: lint, unit tests, data validation, training, promotion gate",
    ".gitignore": "keeps the store and caches out of git",
    "data": "a sample dataset and its schema",
    "features": "feature functions",
    "pipelines": "the training pipeline",
    "models": "the promotion policy",
    "monitors": "the monitor of the served model",
    "tests": "unit tests of the features and the pipeline's steps",
}


def init_command(
    name: Annotated[str, typer.Argument(help="The project's name and folder, e.g. churn-model.")],
    directory: Annotated[
        Path,
        typer.Option("--dir", "-C", help="Where to create the project folder.", show_default="."),
    ] = Path("."),
    as_json: JsonOption = False,
) -> None:
    """Create a project: data, features, pipelines, models, monitors, tests, CI and Makefile."""
    from loopwise.scaffold.project import write_project

    project = write_project(name, directory)
    if as_json:
        print_json(
            {
                "root": str(project.root),
                "name": project.name,
                "model": project.model,
                "pipeline": project.pipeline,
                "files": list(project.files),
            }
        )
        return
    out = console()
    table = new_table(f"{project.name}: {len(project.files)} files in {project.root}")
    table.add_column("path", style="bold")
    table.add_column("for")
    for top, role in _ROLES.items():
        files = [f for f in project.files if f == top or f.startswith(top + "/")]
        if files:
            table.add_row(text("\n".join(files)), text(role))
    out.print(table)
    steps = new_table("Next")
    steps.add_column("run", style="bold", no_wrap=True)
    steps.add_column("for")
    for command, why in (
        (f"cd {project.root}", "the project's loopwise.toml names its store"),
        ('python -m pip install -e ".[dev]"', "its dependencies, pytest and ruff"),
        ("make test", "the unit tests"),
        ("make validate", "the data against its schema"),
        ("make train", f"the pipeline {project.pipeline}: a candidate {project.model}"),
        ("make promote", "the promotion gate: candidate -> champion"),
    ):
        steps.add_row(text(command), text(why))
    out.print(steps)
