"""Fill the scaffold's templates for a project name and write them into a new folder.

Why placeholders instead of a template engine: the files are Makefiles, YAML and Python
where ``$``, ``{{`` and ``{%`` all mean something already, so the templates use tokens no
such file contains (``__NAME__``, ``__SLUG__``, ``__LOOPWISE_VERSION__``) and plain
replacement. A template is ``templates/<path>.tmpl``; names that packaging tools skip or
that would be taken for code (a leading dot, ``.py``) are spelled without them there and
mapped back by :data:`RENAMED`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path

from loopwise._version import __version__
from loopwise.errors import InvalidInput
from loopwise.scaffold.sample import write_sample

#: Project names: lower-case words of letters and digits joined by '-' or '_' (the name of a
#: folder, a Python project, and, spelled with '-', of its models and pipelines).
_NAME = re.compile(r"^[a-z][a-z0-9]*(?:[-_][a-z0-9]+)*$")
MAX_NAME = 40
#: Template paths that are written under another name.
RENAMED = {"gitignore": ".gitignore", "github": ".github"}
#: Where the sample dataset goes (generated, not a template).
SAMPLE = "data/customers.csv"


@dataclass(frozen=True)
class Project:
    """A written project: its ``root`` folder, ``name``, ``slug`` (the name in kebab-case,
    used for models, datasets and the pipeline) and the ``files`` written, relative to
    ``root``, sorted."""

    root: Path
    name: str
    slug: str
    files: tuple[str, ...]

    @property
    def model(self) -> str:
        return f"{self.slug}-model"

    @property
    def pipeline(self) -> str:
        return f"{self.slug}-train"


def check_project_name(name: str) -> str:
    """``name`` when it can name a project folder, a Python project and its models."""
    if not isinstance(name, str) or len(name) > MAX_NAME or not _NAME.match(name):
        raise InvalidInput(
            f"Project name {name!r} is not valid: use lower-case letters and digits, words "
            f"joined by '-' or '_', starting with a letter, at most {MAX_NAME} characters "
            "(e.g. churn-model)."
        )
    return name


def templates() -> dict[str, str]:
    """Each template's target path (relative, with '/') -> its text, unfilled."""
    root = resources.files("loopwise.scaffold") / "templates"
    found: dict[str, str] = {}

    def walk(folder: Traversable, prefix: tuple[str, ...]) -> None:
        for entry in folder.iterdir():
            if entry.is_dir():
                if entry.name != "__pycache__":
                    walk(entry, (*prefix, RENAMED.get(entry.name, entry.name)))
            elif entry.name.endswith(".tmpl"):
                name = entry.name.removesuffix(".tmpl")
                found["/".join((*prefix, RENAMED.get(name, name)))] = entry.read_text("utf-8")

    walk(root, ())
    return dict(sorted(found.items()))


def fill(text: str, name: str) -> str:
    """A template's text for project ``name``."""
    return (
        text.replace("__LOOPWISE_VERSION__", __version__)
        .replace("__SLUG__", name.replace("_", "-"))
        .replace("__NAME__", name)
    )


def write_project(name: str, parent: Path) -> Project:
    """Write project ``name`` into ``parent/name`` (created; it may exist only when empty)."""
    check_project_name(name)
    root = Path(parent) / name
    if root.exists() and (not root.is_dir() or any(root.iterdir())):
        what = "folder" if root.is_dir() else "file"
        raise InvalidInput(
            f"{root} already exists and is a {what} that is not empty: choose another project "
            "name, or remove it first."
        )
    written = []
    for path, text in templates().items():
        target = root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(fill(text, name), encoding="utf-8")
        written.append(path)
    write_sample(root / SAMPLE)
    written.append(SAMPLE)
    return Project(root, name, name.replace("_", "-"), tuple(sorted(written)))
